"""Hostile and malformed returns (issue 7): nothing crashes, nothing is lost, nothing is injected.

One inbox holds every class of bad input next to one good return; `validate` and `consolidate`
run over it through the CLI. Each bad file must get its rule code (and sheet and cell where it
has one) with a Chinese message, the good return must be accepted, the inbox must come out
byte-for-byte unchanged, outputs must be reproducible and survive an interrupted run, and county
text that looks like a formula must stay text in every workbook and be neutralised in every CSV.
The catalogue of these classes is docs/输入安全.md; the last tests keep it honest.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import functools
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import openpyxl
import pytest
from click.testing import CliRunner, Result
from helpers_fill import (
    PERIOD,
    errors,
    good_inspection,
    good_ledger_rows,
    good_progress,
    make_return,
    ole_bytes,
    read_one,
    template_bytes,
    zip_bytes,
)

from pipeline import safety
from pipeline.cli import main
from pipeline.forms import load_forms
from pipeline.layout import Cell, LedgerLayout, checklist_layout, progress_layout
from pipeline.messages import CATALOGUE
from pipeline.read import CHINA_TZ

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE_DOC = ROOT / "docs" / "输入安全.md"
CJK = re.compile(r"[\u4e00-\u9fff]")
GIGABYTE = 1024 * 1024 * 1024
RECEIVED = dt.datetime(2023, 6, 30, 17, 0, tzinfo=CHINA_TZ).timestamp()  # on time for 2023-06

FORMS = load_forms()
PROGRESS = progress_layout(FORMS["annex4_progress"])  # type: ignore[arg-type]
LEDGER = LedgerLayout(form=FORMS["ledger"])  # type: ignore[arg-type]

# County text a spreadsheet would run: OWASP's CSV-injection prefixes, also after a tab or CR
PAYLOADS = (
    '=HYPERLINK("http://evil.example/","点击查看")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=2+2",
)
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def shown(payload: str) -> str:
    """What the reader keeps of a payload: free text is trimmed of surrounding spaces."""
    return payload.strip()


# --- building hostile files ------------------------------------------------------------------


def rewrite_zip(data: bytes, change: dict[str, bytes]) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    entries = [(i.filename, change.get(i.filename, src.read(i.filename))) for i in src.infolist()]
    return zip_bytes(entries)


def with_sheet_xml(form_id: str, edit: Any) -> bytes:
    """The form's template with its first worksheet's XML passed through `edit`."""
    data = template_bytes(form_id)
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    return rewrite_zip(data, {"xl/worksheets/sheet1.xml": edit(sheet)})


def far_cell(sheet: bytes) -> bytes:
    """A value at row 1,000,000: a million-row sheet in a few bytes."""
    return sheet.replace(
        b"</sheetData>", b'<row r="1000000"><c r="A1000000"><v>1</v></c></row></sheetData>'
    )


@functools.cache
def deflate_bomb(inflated: int) -> bytes:
    """A zip holding an xlsx-looking workbook whose sheet inflates to `inflated` zero bytes
    (a whole number of MB); the directory tells the truth: a small file, gigabytes inflated."""
    block = bytes(1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    # a fully flushed block stands alone: repeating it repeats the zeros it inflates to
    unit = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = inflated // len(block)
    stream = unit * count + compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("[Content_Types].xml", b"<Types/>")
        zf.writestr("xl/workbook.xml", b"<workbook/>")
    head = buffer.getvalue()
    # append the bomb entry by hand: zipfile would have to inflate it to write it
    name = b"xl/worksheets/sheet1.xml"
    src = zipfile.ZipFile(io.BytesIO(head))
    out = io.BytesIO()
    central = b""
    for info in src.infolist():
        offset = out.tell()
        data = src.read(info.filename)
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = comp.compress(data) + comp.flush()
        central += _central(
            info.filename.encode(), zlib.crc32(data), len(packed), len(data), offset
        )
        out.write(_local(info.filename.encode(), zlib.crc32(data), len(packed), len(data)) + packed)
    offset = out.tell()
    out.write(_local(name, crc, len(stream), inflated) + stream)
    central += _central(name, crc, len(stream), inflated, offset)
    start = out.tell()
    out.write(central)
    count = len(src.infolist()) + 1
    out.write(
        b"PK\x05\x06"
        + (0).to_bytes(4, "little")
        + count.to_bytes(2, "little") * 2
        + len(central).to_bytes(4, "little")
        + start.to_bytes(4, "little")
        + b"\x00\x00"
    )
    return out.getvalue()


def _local(name: bytes, crc: int, packed: int, size: int) -> bytes:
    return (
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00"
        + crc.to_bytes(4, "little")
        + packed.to_bytes(4, "little")
        + size.to_bytes(4, "little")
        + len(name).to_bytes(2, "little")
        + b"\x00\x00"
        + name
    )


def _central(name: bytes, crc: int, packed: int, size: int, offset: int) -> bytes:
    return (
        b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00"
        + crc.to_bytes(4, "little")
        + packed.to_bytes(4, "little")
        + size.to_bytes(4, "little")
        + len(name).to_bytes(2, "little")
        + b"\x00" * 12
        + offset.to_bytes(4, "little")
        + name
    )


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>"
)
QUADRATIC = b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "' + b"a" * 50_000 + b'">]>'
EXTERNAL = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'


def entity_bomb(part: str, prolog: bytes, encoding: str = "utf-8") -> bytes:
    data = template_bytes("annex4_progress")
    body = zipfile.ZipFile(io.BytesIO(data)).read(part).split(b"?>", 1)[1]
    text = prolog + body
    if encoding != "utf-8":
        text = text.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="UTF-16"?>')
        text = text.decode().encode(encoding)
    return rewrite_zip(data, {part: text})


def ods_bomb() -> bytes:
    content = (
        BILLION_LAUGHS
        + b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0">'
        + b"<office:body>&lol9;</office:body></office:document-content>"
    )
    manifest = (
        b'<?xml version="1.0"?><manifest:manifest '
        b'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>'
    )
    return zip_bytes(
        [
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", manifest),
            ("content.xml", content),
        ],
        zipfile.ZIP_STORED,
    )


def encrypted_xls() -> bytes:
    """A compound file whose Workbook stream starts BOF, FILEPASS (what Excel writes for an
    .xls with an opening password). The stream is 4 KB so it lives in regular sectors."""
    bof = (
        (0x0809).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + bytes.fromhex("0006050000000000" + "0000000000000000")
    )
    filepass = (0x002F).to_bytes(2, "little") + (6).to_bytes(2, "little") + bytes(6)
    stream = (bof + filepass + b"\x0a\x00\x00\x00").ljust(4096, b"\x00")
    sector = 512
    header = bytearray(ole_bytes([])[:512])
    header[0x2C:0x30] = (1).to_bytes(4, "little")  # one FAT sector (sector 0)
    header[0x30:0x34] = (1).to_bytes(4, "little")  # the directory in sector 1
    end, fat_sector, free = 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    chain = [fat_sector, end] + [i + 1 for i in range(2, 9)] + [end]  # data: sectors 2..9
    fat = b"".join(x.to_bytes(4, "little") for x in chain + [free] * (128 - len(chain)))

    def entry(name: str, kind: int, start: int, size: int, child: int = free) -> bytes:
        raw = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le")
        raw[: len(encoded)] = encoded
        raw[64:68] = len(encoded).to_bytes(2, "little") + bytes([kind, 1])
        raw[68:80] = free.to_bytes(4, "little") * 2 + child.to_bytes(4, "little")
        raw[116:128] = start.to_bytes(4, "little") + size.to_bytes(8, "little")
        return bytes(raw)

    directory = entry("Root Entry", 5, end, 0, child=1) + entry("Workbook", 2, 2, len(stream))
    return bytes(header) + fat + directory.ljust(sector, b"\x00") + stream


def encrypted_ods() -> bytes:
    """An .ods saved with a password: its manifest carries encryption data."""
    manifest = (
        b'<?xml version="1.0"?><manifest:manifest '
        b'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        b'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        b'<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AA==">'
        b"</manifest:encryption-data></manifest:file-entry></manifest:manifest>"
    )
    return zip_bytes(
        [
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", manifest),
            ("content.xml", b"\x8f\x12 encrypted bytes"),
        ],
        zipfile.ZIP_STORED,
    )


def as_text(path: Path, sheet: str, cells: dict[str, str]) -> Path:
    """Type `cells` as text (what a clerk gets with a leading apostrophe or a text-formatted
    cell): the value starts with '=' but is a string cell, not a formula."""
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet]
    for address, text in cells.items():
        ws[address].value = text
        ws[address].data_type = "s"
    wb.save(path)
    return path


def with_formula_result(path: Path, sheet_part: str, cell: str, formula: str, cached: str) -> None:
    """Replace one cell of the saved workbook by a formula with a cached value (what Excel
    writes when a clerk types =10+2 into an input cell)."""
    data = path.read_bytes()
    sheet = zipfile.ZipFile(io.BytesIO(data)).read(sheet_part)
    start = sheet.index(f'<c r="{cell}"'.encode())
    end = sheet.index(b"</c>", start) + 4
    style = re.search(rb's="(\d+)"', sheet[start:end])
    attr = b' s="%s"' % style.group(1) if style else b""
    new = b'<c r="%s"%s><f>%s</f><v>%s</v></c>' % (
        cell.encode(),
        attr,
        formula.encode(),
        cached.encode(),
    )
    path.write_bytes(rewrite_zip(data, {sheet_part: sheet[:start] + new + sheet[end:]}))


# --- the hostile inbox -----------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What validate must say about one file: its status and (rule, sheet, cell) it must carry
    ('*' matches any sheet or cell, '' means none)."""

    status: str
    issues: tuple[tuple[str, str, str], ...] = ()


