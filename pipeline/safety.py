"""Defensive opening: decide what a file really is and refuse dangerous ones before any parser runs.

Every check here works on the raw bytes with bounded time and memory: the size cap comes first,
a zip's directory is checked (entry count, declared sizes, compression ratio) before anything is
inflated, every part a parser will read is then inflated in chunks with a hard cap (so a lying
directory cannot blow up memory), scanned for DTD/entity declarations (XML entity bombs) and, for
worksheets, for the extent of the cells that hold values (a cell at XFD1048576 would make the
reader allocate billions of cells). .xls files are checked the same way from their BIFF records
(and FILEPASS, a password), .ods files from content.xml's repeated rows and columns (defusedxml
SAX). OLE files (.xls and password-encrypted Office files) are read with a small MS-CFB reader.
Then the workbook is parsed by python-calamine in a sandbox child process (`parse_isolated`), so a
file that makes the reader panic, abort or hang costs that file, not the run.

Limits (defaults; each can be raised with an environment variable, read once at import, see
LIMIT_VARIABLES and README "输入安全与限制"): MAX_FILE_BYTES 50 MB per file (FZ_MAX_FILE_MB);
archive.MAX_ARCHIVE_BYTES 200 MB per .zip of returns in the inbox (FZ_MAX_ARCHIVE_MB);
MAX_ZIP_ENTRIES 2,000 parts (FZ_MAX_ZIP_ENTRIES); MAX_UNCOMPRESSED_BYTES 300 MB inflated per file
(FZ_MAX_INFLATED_MB); MAX_COMPRESSION_RATIO 400:1 per part over 1 MB (FZ_MAX_COMPRESSION_RATIO);
MAX_SHEET_ROWS 100,000 rows (FZ_MAX_SHEET_ROWS) and MAX_SHEET_CELLS 2,000,000 cells (rows x
columns of the area holding values, FZ_MAX_SHEET_CELLS) per sheet; SANDBOX_TIMEOUT 60 s to parse
one file (FZ_PARSE_TIMEOUT); PARSE_MEMORY_BYTES 4 GB of address space for the sandbox child
(FZ_PARSE_MEMORY_MB); ANNOTATE_MAX_INFLATED_BYTES 64 MB and ANNOTATE_MAX_CELLS 2,000,000 for an
annotated copy (FZ_MAX_ANNOTATE_MB, FZ_MAX_ANNOTATE_CELLS). A value that is not a positive number
is not used: it is listed in LIMIT_ERRORS and the CLI refuses to run (exit 2) until it is fixed.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import math
import os
import pickle
import posixpath
import re
import select
import struct
import subprocess
import sys
import time
import xml.sax
import xml.sax.handler
import zipfile
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

MB = 1024 * 1024
# environment variable -> (what it limits, in Chinese; its unit; the default in that unit)
LIMIT_VARIABLES: dict[str, tuple[str, str, float]] = {
    "FZ_MAX_FILE_MB": ("单个文件大小", "MB", 50),
    "FZ_MAX_ARCHIVE_MB": ("收件箱中 .zip 压缩包的大小", "MB", 200),
    "FZ_MAX_ZIP_ENTRIES": ("压缩包内部件数", "个", 2_000),
    "FZ_MAX_INFLATED_MB": ("单个文件解压后总大小", "MB", 300),
    "FZ_MAX_COMPRESSION_RATIO": ("单个部件压缩比", "倍", 400),
    "FZ_MAX_SHEET_ROWS": ("每个工作表的行数", "行", 100_000),
    "FZ_MAX_SHEET_CELLS": ("每个工作表的单元格数（行×列）", "个", 2_000_000),
    "FZ_PARSE_TIMEOUT": ("读取单个文件的时间", "秒", 60),
    "FZ_PARSE_MEMORY_MB": ("读取子进程的内存（地址空间）", "MB", 4096),
    "FZ_MAX_ANNOTATE_MB": ("生成退回修改副本时文件解压后大小", "MB", 64),
    "FZ_MAX_ANNOTATE_CELLS": ("生成退回修改副本时的单元格数", "个", 2_000_000),
}
# A merged area of a sheet: ((first row, first col), (last row, last col)), 0-based
Area: TypeAlias = tuple[tuple[int, int], tuple[int, int]]
LIMIT_ERRORS: list[str] = []  # Chinese, one per environment variable that could not be used


def limit_from_env(name: str, environ: Any = None, errors: list[str] | None = None) -> float:
    """The limit `name` of LIMIT_VARIABLES in its unit: the environment's value when it is a
    positive number (counts: a whole number), else the default (and a reason in `errors`)."""
    label, unit, default = LIMIT_VARIABLES[name]
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw.replace("_", "").replace(",", ""))
    except ValueError:
        value = math.nan
    whole = unit not in ("MB", "秒")
    if not math.isfinite(value) or value <= 0 or (whole and not value.is_integer()):
        kind = "正整数" if whole else "正数"
        reason = f"环境变量 {name}（{label}上限，单位：{unit}）应为{kind}，现为“{raw}”"
        (LIMIT_ERRORS if errors is None else errors).append(reason)
        return default
    return value


MAX_FILE_BYTES = int(limit_from_env("FZ_MAX_FILE_MB") * MB)  # a filled template is under 1 MB
MAX_ZIP_ENTRIES = int(limit_from_env("FZ_MAX_ZIP_ENTRIES"))
# all parts together, as actually inflated
MAX_UNCOMPRESSED_BYTES = int(limit_from_env("FZ_MAX_INFLATED_MB") * MB)
MAX_COMPRESSION_RATIO = int(limit_from_env("FZ_MAX_COMPRESSION_RATIO"))  # per part over 1 MB
RATIO_MIN_BYTES = MB
# rows x columns of the area holding values, per sheet
MAX_SHEET_CELLS = int(limit_from_env("FZ_MAX_SHEET_CELLS"))
MAX_SHEET_ROWS = int(limit_from_env("FZ_MAX_SHEET_ROWS"))
ANNOTATE_MAX_INFLATED_BYTES = int(limit_from_env("FZ_MAX_ANNOTATE_MB") * MB)
ANNOTATE_MAX_CELLS = int(limit_from_env("FZ_MAX_ANNOTATE_CELLS"))
MAX_OLE_SECTORS = 1_000_000

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
# Read and judged by content. .et (WPS) and .xlsb are listed so that the clerk gets a reason
# (WPS .et is usually .xls inside and then read; .xlsb is refused with "save as .xlsx").
SPREADSHEET_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".et", ".xlsb")

_CHUNK = 1024 * 1024
# A big worksheet is scanned piece by piece, each cut before a "<": one tag or text of more
# than this (a cell's text is at most 32,767 characters) is not a spreadsheet program's
_MAX_RUN = 4 * _CHUNK
# worksheet parts up to this size are checked as one piece once inflated (see _scan_part)
WHOLE_SHEET_BYTES = 16 * MB
# What zipfile raises on damaged data (ValueError covers bad seeks and undecodable names)
_ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, ValueError)
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# The same declarations in a part written in UTF-16 or UTF-32 (XML allows both)
_DTD_WIDE = re.compile(
    b"|".join(
        re.escape(word.encode(encoding))
        for word in ("<!DOCTYPE", "<!ENTITY", "<!doctype", "<!entity")
        for encoding in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
    )
)
# Worksheet cells and rows, as python-calamine reads them: any attribute order, either quote,
# spaces around "=", a namespace prefix, lower-case column letters, and no r at all (the cell
# is then the one after the previous cell, the row the one after the previous row).
# Every pattern here is bounded by the next "<" (which XML allows in no tag) and unambiguous,
# so scanning stays linear whatever the county file holds: sheet XML is scanned in this
# process, before the sandbox, and a pattern that backtracks would let one file hang the run.
_C_TAG = re.compile(rb"<c[\s/>]")
# a cell or row tag, start or end, its prefix, and what follows it up to the next tag. Loose
# on purpose, so that no tag the reader sees is missed: any prefix (the reader takes the
# local name after the first ":"), any whitespace after the name.
_CELL_OR_ROW = re.compile(rb"""<(/?)([^\s<>:]*:)?(row|c)(?=[\s/>])([^<]*)""")
# A start tag exactly as the reader splits it (its whitespace is space, tab, CR and LF; names
# plain; values quoted, with no "<" or ">"), up to its ">": anything else makes the scan odd.
_WS = rb"[ \t\r\n]"
_CLEAN_TAG = re.compile(
    rb"((?:"
    + _WS
    + rb"+[A-Za-z_][A-Za-z0-9_.:-]*"
    + _WS
    + rb"*="
    + _WS
    + rb"""*(?:"[^"<>]*"|'[^'<>]*'))*)"""
    + _WS
    + rb"*(/?)>"
)
_ATTRIBUTE = re.compile(
    rb"([A-Za-z_][A-Za-z0-9_.:-]*)" + _WS + rb"*=" + _WS + rb"""*(?:"([^"<>]*)"|'([^'<>]*)')"""
)
_CLEAN_END = re.compile(_WS + rb"*>")
# a cell or row end tag not written as _CLEAN_END takes it (a start tag written otherwise
# than _CLEAN_TAG takes it is _ODD_MARKUP)
_UNCLEAN_END = re.compile(rb"</(?:c|row)(?!" + _WS + rb"*>)")
_ROW_END = re.compile(rb"</(?:[^\s<>:]*:)?row(?=[\s/>])")
_ROW_START = re.compile(rb"<(?:[^\s<>:]*:)?row(?=[\s/>])[^<>]*")
_CELL_REF = re.compile(rb"([A-Za-z]+)([0-9]+)")
_ROW_REF = re.compile(rb"[0-9]+")
# any r value anywhere, quoted or not, read loosely by _loose_ref (letters and digits wherever
# they are in it; any number of them, leading zeros included: the reader reads them all, and
# _row_number and _col_number cap them beyond every limit)
_R_VALUE = re.compile(rb"""(?<![\w.:-])r\s*=\s*(?:"([^"<>]*)|'([^'<>]*)|([^\s"'<>]+))""")
_LETTERS = re.compile(rb"[A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]+")
# The XML declaration at the very start of a part (after a byte-order mark, if any)
_DECLARATION = re.compile(rb"(?:\xef\xbb\xbf)?<\?xml[^<>]*\?>")
# Markup that can hide a tag from the reader while a scan sees it: a comment, CDATA, a
# processing instruction (other than the XML declaration), a "<" inside a tag, a ">" inside
# a quoted attribute value (after which a "<" may still be inside the value). Spreadsheet
# programs write none of them; where they are, _SheetExtent only ever raises its position.
# Any start tag, of any element, not written as _CLEAN_TAG takes it is odd too: a stray quote
# in a <v> tag makes the reader read on to the next quote, past the tags a scan sees.
_ODD_MARKUP = re.compile(
    rb"""<!|<\?|<[^<>]*<|=\s*"[^"<>]*>|=\s*'[^'<>]*>"""
    rb"|<[A-Za-z_][A-Za-z0-9_.:-]*(?=[\s/>])(?!" + _CLEAN_TAG.pattern + rb")"
)
# A cell holding a formula and no value (files written by tools that do not calculate)
# (the runs of spaces are matched possessively: a long run with no match after it must not be
# tried again at every split between two of them, which made these patterns quadratic in its
# length; "[^<>]*" before "/>" must stay able to give back its "/")
_XLSX_NO_RESULT = re.compile(
    rb'<c r="([A-Z]{1,3}[0-9]{1,7})"[^<>/]*+>\s*+<f(?:\s[^<>]*)?(?:/>|>[^<]*+</f>)\s*+'
    rb"(?:<v\s*+/>|<v>\s*+</v>)?\s*+</c>"
)
# A cell with its attributes and value: an error such as #DIV/0! when t="e" is among them
# (calamine reads it as empty)
_XLSX_ERROR = re.compile(
    rb'<c r="([A-Z]{1,3}[0-9]{1,7})"([^<>]*+)>\s*+(?:<f[^<>]*/>|<f[^<>]*+>[^<]*+</f>)?\s*+'
    rb"<v>([^<]{0,32})</v>"
)
_T_ERROR = re.compile(rb'(?<![\w.:-])t="e"')
# Every cell tag starts <c r="…" (what Excel, WPS and LibreOffice write): its r, self-closing
# (styled but empty) cells included
# (one group each: lists of bytes are cheaper than lists of pairs)
_FAST_COLUMNS = re.compile(rb'<c r="([A-Z]+)[0-9]')
_FAST_ROWS = re.compile(rb'<c r="[A-Z]+([0-9]+)"')
# A formula element as the formula patterns above look for it
_F_TAG = re.compile(rb"<f(?: |>|/>)")
# The cheap bound of a whole worksheet (sheet_bound): a cell tag not written <c r="A1"…
# (one letter, 1 to 4 digits), a row tag not written <row r="1"…, a tag with a namespace
# prefix. Each pattern starts with a literal and looks no further than its own tag: linear.
FAST_BOUND = (9_999, 26)
# A cell tag must start <c r="A1" (then a space, "/" or ">"). A second r in a tag (a reader
# takes the last r, these patterns read the first) is an r attribute anywhere but first in a
# cell or row tag: _STRAY_R finds every r attribute (a name r after no name character: a
# space, a prefix, a quote; spaces around "=") except <c r= and <row r= written so and the
# r namespace declaration; one in text or any other place only sends the sheet to the exact
# scan. Row tags are matched whole, with the attributes spreadsheet programs write. _STRAY_R
# starts with a literal and looks back a fixed width: linear, and cheaper than matching every
# cell tag whole.
_ODD_CELL = re.compile(rb'<c(?! r="[A-Z][0-9]{1,4}"[ />])[\s/>]')
_STRAY_R = re.compile(rb"r(?<![\w.-]r)(?<!<c r)(?<!<row r)(?<!xmlns:r)\s*=")
_ODD_ROW = re.compile(
    rb'<row(?=[\s/>])(?! r="[0-9]{1,4}"(?: (?:spans|s|customFormat|ht|hidden|customHeight'
    rb'|outlineLevel|collapsed|thickTop|thickBot|ph|x14ac:dyDescent)="[^"<>]*")* ?/?>)'
)
_PREFIXED_TAG = re.compile(rb":(?:c|row)[\s/>]")
# The window scan (_SheetExtent) reads the first r of a tag too: _one_r_per_tag counts r="
# (each r="… ends so) less the attribute names ending in r that worksheets carry. Counting too
# many (text, other names) only sends a window to the exact scan.
_NOT_R = (b'error="', b'operator="', b'header="', b'footer="', b'xmlns:r="')
_R_SPACED = re.compile(rb"r[ \t\r\n]+=")


