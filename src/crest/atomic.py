"""Write files so that a crash never leaves a half-written one under the final name."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from crest.errors import CrestError


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    The temporary file lives in the same folder, so the rename is atomic on POSIX.
    On an exception the temporary file is removed and ``final`` is untouched.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{final.name}.", suffix=suffix + ".tmp", dir=final.parent
        )
    except OSError as exc:
        raise write_failure(final, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the final file the usual permissions (0666 minus umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise write_failure(final, exc) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


#: below this much free space, a failed write is reported as a full disk
LOW_SPACE_BYTES = 64 * 1024 * 1024


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def write_failure(path: Path, exc: BaseException) -> CrestError:
    """A write that failed, said plainly: a full disk as such, anything else with its cause."""
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    free = free_bytes(path.parent) if path.parent.exists() else 0
    if full or free < LOW_SPACE_BYTES:
        return CrestError(
            f"{path}: could not be written: the disk is full ({free / 1e6:.0f} MB free in "
            f"{path.parent}); nothing was left half-written"
        )
    return CrestError(f"{path}: could not be written ({exc}); nothing was left half-written")


def ensure_space(path: Path, needed: int) -> None:
    """Refuse to start writing ``needed`` bytes where they do not fit (HDF5 can crash on a full disk)."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    free = free_bytes(folder)
    if free < needed + LOW_SPACE_BYTES:
        raise CrestError(
            f"{path}: not enough disk space: the file needs about {needed / 1e9:.2f} GB, "
            f"{free / 1e9:.2f} GB are free in {folder}"
        )


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
