"""Deflating a big part of the output workbook on every core.

xlsxwriter zips the workbook's parts one after another with zipfile, in one thread: at
province scale the ledger sheet alone is some 160 MB of XML, and deflating it was a quarter
of the write. Here a part above PARALLEL_MIN_BYTES is cut into blocks of BLOCK_BYTES,
deflated in threads (zlib lets go of the GIL while it works) and joined in order, as pigz
does: every block but the last ends on a byte boundary (a sync flush) and is primed with the
32 KB before it (deflate's whole window), so the stream is one valid deflate stream, nearly
as small as a single pass. The bytes depend only on the data, never on the threads or their
timing, nor on how many cores the machine has: the same result gives the same workbook.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import threading
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import xlsxwriter.workbook

BLOCK_BYTES = 1 << 20
PARALLEL_MIN_BYTES = 4 * BLOCK_BYTES
# zlib level for a big part when the writer asks for none: on the province ledger sheet's
# 166 MB of XML, level 5 deflates to 19.33 MB in 1.5 CPU s, level 6 (zlib's default) to
# 18.98 MB in 2.5 s, level 4 to 22.1 MB in 1.0 s: 40% less work for 2% more bytes
BIG_PART_LEVEL = 5
_WINDOW = 32 * 1024  # deflate looks back at most this far


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _deflate(block: bytes, primer: bytes, level: int) -> bytes:
    """`block` as raw deflate blocks ending on a byte boundary, not final, primed with the
    bytes that came before it."""
    if primer:
        packer = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=primer)
    else:
        packer = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(block) + packer.flush(zlib.Z_SYNC_FLUSH)


class ParallelDeflate:
    """A compressor as zipfile uses one (compress, flush) that deflates BLOCK_BYTES at a time
    in `threads` threads; what it returns is what is done so far, in order."""

    def __init__(self, threads: int, level: int = zlib.Z_DEFAULT_COMPRESSION) -> None:
        self.level = level
        self.threads = max(1, threads)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="deflate")
        self.pending: collections.deque[Future[bytes]] = collections.deque()
        self.buffer = bytearray()
        self.primer = b""
        self.blocks = 0  # blocks deflated (for the tests)

    def compress(self, data: bytes) -> bytes:
        self.buffer += data
        while len(self.buffer) >= BLOCK_BYTES:
            self._submit(bytes(self.buffer[:BLOCK_BYTES]))
            del self.buffer[:BLOCK_BYTES]
        return self._done(wait=len(self.pending) > 2 * self.threads)

    def flush(self) -> bytes:
        try:
            if self.buffer:
                self._submit(bytes(self.buffer))
                self.buffer.clear()
            out = self._done(wait=True, every=True)
            # an empty final block ends the stream
            return out + zlib.compressobj(self.level, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the threads (flush does it too)."""
        for future in self.pending:
            future.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True)

    def _submit(self, block: bytes) -> None:
        self.pending.append(self.pool.submit(_deflate, block, self.primer, self.level))
        self.primer = block[-_WINDOW:]
        self.blocks += 1

    def _done(self, *, wait: bool, every: bool = False) -> bytes:
        out = []
        while self.pending and (every or wait or self.pending[0].done()):
            out.append(self.pending.popleft().result())
            wait = False  # one block waited for is enough to keep the threads busy
        return b"".join(out)


class ParallelZipFile(zipfile.ZipFile):
    """zipfile.ZipFile whose write() deflates a file above PARALLEL_MIN_BYTES with
    ParallelDeflate (every other write, and every read, is zipfile's own)."""

    threads = 1  # set by parallel_parts; with one, the same blocks (so the same bytes)

    def write(
        self,
        filename: Any,
        arcname: Any = None,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        method = self.compression if compress_type is None else compress_type
        if (
            method != zipfile.ZIP_DEFLATED
            or not os.path.isfile(filename)
            or os.path.getsize(filename) < PARALLEL_MIN_BYTES
        ):
            super().write(filename, arcname, compress_type, compresslevel)
            return
        if not self.fp:
            raise ValueError("Attempt to write to ZIP archive that was already closed")
        strict = getattr(self, "_strict_timestamps", True)
        zinfo = zipfile.ZipInfo.from_file(filename, arcname, strict_timestamps=strict)
        zinfo.compress_type = method
        level = compresslevel if compresslevel is not None else self.compresslevel
        zinfo._compresslevel = level  # type: ignore[attr-defined]
        deflate = ParallelDeflate(self.threads, BIG_PART_LEVEL if level is None else level)
        try:
            with open(filename, "rb") as src, self.open(zinfo, "w") as dest:
                # zipfile's writer counts the size and CRC-32 and writes what its compressor
                # returns: the compressor is swapped for the parallel one
                dest._compressor = deflate  # type: ignore[attr-defined]
                shutil.copyfileobj(src, dest, BLOCK_BYTES)
        finally:
            deflate.close()


_SWAP = threading.Lock()  # one block at a time swaps xlsxwriter's ZipFile


@contextlib.contextmanager
def parallel_parts(threads: int | None = None) -> Iterator[None]:
    """xlsxwriter's workbooks closed in this block deflate their big parts on `threads`
    threads (default: every core). xlsxwriter zips through the name ZipFile in its workbook
    module (xlsxwriter is pinned; a test checks that it still does)."""
    count = cores() if threads is None else threads
    zip_class = type("_ParallelZipFile", (ParallelZipFile,), {"threads": count})
    with _SWAP:
        saved = xlsxwriter.workbook.ZipFile
        xlsxwriter.workbook.ZipFile = zip_class
        try:
            yield
        finally:
            xlsxwriter.workbook.ZipFile = saved