GOOD = "鼓楼区/附件4 调度表.xlsx"
DUPLICATE = "鼓楼区/附件4 调度表（重发）.xlsx"


def build_inbox(inbox: Path) -> dict[str, Expect]:
    """Every class of issue 7 item 1, one good return and the formula-like county text."""
    inbox.mkdir(parents=True)
    expect: dict[str, Expect] = {}
    u, p = PROGRESS.unit_cell.a1, PROGRESS.period_cell.a1
    cell = {code: c.a1 for code, c in PROGRESS.value_cells.items()}

    def raw(rel: str, data: bytes, status: str, *issues: tuple[str, str, str]) -> None:
        path = inbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expect[rel] = Expect(status, issues)

    # the good return, and the same bytes again under another name
    make_return(inbox, "annex4_progress", GOOD)
    expect[GOOD] = Expect("accepted")
    shutil.copyfile(inbox / GOOD, inbox / DUPLICATE)
    expect[DUPLICATE] = Expect("accepted")

    # 0-byte and empty files; a non-spreadsheet with a spreadsheet extension; damage
    raw("空文件.xlsx", b"", "rejected", ("file-empty", "", ""))
    blank = io.BytesIO()
    openpyxl.Workbook().save(blank)
    raw("空白工作簿.xlsx", blank.getvalue(), "rejected", ("file-unidentified", "", ""))
    raw(
        "扫描件.xlsx",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
        "rejected",
        ("file-not-spreadsheet-content", "", ""),
    )
    raw(
        "导出数据.xls",
        "序号,单位\n1,鼓楼区\n".encode("gb18030"),
        "rejected",
        ("file-not-spreadsheet-content", "", ""),
    )
    whole = template_bytes("annex4_progress")
    raw("下载中断.xlsx", whole[: len(whole) // 2], "rejected", ("file-truncated", "", ""))
    raw("加密.xls", encrypted_xls(), "rejected", ("file-encrypted", "", ""))
    raw("加密.ods", encrypted_ods(), "rejected", ("file-encrypted", "", ""))
    raw(
        "加密.xlsx",
        ole_bytes(["EncryptionInfo", "EncryptedPackage"]),
        "rejected",
        ("file-encrypted", "", ""),
    )

    # bombs: inflating, XML entities (in several parts, encodings and formats)
    raw("压缩炸弹.xlsx", deflate_bomb(GIGABYTE), "rejected", ("file-zip-limits", "", ""))
    raw(
        "实体炸弹.xlsx",
        entity_bomb("xl/workbook.xml", BILLION_LAUGHS),
        "rejected",
        ("file-xml-dtd", "", ""),
    )
    raw(
        "二次膨胀.xlsx",
        entity_bomb("xl/sharedStrings.xml", QUADRATIC),
        "rejected",
        ("file-xml-dtd", "", ""),
    )
    raw(
        "外部实体.xlsx",
        entity_bomb("xl/worksheets/sheet1.xml", EXTERNAL),
        "rejected",
        ("file-xml-dtd", "", ""),
    )
    raw(
        "UTF16实体.xlsx",
        entity_bomb("xl/worksheets/sheet1.xml", BILLION_LAUGHS, "utf-16"),
        "rejected",
        ("file-xml-dtd", "", ""),
    )
    raw("实体炸弹.ods", ods_bomb(), "rejected", ("file-xml-dtd", "", ""))

    # a sheet of a million rows
    raw(
        "百万行.xlsx",
        with_sheet_xml("annex4_progress", far_cell),
        "rejected",
        ("file-sheet-too-large", "", ""),
    )

    # sheets renamed, deleted, hidden; rows and columns inserted; a merge broken
    path = make_return(inbox, "annex4_progress", "台江区/附件4 改了表名.xlsx", unit="台江区")
    wb = openpyxl.load_workbook(path)
    wb["调度表"].title = "6月数据"
    wb.save(path)
    expect["台江区/附件4 改了表名.xlsx"] = Expect("accepted")
    path = make_return(inbox, "ledger", "仓山区/台账 删了表.xlsx", unit="仓山区")
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("Sheet1")
    del wb["隐患台账"]
    wb.save(path)
    expect["仓山区/台账 删了表.xlsx"] = Expect("rejected", (("sheet-missing", "", ""),))
    path = make_return(inbox, "annex4_progress", "马尾区/附件4 隐藏.xlsx", unit="马尾区")
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("Sheet1")
    wb["调度表"].sheet_state = "hidden"
    wb.save(path)
    expect["马尾区/附件4 隐藏.xlsx"] = Expect("accepted", (("sheet-hidden", "调度表", ""),))
    path = make_return(inbox, "annex4_progress", "晋安区/附件4 插了行列.xlsx", unit="晋安区")
    wb = openpyxl.load_workbook(path)
    ws = wb["调度表"]
    ws.merged_cells.ranges = set()
    ws.insert_rows(1, 2)
    ws.insert_cols(1)
    wb.save(path)
    expect["晋安区/附件4 插了行列.xlsx"] = Expect("accepted")
    path = make_return(
        inbox,
        "annex4_progress",
        "长乐区/附件4 拆了合并.xlsx",
        unit="长乐区",
        progress=good_progress() | {"A1": None},
    )
    wb = openpyxl.load_workbook(path)
    ws = wb["调度表"]
    for rng in list(ws.merged_cells.ranges):
        if cell["A1"] in rng:
            ws.unmerge_cells(str(rng))
    right = PROGRESS.value_cells["A1"]
    ws.cell(right.row + 1, right.col + 2).value = 12
    wb.save(path)
    expect["长乐区/附件4 拆了合并.xlsx"] = Expect("accepted")

    # formulas: never calculated (openpyxl writes no result), and typed with a result
    make_return(
        inbox,
        "annex4_progress",
        "闽侯县/附件4 公式未计算.xlsx",
        unit="闽侯县",
        progress=good_progress() | {"A1": "=10+2"},
    )
    expect["闽侯县/附件4 公式未计算.xlsx"] = Expect(
        "rejected", (("value-formula-no-result", "调度表", cell["A1"]),)
    )
    path = make_return(inbox, "annex4_progress", "连江县/附件4 公式.xlsx", unit="连江县")
    with_formula_result(path, "xl/worksheets/sheet1.xml", cell["A1"], "10+2", "12")
    expect["连江县/附件4 公式.xlsx"] = Expect("accepted")

    # text, negative, fractional and absurd numbers (1e15 in a count)
    make_return(
        inbox,
        "annex4_progress",
        "罗源县/附件4 数字.xlsx",
        unit="罗源县",
        progress=good_progress() | {"B2": "三", "B3": -1, "B4": 1.5, "D3": 1e15},
    )
    expect["罗源县/附件4 数字.xlsx"] = Expect(
        "rejected",
        (
            ("value-ambiguous", "调度表", cell["B2"]),
            ("value-negative", "调度表", cell["B3"]),
            ("value-not-integer", "调度表", cell["B4"]),
            ("value-too-large", "调度表", cell["D3"]),
        ),
    )

    # dates before the campaign and after the period
    annex3 = checklist_layout(FORMS["annex3_confined_space"])  # type: ignore[arg-type]
    early = good_inspection("annex3_confined_space")
    early["footer"]["inspection_date"] = dt.date(2023, 4, 28)
    make_return(
        inbox,
        "annex3_confined_space",
        "闽清县/附件3 日期太早.xlsx",
        unit="闽清县",
        inspections=[early],
    )
    expect["闽清县/附件3 日期太早.xlsx"] = Expect(
        "rejected",
        (("checklist-date-before-campaign", "附件3", annex3.footer_cell("inspection_date").a1),),
    )
    late = good_ledger_rows()
    late[0]["found_date"] = dt.date(2023, 7, 3)
    make_return(inbox, "ledger", "永泰县/台账 日期太晚.xlsx", unit="永泰县", ledger_rows=late)
    expect["永泰县/台账 日期太晚.xlsx"] = Expect(
        "rejected",
        (
            (
                "ledger-date-after-period",
                "隐患台账",
                Cell(LEDGER.first_data_row, LEDGER.col("found_date")).a1,
            ),
        ),
    )

    # another unit's template in this unit's folder: the metadata wins; cells disagreeing with it
    make_return(inbox, "annex3_confined_space", "台江区/附件3（鼓楼区的模板）.xlsx")
    expect["台江区/附件3（鼓楼区的模板）.xlsx"] = Expect("accepted")
    make_return(
        inbox,
        "annex4_progress",
        "福清市/附件4 改了单位和月份.xlsx",
        unit_name="仓山区",
        period_text="2023年5月",
    )
    expect["福清市/附件4 改了单位和月份.xlsx"] = Expect(
        "rejected", (("meta-unit-mismatch", "调度表", u), ("meta-period-mismatch", "调度表", p))
    )
    # a template of another period, sent in this month
    make_return(inbox, "ledger", "福清市/台账（5月模板）.xlsx", unit="福清市", period="2023-05")
    # its metadata says May: June's dates in it are "after the period"
    expect["福清市/台账（5月模板）.xlsx"] = Expect(
        "rejected", (("ledger-date-after-period", "隐患台账", "*"),)
    )
    # a unit not in the units data (a blank template)
    make_return(
        inbox,
        "annex4_progress",
        "平潭/附件4.xlsx",
        unit=None,
        period=None,
        unit_name="平潭综合实验区",
        period_text="2023年6月",
    )
    expect["平潭/附件4.xlsx"] = Expect("rejected", (("unit-unknown", "调度表", u),))

    # names with spaces, Chinese and odd characters (some look like formulas themselves)
    odd = ("闽清县/附件1 (最终版) #2;'&%.xlsx", "=HYPERLINK(1)附件1.xlsx", "-附件1 副本.xlsx")
    for day, name in enumerate(odd, start=6):
        spec = good_inspection("annex1_gas")
        spec["footer"]["inspection_date"] = dt.date(2023, 6, day)  # three inspections
        make_return(inbox, "annex1_gas", name, unit="闽清县", inspections=[spec])
        expect[name] = Expect("accepted")
    raw(
        "\t=1+1 换\n行.xlsx",
        b"not a workbook",
        "rejected",
        ("file-not-spreadsheet-content", "", ""),
    )

    # symbolic links (to a return, to a folder, to a file outside the inbox), folders named like
    # workbooks, lock files
    outside = inbox.parent / "outside.xlsx"
    outside.write_bytes(template_bytes("ledger"))
    os.symlink(inbox / GOOD, inbox / "链接.xlsx")
    os.symlink(outside, inbox / "外部链接.xlsx")
    os.symlink(inbox / "鼓楼区", inbox / "链接文件夹")
    expect["链接.xlsx"] = Expect("ignored", (("file-ignored-symlink", "", ""),))
    expect["外部链接.xlsx"] = Expect("ignored", (("file-ignored-symlink", "", ""),))
    expect["链接文件夹/"] = Expect("ignored", (("file-ignored-symlink", "", ""),))
    (inbox / "空文件夹.xlsx").mkdir()
    make_return(inbox, "annex2_construction", "看似工作簿.xlsx/附件2.xlsx", unit="永泰县")
    expect["看似工作簿.xlsx/附件2.xlsx"] = Expect("accepted")
    raw(
        "~$附件4 调度表.xlsx",
        b"\x0c" + "张三".encode("utf-16-le").ljust(164, b"\x00"),
        "ignored",
        ("file-ignored-lock", "", ""),
    )
    raw(
        ".~lock.附件4 调度表.xlsx#",
        "张三,zhang,PC,30.06.2023 17:00,file:///C:/;".encode(),
        "ignored",
        ("file-ignored-lock", "", ""),
    )

    _injection_returns(inbox, expect)
    for path in inbox.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (RECEIVED, RECEIVED))
    return expect


def _injection_returns(inbox: Path, expect: dict[str, Expect]) -> None:
    """Formula-like county text in ledger text cells, a checklist's 隐患描述 and footer fields:
    in accepted returns (it reaches the consolidated outputs) and rejected ones (it reaches the
    validation report and the annotated copies)."""
    text_cols = ("enterprise", "site", "description", "measures", "responsible", "remarks")
    # accepted ledger: one payload per row, in a different text column each time
    rows = [dict(good_ledger_rows()[i % 3], hazard_id=f"GL-2023-1{i:02d}") for i in range(6)]
    path = make_return(inbox, "ledger", "鼓楼区/台账.xlsx", ledger_rows=rows)
    as_text(
        path,
        "隐患台账",
        {
            Cell(LEDGER.first_data_row + i, LEDGER.col(key)).a1: payload
            for i, (key, payload) in enumerate(zip(text_cols, PAYLOADS, strict=True))
        },
    )
    expect["鼓楼区/台账.xlsx"] = Expect("accepted")

    # accepted checklists: 隐患描述 and the footer's 检查项目 and 检查人员 (one sheet per payload)
    form = FORMS["annex2_construction"]
    lay = checklist_layout(form)  # type: ignore[arg-type]
    first = form.items[0].no  # type: ignore[union-attr]
    specs = []
    for i, payload in enumerate(PAYLOADS):
        spec = good_inspection("annex2_construction")
        spec["details"][first]["description"] = payload
        spec["footer"]["project"] = payload
        spec["footer"]["inspectors"] = payload
        spec["footer"]["inspection_date"] = dt.date(2023, 6, 5 + i)
        specs.append(spec)
    path = make_return(inbox, "annex2_construction", "鼓楼区/附件2.xlsx", inspections=specs)
    sheets = ["附件2"] + [f"附件2 ({i})" for i in range(2, len(PAYLOADS) + 1)]
    for sheet, payload in zip(sheets, PAYLOADS, strict=True):
        as_text(
            path,
            sheet,
            {
                Cell(lay.item_row(first), lay.col("description")).a1: payload,
                lay.footer_cell("project").a1: payload,
                lay.footer_cell("inspectors").a1: payload,
            },
        )
    expect["鼓楼区/附件2.xlsx"] = Expect("accepted")

    # rejected: the payloads typed into a count cell, a choice cell and a date cell (the
    # validation report shows the value) and kept in text cells (the annotated copy keeps them)
    value = {code: c.a1 for code, c in PROGRESS.value_cells.items()}
    path = make_return(inbox, "annex4_progress", "台江区/附件4 公式文本.xlsx", unit="台江区")
    as_text(path, "调度表", {value["A1"]: PAYLOADS[0], value["B1"]: PAYLOADS[1]})
    expect["台江区/附件4 公式文本.xlsx"] = Expect(
        "rejected",
        (("value-not-number", "调度表", value["A1"]), ("value-ambiguous", "调度表", value["B1"])),
    )
    rows = good_ledger_rows()
    path = make_return(
        inbox, "ledger", "台江区/台账 公式文本.xlsx", unit="台江区", ledger_rows=rows
    )
    status = Cell(LEDGER.first_data_row, LEDGER.col("status")).a1
    found = Cell(LEDGER.first_data_row + 1, LEDGER.col("found_date")).a1
    cells = {status: PAYLOADS[2], found: PAYLOADS[3]}
    cells |= {
        Cell(LEDGER.first_data_row + 2, LEDGER.col(key)).a1: payload
        for key, payload in zip(text_cols, PAYLOADS, strict=True)
    }
    as_text(path, "隐患台账", cells)
    expect["台江区/台账 公式文本.xlsx"] = Expect(
        "rejected",
        (("ledger-choice-invalid", "隐患台账", status), ("date-invalid", "隐患台账", found)),
    )
    spec = good_inspection("annex2_construction")
    spec["answers"].pop(form.items[1].no)  # type: ignore[union-attr]
    path = make_return(
        inbox,
        "annex2_construction",
        "台江区/附件2 公式文本.xlsx",
        unit="台江区",
        inspections=[spec],
    )
    as_text(
        path,
        "附件2",
        {
            Cell(lay.item_row(first), lay.col("description")).a1: PAYLOADS[4],
            lay.footer_cell("project").a1: PAYLOADS[0],
            lay.footer_cell("inspectors").a1: PAYLOADS[5],
        },
    )
    expect["台江区/附件2 公式文本.xlsx"] = Expect(
        "rejected", (("checklist-no-tick", "附件2", "*"),)
    )


# --- running the CLI -------------------------------------------------------------------------


@dataclass
class Run:
    result: Result
    out: Path
    document: dict[str, Any]


def run(command: str, inbox: Path, out: Path, *extra: str) -> Run:
    result = CliRunner().invoke(main, [command, str(inbox), "--out", str(out), "--json", *extra])
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        document = {}
    return Run(result, out, document)


def snapshot(inbox: Path) -> dict[str, tuple[str, ...]]:
    """Every entry of the inbox: content hash and mtime (links: their target, unfollowed)."""
    out: dict[str, tuple[str, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(inbox):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            st = path.lstat()
            rel = path.relative_to(inbox).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path), str(st.st_mtime_ns))
            elif path.is_dir():
                out[rel] = ("dir", str(st.st_mtime_ns))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = ("file", digest, str(st.st_mtime_ns), oct(st.st_mode))
    return out


def output_files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Expect]]:
    inbox = tmp_path_factory.mktemp("hostile") / "inbox"
    return inbox, build_inbox(inbox)


