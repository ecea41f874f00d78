"""Where verified bytes go on their way to disk: a temporary file, plain or
encrypted to age recipients before any byte touches the disk.

A sink hashes what it stores, so the manifest's SHA-256 is that of the file
as it lies on disk and in S3. `commit()` fsyncs and renames into place;
`discard()` removes the temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO


class _HashingWriter:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.digest.update(chunk)
        self.size += len(chunk)
        self._stream.write(chunk)
        return len(chunk)

    def flush(self) -> None:
        self._stream.flush()


class Sink:
    """Bytes to `temp`, then atomically `final`; plain unless `recipients`."""

    def __init__(self, temp: Path, final: Path, recipients: list[str]) -> None:
        self.temp = temp
        self.final = final
        self.encrypted = bool(recipients)
        self.plain = hashlib.sha256()
        self._file = temp.open("xb")
        self._out = _HashingWriter(self._file)
        self._error: BaseException | None = None
        self._pipe_w: int | None = None
        self._thread: threading.Thread | None = None
        if recipients:
            self._start_encryption(recipients)

    def _start_encryption(self, recipients: list[str]) -> None:
        import pyrage

        keys = [pyrage.x25519.Recipient.from_str(key) for key in recipients]
        read_fd, self._pipe_w = os.pipe()
        reader = os.fdopen(read_fd, "rb")

        def encrypt() -> None:
            try:
                pyrage.encrypt_io(reader, self._out, keys)
            except BaseException as error:  # reported by commit()
                self._error = error
            finally:
                reader.close()

        self._thread = threading.Thread(target=encrypt, name="age-encrypt")
        self._thread.start()

    def write(self, chunk: bytes) -> None:
        """Blocking: call it from a worker thread."""
        self.plain.update(chunk)
        if self._pipe_w is None:
            self._out.write(chunk)
            return
        view = memoryview(chunk)
        while view:
            written = os.write(self._pipe_w, view)
            view = view[written:]

    def _finish_writing(self) -> None:
        if self._pipe_w is not None:
            os.close(self._pipe_w)
            self._pipe_w = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise OSError(f"age encryption failed: {self._error}")

    def commit(self) -> tuple[str, int]:
        """fsync, rename into place; (sha256, size) of the stored file."""
        self._finish_writing()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temp, self.final)
        fsync_dir(self.final.parent)
        return self._out.digest.hexdigest(), self._out.size

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._finish_writing()
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
