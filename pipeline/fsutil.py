"""Atomic file writes and staging folders that get the normal, umask-derived permissions.

tempfile.mkstemp and mkdtemp create 0600 files and 0700 folders, and a rename keeps the mode, so
outputs renamed into place from them could not be opened by colleagues on a shared drive. Here
the temporary file or folder is created with os.open/os.mkdir and mode 0666/0777, which the
kernel narrows by the process umask exactly as for any file a program creates (no need to read
the umask, which os.umask can only do by changing it, racing with other threads).

ForkedFiles lets a forked helper process render some files while the caller does other work; the
caller still renames every file into place itself, in its own order, and writes a file itself
whenever the helper did not deliver it.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import TracebackType

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


class ForkedFiles:
    """Files rendered by a forked helper process while this process does other work.

    `jobs` maps a key to a function writing one file at the path it is given. `start()` forks
    (if `fork` is true and a fork is safe: Linux, no other thread alive) a child that runs the
    jobs in order, each into a new file created beforehand (so this process knows every name to
    clean up), by default in `folder`, and reports each key once its file is complete.
    `take(key)` waits for that report and hands over the finished file, or returns None when
    the helper failed, was not started or was stopped: the caller then writes the file itself,
    so whatever goes wrong in the helper, the caller's own writing (and its errors) decide the
    outcome. `close()` stops the child if it is still running and removes every file not
    renamed away (taken or not); use the object as a context manager.
    """

    def __init__(
        self, folder: Path, jobs: dict[str, Callable[[Path], object]], *, fork: bool = True
    ) -> None:
        self._folder = folder
        self._jobs = jobs
        self._fork = fork
        self._files: dict[str, Path] = {}
        self._done: set[str] = set()
        self._taken: set[str] = set()
        self._pid = 0
        self._fd = -1
        self._buffer = b""
        self._frozen = False
        self._started = False

    def start(
        self,
        first: dict[str, Callable[[Path], object]] | None = None,
        *,
        first_folder: Path | None = None,
    ) -> None:
        """Fork the helper (once), with the `first` jobs (files in `first_folder`) before the
        others."""
        if self._started:
            return
        self._started = True
        jobs = {**(first or {}), **self._jobs}
        if not (self._fork and jobs and _can_fork()):
            return
        assert all(key and "\n" not in key for key in jobs)
        read_fd = write_fd = -1
        try:
            for key in jobs:
                folder = first_folder if first and key in first and first_folder else self._folder
                self._files[key] = temp_file(folder)
            read_fd, write_fd = os.pipe()
            # the objects both processes share stay out of garbage collections (which would
            # touch, and so copy, every page holding one) until close()
            gc.freeze()
            self._frozen = True
            pid = os.fork()
        except OSError:  # no room for the files or no process to spare: the caller writes them
            for fd in (read_fd, write_fd):
                if fd >= 0:
                    os.close(fd)
            self.close()
            return
        if pid == 0:  # the child: never returns into the caller's code
            code = 1
            try:
                os.close(read_fd)
                for key, job in jobs.items():
                    job(self._files[key])
                    os.write(write_fd, key.encode() + b"\n")
                code = 0
            except BaseException:  # the parent writes what is missing and reports its own errors
                pass
            finally:
                os._exit(code)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd

    def take(self, key: str) -> Path | None:
        """The finished file for `key`, for the caller to rename into place, or None."""
        while key not in self._done and self._fd >= 0:
            data = os.read(self._fd, 4096)
            if not data:  # the child has finished, or failed before reporting `key`
                self._stop()
                break
            *lines, self._buffer = (self._buffer + data).split(b"\n")
            self._done.update(line.decode() for line in lines)
        if key in self._done and key not in self._taken:
            self._taken.add(key)
            return self._files[key]
        return None

    def _stop(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._pid:
            if not set(self._files) <= self._done:
                # still writing, or failed: only this process's own child, never reaped before
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = 0

    def close(self) -> None:
        """Stop the child and remove the files still under their temporary names."""
        self._stop()
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
        for path in self._files.values():
            path.unlink(missing_ok=True)
        self._files.clear()

    def __enter__(self) -> ForkedFiles:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _can_fork() -> bool:
    """fork() copies only the calling thread: with other threads alive a lock they hold could
    stay locked forever in the child, so only a single-threaded Linux process forks."""
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


def _pool_worker_init(initializer: Callable[[], object] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if initializer is not None:
        initializer()


@contextlib.contextmanager
def worker_pool(
    jobs: int, initializer: Callable[[], object] | None = None
) -> Iterator[ProcessPoolExecutor]:
    """A process pool that Ctrl-C stops cleanly. Its workers ignore SIGINT (one dying of it
    would break the pool, and Python 3.11's pool can then wait for ever on a worker blocked on
    its pipe); when the block is left by an exception (Ctrl-C, or a generator closed early) the
    work not yet started is dropped, so leaving waits only for what the workers do now."""
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_pool_worker_init, initargs=(initializer,)
    ) as pool:
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