@pytest.fixture(scope="module")
def runs(zoo: tuple[Path, dict[str, Expect]]) -> dict[str, Any]:
    """validate, then consolidate twice (the second into another folder), recording the inbox
    before and after."""
    inbox, _expect = zoo
    base = inbox.parent
    before = snapshot(inbox)
    validated = run("validate", inbox, base / "validate")
    consolidated = run("consolidate", inbox, base / "out", "--period", PERIOD)
    again = run("consolidate", inbox, base / "again", "--period", PERIOD)
    after = snapshot(inbox)
    return {
        "before": before,
        "after": after,
        "validate": validated,
        "consolidate": consolidated,
        "again": again,
    }


# --- 1. every class: a reason, no traceback, the run goes on, exit codes ---------------------


def test_exit_codes_follow_design_section_10(runs: dict[str, Any]) -> None:
    assert runs["validate"].result.exit_code == 1, runs["validate"].result.output
    assert runs["consolidate"].result.exit_code == 0, runs["consolidate"].result.output
    assert runs["again"].result.exit_code == 0


def test_no_traceback_for_any_file(runs: dict[str, Any]) -> None:
    for name in ("validate", "consolidate"):
        result = runs[name].result
        assert result.exception is None or isinstance(result.exception, SystemExit), name
        assert "Traceback" not in result.output and "Error:" not in result.output
        assert "file-read-failed" not in result.stdout


