"""Child processes of the backup role (pg_dump, pg_dumpall, pg_restore).

Each child is the leader of its own process group, so cancellation (a
workflow cancel, a lost heartbeat, a timeout) ends the whole group, workers
included; with `setpriv` it also dies with the worker process. Its stderr is
kept (the tail only) for classification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

STDERR_LIMIT = 16 * 1024
KILL_GRACE = 5.0
_SETPRIV = shutil.which("setpriv")


@dataclass(frozen=True)
class Finished:
    returncode: int
    stderr: str


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment without stray libpq settings, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PG") and key not in ("DATABASE_URL",)
    }
    env["LC_ALL"] = "C.UTF-8"
    env.update(extra)
    return env


async def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    tick: Callable[[], None],
    every: float = 2.0,
    stdout: Callable[[bytes], Awaitable[None]] | None = None,
) -> Finished:
    """Run `argv` to its end, calling `tick` every `every` seconds.

    With `stdout`, the child's output is handed over chunk by chunk;
    otherwise it goes to /dev/null. On cancellation the process group gets
    SIGTERM, then SIGKILL after a grace period, and the error propagates.
    """
    full = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else list(argv)
    process = await asyncio.create_subprocess_exec(
        *full,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )
    stderr = bytearray()
    readers = [asyncio.ensure_future(_collect(process.stderr, stderr))]
    if stdout is not None:
        readers.append(asyncio.ensure_future(_pump(process.stdout, stdout)))
    try:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), every)
                break
            except TimeoutError:
                tick()
        await asyncio.gather(*readers)
    except BaseException:
        await _end_group(process)
        for reader in readers:
            reader.cancel()
        raise
    return Finished(process.returncode or 0, stderr.decode("utf-8", "replace").strip())


async def _collect(stream: asyncio.StreamReader | None, into: bytearray) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        into += chunk
        if len(into) > STDERR_LIMIT:
            del into[: len(into) - STDERR_LIMIT]


async def _pump(
    stream: asyncio.StreamReader | None, sink: Callable[[bytes], Awaitable[None]]
) -> None:
    if stream is None:
        return
    while chunk := await stream.read(1 << 20):
        await sink(chunk)


async def _end_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        _kill_group(process.pid, signal.SIGKILL)  # stragglers of a dead leader
        return
    _kill_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(process.wait()), KILL_GRACE)
    _kill_group(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(process.wait()), KILL_GRACE)
    log.info("ended process group %d", process.pid)


def _kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def last_line(stderr: str) -> str:
    """The most telling line of a tool's stderr (its last error)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower() or "fatal" in line.lower():
            return line[:500]
    return lines[-1][:500] if lines else "(no message)"
