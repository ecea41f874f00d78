"""Small process helpers shared by the lab launchers (sshd nodes, Temporal)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# Prefix for long-running children: the kernel kills them when the thread that
# started them dies, so a crashed or SIGKILLed test process leaves nothing
# behind. (PR_SET_PDEATHSIG survives exec; it fires when the *parent thread*
# exits, so start lab processes from a long-lived thread, e.g. the main one.)
PDEATHSIG_PREFIX: tuple[str, ...] = ("setpriv", "--pdeathsig", "KILL", "--")


class LabProcessError(RuntimeError):
    """A lab process failed to start or a lab command failed."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a placeholder."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log at {path}: {exc}>"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "<log is empty>"


def wait_for_tcp(
    proc: subprocess.Popen[bytes],
    host: str,
    port: int,
    *,
    what: str,
    log: Path,
    timeout: float,
) -> None:
    """Wait until ``host:port`` accepts TCP, failing fast if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabProcessError(
                f"{what} exited with status {proc.returncode} before "
                f"{host}:{port} accepted connections; log tail ({log}):\n"
                f"{log_tail(log)}"
            )
        if tcp_accepts(host, port):
            return
        time.sleep(0.02)
    raise LabProcessError(
        f"{what} did not accept connections on {host}:{port} within "
        f"{timeout:.0f}s; log tail ({log}):\n{log_tail(log)}"
    )


def terminate(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps ``proc``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    proc.wait()


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    check: bool = True,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short command, capturing text output; clear error on failure."""
    result = subprocess.run(
        [os.fspath(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if check and result.returncode != 0:
        raise LabProcessError(
            f"command failed with status {result.returncode}: "
            f"{' '.join(os.fspath(a) for a in argv)}\n"
            f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}"
        )
    return result


def only_child(pid: int) -> int | None:
    """The single child of ``pid``, or None while it has not forked yet."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    if len(children) > 1:
        raise LabProcessError(f"expected one child of {pid}, found {children}")
    return int(children[0]) if children else None


def spawn_in_namespaces(
    argv: Sequence[str], *, log: Path, mount: bool
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as PID 1 of a new PID (and optionally mount) namespace.

    When that process exits, the kernel kills everything else in its PID
    namespace (sessions, daemons such as sshfs) and the namespace init reaps
    them, so no orphan or zombie is left behind. ``unshare --kill-child``
    plus PR_SET_PDEATHSIG tie the whole chain to the calling thread.
    """
    namespaces = ["unshare", "--pid", "--fork", "--kill-child"]
    if mount:
        namespaces += ["--mount", "--propagation", "private"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*PDEATHSIG_PREFIX, *namespaces, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_namespaced(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a process started by ``spawn_in_namespaces`` and reap it.

    ``unshare`` blocks SIGTERM while it waits, so the namespace init gets the
    SIGTERM; SIGKILL to ``unshare`` (which --kill-child forwards) is the
    fallback.
    """
    if proc.poll() is None:
        init = only_child(proc.pid)
        try:
            if init is None:
                proc.kill()
            else:
                os.kill(init, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