class Refused(Exception):
    """The file must not (or cannot) be parsed. `code` is a rule code, `detail` Chinese."""

    def __init__(self, code: str, detail: str = "", **fields: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.fields = fields


@dataclass(frozen=True)
class Checked:
    """What a file really is: the format to parse it as, and (xlsx) the cells whose formula left
    no usable value, by sheet name: A1 -> "" (never calculated) or the error ("#DIV/0!")."""

    fmt: str  # xlsx | xlsm | xls | ods
    formula_cells: dict[str, dict[str, str]] = field(default_factory=dict)
    # ods: the merged areas of each sheet, as ParsedSheet.merged (python-calamine reports
    # none for .ods; the scan of content.xml sees them)
    merged: dict[str, list[Area]] = field(default_factory=dict)


def human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} 字节"


def check_bytes(data: bytes) -> Checked:
    """Identify `data` by content and refuse anything unsafe or unreadable (raises Refused)."""
    if not data:
        raise Refused("file-empty")
    if len(data) > MAX_FILE_BYTES:
        raise Refused(
            "file-too-large", size=human_size(len(data)), limit=human_size(MAX_FILE_BYTES)
        )
    if data.startswith(ZIP_MAGIC):
        return _check_zip(data)
    if data.startswith(OLE_MAGIC):
        return Checked(_check_ole(data))
    raise Refused("file-not-spreadsheet-content", what=_what_is(data))


