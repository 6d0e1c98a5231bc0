"""Atomic file writes and staging folders that get the normal, umask-derived permissions.

tempfile.mkstemp and mkdtemp create 0600 files and 0700 folders, and a rename keeps the mode, so
outputs renamed into place from them could not be opened by colleagues on a shared drive. Here
the temporary file or folder is created with os.open/os.mkdir and mode 0666/0777, which the
kernel narrows by the process umask exactly as for any file a program creates (no need to read
the umask, which os.umask can only do by changing it, racing with other threads).
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

FILE_MODE = 0o666  # narrowed by the umask: 0644 under umask 022
DIR_MODE = 0o777  # 0755 under umask 022
_ATTEMPTS = 100


def _name(prefix: str, suffix: str) -> str:
    return f"{prefix}{secrets.token_hex(6)}{suffix}"


def temp_file(folder: Path, prefix: str = ".tmp-", suffix: str = ".tmp") -> Path:
    """Create a new empty file in `folder` with a unique name and the normal mode."""
    for _ in range(_ATTEMPTS):
        path = folder / _name(prefix, suffix)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))


def temp_dir(parent: Path, prefix: str = ".tmp-") -> Path:
    """Create a new empty folder in `parent` with a unique name and the normal mode (a staging
    folder that may later be renamed into place)."""
    for _ in range(_ATTEMPTS):
        path = parent / _name(prefix, "")
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary folder name", str(parent))


def atomic_write(path: Path, write: Callable[[Path], object], *, prefix: str = ".tmp-") -> Path:
    """Call `write(tmp)` on a new file beside `path`, then rename it over `path`; returns `path`.

    Readers see the old file or the new one, never half of one; on any failure the temporary
    file is removed and `path` is left as it was. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_file(path.parent, prefix, ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see atomic_write)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return atomic_write(path, write)
