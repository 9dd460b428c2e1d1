"""One owner per run folder: an advisory lock (``fcntl.flock``) on ``.crest.lock`` holding the
owner's PID, kept for the whole run. A second writer fails at once, naming the owner; a lock left
by a dead process is free again (the kernel drops it with the process), and the temporary files a
killed writer left behind are removed when the next owner starts. No torch here: the CLI checks
the lock before its heavy imports."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from crest.errors import CrestError
from crest.run_folder import RunFolder

log = logging.getLogger(__name__)
LOCK_NAME = ".crest.lock"


class RunFolderBusy(CrestError):
    """Another process is writing this run folder."""


def _owner(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "unknown"
    return text or "unknown"


def check_free(root: str | Path) -> None:
    """Raise :class:`RunFolderBusy` if a live process holds ``root``'s lock; change nothing."""
    path = Path(root) / LOCK_NAME
    if not path.exists():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _owner(path)
        if owner.isdigit() and not _alive(int(owner)):
            return  # its forked loader workers may hold it a few seconds more: acquire() waits
        raise RunFolderBusy(
            f"{root}: in use by another crest run (PID {owner}); wait for it to finish or "
            "choose another --out"
        ) from None
    except OSError:
        return  # a filesystem without flock: acquire() warns
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Hold ``root``'s lock from :meth:`acquire` to :meth:`release` (or the end of the process)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, wait: float = 5.0) -> None:
        """Take the lock; a holder whose PID is dead (its orphaned loader workers still hold the
        file for a moment) is waited for up to ``wait`` seconds."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = _owner(self.path)
                dead = owner.isdigit() and not _alive(int(owner))
                if dead and time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                os.close(fd)
                raise RunFolderBusy(
                    f"{self.root}: in use by another crest run (PID {owner}); wait for it "
                    "to finish or choose another --out"
                ) from None
            except OSError as exc:  # e.g. a network filesystem mounted without flock
                log.warning("%s: cannot lock the run folder (%s); running unlocked", self.root, exc)
                break
        previous = _owner(self.path)
        if previous not in ("unknown", str(os.getpid())):
            log.info("%s: taking over the lock of PID %s (no longer running)", self.root, previous)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        removed = remove_stale_temporaries(self.root)
        if removed:
            log.info(
                "%s: removed %d temporary file(s) of an interrupted writer", self.root, removed
            )

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def remove_stale_temporaries(root: Path) -> int:
    """Remove ``.NAME.*.tmp`` files (crest.atomic's temporaries) of the run folder and its
    checkpoints; only the lock's owner may call this, as no other trainer can be running."""
    count = 0
    for tmp in RunFolder(root).temporaries():
        if tmp.is_file():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                count += 1
    return count