def test_every_file_gets_its_reason_and_the_good_one_is_accepted(
    zoo: tuple[Path, dict[str, Expect]], runs: dict[str, Any]
) -> None:
    _inbox, expect = zoo
    files = {f["file"]: f for f in runs["validate"].document["files"]}
    assert set(expect) <= set(files), sorted(set(expect) - set(files))
    assert files[GOOD]["status"] == "accepted" and files[GOOD]["issues"] == []
    for rel, want in expect.items():
        got = files[rel]
        assert got["status"] == want.status, (rel, got["issues"])
        found = {(i["rule"], i["sheet"], i["cell"]) for i in got["issues"]}
        for rule, sheet, cell in want.issues:
            assert any(r == rule and sheet in ("*", s) and cell in ("*", c) for r, s, c in found), (
                rel,
                rule,
                sheet,
                cell,
                found,
            )
        if want.status == "accepted":
            assert not [i for i in got["issues"] if i["severity"] == "error"], rel
        for issue in got["issues"]:
            assert CJK.search(issue["message"]), (rel, issue)  # a Chinese reason
    # the only files nobody reports on are those inside the symlinked folder (not followed)
    assert not [f for f in files if f.startswith("链接文件夹/") and f != "链接文件夹/"]


def test_the_screen_names_each_rejected_file(
    zoo: tuple[Path, dict[str, Expect]], tmp_path: Path
) -> None:
    inbox, expect = zoo
    result = CliRunner().invoke(main, ["validate", str(inbox), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    screen = result.output
    for rel, want in expect.items():
        if want.status == "rejected" and "\n" not in rel and "\t" not in rel:
            assert Path(rel).name in screen, rel


def test_the_report_names_file_sheet_and_cell_of_each_issue(runs: dict[str, Any]) -> None:
    wb = openpyxl.load_workbook(runs["validate"].out / "校验报告.xlsx", read_only=True)
    rows = list(wb["问题清单"].iter_rows(values_only=True))
    header = rows[0]
    text = ["\t".join("" if v is None else str(v) for v in row) for row in rows[1:]]
    assert any("罗源县/附件4 数字.xlsx" in t and "value-negative" in t for t in text), header
    cell = PROGRESS.value_cells["B3"].a1
    assert any("罗源县/附件4 数字.xlsx" in t and cell in t for t in text)


def test_duplicate_bytes_count_once_and_the_other_is_superseded(runs: dict[str, Any]) -> None:
    subs = {s["file"]: s for s in runs["consolidate"].document["submissions"]}
    pair = {subs[GOOD]["status"], subs[DUPLICATE]["status"]}
    assert pair == {"accepted", "superseded"}
    # the same bytes received at the same time: one of them is the return, the other a copy
    # of it (the first by name, so every run agrees), and no tie is flagged between them
    assert subs[GOOD]["status"] == "accepted"
    assert subs[DUPLICATE]["superseded_by"] == GOOD
    rules = {a["rule"] for a in runs["consolidate"].document["anomalies"] if a["unit"] == "鼓楼区"}
    assert "return-receipt-tie" not in rules
    assert runs["consolidate"].document["units"]["鼓楼区"]["A1"] == good_progress()["A1"]


def test_metadata_wins_over_the_folder_name(runs: dict[str, Any]) -> None:
    files = {f["file"]: f for f in runs["validate"].document["files"]}
    assert files["台江区/附件3（鼓楼区的模板）.xlsx"]["unit"] == "鼓楼区"
    assert files["福清市/附件4 改了单位和月份.xlsx"]["unit"] == "鼓楼区"
    assert files["福清市/附件4 改了单位和月份.xlsx"]["period"] == PERIOD
    assert files["福清市/台账（5月模板）.xlsx"]["period"] == "2023-05"


def test_a_formula_typed_into_an_input_cell_counts_its_result(runs: dict[str, Any]) -> None:
    assert runs["consolidate"].document["units"]["连江县"]["A1"] == 12


# --- bounded time and memory: what is refused is never inflated or parsed ---------------------


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Count the bytes inflated (by zipfile, or by safety straight from the zip's bytes) and
    fail if a refused file reaches the parser."""
    seen = {"inflated": 0}
    real_read = zipfile.ZipExtFile.read

    def read(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        data = real_read(self, n)
        seen["inflated"] += len(data)
        return data

    class CountingInflater:
        def __init__(self, *args: Any) -> None:
            self.real = zlib.decompressobj(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self.real.decompress(data, max_length)
            seen["inflated"] += len(out)
            return out

        def flush(self) -> bytes:
            out = self.real.flush()
            seen["inflated"] += len(out)
            return out

        @property
        def unconsumed_tail(self) -> bytes:
            return self.real.unconsumed_tail

    class CountingZlib:
        decompressobj = CountingInflater

        def __getattr__(self, name: str) -> Any:
            return getattr(zlib, name)

    def no_parse(_data: bytes, skip: Any = ()) -> safety.Parsed:
        raise AssertionError("a refused file reached the parser")

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    monkeypatch.setattr(safety, "zlib", CountingZlib())
    monkeypatch.setattr(safety, "parse_isolated", no_parse)
    yield seen


@pytest.mark.parametrize(
    ("name", "build", "rule"),
    [
        ("bomb.xlsx", lambda: deflate_bomb(GIGABYTE), "file-zip-limits"),
        ("laughs.xlsx", lambda: entity_bomb("xl/workbook.xml", BILLION_LAUGHS), "file-xml-dtd"),
        ("quadratic.xlsx", lambda: entity_bomb("xl/sharedStrings.xml", QUADRATIC), "file-xml-dtd"),
        ("xxe.xlsx", lambda: entity_bomb("xl/worksheets/sheet1.xml", EXTERNAL), "file-xml-dtd"),
        (
            "utf16.xlsx",
            lambda: entity_bomb("xl/styles.xml", BILLION_LAUGHS, "utf-16-be"),
            "file-xml-dtd",
        ),
        ("laughs.ods", ods_bomb, "file-xml-dtd"),
    ],
)
def test_bombs_are_refused_before_anything_big_is_inflated_or_parsed(
    tmp_path: Path, counting: dict[str, int], name: str, build: Any, rule: str
) -> None:
    path = tmp_path / name
    path.write_bytes(build())
    ret = read_one(path)
    assert errors(ret) == [(rule, "")]
    assert counting["inflated"] < 8 * 1024 * 1024  # of 1 GB (or billions of "lol"s)


def test_a_lying_zip_directory_is_refused_while_inflating(
    tmp_path: Path, counting: dict[str, int]
) -> None:
    data = bytearray(deflate_bomb(64 * 1024 * 1024))
    # the directory now says the sheet is 1 KB (so no ratio check applies before inflating)
    for magic, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.rfind(magic)
        data[pos + at : pos + at + 4] = (1024).to_bytes(4, "little")
    path = tmp_path / "liar.xlsx"
    path.write_bytes(bytes(data))
    ret = read_one(path)
    assert errors(ret)[0][0] in ("file-zip-limits", "file-corrupt")
    assert counting["inflated"] < 8 * 1024 * 1024


def _rows(sheet: bytes, xml: bytes) -> bytes:
    return sheet.replace(b"</sheetData>", xml + b"</sheetData>")


MILLION_ROW_SHEETS = {
    # a value at row 1,000,000, written as Excel writes it and in ways a reader still accepts
    "plain": b'<row r="1000000"><c r="A1000000"><v>1</v></c></row>',
    "lower-case reference": b'<row r="39"><c r="a1000000"><v>1</v></c></row>',
    "single quotes, spaces": b"<row r = '1000000'><c  s='0' r = 'B1000000'><v>1</v></c></row>",
    "namespace prefix": b'<x:row xmlns:x="urn:x" r="1000000"><x:c r="A1000000"><x:v>1</x:v></x:c>'
    b"</x:row>",
    "slash in an attribute": b'<row r="1000000" x="/"><c r="A1000000" x="/>"><v>1</v></c></row>',
    "row without r after a jump": b'<row r="999999"/><row><c><v>1</v></c></row>',
    # a second r: the reader takes the last, a scan reading only the first would miss it
    "a second r in a cell tag": b'<row r="39"><c r="A1" r="A1000000"><v>1</v></c></row>',
    "a second r, no space": b'<row r="39"><c r="A1"r="A1000000"><v>1</v></c></row>',
    "a second r in a row tag": b'<row r="39" r="1000000"><c><v>1</v></c></row>',
    "a second r after another attribute, no space": b'<row r="39"><c r="A1" s="0"r="A1000000">'
    b"<v>1</v></c></row>",
    "a second r after a tab": b'<row r="39"><c r="A1"\tr="A1000000"><v>1</v></c></row>',
    # the reader reads a number whatever its leading zeros
    "leading zeros": b'<row r="39"><c r="A0001000000"><v>1</v></c></row>',
    "a row with leading zeros": b'<row r="0001000000"><c><v>1</v></c></row>',
}


@pytest.mark.parametrize("how", sorted(MILLION_ROW_SHEETS))
def test_a_million_row_sheet_is_refused_before_the_reader_allocates_it(
    tmp_path: Path, counting: dict[str, int], how: str
) -> None:
    path = tmp_path / "rows.xlsx"
    path.write_bytes(with_sheet_xml("annex4_progress", lambda s: _rows(s, MILLION_ROW_SHEETS[how])))
    ret = read_one(path)
    assert errors(ret) == [("file-sheet-too-large", "")]
    # the bound, which may be a row over where the markup is odd
    shown = re.search(r"(\d+) 行", ret.issues[0].message)
    assert shown is not None and 1_000_000 <= int(shown.group(1)) <= 1_000_001


@pytest.mark.parametrize("how", sorted(MILLION_ROW_SHEETS))
def test_the_window_scan_of_big_parts_bounds_the_same_sheets(how: str) -> None:
    # parts over 16 MB are scanned window by window (_SheetExtent), not by sheet_bound
    extent = safety._SheetExtent()
    extent.feed(b"<sheetData>" + MILLION_ROW_SHEETS[how] + b"</sheetData>")
    assert extent.bound()[0] >= 1_000_000


HIDDEN_ROW_ENDS = {
    # cells without r go on in one row for the reader; a scan that took these for row ends
    # would count each cell in a new row
    "comment": b"<!--</row><row>-->",
    "CDATA": b"<![CDATA[</row><row>]]>",
    "attribute value": b'<c x="</row><row>"><v>1</v></c>',
    "value": b"<c><v>1</v></c><c><v>1<row></row></v></c>",
    "text that looks like an r": b'<c>r="A1"<v>1</v></c>',
}


@pytest.mark.parametrize("how", sorted(HIDDEN_ROW_ENDS))
def test_cells_without_r_count_in_one_row_whatever_hides_between_them(how: str) -> None:
    xml = (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
        b'.org/spreadsheetml/2006/main"><sheetData><row r="1">'
        + (b"<c><v>1</v></c>" + HIDDEN_ROW_ENDS[how]) * 300
        + b"</row></sheetData></worksheet>"
    )
    rows, cols = safety.sheet_bound(xml)
    assert cols >= 300
    parsed = safety.parse_workbook(rewrite_zip(template_bytes("annex4_progress"), {
        "xl/worksheets/sheet1.xml": xml}))  # fmt: skip
    loaded = parsed.sheets[0].rows
    if loaded is not None:  # what the reader makes of it: within the bound
        assert len(loaded) <= rows and max(map(len, loaded)) <= cols
    assert _pieces_bound(xml, itertools.repeat(700))[1] >= 300


_ROW3 = b'<row r="1"><c/><c/>%s<c><v>1</v></c></row>'
READ_OTHERWISE = {
    # tags the reader reads otherwise than a plain scan would (from a second review): none
    # may move the scan's position back
    "an r inside another attribute's value": _ROW3 % b"<c x=\" r='A1'\"></c>",
    "a name ending in r": _ROW3 % b'<c #r="A1"></c>',
    "a form feed after the name": _ROW3 % b'<c\x0c r="A1"></c>',
    "a row end with a form feed": b'<row r="1"><c/><c/></row\x0c><row r="1"><c><v>1</v></c></row>',
    "an empty prefix": b'<row r="1"><:c/><:c/><:c><v>1</v></:c></row>',
    "a prefix with a bang": b'<row r="1"><x!:c/><x!:c><v>1</v></x!:c></row>',
    "prefixed row ends": b'<row r="1"><c/></:row><row><c/></:row><row><c><v>1</v></c></row>',
    "a row reference with a letter": b'<row r="A3"><c/></row><row><c/></row><row><c><v>1</v></c></row>',
    "an r inside a row attribute's value": b'<row r="1"><c/></row><row x=" r=\'1\'"><c/></row>'
    b"<row><c><v>1</v></c></row>",
    "an XML declaration in the middle": _ROW3 % b'<?xml a>b</row><row r="1"> ?>',
    "a stray quote in a row tag": _ROW3 % b'<row r="1" "></row><row r=\'1\'>">',
    "a stray quote in a value tag": _ROW3 % b'<c><v a="1" "></v></c></row><row r="1">">1</v></c>',
    # pieces whose every cell has its r are taken in without the walk: the position they
    # leave must be no lower than the reader's (a self-closing row ends a row too)
    "a self-closing row, then cells without r": b'<row r="40"/><row><c s="1" r="A7"></c>'
    b"<c><v>1</v></c ><c/><c/><c/></row>",
}


@pytest.mark.parametrize("how", sorted(READ_OTHERWISE))
def test_tags_the_reader_reads_otherwise_never_lower_the_bound(how: str) -> None:
    xml = (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
        b'.org/spreadsheetml/2006/main"><sheetData>'
        + READ_OTHERWISE[how]
        + b"</sheetData></worksheet>"
    )
    bounds = [safety.sheet_bound(xml)] + [
        _pieces_bound(xml, itertools.repeat(size)) for size in (7, 13, 1024)
    ]
    parsed = safety.parse_workbook(rewrite_zip(template_bytes("annex4_progress"), {
        "xl/worksheets/sheet1.xml": xml}))  # fmt: skip
    loaded = parsed.sheets[0].rows
    if loaded is None:  # the reader refuses it: nothing to compare
        return
    for rows, cols in bounds:
        assert len(loaded) <= rows and max(map(len, loaded), default=0) <= cols, (bounds, how)


def test_more_tags_than_a_sheet_within_the_limits_can_hold_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the exact scan walks the cell and row tags one by one: a sheet of millions of tags
    # that place nothing far (empty end tags) is refused once it has more than any sheet
    # within the limits, which bounds the walk
    monkeypatch.setattr(safety, "MAX_SHEET_CELLS", 1000)
    monkeypatch.setattr(safety, "MAX_SHEET_ROWS", 100)
    xml = b'<sheetData><row r="1"><c/>' + b"</c>" * 2200 + b"</row></sheetData>"
    with pytest.raises(safety.Refused) as refused:
        safety.sheet_bound(xml)  # 2,203 tags: more than 2 × (1,000 + 100)
    assert refused.value.code == "file-sheet-too-large"
    assert safety.sheet_bound(xml.replace(b"</c>" * 2200, b"</c>" * 2197)) == (1, 1)


def test_a_million_rows_without_any_r_are_counted(tmp_path: Path, counting: dict[str, int]) -> None:
    # r-less rows are each the row after the previous one; random attributes defeat the
    # compression-ratio check, so only counting the rows catches it
    import random

    rng = random.Random(7)
    rows = b"".join(b'<row x="%08x"/>' % rng.getrandbits(32) for _ in range(safety.MAX_SHEET_ROWS))
    path = tmp_path / "rless.xlsx"
    path.write_bytes(
        with_sheet_xml("annex4_progress", lambda s: _rows(s, rows + b"<row><c><v>1</v></c></row>"))
    )
    ret = read_one(path)
    assert errors(ret) == [("file-sheet-too-large", "")]


def _far_sheet_moved(part: str, target: str) -> bytes:
    """A 附件4 whose sheet, with a value at row 1,000,000, is stored as `part` and linked from
    the workbook as `target`."""
    src = zipfile.ZipFile(io.BytesIO(template_bytes("annex4_progress")))
    entries = []
    for info in src.infolist():
        body = src.read(info.filename)
        name = info.filename
        if name == "xl/worksheets/sheet1.xml":
            name, body = part, far_cell(body)
        elif name == "xl/_rels/workbook.xml.rels":
            body = body.replace(b'"worksheets/sheet1.xml"', f'"{target}"'.encode())
        entries.append((name, body))
    return zip_bytes(entries)


def test_a_sheet_part_without_the_xml_extension_is_still_checked(
    tmp_path: Path, counting: dict[str, int]
) -> None:
    path = tmp_path / "renamed-part.xlsx"
    path.write_bytes(_far_sheet_moved("xl/worksheets/SHEET1.DAT", "worksheets/sheet1.dat"))
    assert errors(read_one(path)) == [("file-sheet-too-large", "")]


@pytest.mark.parametrize(
    ("part", "target"),
    [
        ("xl/data.xml", "data.xml"),  # beside the workbook
        ("sheets/s1.bin", "/sheets/s1.bin"),  # from the root, not even named .xml
        ("xl/sheets/s1.xml", "./worksheets/../sheets/s1.xml"),  # a path to fold
    ],
)
def test_a_sheet_part_outside_the_worksheets_folder_is_still_checked(
    tmp_path: Path, counting: dict[str, int], part: str, target: str
) -> None:
    # the workbook's link decides where a reader finds a sheet, not the folder name
    path = tmp_path / "elsewhere.xlsx"
    path.write_bytes(_far_sheet_moved(part, target))
    assert errors(read_one(path)) == [("file-sheet-too-large", "")]


def test_sheet_xml_built_to_make_patterns_backtrack_is_scanned_in_one_pass(
    tmp_path: Path,
) -> None:
    # unclosed tags full of r="…" made the old scan's patterns backtrack for hours (the scan runs
    # in this process, before the sandbox's timeout); now it finishes and the parser says no
    garbage = b'<row r="1" ' * 5000 + b'<c r="A1" t="e" ' * 5000 + b'<c x="' * 5000
    path = tmp_path / "backtrack.xlsx"
    path.write_bytes(with_sheet_xml("annex4_progress", lambda s: _rows(s, garbage)))
    ret = read_one(path)
    assert ret.status == "rejected"
    assert "file-unreadable" in {rule for rule, _cell in errors(ret)}  # the XML is broken


def test_a_date_cell_padded_with_thousands_of_spaces_is_refused_at_its_cell(
    tmp_path: Path,
) -> None:
    rows = good_ledger_rows()
    rows[0]["found_date"] = "2023-6-2" + " " * 30_000 + "1:00x"  # quadratic for the date pattern
    ret = read_one(make_return(tmp_path / "inbox", "ledger", ledger_rows=rows))
    cell = Cell(LEDGER.first_data_row, LEDGER.col("found_date")).a1
    assert ("date-invalid", cell) in errors(ret)


def test_a_huge_declared_dimension_reads_only_the_cells_there_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = safety.parse_isolated

    def spy(data: bytes, skip: Any = ()) -> safety.Parsed:
        parsed = real(data, skip)
        sizes.extend(len(s.rows or []) for s in parsed.sheets)
        return parsed

    monkeypatch.setattr(safety, "parse_isolated", spy)
    path = make_return(tmp_path / "inbox", "annex4_progress")
    sheet = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    sheet = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:XFD1048576"/>', sheet)
    assert b"XFD1048576" in sheet
    path.write_bytes(rewrite_zip(path.read_bytes(), {"xl/worksheets/sheet1.xml": sheet}))
    ret = read_one(path)
    assert ret.status == "accepted", ret.issues
    assert sizes and max(sizes) < 100


def _exact_bound(xml: bytes) -> tuple[int, int]:
    extent = safety._SheetExtent()
    extent.feed(xml, whole=True)
    return extent.bound()


def _random_sheet_xml(rng: Any) -> bytes:
    """Worksheet XML made of the tags that decide the cheap bound, written the usual way most of
    the time and in every other way a reader accepts some of the time."""

    def ref() -> str:
        width = rng.choice((1, 1, 1, 1, 1, 1, 2, 3, 4))
        letters = "".join(rng.choice("ABCXYZ") for _ in range(width))
        digits = rng.choice((1, 2, 3, 4, 4, 5, 6, 7, 8))
        number = str(rng.randrange(10 ** (digits - 1), 10**digits))
        if rng.random() < 0.05:  # leading zeros: the reader reads the number all the same
            number = "0" * rng.randrange(1, 6) + number
        return (letters.lower() if rng.random() < 0.03 else letters) + number

    def cell() -> str:
        r = ref()
        return rng.choice(
            [f'<c r="{r}" s="1"><v>1</v></c>'] * 12
            + [
                f'<c r="{r}"/>',
                f'<c r="{r}" t="s"><v>0</v></c>',
                f"<c r='{r}'><v>1</v></c>",
                f'<c r = "{r}"><v>1</v></c>',
                f'<c  r="{r}"><v>1</v></c>',
                f'<c\tr="{r}"><v>1</v></c>',
                f'<c s="1" r="{r}"><v>1</v></c>',
                f'<x:c r="{r}"><x:v>1</x:v></x:c>',
                "<c><v>1</v></c>",
                "<c/>",
                '<c s="2"><v>1</v></c>',
                '<col min="1" max="3"/>',
                '<cfRule type="x"/>',
                # an r that is no attribute, markup that hides a tag from the reader
                f'<c>r="{r}"<v>1</v></c>',
                f'<c s="1"r="{r}"><v>1</v></c>',
                f'<c x="a>b" r="{r}"><v>1</v></c>',
                f'<甲:c r="{r}"><甲:v>1</甲:v></甲:c>',
                "<c><v>1</v></c><!--<row></row>-->",
                "<c><v>1</v></c><![CDATA[</row><row>]]>",
                '<c x="</row><row>"><v>1</v></c>',
                "<c><v>1<row></row></v></c>",
            ]
        )

    def row(number: str) -> str:
        cells = "".join(cell() for _ in range(rng.randrange(0, 5)))
        return rng.choice(
            [f'<row r="{number}" spans="1:3">{cells}</row>'] * 12
            + [
                f'<row r="{number}"/>',
                f"<row r='{number}'>{cells}</row>",
                f"<row>{cells}</row>",
                f'<row spans="1:2">{cells}</row>',
                f'<x:row r="{number}">{cells}</x:row>',
                f'<row\nr="{number}">{cells}</row>',
                f"<rowBreaks/>{cells}",
                # nested rows, cells between rows
                f'<row r="{number}">{cells}<row>{cells}</row>{cells}</row>',
                f'<row r="{number}"></row>{cells}',
            ]
        )

    rows = []
    for _ in range(rng.randrange(0, 12)):
        digits = rng.choice((1, 2, 3, 4, 4, 5, 6, 7))
        rows.append(row(str(rng.randrange(10 ** (digits - 1), 10**digits))))
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org'
        b'/spreadsheetml/2006/main" xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006'
        b'/main"><sheetData>' + "".join(rows).encode() + b"</sheetData></worksheet>"
    )


def test_the_cheap_sheet_bound_never_falls_below_the_exact_one() -> None:
    # sheet_bound answers FAST_BOUND without building lists when every cell and row tag is
    # written the usual way within A1:Z9999; otherwise it is _SheetExtent's bound itself
    import random

    rng = random.Random(11)
    fast = 0
    for _ in range(3000):
        xml = _random_sheet_xml(rng)
        bound, exact = safety.sheet_bound(xml), _exact_bound(xml)
        if bound == safety.FAST_BOUND:
            fast += 1
            assert exact[0] <= bound[0] and exact[1] <= bound[1], xml
        else:
            assert bound == exact, xml
    assert fast > 100  # the cheap answer was given, and checked, many times
    for xml in MILLION_ROW_SHEETS.values():
        assert safety.sheet_bound(xml) == _exact_bound(xml)


def _pieces_bound(xml: bytes, sizes: Any) -> tuple[int, int]:
    """The bound of a big sheet's scan fed `xml` in chunks of the given sizes (cycled)."""
    scan = safety._BigSheetScan("xl/worksheets/sheet1.xml")
    at = 0
    for size in sizes:
        if at >= len(xml):
            break
        scan.feed(xml[at : at + size])
        at += size
    scan.finish()
    return scan.extent.bound()


def test_a_big_sheet_scanned_in_pieces_is_bounded_as_the_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a worksheet over 16 MB is scanned as it inflates: a tag cut between two chunks, however
    # long, and a row of cells without r spread over many chunks count as in one piece (the
    # random sheets in pieces: test_the_reader_never_loads_more_than_the_bound_let_through)

    monkeypatch.setattr(safety, "check_extent", lambda *a: None)
    # 3,000 cells without r in one row: 3,000 columns, in chunks of 1 KB as in one piece
    row = b'<sheetData><row r="1">' + b"<c/>" * 3000 + b"</row></sheetData>"
    assert _pieces_bound(row, itertools.repeat(1024)) == _exact_bound(row) == (1, 3000)
    # a reference early in a tag of 8 KB of attributes that a chunk boundary cuts
    tag = b'<row r="2"><c r="A1000000" x="' + b"ab" * 4096 + b'"><v>1</v></c></row>'
    xml = b"<sheetData>" + b'<row r="1"><c r="A1"/></row>' * 400 + tag + b"</sheetData>"
    assert _pieces_bound(xml, itertools.repeat(12 * 1024))[0] == 1_000_000


def test_a_long_tag_of_a_big_sheet_is_refused_with_its_far_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same through the reader, with "big" and its chunks made small: the far cell's tag
    # starts 8 KB before a chunk boundary and its attributes run on 20 KB past it
    import random

    monkeypatch.setattr(safety, "WHOLE_SHEET_BYTES", 64 * 1024)
    monkeypatch.setattr(safety, "_CHUNK", 64 * 1024)
    rng = random.Random(5)

    def noise(n: int) -> bytes:  # random, so that no compression-ratio check steps in
        return b"%x" % rng.getrandbits(4 * n) if n else b""

    def edit(sheet: bytes) -> bytes:
        at = sheet.index(b"</sheetData>")
        start = b'<row r="40"><c r="A40" x="'
        end = b'"><v>1</v></c></row>'
        filler = 3 * 64 * 1024 - 8000 - at - len(start) - len(end)
        pad = noise(filler)[:filler]
        far = b'<row r="41"><c r="A1000000" x="' + noise(28_000)[:28_000] + end
        return sheet[:at] + start + pad + end + far + sheet[at:]

    path = tmp_path / "long-tag.xlsx"
    path.write_bytes(with_sheet_xml("annex4_progress", edit))
    ret = read_one(path)
    assert errors(ret) == [("file-sheet-too-large", "")]
    assert "1000000 行" in ret.issues[0].message


def test_a_run_of_megabytes_without_a_tag_end_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no spreadsheet program writes a single tag or text of megabytes: the scan of a big
    # sheet, which keeps the unfinished tag, refuses it rather than hold it
    import random

    monkeypatch.setattr(safety, "WHOLE_SHEET_BYTES", 64 * 1024)
    monkeypatch.setattr(safety, "_CHUNK", 64 * 1024)
    monkeypatch.setattr(safety, "_MAX_RUN", 256 * 1024)
    rng = random.Random(6)
    value = b"%x" % rng.getrandbits(4 * 300 * 1024)
    path = tmp_path / "long-run.xlsx"
    path.write_bytes(
        with_sheet_xml(
            "annex4_progress",
            lambda s: _rows(s, b'<row r="40"><c r="A40" x="' + value + b'"><v>1</v></c></row>'),
        )
    )
    ret = read_one(path)
    assert errors(ret) == [("file-corrupt", "")]
    assert "超过 256 KB 的单个标记或文本" in ret.issues[0].message


def test_every_template_sheet_takes_the_cheap_bound() -> None:
    for form_id in FORMS:
        data = template_bytes(form_id)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                    xml = zf.read(name)
                    assert safety.sheet_bound(xml) == safety.FAST_BOUND, (form_id, name)
                    exact = _exact_bound(xml)
                    assert exact[0] <= 9_999 and exact[1] <= 26


@pytest.mark.parametrize("how", ["whole", "in pieces"])
def test_the_reader_never_loads_more_than_the_bound_let_through(how: str) -> None:
    # what python-calamine actually loads from the random sheets that the check lets through,
    # the sheet checked whole (up to 16 MB) or as it inflates (_BigSheetScan), in chunks of
    # random sizes
    import random

    rng = random.Random(12)
    data = template_bytes("annex4_progress")
    checked = 0
    for _ in range(600):
        xml = _random_sheet_xml(rng)
        sizes = itertools.cycle([rng.randrange(1, 200) for _ in range(5)])
        try:
            if how == "whole":
                rows, cols = safety.sheet_bound(xml)
                safety.check_extent("sheet", rows, cols)
            else:
                rows, cols = _pieces_bound(xml, sizes)
        except safety.Refused:
            continue
        book = rewrite_zip(data, {"xl/worksheets/sheet1.xml": xml})
        parsed = safety.parse_workbook(book)
        sheet = parsed.sheets[0]
        if sheet.rows is None:
            continue  # XML the reader refuses
        checked += 1
        assert len(sheet.rows) <= rows, xml
        assert all(len(line) <= max(cols, 1) for line in sheet.rows), xml
    assert checked > 80


def _zip_variants() -> Iterator[bytes]:
    """Each template as written, re-zipped stored and at several compression levels."""
    for form_id in FORMS:
        data = template_bytes(form_id)
        yield data
        src = zipfile.ZipFile(io.BytesIO(data))
        for method, level in ((zipfile.ZIP_STORED, None), (zipfile.ZIP_DEFLATED, 1)):
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", method, compresslevel=level) as out:
                for info in src.infolist():
                    out.writestr(info.filename, src.read(info.filename))
            yield buffer.getvalue()
        # written as a stream: sizes and CRC after the data (data descriptors), not in the header
        stream = _Unseekable()
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as out:
            for info in src.infolist():
                with out.open(info.filename, "w") as part:
                    part.write(src.read(info.filename))
        streamed = stream.getvalue()
        assert any(i.flag_bits & 0x08 for i in zipfile.ZipFile(io.BytesIO(streamed)).infolist())
        yield streamed


class _Unseekable(io.BytesIO):
    def seekable(self) -> bool:
        return False

    def seek(self, *_args: Any) -> int:
        raise OSError("not seekable")

    def tell(self) -> int:
        raise OSError("not seekable")


def test_a_part_inflated_in_one_piece_is_what_zipfile_reads() -> None:
    for data in _zip_variants():
        zf = zipfile.ZipFile(io.BytesIO(data))
        for info in zf.infolist():
            assert safety._inflate_whole(data, info) == zf.read(info), info.filename


def test_a_damaged_part_is_left_to_zipfile() -> None:
    # whenever a part is inflated in one piece, zipfile reads the very same bytes without
    # complaint; any damage (bytes flipped anywhere, a lying directory) is left to zipfile,
    # which then says what it always said
    import random

    rng = random.Random(5)
    given = 0
    for data in _zip_variants():
        for _ in range(60):
            damaged = bytearray(data)
            for _flip in range(rng.choice((1, 1, 2, 8))):
                at = rng.randrange(len(damaged))
                damaged[at] = rng.randrange(256)
            try:
                zf = zipfile.ZipFile(io.BytesIO(bytes(damaged)))
                infos = zf.infolist()
            except Exception:
                continue
            for info in infos:
                got = safety._inflate_whole(bytes(damaged), info)
                if got is None:
                    continue
                given += 1
                try:
                    assert zf.read(info) == got, info.filename
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                    raise AssertionError(f"{info.filename}: zipfile says {exc}") from None
    assert given > 1000
    liar = bytearray(deflate_bomb(64 * 1024 * 1024))
    for magic, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = liar.rfind(magic)
        liar[pos + at : pos + at + 4] = (1024).to_bytes(4, "little")
    for info in zipfile.ZipFile(io.BytesIO(bytes(liar))).infolist():
        if info.file_size == 1024:
            assert safety._inflate_whole(bytes(liar), info) is None


def test_a_part_seen_clean_is_not_inflated_again_but_any_other_is(
    counting: dict[str, int],
) -> None:
    # the styles, theme and relationships of every file made from one template are the same
    # bytes: once inflated and found clean they are not inflated again; a part differing in any
    # byte (a DTD slipped into it) is inflated and refused as ever
    safety._CLEAN_PARTS.clear()
    data = template_bytes("annex1_gas")
    safety.check_bytes(data)
    first = counting["inflated"]
    safety.check_bytes(data)
    again = counting["inflated"] - first
    sheets = sum(
        i.file_size
        for i in zipfile.ZipFile(io.BytesIO(data)).infolist()
        if i.filename.startswith("xl/worksheets/")
    )
    assert sheets <= again < first  # worksheets are always inflated, the rest was known
    safety.check_bytes(template_bytes("annex4_progress"))  # its styles.xml is now known clean
    with pytest.raises(safety.Refused) as refused:
        safety.check_bytes(entity_bomb("xl/styles.xml", BILLION_LAUGHS))
    assert refused.value.code == "file-xml-dtd"
    assert len(safety._CLEAN_PARTS) <= safety._CLEAN_PARTS_KEPT


def test_the_sheet_links_of_a_workbook_seen_before_are_not_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # every file made from one template has the same workbook.xml and its relationships: their
    # sheet links are parsed once; a workbook linking its sheet elsewhere gets its own answer
    safety._SHEET_PARTS.clear()
    parsed: list[int] = []
    real = safety._read_sheet_parts

    def counted(zf: zipfile.ZipFile) -> dict[str, str]:
        parsed.append(1)
        return real(zf)

    monkeypatch.setattr(safety, "_read_sheet_parts", counted)

    def links(data: bytes) -> dict[str, str]:
        return safety._sheet_parts(zipfile.ZipFile(io.BytesIO(data)), data)

    data = template_bytes("annex4_progress")
    first = links(data)
    assert first == real(zipfile.ZipFile(io.BytesIO(data))) and len(parsed) == 1
    first["xl/worksheets/sheet1.xml"] = "changed by the caller"
    assert links(data) == real(zipfile.ZipFile(io.BytesIO(data))) and len(parsed) == 1
    moved = _far_sheet_moved("xl/elsewhere/sheet1.xml", "elsewhere/sheet1.xml")
    assert "xl/elsewhere/sheet1.xml" in links(moved) and len(parsed) == 2
    # and the moved sheet is still found and refused, whatever was remembered
    with pytest.raises(safety.Refused) as refused:
        safety.check_bytes(moved)
    assert refused.value.code == "file-sheet-too-large"


def test_the_formula_patterns_never_backtrack_over_a_run_of_spaces() -> None:
    # the scan for formulas without values runs before the sandbox, with no time limit: two
    # greedy runs of spaces around an optional part were quadratic in the run's length (100k
    # spaces after <c … t="e"> took 12 s). Every run of spaces is matched possessively now.
    for pattern in (safety._XLSX_NO_RESULT, safety._XLSX_ERROR):
        source = pattern.pattern.replace(rb"\s*+", b"")
        assert rb"\s*" not in source and rb"\s+" not in source, pattern.pattern
    # and the cells they find are the ones they always found, shared formulas included
    xml = (
        b'<c r="B2"><f>1/0</f><v>#DIV/0!</v></c><c r="C3" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
        b'<c r="D4"><f>SUM(A1)</f></c><c r="E5"><f>X</f> <v></v> </c>'
        b'<c r="F6"><f t="shared" si="0"/></c><c r="G7" t="e"><f t="shared" si="0"/><v>#N/A</v></c>'
        b'<c r="H8" t="e">' + b" " * 100_000 + b"x</c>"
    )
    found: dict[str, dict[str, str]] = {}
    safety._note_formulas("xl/worksheets/sheet1.xml", xml, found)
    assert found == {
        "xl/worksheets/sheet1.xml": {"D4": "", "E5": "", "F6": "", "C3": "#DIV/0!", "G7": "#N/A"}
    }


def test_the_parsing_child_cannot_take_more_memory_than_its_cap() -> None:
    code = (
        "from pipeline import safety\n"
        "safety.limit_memory(512 * 1024 * 1024)  # beyond what it holds now\n"
        "try:\n"
        "    bytearray(1024 * 1024 * 1024)\n"
        "except MemoryError:\n"
        "    print('capped')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.stdout.strip() == "capped", done.stderr


# --- 2. nothing lost ---------------------------------------------------------------------------


def test_the_inbox_is_byte_for_byte_unchanged(runs: dict[str, Any]) -> None:
    assert runs["after"] == runs["before"]
    assert len(runs["before"]) > 40


def test_two_runs_give_identical_bytes_for_every_output(runs: dict[str, Any]) -> None:
    one, two = output_files(runs["consolidate"].out), output_files(runs["again"].out)
    assert one == two
    names = set(one)
    assert "校验报告.xlsx" in names
    assert {n.rsplit(".", 1)[-1] for n in names} == {"xlsx", "csv", "json"}
    assert sum(n.startswith("退回修改/") for n in names) >= 10
    assert sum(n.endswith(".csv") for n in names) == 4


@pytest.mark.parametrize(
    ("writer", "failing_call"),
    [
        ("pipeline.output.write_workbook", 1),  # the output workbook, half written
        ("pipeline.output.write_csv", 2),  # the second CSV, after the first was replaced
        ("pipeline.annotate.atomic_write_bytes", 3),  # the third 退回修改 copy
        ("pipeline.report._write_issues", 1),  # 校验报告.xlsx
    ],
)
def test_an_interrupted_run_leaves_the_previous_outputs_intact(
    zoo: tuple[Path, dict[str, Expect]],
    runs: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    failing_call: int,
) -> None:
    inbox, _expect = zoo
    out = tmp_path / "out"
    shutil.copytree(runs["consolidate"].out, out)
    before = output_files(out)
    entries = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    module, name = writer.rsplit(".", 1)
    real = getattr(__import__(module, fromlist=[name]), name)
    calls = {"n": 0}

    def half_then_fail(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == failing_call:  # the disk fills up half-way through this file
            for arg in args:
                if isinstance(arg, Path):
                    arg.write_bytes(b"PK\x03\x04 half a file")
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, half_then_fail)
    interrupted = run("consolidate", inbox, out, "--period", PERIOD, "--jobs", "1")
    assert calls["n"] == failing_call
    assert interrupted.result.exit_code == 2, interrupted.result.output
    assert "Traceback" not in interrupted.result.output
    assert "输出文件夹无法写入" in interrupted.result.output
    assert output_files(out) == before  # the same files with the same bytes
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == entries  # no temp


# --- 3. nothing injected -----------------------------------------------------------------------

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def sheet_cells(path: Path) -> Iterator[tuple[str, str, str, bool, str]]:
    """(sheet part, cell, type, has a formula, text) of every cell of an .xlsx, from its XML."""
    with zipfile.ZipFile(path) as z:
        strings: list[str] = []
        if "xl/sharedStrings.xml" in z.namelist():
            root = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
            strings = ["".join(t.text or "" for t in si.iter(f"{_MAIN}t")) for si in root]
        for part in sorted(n for n in z.namelist() if n.startswith("xl/worksheets/sheet")):
            root = ElementTree.fromstring(z.read(part))
            for c in root.iter(f"{_MAIN}c"):
                kind = c.get("t", "n")
                v = c.find(f"{_MAIN}v")
                if kind == "s" and v is not None and v.text is not None:
                    text = strings[int(v.text)]
                elif kind == "inlineStr":
                    text = "".join(t.text or "" for t in c.iter(f"{_MAIN}t"))
                else:
                    text = v.text or "" if v is not None else ""
                yield part, c.get("r", ""), kind, c.find(f"{_MAIN}f") is not None, text


def _payload_cells(path: Path) -> dict[str, int]:
    """How many cells of the workbook hold each payload (as read), checking each is text."""
    found = dict.fromkeys(map(shown, PAYLOADS), 0)
    for part, ref, kind, formula, text in sheet_cells(path):
        if formula:
            assert not any(shown(p) in text or "evil" in text for p in PAYLOADS), (path, ref)
        for payload in found:
            if payload in text:
                assert not formula and kind in ("s", "inlineStr", "str"), (path, part, ref)
                if text.strip() == payload:  # a copy keeps the county's own spaces
                    found[payload] += 1
    return found


def test_formula_like_text_is_a_string_cell_in_the_output_workbook(runs: dict[str, Any]) -> None:
    out = runs["consolidate"].out
    (workbook,) = [p for p in out.glob("*.xlsx") if p.name != "校验报告.xlsx"]
    found = _payload_cells(workbook)
    assert all(found.values()), found  # each payload reached the ledger sheet as text
    for part, _ref, _kind, formula, _text in sheet_cells(workbook):
        assert not formula, part  # the output workbook holds no formula at all


def test_formula_like_text_stays_text_in_the_validation_report(runs: dict[str, Any]) -> None:
    found = _payload_cells(runs["consolidate"].out / "校验报告.xlsx")
    # the values of the rejected cells, and the file names that look like formulas
    for payload in PAYLOADS[:4]:
        assert found[shown(payload)] >= 1, payload
    names = [t for *_x, t in sheet_cells(runs["consolidate"].out / "校验报告.xlsx")]
    assert "=HYPERLINK(1)附件1.xlsx" in names and "-附件1 副本.xlsx" in names


def test_formula_like_text_stays_text_in_the_annotated_copies(runs: dict[str, Any]) -> None:
    copies = runs["consolidate"].out / "退回修改" / "台江区"
    totals = dict.fromkeys(map(shown, PAYLOADS), 0)
    for name in ("附件4 公式文本.xlsx", "台账 公式文本.xlsx", "附件2 公式文本.xlsx"):
        for payload, n in _payload_cells(copies / name).items():
            totals[payload] += n
    assert all(totals.values()), totals
    book = openpyxl.load_workbook(copies / "台账 公式文本.xlsx")
    row = LEDGER.first_data_row + 3
    got = [book["隐患台账"].cell(row, LEDGER.col(k) + 1).value for k in ("enterprise", "site")]
    assert got == [PAYLOADS[0], PAYLOADS[1]]


def test_every_csv_field_is_neutralised_per_owasp(runs: dict[str, Any]) -> None:
    own_number = re.compile(r"-\d+(\.\d+)?")
    seen: set[str] = set()
    csvs = sorted(runs["consolidate"].out.glob("*.csv"))
    assert len(csvs) == 4
    for path in csvs:
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        for row in csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")):
            for field in row:
                if field.startswith(DANGEROUS):
                    assert own_number.fullmatch(field), (path.name, field)
                if field.startswith("'"):
                    seen.add(field[1:])
    for payload in PAYLOADS:
        assert shown(payload) in seen, payload  # ledger texts and checklist 检查项目
    assert "=HYPERLINK(1)附件1.xlsx" in seen  # a file name is county text too


def test_csv_safe_handles_tab_and_carriage_return_prefixes() -> None:
    from pipeline.output import csv_safe

    for payload in PAYLOADS:
        assert csv_safe(payload) == "'" + payload
    assert csv_safe("\t=1+1 换\n行.xlsx") == "'\t=1+1 换\n行.xlsx"


# --- 4. limits stated, and raised through the environment ------------------------------------


def test_limits_come_from_the_environment_in_their_units() -> None:
    problems: list[str] = []
    env = {"FZ_MAX_FILE_MB": "80", "FZ_MAX_SHEET_ROWS": "250_000", "FZ_PARSE_TIMEOUT": "90.5"}
    assert safety.limit_from_env("FZ_MAX_FILE_MB", env, problems) == 80
    assert safety.limit_from_env("FZ_MAX_SHEET_ROWS", env, problems) == 250_000
    assert safety.limit_from_env("FZ_PARSE_TIMEOUT", env, problems) == 90.5
    assert safety.limit_from_env("FZ_MAX_ZIP_ENTRIES", env, problems) == 2_000  # the default
    assert problems == []
    for bad in ("abc", "0", "-5", "1.5", "inf", "nan"):
        problems = []
        assert safety.limit_from_env("FZ_MAX_ZIP_ENTRIES", {"FZ_MAX_ZIP_ENTRIES": bad}, problems)
        assert len(problems) == 1 and "FZ_MAX_ZIP_ENTRIES" in problems[0], bad


def test_a_raised_limit_is_in_force_in_a_fresh_process() -> None:
    env = dict(
        os.environ, FZ_MAX_FILE_MB="80", FZ_MAX_SHEET_CELLS="3000000", FZ_MAX_ANNOTATE_MB="96"
    )
    code = (
        "from pipeline import safety, annotate\n"
        "print(safety.MAX_FILE_BYTES, safety.MAX_SHEET_CELLS, annotate.MAX_UNCOMPRESSED_BYTES,"
        " safety.MAX_ZIP_ENTRIES, safety.LIMIT_ERRORS)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert done.stdout.split() == [str(80 * 2**20), "3000000", str(96 * 2**20), "2000", "[]"]


def test_a_bad_limit_in_the_environment_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        safety, "LIMIT_ERRORS", ["环境变量 FZ_MAX_FILE_MB（单个文件大小上限）应为正数"]
    )
    result = CliRunner().invoke(main, ["validate", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "FZ_MAX_FILE_MB" in result.output and not (tmp_path / "o").exists()


def test_a_raised_file_limit_lets_a_bigger_file_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    monkeypatch.setattr(safety, "MAX_FILE_BYTES", path.stat().st_size - 1)
    assert errors(read_one(path)) == [("file-too-large", "")]
    monkeypatch.setattr(safety, "MAX_FILE_BYTES", path.stat().st_size)
    assert read_one(path).status == "accepted"


def test_the_readme_states_every_limit_with_its_variable_and_default() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## 输入安全与限制", 1)[1].split("\n## ", 1)[0]
    assert readme.index("## 输入安全与限制") < readme.index("## For developers")
    for name, (_label, unit, default) in safety.LIMIT_VARIABLES.items():
        assert name in section, name
        assert f"{default:,.0f}" in section or f"{default:g}" in section, (name, default)
        assert unit in section
    assert "docs/输入安全.md" in section


# --- the catalogue -----------------------------------------------------------------------------


def test_the_catalogue_links_each_class_to_tests_that_exist() -> None:
    text = CATALOGUE_DOC.read_text(encoding="utf-8")
    links = re.findall(r"(tests/[\w./]+\.py)::(\w+)", text)
    assert len(links) >= 40
    for file, name in links:
        tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in defined, f"{file}::{name}"
    codes = set(re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", text))
    unknown = {c for c in codes if c not in CATALOGUE and not c.startswith("fz-")}
    assert not unknown, unknown
    for heading in ("0 字节", "加密", "压缩炸弹", "实体", "百万行", "符号链接", "锁定文件", "公式"):
        assert heading in text, heading
