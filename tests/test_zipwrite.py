"""The output workbook's big parts deflated on every core (pipeline.zipwrite)."""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
import zlib
from pathlib import Path

import pytest
import xlsxwriter.workbook
from xlsxwriter import Workbook

from pipeline import zipwrite
from pipeline.zipwrite import ParallelDeflate, ParallelZipFile, parallel_parts


def _data(size: int, seed: int = 1) -> bytes:
    """Compressible but not trivial: XML-like rows with random numbers."""
    rng = random.Random(seed)
    rows = []
    total = 0
    while total < size:
        row = f'<row r="{len(rows) + 1}"><c r="A1" t="s"><v>{rng.randrange(999)}</v></c></row>'
        rows.append(row)
        total += len(row)
    return "".join(rows).encode()[:size]


def _deflated(data: bytes, threads: int, pieces: int = 7) -> tuple[bytes, int]:
    deflate = ParallelDeflate(threads)
    out = []
    step = max(1, len(data) // pieces)
    for at in range(0, len(data), step):
        out.append(deflate.compress(data[at : at + step]))
    out.append(deflate.flush())
    return b"".join(out), deflate.blocks


@pytest.mark.parametrize(
    "size",
    [0, 1000, zipwrite.BLOCK_BYTES, 3 * zipwrite.BLOCK_BYTES, 3 * zipwrite.BLOCK_BYTES + 12345],
)
def test_the_blocks_make_one_deflate_stream_whatever_the_threads(size: int) -> None:
    data = _data(size)
    one, blocks = _deflated(data, threads=1)
    assert zlib.decompress(one, -zlib.MAX_WBITS) == data
    assert blocks == -(-size // zipwrite.BLOCK_BYTES)
    # the bytes depend on the data only: not on the threads, nor on how it was handed over
    assert _deflated(data, threads=3, pieces=2)[0] == one
    if size > zipwrite.BLOCK_BYTES:  # nearly as small as one pass (each block sees the last)
        assert len(one) < 1.01 * len(zlib.compress(data, 6)) + 64


def test_a_big_file_is_zipped_in_parallel_and_a_small_one_as_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    levels: set[int] = set()
    real = zipwrite._deflate

    def counted(block: bytes, primer: bytes, level: int) -> bytes:
        calls.append(len(block))
        levels.add(level)
        return real(block, primer, level)

    monkeypatch.setattr(zipwrite, "_deflate", counted)
    big, small = tmp_path / "big.xml", tmp_path / "small.xml"
    big.write_bytes(_data(zipwrite.PARALLEL_MIN_BYTES + 5000))
    small.write_bytes(_data(5000, seed=2))
    target = tmp_path / "out.zip"
    with ParallelZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.threads = 2
        zf.write(small, "small.xml")
        zf.write(big, "xl/worksheets/sheet1.xml")
    assert sum(calls) == big.stat().st_size  # zipfile's own compressor was swapped for ours
    assert levels == {zipwrite.BIG_PART_LEVEL}  # xlsxwriter asks for no level: ours, not 6
    # one core: the same blocks, so the same archive
    single = tmp_path / "single.zip"
    with ParallelZipFile(single, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.threads = 1
        zf.write(small, "small.xml")
        zf.write(big, "xl/worksheets/sheet1.xml")
    assert single.read_bytes() == target.read_bytes()
    with zipfile.ZipFile(target) as zf:
        assert zf.testzip() is None  # every CRC-32 checks out
        assert zf.read("xl/worksheets/sheet1.xml") == big.read_bytes()
        assert zf.read("small.xml") == small.read_bytes()
        assert zf.getinfo("xl/worksheets/sheet1.xml").compress_type == zipfile.ZIP_DEFLATED


def _workbook(path: Path) -> None:
    wb = Workbook(str(path))
    wb.set_properties({"created": dt.datetime(2023, 8, 1)})  # else the time of writing
    ws = wb.add_worksheet("台账")
    rng = random.Random(4)
    for r in range(3000):
        ws.write_row(r, 0, [f"隐患{rng.randrange(500)}", rng.randrange(10**6), "整改中"])
    wb.close()


def test_xlsxwriter_closed_inside_parallel_parts_writes_the_same_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # xlsxwriter zips through the name ZipFile of its workbook module: if a new version stops
    # doing so, this fails (the workbook would still be right, only slower)
    assert "ZipFile" in xlsxwriter.workbook.Workbook._store_workbook.__code__.co_names
    monkeypatch.setattr(zipwrite, "PARALLEL_MIN_BYTES", 16 * 1024)
    monkeypatch.setattr(zipwrite, "BLOCK_BYTES", 8 * 1024)
    calls: list[int] = []
    real = zipwrite._deflate
    monkeypatch.setattr(
        zipwrite, "_deflate", lambda b, p, level: calls.append(len(b)) or real(b, p, level)
    )
    _workbook(tmp_path / "plain.xlsx")
    assert not calls
    with parallel_parts(threads=2):
        _workbook(tmp_path / "parallel.xlsx")
    assert xlsxwriter.workbook.ZipFile is zipfile.ZipFile  # put back
    assert len(calls) > 10
    plain = zipfile.ZipFile(io.BytesIO((tmp_path / "plain.xlsx").read_bytes()))
    parallel = zipfile.ZipFile(io.BytesIO((tmp_path / "parallel.xlsx").read_bytes()))
    assert parallel.testzip() is None
    assert plain.namelist() == parallel.namelist()
    for name in plain.namelist():
        assert plain.read(name) == parallel.read(name), name
    assert (tmp_path / "plain.xlsx").read_bytes() != (tmp_path / "parallel.xlsx").read_bytes()
