"""Safe file writes: atomic replacement and one writer at a time.

`atomic_write` writes a temporary file in the same folder, fsyncs it and renames it over the
target, so that a crash or a kill never leaves a half-written artefact for a later run. The
temporary file is locked (``flock``) while it is written; the next save of the same target
removes the temporary files nobody holds any more (those of killed saves), never the one of a
save still under way in another process. JSON is written strictly: NaN and infinities become
``null``, never the bare ``NaN`` other JSON readers refuse.

`ExclusiveLock` is an OS-level lock (``flock``) on a lock file: one process holds it at a
time, and it dies with its process (a SIGKILLed holder never blocks the next one). The lock
file records who holds it (pid, host, start time), for the message of a process turned away.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ofa_latency_kedro import pause

#: The random part of the temporary names ``tempfile.mkstemp`` gives.
_TEMP_RANDOM = "[a-z0-9_]{8}"


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` on a temporary binary file, then move it over ``path`` in one step."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp_name = _locked_temporary(target)
    try:
        pause.reached(f"atomic_write.opened:{target.name}")
        os.fchmod(fd, _file_mode(target))
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            pause.reached(f"atomic_write.written:{target.name}")
            os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    pause.reached(f"atomic_write.replaced:{target.name}")
    _fsync_folder(target.parent)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """``data`` as strict JSON (see `strict_json`), indented, written atomically."""
    return atomic_write_text(path, strict_json(data, indent=2) + "\n")


def strict_json(data: Any, **dumps_args: Any) -> str:
    """JSON text of ``data`` that every JSON reader accepts: NaN and infinities (Python or
    numpy floats) become ``null``, numpy scalars and arrays plain numbers and lists, other
    objects their ``str``."""
    return json.dumps(_finite(data), allow_nan=False, default=str, **dumps_args)


def _finite(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        value = value.tolist()  # numpy scalars and arrays as Python numbers and lists
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _locked_temporary(target: Path) -> tuple[int, str]:
    """A new temporary file beside ``target``, locked by this process; retried when a cleaner
    removed it before the lock was taken."""
    while True:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:
            return fd, tmp_name
        os.close(fd)


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of earlier saves of ``target`` that no process holds (a
    killed save leaves one); returns them."""
    target = Path(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{_TEMP_RANDOM}\.tmp")
    removed = []
    try:
        candidates = [entry for entry in os.scandir(target.parent) if pattern.fullmatch(entry.name)]
    except FileNotFoundError:
        return removed
    for entry in candidates:
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, entry.path):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except (BlockingIOError, FileNotFoundError):
            continue  # a save under way, or already gone
        finally:
            os.close(fd)
    return removed


def _same_file(fd: int, path: str | os.PathLike[str]) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def _file_mode(target: Path) -> int:
    """The mode a plain ``open`` would give: the target's own when it exists, else 0o666
    less the umask (``mkstemp`` makes its files private, 0o600)."""
    if target.exists():
        return target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- one writer at a time ---------------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as its lock file says (None where the file does not say yet)."""

    pid: int | None = None
    host: str | None = None
    since: str | None = None

    def describe(self) -> str:
        """``pid 123 on box since 2026-01-01T10:00:00+00:00``."""
        if self.pid is None:
            return "another process (it has not written its pid yet)"
        return f"pid {self.pid} on {self.host} since {self.since}"


class ExclusiveLock:
    """An exclusive ``flock`` on the file ``path``, for one process at a time.

    `try_acquire` takes it or says who holds it; `acquire` waits for it. The lock file holds
    this process's pid, host and start time while it is held and is removed on `release`; a
    file left by a killed holder is stale text only (the lock went with the process).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> LockHolder | None:
        """Take the lock: None when taken, else who holds it."""
        return self._acquire(blocking=False)

    def acquire(self) -> None:
        """Take the lock, waiting for its holder to release it (or to die)."""
        self._acquire(blocking=True)

    def _acquire(self, blocking: bool) -> LockHolder | None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                return holder
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder before us removed this file: lock the current one
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        self._fd = fd
        return None

    def release(self) -> None:
        """Give the lock up and remove its file (no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink()
        finally:
            os.close(fd)  # closing releases the flock

    def holder(self) -> LockHolder:
        """Who the lock file says holds the lock (stale when its holder died)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return LockHolder()
        try:
            return _read_holder(fd)
        finally:
            os.close(fd)


def _read_holder(fd: int) -> LockHolder:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return LockHolder(int(record["pid"]), str(record["host"]), str(record["since"]))
    except (ValueError, KeyError, TypeError):
        return LockHolder()