def _what_is(data: bytes) -> str:
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"%pdf"):
        return "PDF 文件"
    if head.startswith((b"\x89png", b"\xff\xd8\xff", b"gif8", b"bm")):
        return "图片"
    if head.startswith((b"rar!", b"7z\xbc\xaf", b"\x1f\x8b")):
        return "压缩包"
    if b"<html" in head or b"<!doctype html" in head or b"<table" in head:
        return "网页（HTML）文件，常见于从业务系统导出的“伪 xls”"
    if head.startswith(b"<?xml"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in data[:8192]:
            return "Excel 2003 XML 表格（不受支持的旧格式）"
        return "XML 文件"
    if head.startswith(b"{\\rtf"):
        return "RTF 文档"
    if head.startswith((b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd")):
        return "压缩数据"
    sample = data[:4096]
    try:
        sample.decode("utf-8")
        return "文本文件（如 CSV）"
    except UnicodeDecodeError:
        pass
    try:
        sample.decode("gb18030")
        if b"\x00" not in sample:
            return "文本文件（如 CSV）"
    except UnicodeDecodeError:
        pass
    return "无法识别的文件"


# --- zip containers: xlsx, xlsm, ods ----------------------------------------------------------


def _check_zip(data: bytes) -> Checked:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        if data.startswith(b"PK\x03\x04") and b"PK\x05\x06" not in data[-65557:]:
            raise Refused("file-truncated") from None
        raise Refused("file-corrupt", detail=f"压缩结构损坏：{exc}") from None
    except (OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise Refused("file-corrupt", detail=f"压缩结构损坏：{exc}") from None
    if len(infos) > MAX_ZIP_ENTRIES:
        raise Refused(
            "file-zip-limits", detail=f"包含 {len(infos)} 个部件，超过上限 {MAX_ZIP_ENTRIES}"
        )
    declared = sum(i.file_size for i in infos)
    if declared > MAX_UNCOMPRESSED_BYTES:
        raise Refused(
            "file-zip-limits",
            detail=f"解压后共 {human_size(declared)}，超过上限 {human_size(MAX_UNCOMPRESSED_BYTES)}",
        )
    for info in infos:
        _check_ratio(info.filename, info.file_size, info.compress_size)
        if info.flag_bits & 0x1:
            raise Refused("file-encrypted")
    names = {i.filename for i in infos}
    fmt = _zip_kind(zf, names, data)
    total = 0
    formulas: dict[str, dict[str, str]] = {}
    # the workbook may point a reader at a worksheet outside xl/worksheets/: checked as one too
    sheet_names = _sheet_parts(zf, data) if fmt in ("xlsx", "xlsm") else {}
    elsewhere = _linked_sheets(sheet_names)
    for info in infos:
        linked = info.filename.lower() in elsewhere
        if info.is_dir() or not (linked or _is_xml_part(info.filename)):
            continue
        total = _scan_part(zf, info, fmt, total, formulas, data, linked=linked)
    merged = _scan_ods(zf) if fmt == "ods" else {}
    by_sheet: dict[str, dict[str, str]] = {}
    if formulas:
        by_sheet = {
            sheet_names[part]: cells for part, cells in formulas.items() if part in sheet_names
        }
    return Checked(fmt, by_sheet, merged)


def _linked_sheets(sheet_parts: Iterable[str]) -> set[str]:
    """Lower-case part names the workbook's sheets link to (the parts of _sheet_parts), as a
    reader may resolve each link (relative to xl/, from the root, with ./ and ../ folded):
    parts that are worksheets to calamine wherever they lie."""
    out: set[str] = set()
    for part in sheet_parts:
        lower = part.lower()
        out.add(lower)
        out.add(posixpath.normpath(lower).lstrip("/"))
        if lower.startswith("xl/"):
            out.add(lower.removeprefix("xl/"))  # a link written from the root, without /
    return out


# _sheet_parts' answers by the stored bytes of xl/workbook.xml and its relationships (every
# file made from one template has the same two): equal stored bytes inflate to equal parts.
# Bounded like _CLEAN_PARTS.
_SHEET_PARTS: dict[tuple[_PartKey, ...], dict[str, str]] = {}


def _sheet_parts(zf: zipfile.ZipFile, data: bytes = b"") -> dict[str, str]:
    """Worksheet part name -> sheet name, from xl/workbook.xml and its relationships (`data`,
    the zip's bytes, lets an answer found before for the same two parts be reused)."""
    key = _stored_key(zf, data, ("xl/workbook.xml", "xl/_rels/workbook.xml.rels"))
    if key is not None and key in _SHEET_PARTS:
        return dict(_SHEET_PARTS[key])
    parts = _read_sheet_parts(zf)
    if key is not None and parts:
        if len(_SHEET_PARTS) >= _CLEAN_PARTS_KEPT:
            _SHEET_PARTS.clear()
        _SHEET_PARTS[key] = dict(parts)
    return parts


def _stored_key(
    zf: zipfile.ZipFile, data: bytes, names: Sequence[str]
) -> tuple[_PartKey, ...] | None:
    """The _part_key of each of these parts, when every one is plainly stored or deflated and
    at most _CLEAN_PART_MAX bytes; None otherwise."""
    if not data:
        return None
    key = []
    for name in names:
        try:
            info = zf.getinfo(name)
        except KeyError:
            return None
        raw = _raw_part(data, info) if info.compress_size <= _CLEAN_PART_MAX else None
        if raw is None:
            return None
        key.append(_part_key(info, raw))
    return tuple(key)


def _read_sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    try:
        book = safe_et.fromstring(_read_small(zf, "xl/workbook.xml", 8 * 1024 * 1024))
        rels = safe_et.fromstring(_read_small(zf, "xl/_rels/workbook.xml.rels", 8 * 1024 * 1024))
    except (KeyError, Refused, safe_et.ParseError, DefusedXmlException):
        return {}
    targets = {}
    for rel in rels.iter():
        if rel.tag.endswith("}Relationship") and rel.get("Id") and rel.get("Target"):
            target = str(rel.get("Target"))
            targets[rel.get("Id")] = (
                target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            )
    out = {}
    for sheet in book.iter():
        if sheet.tag.endswith("}sheet"):
            rid = next((v for k, v in sheet.attrib.items() if k.endswith("}id")), None)
            if rid in targets and sheet.get("name"):
                out[targets[rid]] = str(sheet.get("name"))
    return out


def ratio_exceeded(size: int, compressed: int) -> bool:
    """Whether a part (or a file in a .zip) inflates past the compression-ratio limit."""
    return size > RATIO_MIN_BYTES and size > MAX_COMPRESSION_RATIO * max(compressed, 1)


def _check_ratio(name: str, size: int, compressed: int) -> None:
    if ratio_exceeded(size, compressed):
        raise Refused(
            "file-zip-limits",
            detail=f"部件 {name} 压缩比异常（{size // max(compressed, 1)} 倍），疑似“压缩炸弹”",
        )


def _zip_kind(zf: zipfile.ZipFile, names: set[str], whole: bytes = b"") -> str:
    if "mimetype" in names:
        mime = _read_small(zf, "mimetype", 256, whole).strip()
        if mime == ODS_MIME:
            if "META-INF/manifest.xml" in names and _ods_encrypted(zf):
                raise Refused("file-encrypted")
            if "content.xml" not in names:
                raise Refused("file-corrupt", detail="缺少 content.xml")
            return "ods"
        if mime.startswith(b"application/vnd.oasis.opendocument.text"):
            raise Refused("file-not-spreadsheet-content", what="文字文档（.odt）")
        raise Refused("file-not-spreadsheet-content", what="OpenDocument 非表格文件")
    if "xl/workbook.bin" in names:
        raise Refused("file-format-unsupported", what="Excel 二进制工作簿（.xlsb）")
    if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
        if "xl/workbook.xml" not in names and not any(
            n.startswith("xl/workbook") and n.endswith(".xml") for n in names
        ):
            raise Refused("file-corrupt", detail="缺少 xl/workbook.xml")
        content_types = _read_small(zf, "[Content_Types].xml", 1024 * 1024, whole)
        if b"macroEnabled" in content_types or "xl/vbaProject.bin" in names:
            return "xlsm"
        return "xlsx"
    if "word/document.xml" in names:
        raise Refused("file-not-spreadsheet-content", what="Word 文档")
    if "ppt/presentation.xml" in names:
        raise Refused("file-not-spreadsheet-content", what="PowerPoint 演示文稿")
    raise Refused("file-not-spreadsheet-content", what="普通压缩包（zip）")


def _read_small(zf: zipfile.ZipFile, name: str, cap: int, whole: bytes = b"") -> bytes:
    """Part `name`, of at most `cap` bytes (inflated in one piece from `whole`, the zip's
    bytes, when _inflate_whole can)."""
    info = zf.getinfo(name)
    _check_ratio(name, info.file_size, info.compress_size)
    inflated = _inflate_whole(whole, info) if whole and info.file_size <= cap else None
    if inflated is not None:
        data = inflated
    else:
        try:
            with zf.open(info) as fh:
                data = fh.read(cap + 1)
        except _ZIP_DAMAGE as exc:
            raise Refused("file-corrupt", detail=f"部件 {name} 无法解压：{exc}") from None
    if len(data) > cap:
        raise Refused("file-zip-limits", detail=f"部件 {name} 过大")
    if _DTD.search(data):
        raise Refused("file-xml-dtd", part=name)
    return data


def _ods_encrypted(zf: zipfile.ZipFile) -> bool:
    manifest = _read_small(zf, "META-INF/manifest.xml", 4 * 1024 * 1024)
    try:
        root = safe_et.fromstring(manifest)
    except Exception:  # defusedxml raises its own errors for forbidden constructs too
        raise Refused("file-corrupt", detail="META-INF/manifest.xml 无法解析") from None
    return any(el.tag.endswith("}encryption-data") for el in root.iter())


def _is_xml_part(name: str) -> bool:
    """Parts a parser may read: XML by name (calamine matches names case-blind), and every
    part under xl/worksheets/ (calamine reads a sheet whatever its extension)."""
    lower = name.lower()
    return (
        lower.endswith((".xml", ".rels", ".vml"))
        or lower == "mimetype"
        or lower.startswith("xl/worksheets/")
    )


def _scan_part(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    fmt: str,
    total: int,
    formulas: dict[str, dict[str, str]],
    data: bytes = b"",
    *,
    linked: bool = False,
) -> int:
    """Inflate one part in chunks under the global cap; refuse DTDs and oversized sheets;
    note worksheet cells whose formula has no value or an error value.

    A part of up to WHOLE_SHEET_BYTES is inflated in one piece from `data` (the zip's bytes)
    when it is plainly stored or deflated and all checks out (_inflate_whole), else by zipfile
    in chunks. A worksheet of up to that size is checked as one piece once inflated; a bigger
    one window by window as it inflates, so that it is refused early."""
    name = info.filename
    lower = name.lower()
    # calamine reads any part the workbook names under xl/worksheets/, matching case-blind
    is_sheet = fmt in ("xlsx", "xlsm") and (
        linked or (lower.startswith("xl/worksheets/") and not lower.endswith(".rels"))
    )
    whole = is_sheet and info.file_size <= WHOLE_SHEET_BYTES
    raw = _raw_part(data, info) if info.file_size <= WHOLE_SHEET_BYTES else None
    # a part other than a worksheet whose very bytes were inflated and found clean before
    # (the styles, theme, relationships … of every file made from one template) is clean
    known = (
        _part_key(info, raw)
        if raw is not None and not is_sheet and len(raw) <= _CLEAN_PART_MAX
        else None
    )
    if known is not None and known in _CLEAN_PARTS:
        total += info.file_size
        if total > MAX_UNCOMPRESSED_BYTES:
            raise Refused(
                "file-zip-limits",
                detail=f"部件 {name} 实际解压后超过声明大小或总上限，疑似“压缩炸弹”",
            )
        return total
    inflated = _inflate_raw(raw, info) if raw is not None else None
    if inflated is not None:
        total += len(inflated)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise Refused(
                "file-zip-limits",
                detail=f"部件 {name} 实际解压后超过声明大小或总上限，疑似“压缩炸弹”",
            )
        _check_dtd(name, inflated)
        if whole:
            check_extent(_sheet_label(name), *sheet_bound(inflated))
            _note_formulas(name, inflated, formulas)
        elif known is not None:
            if len(_CLEAN_PARTS) >= _CLEAN_PARTS_KEPT:
                _CLEAN_PARTS.clear()  # start over: the parts of the templates come back first
            _CLEAN_PARTS.add(known)
        return total
    pieces: list[bytes] = []
    big = _BigSheetScan(name)
    size = 0
    tail = b""
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                total += len(chunk)
                if total > MAX_UNCOMPRESSED_BYTES or size > max(info.file_size, 0) + _CHUNK:
                    raise Refused(
                        "file-zip-limits",
                        detail=f"部件 {name} 实际解压后超过声明大小或总上限，疑似“压缩炸弹”",
                    )
                window = tail + chunk
                _check_dtd(name, window)
                if whole:
                    pieces.append(chunk)
                elif is_sheet:
                    big.feed(chunk)  # refuses early
                    _note_formulas(name, window, formulas)
                tail = window[-4096:]
    except Refused:
        raise
    except _ZIP_DAMAGE as exc:
        raise Refused("file-corrupt", detail=f"部件 {name} 无法解压：{exc}") from None
    if whole:
        sheet = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        check_extent(_sheet_label(name), *sheet_bound(sheet))
        _note_formulas(name, sheet, formulas)
    elif is_sheet:
        big.finish()
    return total


class _BigSheetScan:
    """The extent check of a worksheet part too big to hold whole, fed as it inflates. Each
    piece scanned is cut before its last "<" (which XML allows in no tag and no value), the
    rest scanned with what follows: every tag is seen whole and once, however long."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.extent = _SheetExtent()
        self.carry = b""  # from the last "<" on: a tag (or text) perhaps not finished yet

    def feed(self, chunk: bytes) -> None:
        """Scan what `chunk` completes; refuse the sheet as soon as it is seen to be too big."""
        # the run from the held "<" to the next: any other run lies within the chunk
        ends = chunk.find(b"<")
        if len(self.carry) + (len(chunk) if ends < 0 else ends) > _MAX_RUN:
            raise Refused(
                "file-corrupt",
                detail=f"部件 {self.name} 中有超过 {human_size(_MAX_RUN)} 的单个标记或文本，"
                "不是表格软件写出的工作表",
            )
        piece = self.carry + chunk
        cut = piece.rfind(b"<")
        if cut > 0:
            fed = piece[:cut]
            self.extent.feed(fed)
            if fed.rfind(b"<") > fed.rfind(b">"):  # a "<" inside a tag: odd (_ODD_MARKUP)
                self.extent.odd = True
            piece = piece[cut:]
        self.carry = piece
        check_extent(_sheet_label(self.name), *self.extent.bound())

    def finish(self) -> None:
        """Scan the rest; refuse the sheet if it is too big."""
        self.extent.feed(self.carry)
        self.carry = b""
        check_extent(_sheet_label(self.name), *self.extent.bound())


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader
# Parts other than worksheets found clean (no DTD, inflated to their size and CRC), by
# (method, size, CRC, stored bytes): equal stored bytes inflate to equal bytes, so the verdict
# stands. Bounded: at most _CLEAN_PARTS_KEPT parts of at most _CLEAN_PART_MAX stored bytes.
_PartKey = tuple[int, int, int, bytes]  # method, size, CRC-32, stored bytes
_CLEAN_PARTS: set[_PartKey] = set()
_CLEAN_PARTS_KEPT = 512
_CLEAN_PART_MAX = 16 * 1024


def _part_key(info: zipfile.ZipInfo, raw: bytes) -> _PartKey:
    """What fixes a part's inflated bytes: equal keys inflate to equal bytes."""
    return info.compress_type, info.file_size, info.CRC, raw


def _inflate_whole(data: bytes, info: zipfile.ZipInfo) -> bytes | None:
    """The part's bytes, inflated in one call straight from the zip's bytes, when it is plainly
    stored or deflated and its local header, size and CRC-32 agree with the directory: exactly
    what zipfile would read. None otherwise (zipfile then reads it and says what is wrong).
    Never inflates more than the declared size plus one byte."""
    raw = _raw_part(data, info)
    return None if raw is None else _inflate_raw(raw, info)


def _raw_part(data: bytes, info: zipfile.ZipInfo) -> bytes | None:
    """The part's stored (compressed) bytes, when it is plainly stored or deflated and its local
    header agrees with the directory; None otherwise."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or (
        info.flag_bits & 0x61  # encrypted, compressed patched data, strong encryption
    ):
        return None
    try:
        offset = info.header_offset
        header = _LOCAL_HEADER.unpack_from(data, offset)
        if header[0] != b"PK\x03\x04":
            return None
        name_end = offset + _LOCAL_HEADER.size + header[10]
        raw_name = data[offset + _LOCAL_HEADER.size : name_end]
        local_name = raw_name.decode("utf-8" if header[3] & 0x800 else "cp437")
        if local_name != info.orig_filename:
            return None
        start = name_end + header[11]
    except (struct.error, UnicodeDecodeError, ValueError, OverflowError):
        return None
    raw = data[start : start + info.compress_size]
    return raw if len(raw) == info.compress_size else None


def _inflate_raw(raw: bytes, info: zipfile.ZipInfo) -> bytes | None:
    """`raw` (from _raw_part) inflated, when its size and CRC-32 are the directory's."""
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                return None
            out = raw
        else:
            inflater = zlib.decompressobj(-15)
            out = inflater.decompress(raw, info.file_size + 1)
            if inflater.unconsumed_tail:
                return None  # more than declared
            out += inflater.flush()
    except (zlib.error, ValueError, OverflowError):
        return None
    if len(out) != info.file_size or zlib.crc32(out) != info.CRC:
        return None
    return out


def _check_dtd(name: str, window: bytes) -> None:
    # every declaration, in any encoding, holds the byte "!": one memchr rules most parts out
    if b"!" in window and (
        (b"<!" in window and _DTD.search(window))
        or ((b"<\x00!" in window or b"<\x00\x00\x00!" in window) and _DTD_WIDE.search(window))
    ):
        raise Refused("file-xml-dtd", part=name)


def _note_formulas(name: str, xml: bytes, formulas: dict[str, dict[str, str]]) -> None:
    """Note the cells of worksheet XML whose formula has no value or an error value."""
    if _F_TAG.search(xml):
        for ref in _XLSX_NO_RESULT.findall(xml):
            formulas.setdefault(name, {})[ref.decode()] = ""
    if b't="e"' in xml:
        for ref, attrs, error in _XLSX_ERROR.findall(xml):
            if _T_ERROR.search(attrs):
                formulas.setdefault(name, {})[ref.decode()] = error.decode(errors="replace")


def _one_r_per_tag(xml: bytes) -> bool:
    """Every r attribute is the one of a <c r="… or <row r="… tag: no tag carries a second."""
    if xml.count(b"r=") != xml.count(b'r="') or _R_SPACED.search(xml):
        return False  # r='…', r= "…", r = …: for the exact scan
    attributes = xml.count(b'r="') - sum(xml.count(name) for name in _NOT_R)
    return attributes == xml.count(b'<c r="') + xml.count(b'<row r="')


def sheet_bound(xml: bytes) -> tuple[int, int]:
    """(rows, columns) no cell of a whole worksheet part can lie beyond: _SheetExtent's bound,
    or, when every cell tag starts <c r="A1" (one letter, at most 4 digits) and every row tag
    is <row r="1" (at most 4 digits) with only the attributes spreadsheet programs write,
    with no r attribute anywhere else (so no second r in a tag) and no prefixed tags,
    FAST_BOUND, which is then within the limits. The common case costs a few searches over the XML, with no list built."""
    rows, cols = FAST_BOUND
    if (
        rows <= MAX_SHEET_ROWS
        and rows * cols <= MAX_SHEET_CELLS
        and not _ODD_CELL.search(xml)
        and not _STRAY_R.search(xml)
        and not _ODD_ROW.search(xml)
        and not _PREFIXED_TAG.search(xml)
    ):
        return FAST_BOUND
    extent = _SheetExtent()
    extent.feed(xml, whole=True)
    return extent.bound()


class _SheetExtent:
    """An upper bound of the rows and columns python-calamine allocates for one worksheet part,
    from the pieces of it fed so far (in order, each cut before a "<", so that no tag is cut).

    The reader is followed through the cell and row tags (1-based here): a row tag with r
    sets the current row; the end of a row moves to the next row and back to column 1; a cell
    with r sits where it says and sets the current column; a cell without r sits at the
    current row and column; every cell moves the column on by one. A row tag without r does
    nothing. Where a reader may take a self-closing tag for an element or ignore it, the
    larger outcome is kept. Every r value anywhere counts as a cell there too.

    Only a tag written exactly as the reader splits it (_CLEAN_TAG) may move the position back
    (a row's end, a cell's or a row's own r). Anything else (a prefix, odd whitespace, a
    second r, a malformed tag, _ODD_MARKUP, a tag inside a cell) makes the scan odd: from
    then on each step may only raise the current row and column, reading r values loosely,
    so the bound can only be too large, never too small. A sheet with more cell and row tags
    than one within the limits can hold is refused outright, which also bounds the work.
    """

    def __init__(self) -> None:
        self.max_row = self.max_col = 0  # the farthest cell so far
        self.row = self.col = 1  # where the next cell without r goes
        self.odd = False  # a tag may be one the reader does not see, or sees otherwise
        self.in_cell = False  # inside a <c>…</c> the last piece left open
        self.tags = 0  # cell and row tags seen
        self.started = False  # a piece was fed (the XML declaration may open the first only)

    def feed(self, window: bytes, *, whole: bool = False) -> None:
        """Take in the next piece; `whole`: the piece is the whole sheet."""
        first, self.started = not self.started, True
        if whole and self._every_cell_placed(window):
            return
        if not self.odd:
            body = window
            if first and (declaration := _DECLARATION.match(window)):
                body = window[declaration.end() :]
            self.odd = bool(_ODD_MARKUP.search(body))
        if not (whole or self.odd) and self._placed_piece(window):
            return
        for value in _R_VALUE.findall(window):
            self._cell(*_loose_ref(b"".join(value)))
        tags = _CELL_OR_ROW.findall(window)
        self._count_tags(len(tags))
        for i, (end, prefix, name, rest) in enumerate(tags):
            if i and not i % 8192 and self._too_large():
                return  # refused whatever follows (the caller checks the bound)
            if name == b"c" and end:
                self.in_cell = False
                continue
            if self.in_cell:
                self.odd = True  # a tag inside a cell's value: the reader skips it
            clean = None if (prefix or self.odd) else _clean_tag(end, name, rest)
            if clean is None:
                self.odd = True
                self._odd_step(end, name, rest)
            else:
                self._exact_step(end, name, *clean)
            if name == b"c":
                self.in_cell = not rest.split(b">", 1)[0].rstrip().endswith(b"/")

    def _exact_step(self, end: bytes, name: bytes, empty: bool, ref: bytes | None) -> None:
        if name == b"row":
            if end:
                self.row, self.col = self.row + 1, 1
            elif empty:  # ignored by the reader, or a row begun and ended: the larger
                self.row = max(self.row, (_row_number(ref) if ref else self.row) + 1)
            elif ref:
                self.row = _row_number(ref)
            return
        if ref:
            letters = _CELL_REF.fullmatch(ref)
            assert letters is not None  # _clean_tag let only a reference through
            col = _col_number(letters.group(1).upper())
            self.col = max(self.col, col) if empty else col
        else:
            self._cell(self.row, self.col)
        self.col += 1  # an empty cell: ignored by the reader, or a cell: the larger

    def _odd_step(self, end: bytes, name: bytes, rest: bytes) -> None:
        refs = [_loose_ref(b"".join(value)) for value in _R_VALUE.findall(rest)]
        if name == b"row":
            if end:
                self.row += 1
            else:  # as a self-closing row, whatever it looks like: the larger
                self.row = max(self.row, max((r for r, _c in refs), default=self.row) + 1)
            return
        self._cell(self.row, self.col)  # with or without an r the reader would take
        self.col = max(self.col, max((c for _r, c in refs), default=0)) + 1

    def _cell(self, row: int, col: int) -> None:
        self.max_row = max(self.max_row, row)
        self.max_col = max(self.max_col, col)

    def _too_large(self) -> bool:
        return self.max_row > MAX_SHEET_ROWS or self.max_row * self.max_col > MAX_SHEET_CELLS

    def _every_cell_placed(self, xml: bytes) -> bool:
        """For a whole sheet whose every cell tag is written <c r="A1" (one r each, no
        prefix): each cell is where its r says, and nothing else places one. Takes them in."""
        written = xml.count(b'<c r="')
        if (
            not _one_r_per_tag(xml)
            or len(_C_TAG.findall(xml)) != written
            or _PREFIXED_TAG.search(xml)
        ):
            return False
        numbers = _FAST_ROWS.findall(xml)
        if len(numbers) != written:
            return False
        if numbers:
            letters = _FAST_COLUMNS.findall(xml)
            widest = max(set(letters), key=lambda b: (len(b), b))  # few distinct columns
            self._cell(max(map(_row_number, set(numbers))), _col_number(widest))
        return True

    def _placed_piece(self, piece: bytes) -> bool:
        """For a piece of a big sheet (markup not odd) whose every cell tag is written
        <c r="A1" (one r each, no prefix): its cells are where their r says. Takes them in
        without the walk, leaving a current position no lower than the reader's: the highest
        row r in the piece plus one per row tag in it, the column after the farthest one.
        (Its start tags are clean: the piece is not odd. An unclean end tag sends it to the
        walk.)"""
        if _UNCLEAN_END.search(piece) or not self._every_cell_placed(piece):
            return False
        self._count_tags(2 * piece.count(b'<c r="'))
        # any number in any row start tag (its r among them): no lower than the row it sets;
        # then a row more for each end, and for each start (a self-closing row ends too)
        starts = _ROW_START.findall(piece)
        numbers = _DIGITS.findall(b"".join(starts))
        highest = max(map(_row_number, set(numbers)), default=0)
        ends = len(_ROW_END.findall(piece)) + len(starts)
        self.row = max(self.row, highest) + ends
        self.col = max(self.col, self.max_col + 1)
        # (a tag inside a cell's value changes nothing here: only the cells' r place them)
        start, end = piece.rfind(b'<c r="'), piece.rfind(b"</c")
        if start > end:  # the piece ends inside a cell, unless its tag closes itself
            close = piece.find(b">", start)
            self.in_cell = close > 0 and piece[close - 1 : close] != b"/"
        elif end >= 0:
            self.in_cell = False
        return True

    def _count_tags(self, count: int) -> None:
        """Refuse the sheet once it has more cell and row tags than one within the limits can
        hold (a start and an end tag per cell and per row): this bounds the walk."""
        self.tags += count
        most = 2 * (MAX_SHEET_CELLS + MAX_SHEET_ROWS)
        if self.tags > most:
            raise Refused(
                "file-sheet-too-large",
                detail=f"工作表中的单元格和行标记超过 {most:,} 个",
            )

    def bound(self) -> tuple[int, int]:
        """(rows, columns) no cell of the sheet can lie beyond."""
        return self.max_row, self.max_col


def _clean_tag(end: bytes, name: bytes, rest: bytes) -> tuple[bool, bytes | None] | None:
    """(self-closing, its r) of a tag written exactly as the reader splits it, from what
    follows its name; None for any other (see _SheetExtent). Remembered for tags written
    alike (a sheet repeats them), within a bounded table."""
    key = (end, name, rest)
    if key in _CLEAN_TAGS:
        return _CLEAN_TAGS[key]
    if len(_CLEAN_TAGS) >= 4096:
        _CLEAN_TAGS.clear()
    _CLEAN_TAGS[key] = answer = _read_clean_tag(end, name, rest)
    return answer


_CLEAN_TAGS: dict[tuple[bytes, bytes, bytes], tuple[bool, bytes | None] | None] = {}


def _read_clean_tag(end: bytes, name: bytes, rest: bytes) -> tuple[bool, bytes | None] | None:
    if end:
        return (False, None) if _CLEAN_END.match(rest) else None
    tag = _CLEAN_TAG.match(rest)
    if tag is None:
        return None
    refs = [a or b for key, a, b in _ATTRIBUTE.findall(tag.group(1)) if key == b"r"]
    if len(refs) > 1:
        return None
    ref = refs[0] if refs else None
    if ref is not None and not (_CELL_REF if name == b"c" else _ROW_REF).fullmatch(ref):
        return None
    return tag.group(2) == b"/", ref


def _loose_ref(value: bytes) -> tuple[int, int]:
    """(row, column) an r value may stand for, read loosely: its largest run of digits, its
    first run of letters (0 where there is none)."""
    digits = _DIGITS.findall(value)
    letters = _LETTERS.search(value)
    row = max(map(_row_number, digits)) if digits else 0
    return row, _col_number(letters.group().upper()) if letters else 0


def _sheet_label(part: str) -> str:
    number = part.rsplit("/", 1)[-1].removeprefix("sheet").removesuffix(".xml")
    return f"第 {number} 个工作表" if number.isdigit() else part


def check_extent(where: str, rows: int, cols: int) -> None:
    """Refuse a sheet whose area with values is too large to load."""
    if rows > MAX_SHEET_ROWS or rows * cols > MAX_SHEET_CELLS:
        raise Refused(
            "file-sheet-too-large",
            detail=f"{where} 的数据区域达 {rows} 行 × {cols} 列",
        )


def _col_number(letters: bytes) -> int:
    """The column of upper-case letters (A = 1); beyond every limit for more than 7."""
    if len(letters) > 7:
        return 26**8
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n


def _row_number(digits: bytes) -> int:
    """The row of a string of digits, leading zeros and all; beyond every limit for more than
    10 significant digits (int() of thousands of digits is slow, or refused)."""
    significant = digits.lstrip(b"0")
    return int(significant) if len(significant) <= 10 else 10**11


# --- OLE compound files: .xls, and Office files encrypted with a password ---------------------

_FREE, _END = 0xFFFFFFFF, 0xFFFFFFFE
_LAST_REGULAR = 0xFFFFFFFA


@dataclass(frozen=True)
class OleEntry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    start: int
    size: int


class _Cfb:
    """A bounds-checked reader of an MS-CFB compound file: its directory and its streams."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 512:
            raise Refused("file-truncated")
        self.data = data
        (shift,) = struct.unpack_from("<H", data, 0x1E)
        (mini_shift,) = struct.unpack_from("<H", data, 0x20)
        if shift not in (9, 12) or mini_shift != 6:
            raise Refused("file-corrupt", detail="OLE 文件头损坏")
        self.ssize = 1 << shift
        n_fat, first_dir = struct.unpack_from("<II", data, 0x2C)
        (self.cutoff,) = struct.unpack_from("<I", data, 0x38)
        first_minifat, n_minifat = struct.unpack_from("<II", data, 0x3C)
        first_difat, n_difat = struct.unpack_from("<II", data, 0x44)
        per = self.ssize // 4
        fat_sectors = [x for x in struct.unpack_from("<109I", data, 0x4C) if x < _LAST_REGULAR]
        seen: set[int] = set()
        sid = first_difat
        for _ in range(min(n_difat, MAX_OLE_SECTORS)):
            if sid >= _LAST_REGULAR or sid in seen:
                break
            seen.add(sid)
            entries = struct.unpack_from(f"<{per}I", self._sector(sid))
            fat_sectors += [x for x in entries[:-1] if x < _LAST_REGULAR]
            sid = entries[-1]
        if n_fat:
            fat_sectors = fat_sectors[:n_fat]
        self.fat: list[int] = []
        for sid in fat_sectors[: MAX_OLE_SECTORS // per + 1]:
            self.fat.extend(struct.unpack_from(f"<{per}I", self._sector(sid)))
        self.entries: list[OleEntry] = []
        directory = self._chain_bytes(first_dir)
        for off in range(0, len(directory) - 127, 128):
            (name_len,) = struct.unpack_from("<H", directory, off + 64)
            kind = directory[off + 66]
            start, size = struct.unpack_from("<IQ", directory, off + 116)
            if kind in (1, 2, 5) and 2 <= name_len <= 64:
                name = directory[off : off + name_len - 2].decode("utf-16-le", errors="replace")
                if self.ssize == 512:
                    size &= 0xFFFFFFFF  # version 3 files leave the high half undefined
                self.entries.append(OleEntry(name, kind, start, size))
        self._minifat: list[int] | None = None
        self._first_minifat = first_minifat if n_minifat else _END

    def _sector(self, sid: int) -> bytes:
        start = (sid + 1) * self.ssize
        if start + self.ssize > len(self.data):
            raise Refused("file-truncated")
        return self.data[start : start + self.ssize]

    def _chain(self, first: int, table: list[int]) -> list[int]:
        out: list[int] = []
        seen: set[int] = set()
        sid = first
        while sid < _LAST_REGULAR:
            if sid in seen or sid >= len(table) or len(out) > MAX_OLE_SECTORS:
                raise Refused("file-corrupt", detail="OLE 扇区链损坏")
            seen.add(sid)
            out.append(sid)
            sid = table[sid]
        return out

    def _chain_bytes(self, first: int) -> bytes:
        return b"".join(self._sector(sid) for sid in self._chain(first, self.fat))

    def read(self, entry: OleEntry) -> bytes:
        """The whole stream (regular sectors, or the mini stream for small streams)."""
        if entry.size > MAX_FILE_BYTES:
            raise Refused("file-corrupt", detail="OLE 数据流大小异常")
        if entry.size >= self.cutoff or entry.kind == 5:
            return self._chain_bytes(entry.start)[: entry.size]
        if self._minifat is None:
            raw = (
                self._chain_bytes(self._first_minifat)
                if self._first_minifat < _LAST_REGULAR
                else b""
            )
            self._minifat = list(struct.unpack(f"<{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))
        root = next(e for e in self.entries if e.kind == 5)
        container = self.read(root)
        out = bytearray()
        for sid in self._chain(entry.start, self._minifat):
            chunk = container[sid * 64 : sid * 64 + 64]
            if len(chunk) < 64 and len(out) + len(chunk) < entry.size:
                raise Refused("file-truncated")
            out += chunk
        return bytes(out[: entry.size])


def ole_stream_names(data: bytes) -> list[str]:
    """Names of the entries in a compound file's directory (MS-CFB), following the FAT chain."""
    try:
        return [e.name for e in _Cfb(data).entries]
    except struct.error:
        raise Refused("file-truncated") from None


def _check_ole(data: bytes) -> str:
    try:
        cfb = _Cfb(data)
        names = {e.name for e in cfb.entries}
        if names & {"EncryptionInfo", "EncryptedPackage"}:
            raise Refused("file-encrypted")
        book = next(
            (e for e in cfb.entries if e.name in ("Workbook", "Book", "WORKBOOK", "BOOK")), None
        )
        if book is not None:
            _scan_biff(cfb.read(book))
            return "xls"
    except struct.error:
        raise Refused("file-truncated") from None
    if "WordDocument" in names:
        raise Refused("file-not-spreadsheet-content", what="Word 文档（.doc）")
    if "PowerPoint Document" in names:
        raise Refused("file-not-spreadsheet-content", what="PowerPoint 演示文稿（.ppt）")
    raise Refused("file-not-spreadsheet-content", what="非表格的 OLE 复合文档")


# BIFF records: row at offset 0 and column at offset 2 of the body
_BIFF_CELLS = frozenset({0x0006, 0x00FD, 0x0203, 0x027E, 0x0204, 0x0205, 0x00D6, 0x0406})
_BIFF_MULRK, _BIFF_BOF, _BIFF_EOF, _BIFF_FILEPASS, _BIFF_BOUNDSHEET = (
    0x00BD,
    0x0809,
    0x000A,
    0x002F,
    0x0085,
)


def _scan_biff(stream: bytes) -> None:
    """Refuse a password-protected .xls (FILEPASS) and sheets whose cells span too large an area:
    the reader allocates every cell of the area, so one value at IV65536 costs a gigabyte."""
    names: list[str] = []
    sheet = -1
    depth = 0
    max_row = max_col = -1
    pos, end = 0, len(stream)
    while pos + 4 <= end:
        kind, length = struct.unpack_from("<HH", stream, pos)
        body = pos + 4
        pos = body + length
        if kind == _BIFF_BOF:
            depth += 1
            if (
                depth == 1
                and length >= 4
                and struct.unpack_from("<H", stream, body + 2)[0] == 0x0010
            ):
                sheet += 1
                max_row = max_col = -1
        elif kind == _BIFF_EOF:
            if depth == 1 and sheet >= 0 and max_row >= 0:
                name = names[sheet] if sheet < len(names) else f"第 {sheet + 1} 个"
                check_extent(f"工作表“{name}”", max_row + 1, max_col + 1)
                max_row = -1
            depth = max(0, depth - 1)
        elif kind == _BIFF_FILEPASS:
            raise Refused("file-encrypted")
        elif kind == _BIFF_BOUNDSHEET and length >= 8:
            names.append(_biff_short_string(stream, body + 6, pos))
        elif kind in _BIFF_CELLS and length >= 4:
            row, col = struct.unpack_from("<HH", stream, body)
            max_row, max_col = max(max_row, row), max(max_col, col)
        elif kind == _BIFF_MULRK and length >= 6:
            row, _first = struct.unpack_from("<HH", stream, body)
            (last,) = struct.unpack_from("<H", stream, pos - 2)
            max_row, max_col = max(max_row, row), max(max_col, last)


def _biff_short_string(stream: bytes, start: int, stop: int) -> str:
    try:
        count, flags = stream[start], stream[start + 1]
        raw = stream[start + 2 : stop]
        if flags & 0x1:
            return raw[: count * 2].decode("utf-16-le", errors="replace")
        return raw[:count].decode("latin-1")
    except IndexError:
        return "?"


# --- ODS: repeated cells can describe billions of cells in a few bytes ------------------------


MAX_ODS_MERGES = 10_000  # merged areas remembered per file; a real sheet has a few dozen


class _OdsExtent(xml.sax.handler.ContentHandler):
    """Per table, the rows and columns spanned by cells with values (repeats expanded), and
    its merged areas (a cell spanning rows or columns) as 0-based ((row, col), (last, last))."""

    TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
    OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.row = self.col = self.max_row = self.max_col = 0
        self.row_repeat = self.cell_repeat = 1
        self.row_has_value = self.cell_has_value = False
        self.in_cell = False
        self.merged: dict[str, list[Area]] = {}
        self.merge_count = 0

    def _int(self, attrs: Any, local: str) -> int:
        value = attrs.get((self.TABLE, local))
        try:
            return max(1, int(value)) if value is not None else 1
        except ValueError:
            return 1

    def startElementNS(self, name: tuple[str | None, str], qname: str | None, attrs: Any) -> None:
        uri, local = name
        if uri == self.TABLE:
            if local == "table":
                self.name = attrs.get((self.TABLE, "name"), "")
                self.row = self.max_row = self.max_col = 0
            elif local == "table-row":
                self.row_repeat = self._int(attrs, "number-rows-repeated")
                self.row_has_value = False
                self.col = 0
            elif local in ("table-cell", "covered-table-cell"):
                self.cell_repeat = self._int(attrs, "number-columns-repeated")
                self.cell_has_value = (self.OFFICE, "value-type") in attrs
                self.in_cell = True
                rows = self._int(attrs, "number-rows-spanned")
                cols = self._int(attrs, "number-columns-spanned")
                if local == "table-cell" and (rows > 1 or cols > 1):
                    self._merge(rows, cols)
        elif uri == self.TEXT and local == "p" and self.in_cell:
            self.cell_has_value = True

    def _merge(self, rows: int, cols: int) -> None:
        if self.merge_count >= MAX_ODS_MERGES:
            return
        self.merge_count += 1
        last = (self.row + rows - 1, self.col + cols - 1)
        self.merged.setdefault(self.name, []).append(((self.row, self.col), last))

    def endElementNS(self, name: tuple[str | None, str], qname: str | None) -> None:
        uri, local = name
        if uri != self.TABLE:
            return
        if local in ("table-cell", "covered-table-cell"):
            self.col += self.cell_repeat
            if self.cell_has_value:
                self.max_col = max(self.max_col, self.col)
                self.row_has_value = True
            self.in_cell = False
        elif local == "table-row":
            self.row += self.row_repeat
            if self.row_has_value:
                self.max_row = self.row
                check_extent(f"工作表“{self.name}”", self.max_row, self.max_col)
        elif local == "table":
            check_extent(f"工作表“{self.name}”", self.max_row, self.max_col)


def _scan_ods(zf: zipfile.ZipFile) -> dict[str, list[Area]]:
    """Check content.xml's extent (raises Refused); return each sheet's merged areas."""
    # loaded here: defusedxml.sax brings in urllib and http (some 25 ms), needed for .ods only
    import defusedxml.sax as defused_sax

    parser = defused_sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_namespaces, True)
    extent = _OdsExtent()
    parser.setContentHandler(extent)
    try:
        with zf.open("content.xml") as fh:
            while chunk := fh.read(_CHUNK):
                parser.feed(chunk)
        parser.close()
    except Refused:
        raise
    except (xml.sax.SAXException, DefusedXmlException, *_ZIP_DAMAGE) as exc:
        raise Refused("file-corrupt", detail=f"content.xml 无法解析：{exc}"[:200]) from None
    return extent.merged


# --- parsing in a sandbox ---------------------------------------------------------------------
#
# python-calamine is fast but a damaged file can make it panic (a Python exception we catch) or
# ask for terabytes of memory, which aborts the whole process: one bad file would stop the run.
# So workbooks are parsed in a child process; if it dies or hangs, that file is unreadable and a
# fresh child takes the next one. Only bytes go in and plain Python values come out.

SANDBOX_TIMEOUT = limit_from_env("FZ_PARSE_TIMEOUT")  # seconds one file may take to parse
# The sandbox child's address space: a reader asking for more fails there (the file is then
# unreadable) instead of driving the machine into swap. 4 GB is 7x a maximal legitimate sheet.
PARSE_MEMORY_BYTES = int(limit_from_env("FZ_PARSE_MEMORY_MB") * MB)
NOT_OURS = (KeyboardInterrupt, SystemExit, GeneratorExit)


@dataclass
class ParsedSheet:
    name: str
    visible: bool
    # None when refused (see `refused`), unreadable (`error`) or not asked for (`skipped`)
    rows: list[list[Any]] | None
    refused: tuple[str, str] | None = None  # (rule code, detail)
    error: str = ""
    skipped: bool = False
    # merged areas, ((first row, first col), (last row, last col)) 0-based, where the reader
    # reports them (xlsx, xls; for ods pipeline.read adds those of Checked.merged); their
    # value is in the first cell only
    merged: list[Area] = field(default_factory=list)


@dataclass
class Parsed:
    """A workbook as plain values, or why it could not be read."""

    sheets: list[ParsedSheet] = field(default_factory=list)
    encrypted: bool = False
    error: str = ""  # non-empty: the workbook could not be opened


def parse_workbook(data: bytes, skip: Collection[str] = ()) -> Parsed:
    """Every sheet of a checked workbook as rows of values (0-based, as in the workbook), but
    the sheets named in `skip`, which are listed without being read."""
    import python_calamine as pc

    try:
        workbook = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
        metadata = [
            (m.name, m.visible == pc.SheetVisibleEnum.Visible) for m in workbook.sheets_metadata
        ]
    except pc.PasswordError:
        return Parsed(encrypted=True)
    except BaseException as exc:  # damage shows as assorted exceptions, even Rust panics
        if isinstance(exc, NOT_OURS):
            raise
        return _failed(exc)
    parsed = Parsed()
    for name, visible in metadata:
        sheet = ParsedSheet(name, visible, None)
        if name in skip:
            sheet.skipped = True
            parsed.sheets.append(sheet)
            continue
        try:
            loaded = workbook.get_sheet_by_name(name)
            check_extent(f"工作表“{name}”", loaded.total_height, loaded.total_width)
            sheet.rows = loaded.to_python(skip_empty_area=False)
            with contextlib.suppress(Exception):  # a format without merged areas, or damage
                sheet.merged = [
                    ((int(a), int(b)), (int(c), int(d)))
                    for (a, b), (c, d) in loaded.merged_cell_ranges or ()
                ]
        except Refused as refused:
            sheet.refused = (refused.code, refused.detail)
        except BaseException as exc:
            if isinstance(exc, NOT_OURS):
                raise
            sheet.error = _failed(exc).error
        parsed.sheets.append(sheet)
    return parsed


def _failed(exc: BaseException) -> Parsed:
    text = str(exc)
    if "password" in text.lower() or "encrypt" in text.lower():
        return Parsed(encrypted=True)
    return Parsed(error=(text[:200] or type(exc).__name__))


def serve(stdin: Any = None, stdout: Any = None) -> None:
    """The sandbox child: read length-prefixed workbooks on stdin (two lengths, of the workbook
    and of the names of sheets not to read, one a line, then both), write pickled Parsed results
    on stdout, until stdin closes. Run as `python -c "from pipeline.safety import serve; serve()"`."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    limit_memory()
    while True:
        header = stdin.read(16)
        if len(header) < 16:
            return
        size, skip_size = struct.unpack("<QQ", header)
        data = stdin.read(size)
        skip = [n for n in stdin.read(skip_size).decode("utf-8").split("\n") if n]
        reply = pickle.dumps(parse_workbook(data, skip), protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(struct.pack("<Q", len(reply)) + reply)
        stdout.flush()


def limit_memory(budget: int | None = None) -> None:
    """Let this process's address space grow by at most `budget` bytes (default
    PARSE_MEMORY_BYTES) beyond what it holds now, where the system allows it (POSIX); never
    raises. For processes that parse county files: the sandbox child and reading workers
    (forked from a parent that may already hold a lot, hence "beyond what it holds now")."""
    try:
        import resource
    except ImportError:  # Windows: the timeout and the size limits still hold
        return
    cap = PARSE_MEMORY_BYTES if budget is None else budget
    with (
        contextlib.suppress(ValueError, OSError, IndexError),
        open("/proc/self/statm", encoding="ascii") as fh,  # Linux: the size in pages
    ):
        cap += int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(ValueError, OSError):
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


class Sandbox:
    """One child process parsing workbooks, replaced whenever it dies or hangs. A plain
    subprocess (not multiprocessing): nothing of the caller's __main__ is re-run, no fork."""

    COMMAND = ("-c", "from pipeline.safety import serve; serve()")

    def __init__(self, timeout: float = SANDBOX_TIMEOUT, command: Sequence[str] = COMMAND) -> None:
        self.timeout = timeout
        self.command = [sys.executable, *command]
        self._process: subprocess.Popen[bytes] | None = None

    def parse(self, data: bytes, skip: Collection[str] = ()) -> Parsed:
        process = self._process
        if process is None or process.poll() is not None:
            try:
                process = self._process = self._start()
            except OSError:
                return parse_workbook(data, skip)  # no child possible here: parse unprotected
        assert process.stdin is not None and process.stdout is not None
        names = "\n".join(skip).encode("utf-8")
        try:
            process.stdin.write(struct.pack("<QQ", len(data), len(names)) + data + names)
            process.stdin.flush()
            header = self._read(process, 8)
            (size,) = struct.unpack("<Q", header)
            result = pickle.loads(self._read(process, size))
        except TimeoutError:
            self.close()
            return Parsed(error=f"读取超过 {self.timeout:.0f} 秒仍未完成")
        except (OSError, EOFError, struct.error, pickle.UnpicklingError):
            code = None
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = process.wait(2)
            self.close()
            how = f"，退出码 {code}" if code is not None else ""
            return Parsed(error=f"读取程序因文件内部数据损坏而异常退出{how}")
        if not isinstance(result, Parsed):
            self.close()
            return Parsed(error="读取程序返回了无法识别的结果")
        return result

    def _read(self, process: subprocess.Popen[bytes], size: int) -> bytes:
        assert process.stdout is not None
        out = bytearray()
        deadline = time.monotonic() + self.timeout
        while len(out) < size:
            if os.name == "posix":
                left = deadline - time.monotonic()
                ready, _, _ = select.select([process.stdout], [], [], max(left, 0))
                if not ready:
                    raise TimeoutError
            chunk = process.stdout.read1(size - len(out))  # type: ignore[attr-defined]
            if not chunk:
                raise EOFError
            out += chunk
        return bytes(out)

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        return subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a reader panic prints a Rust backtrace: not for clerks
            env=env,
        )

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


_SANDBOX: Sandbox | None = None
IN_PROCESS = False  # set in worker processes of a pool: they are expendable themselves


def parse_isolated(data: bytes, skip: Collection[str] = ()) -> Parsed:
    """parse_workbook in the sandbox child (in this process when IN_PROCESS is set)."""
    global _SANDBOX
    if IN_PROCESS:
        return parse_workbook(data, skip)
    if _SANDBOX is None:
        _SANDBOX = Sandbox()
        atexit.register(_SANDBOX.close)
    return _SANDBOX.parse(data, skip)
