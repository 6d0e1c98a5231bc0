"""Annotated copies of rejected returns (退回修改): bad cells filled red, a Chinese comment on each,
and a first sheet 问题清单 listing every problem with its sheet and cell.

In: one rejected `Return` (its file in the inbox is only ever read). Out: a new .xlsx under
OUT/退回修改/ at the return's relative path, or None when the file cannot be opened at all (the
reason is kept for the report). .xlsx/.xlsm are loaded with openpyxl, so data validations, sheet
protection and the hidden _meta sheet survive; .xls/.ods are rebuilt cell for cell from
python-calamine onto the form's generated template (merges, borders, widths, print setup,
protection and dropdowns as sent out), or into plain sheets when the form is unknown. Copies are
byte-for-byte reproducible.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import hashlib
import io
import math
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import openpyxl
import python_calamine as calamine
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, MergedCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import range_boundaries
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.hyperlink import Hyperlink
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from pipeline import archive, safety
from pipeline.forms import (
    ChecklistForm,
    DefinitionError,
    ProgressForm,
    load_forms,
    parse_period,
    unit_by_code,
    unit_by_name,
)
from pipeline.fsutil import atomic_write_bytes, temp_dir, worker_pool
from pipeline.layout import checklist_layout, progress_layout
from pipeline.messages import CATALOGUE, make_issue, os_error_text
from pipeline.model import Issue, Return
from pipeline.report import (
    ANNOTATED_DIR,
    FALLBACK_CREATED,
    SEVERITY_LABELS,
    AnnotatedCopy,
    clip,
    form_name,
    sorted_returns,
    unit_text,
    wrapped_height,
)
from pipeline.templates import write_template

ISSUES_SHEET = "问题清单"
TITLE = "退回修改通知"
AUTHOR = "福州市城乡建设局"

# Marker fills: errors red, warnings yellow. Also how a previous copy's marks are recognised.
ERROR_RGB = "FFFF0000"
WARNING_RGB = "FFFFFF00"
_FILLS = {"error": ERROR_RGB, "warning": WARNING_RGB}
_RANK = {"error": 0, "warning": 1, "info": 2}

# 问题清单: (header, column width); 填写值, 问题说明 and 怎么改 wrap
ISSUE_COLUMNS = (
    ("序号", 10),
    ("工作表", 14),
    ("单元格", 9),
    ("严重程度", 9),
    ("填写值", 18),
    ("问题说明", 60),
    ("怎么改", 26),
    ("规则代码", 24),
)
_WRAPPED_COLUMNS = (5, 6, 7)

ACTIONS = {
    "error": "必须修改：按问题说明更正后重新报送",
    "warning": "请核实：确有误请更正，无误可不改",
    "info": "仅供参考，无需修改",
}

# Opening goes through pipeline.safety (size, zip and XML limits, encryption) like reading does.
# openpyxl then holds the whole workbook in memory, so annotation has a tighter bound of its own;
# returns are small (a filled template is tens of KB) and a file beyond it gets no copy.
# 64 MB and 2,000,000 cells by default; FZ_MAX_ANNOTATE_MB and FZ_MAX_ANNOTATE_CELLS raise them.
MAX_UNCOMPRESSED_BYTES = safety.ANNOTATE_MAX_INFLATED_BYTES
MAX_CELLS = safety.ANNOTATE_MAX_CELLS
MAX_RANGE_CELLS = 500  # cells marked for one issue that names a range

_STABLE_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class CannotOpen(Exception):
    """The file cannot be opened for annotation; the message (Chinese) says why."""


@dataclass
class _Mark:
    """The issues that land on one cell (the top-left cell of a merged range)."""

    sheet: str
    row: int
    col: int
    issues: list[Issue] = field(default_factory=list)
    extra: list[tuple[int, int]] = field(default_factory=list)  # more cells of a named range


# A name inside a .zip can be longer than a file system allows (255 bytes a name on Linux and
# NTFS) and hold characters Windows refuses: each part of a copy's path is made fit
MAX_NAME_BYTES = 180
_WINDOWS_RESERVED = re.compile(r'[<>:"|?*\x00-\x1f]')


def _fit(part: str) -> str:
    """A path part as a file system takes it: Windows-reserved characters replaced, and cut
    (keeping its extension, with a short hash of the whole for uniqueness) when too long."""
    part = _WINDOWS_RESERVED.sub("_", part).rstrip(" .") or "_"
    if len(part.encode("utf-8")) <= MAX_NAME_BYTES:
        return part
    digest = hashlib.sha256(part.encode("utf-8")).hexdigest()[:8]
    stem, dot, ext = part.rpartition(".")
    ext = f".{ext}" if dot and len(ext) <= 8 else ""
    stem = stem if dot and ext else part
    room = MAX_NAME_BYTES - len(f"…{digest}{ext}".encode())
    cut = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return f"{cut}…{digest}{ext}"


def annotated_path(rel: str, out_dir: Path) -> Path:
    """OUT/退回修改/<the return's path in the inbox, as .xlsx>, each part made fit (_fit)."""
    parts = [
        _fit(p) for p in PurePosixPath(rel.replace("\\", "/")).parts if p not in ("/", ".", "..")
    ]
    target = Path(out_dir, ANNOTATED_DIR, *(parts or ["未命名"]))
    if target.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods", ".xltx", ".et"):
        return target.with_suffix(".xlsx")
    return target.with_name(target.name + ".xlsx")


# --- opening ------------------------------------------------------------------------------------


def _refusal_text(refused: safety.Refused) -> str:
    """The reader's Chinese wording for a refused file, from the one catalogue."""
    fields: dict[str, Any] = dict(refused.fields)
    fields.setdefault("detail", refused.detail)
    try:
        return make_issue(refused.code, **fields).message.rstrip("。")
    except (KeyError, IndexError, ValueError):
        return refused.detail or "文件无法安全打开"


# Files the reader never opened as workbooks (an archive, a CSV export): nothing to annotate
UNREAD_RULES = (
    "archive-unsupported",
    "archive-unreadable",
    "archive-member-encrypted",
    "archive-member-unsupported",
    "archive-nested",
    "file-not-workbook",
)


def _checked_bytes(ret: Return) -> tuple[bytes, str]:
    """The file's bytes and real format (xlsx | xlsm | xls | ods); raises CannotOpen."""
    unread = next((i for i in ret.errors if i.rule in UNREAD_RULES), None)
    if unread is not None:
        raise CannotOpen(f"{CATALOGUE[unread.rule].title}，没有可标注的表格")
    limit = safety.human_size(safety.MAX_FILE_BYTES)
    try:
        cap = safety.MAX_FILE_BYTES + 1
        data = archive.source_bytes(ret.path, ret.member, cap, name=ret.member_name)
        if len(data) > safety.MAX_FILE_BYTES:
            raise CannotOpen(f"文件过大（上限 {limit}）")
    except OSError as exc:
        raise CannotOpen(f"文件无法读取（{os_error_text(exc)}）") from None
    except safety.Refused as refused:  # a file in a .zip that changed or cannot be inflated
        raise CannotOpen(_refusal_text(refused).split("。")[0]) from None
    if ret.sha256 and hashlib.sha256(data).hexdigest() != ret.sha256:
        raise CannotOpen("文件在校验之后被改动过，请重新校验")
    try:
        fmt = safety.check_bytes(data).fmt
    except safety.Refused as refused:
        raise CannotOpen(_refusal_text(refused)) from None
    if fmt != "xls":
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            inflated = sum(i.file_size for i in package.infolist())
        if inflated > MAX_UNCOMPRESSED_BYTES:
            raise CannotOpen(f"文件解压后过大（{safety.human_size(inflated)}），未生成标注副本")
    return data, fmt


def _load_original(data: bytes) -> Workbook:
    try:
        with warnings.catch_warnings():
            # openpyxl warns about extensions it drops (e.g. x14 validations); not our business
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(io.BytesIO(data), keep_vba=False, rich_text=False)
    except Exception as exc:  # any parse failure of a county file means "cannot open"
        raise CannotOpen(f"文件内容已损坏，无法打开（{type(exc).__name__}）") from None
    wb.template = False  # an .xltx/.xltm opened here is saved as a plain workbook
    return wb


def _cell_value(value: Any) -> tuple[Any, str | None]:
    """A calamine value -> (openpyxl value, number format or None)."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value), None
        return (int(value) if value.is_integer() and abs(value) < 2**53 else value), None
    if isinstance(value, dt.datetime):
        return value, "yyyy-mm-dd hh:mm:ss"
    if isinstance(value, dt.date):
        return value, "yyyy-mm-dd"
    if isinstance(value, dt.time):
        return value, "hh:mm:ss"
    if isinstance(value, dt.timedelta):
        return value, "[h]:mm:ss"
    return value, None


_BAD_TITLE = re.compile(r"[\[\]:*?/\\]")


@dataclass
class _SourceSheet:
    """One sheet of an .xls/.ods file as python-calamine reads it (values only)."""

    name: str
    state: SheetState
    rows: list[list[Any]]
    merges: list[safety.Area]


SheetState = Literal["visible", "hidden", "veryHidden"]


def _state(visible: Any) -> SheetState:
    if visible == calamine.SheetVisibleEnum.Hidden:
        return "hidden"
    if visible == calamine.SheetVisibleEnum.VeryHidden:
        return "veryHidden"
    return "visible"


def _read_source(data: bytes) -> list[_SourceSheet]:
    """Every sheet of an .xls/.ods file, within the cell limit; raises CannotOpen."""
    try:
        source = calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except calamine.PasswordError:
        raise CannotOpen("文件已加密（设置了打开密码），无法打开") from None
    except Exception as exc:
        raise CannotOpen(f"文件内容已损坏或已加密，无法打开（{type(exc).__name__}）") from None
    sheets: list[_SourceSheet] = []
    cells = 0
    with source:
        for meta in source.sheets_metadata:
            state = _state(meta.visible)
            if meta.typ != calamine.SheetTypeEnum.WorkSheet:
                sheets.append(_SourceSheet(meta.name, state, [], []))
                continue
            try:
                sheet = source.get_sheet_by_name(meta.name)
                end = sheet.end
                if end is not None:
                    cells += (end[0] + 1) * (end[1] + 1)
                if cells > MAX_CELLS:
                    raise CannotOpen("工作表过大（单元格过多），未生成标注副本")
                rows = sheet.to_python(skip_empty_area=False)
                merges = list(sheet.merged_cell_ranges or [])
            except CannotOpen:
                raise
            except Exception as exc:
                raise CannotOpen(
                    f"工作表“{meta.name}”无法读取（{type(exc).__name__}），未生成标注副本"
                ) from None
            sheets.append(_SourceSheet(meta.name, state, rows, merges))
    if not sheets:
        raise CannotOpen("文件中没有工作表")
    return sheets


def _rebuild(data: bytes, ret: Return) -> tuple[Workbook, dict[str, str], bool]:
    """Values of an .xls/.ods file at the same sheet names and cell positions, in a new workbook.

    When the form is known the copy is built on its generated template, so merges, borders,
    widths, print setup, protection and dropdowns are the template's; otherwise the values go
    into plain sheets. Returns the workbook, a map original sheet name -> sheet title used (the
    same unless the name is not allowed in .xlsx), and whether the template was used."""
    sheets = _read_source(data)
    template = _template_workbook(ret)
    if template is not None:
        wb, main = template
        return wb, _onto_template(wb, main, sheets, _layout_widths(ret.form_id)), True
    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    titles: dict[str, str] = {}
    widths = _layout_widths(ret.form_id)
    for src in sheets:
        ws = wb.create_sheet(_free_title(wb, src.name))
        titles[src.name] = ws.title
        ws.sheet_state = src.state
        _plain_sheet(ws, src, widths)
    return wb, titles, False


def _write_value(ws: Worksheet, row: int, col: int, raw: Any) -> None:
    value, number_format = _cell_value(raw)
    cell = ws.cell(row=row, column=col)
    if isinstance(value, str):
        _set_text(cell, value)
    else:
        cell.value = value
    if number_format and cell.number_format == "General":
        cell.number_format = number_format


def _plain_sheet(ws: Worksheet, src: _SourceSheet, widths: list[float]) -> None:
    """A sheet rebuilt from values alone: the cells, the merges, the form's column widths."""
    for r, row in enumerate(src.rows, start=1):
        for c, raw in enumerate(row, start=1):
            if raw == "" or raw is None:
                continue
            _write_value(ws, r, c, raw)
    for (r0, c0), (r1, c1) in src.merges:
        if (r0, c0) != (r1, c1):
            ws.merge_cells(start_row=r0 + 1, start_column=c0 + 1, end_row=r1 + 1, end_column=c1 + 1)
    used = max((len(row) for row in src.rows), default=0)
    for c in range(1, max(used, len(widths)) + 1):
        width = widths[c - 1] if c <= len(widths) else 14
        ws.column_dimensions[get_column_letter(c)].width = width


# --- rebuilding on the template -----------------------------------------------------------------


def _template_workbook(ret: Return) -> tuple[Workbook, str] | None:
    """The generated template of the return's form (with its unit and period when known),
    loaded with openpyxl, and the title of the form's sheet; None when the form is unknown."""
    if not ret.form_id:
        return None
    try:
        form = load_forms().get(ret.form_id)
        if form is None:
            return None
        unit = (unit_by_code(ret.unit_code) if ret.unit_code else None) or (
            unit_by_name(ret.unit_name) if ret.unit_name else None
        )
        period = ret.period
        if period:
            parse_period(period)
        with tempfile.TemporaryDirectory(prefix="fz-annotate-") as tmp:
            path = Path(tmp) / "template.xlsx"
            write_template(form, path, unit=unit, period=period or None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wb = openpyxl.load_workbook(path)
    except (DefinitionError, ValueError, OSError):
        return None  # no template to build on: the copy is rebuilt from values alone
    return wb, form.sheet_name


def _labels(ws: Worksheet) -> dict[tuple[int, int], str]:
    """The template's fixed texts (locked cells) by position: what a copy of the sheet shows."""
    return {
        (cell.row, cell.column): cell.value.strip()
        for cell in ws._cells.values()
        if isinstance(cell.value, str) and cell.value.strip() and cell.protection.locked
    }


def _is_copy_of(rows: list[list[Any]], labels: dict[tuple[int, int], str]) -> bool:
    """True when a sheet shows at least half of the form sheet's texts at their places (a copied
    inspection, or the form's sheet renamed)."""
    hits = 0
    for (r, c), label in labels.items():
        if r <= len(rows) and c <= len(rows[r - 1]):
            value = rows[r - 1][c - 1]
            hits += isinstance(value, str) and value.strip() == label
    return bool(labels) and hits >= max(3, len(labels) // 2)


def _clone_sheet(wb: Workbook, source: Worksheet, title: str) -> Worksheet:
    """A copy of a template sheet with everything openpyxl's copy_worksheet leaves out."""
    ws = wb.copy_worksheet(source)
    ws.title = title
    ws.protection = deepcopy(source.protection)
    ws.data_validations = deepcopy(source.data_validations)
    ws.conditional_formatting = deepcopy(source.conditional_formatting)
    ws.views = deepcopy(source.views)
    ws.HeaderFooter = deepcopy(source.HeaderFooter)
    ws.print_title_rows = source.print_title_rows
    ws.print_title_cols = source.print_title_cols
    area = source.print_area
    if area:
        ws.print_area = area.split("!")[-1]
    return ws


def _onto_template(
    wb: Workbook, main: str, sheets: list[_SourceSheet], widths: list[float]
) -> dict[str, str]:
    """Lay the file's sheets onto the template workbook `wb`: a sheet of a template sheet's name
    takes that sheet, a copy of the form's sheet (extra inspections, a renamed sheet) takes a
    clone of it, anything else a plain sheet; template sheets the file lacks are dropped, and
    the sheets are put in the file's order. Returns original name -> title."""
    template_titles = list(wb.sheetnames)
    form_sheet = wb[main] if main in template_titles else None
    labels = _labels(form_sheet) if isinstance(form_sheet, Worksheet) else {}
    titles: dict[str, str] = {}
    placed: list[tuple[_SourceSheet, Worksheet, bool]] = []
    for src in sheets:
        ws: Any
        if src.name in template_titles:
            ws, on_template = wb[src.name], True
        elif isinstance(form_sheet, Worksheet) and _is_copy_of(src.rows, labels):
            ws, on_template = _clone_sheet(wb, form_sheet, _free_title(wb, src.name)), True
        else:
            ws, on_template = wb.create_sheet(_free_title(wb, src.name)), False
            _plain_sheet(ws, src, widths)
        if not isinstance(ws, Worksheet):  # a chart sheet of the template's name: start afresh
            wb.remove(ws)
            ws, on_template = wb.create_sheet(_free_title(wb, src.name)), False
            _plain_sheet(ws, src, widths)
        ws.sheet_state = src.state
        titles[src.name] = ws.title
        placed.append((src, ws, on_template))
    names = {src.name for src in sheets}
    for title in template_titles:
        if title not in names:
            wb.remove(wb[title])
    for i, (_, ws, _) in enumerate(placed):
        wb.move_sheet(ws, i - wb.index(ws))
    for src, ws, on_template in placed:
        if on_template:
            _fill_values(ws, src.rows)
    return titles


def _fill_values(ws: Worksheet, rows: list[list[Any]]) -> None:
    """Make every cell's value the file's, keeping the template's formats: a value the template
    already has stays as it is, a cell the file left empty is emptied, and a merge that would
    hide one of the file's values is undone."""
    hidden: dict[tuple[int, int], CellRange] = {}
    for rng in ws.merged_cells.ranges:
        for pos in rng.cells:
            if pos != (rng.min_row, rng.min_col):
                hidden[pos] = rng
    values = {
        (r, c): raw
        for r, row in enumerate(rows, start=1)
        for c, raw in enumerate(row, start=1)
        if raw != "" and raw is not None
    }
    shown = {(cell.row, cell.column) for cell in ws._cells.values() if cell.value is not None}
    for pos in sorted(shown | set(values)):
        raw = values.get(pos)
        if raw is None:
            if pos not in hidden:
                ws.cell(row=pos[0], column=pos[1]).value = None
            continue
        rng = hidden.get(pos)
        if rng is not None:
            _unmerge(ws, rng)
            for other in rng.cells:
                hidden.pop(other, None)
        current = ws.cell(row=pos[0], column=pos[1]).value
        value, _ = _cell_value(raw)
        if type(current) is type(value) and current == value:
            continue
        _write_value(ws, pos[0], pos[1], raw)


def _unmerge(ws: Worksheet, rng: CellRange) -> None:
    ws.merged_cells.remove(rng)
    for pos in rng.cells:
        if isinstance(ws._cells.get(pos), MergedCell):
            del ws._cells[pos]


def _free_title(wb: Workbook, name: str) -> str:
    title = _BAD_TITLE.sub("_", name)[:31] or "Sheet"
    base, n = title, 1
    while title in wb.sheetnames:
        n += 1
        suffix = f"({n})"
        title = base[: 31 - len(suffix)] + suffix
    return title


def _layout_widths(form_id: str | None) -> list[float]:
    """Column widths of the form's template, so a rebuilt copy reads like the template."""
    if not form_id:
        return []
    try:
        form = load_forms().get(form_id)
    except DefinitionError:
        return []
    if isinstance(form, ChecklistForm):
        return [c.width for c in checklist_layout(form).columns]
    if isinstance(form, ProgressForm):
        return [c.width for c in progress_layout(form).columns]
    if form is not None:
        return [c.width for c in form.columns]
    return []


# --- marking ------------------------------------------------------------------------------------


def _set_text(cell: Any, text: object) -> None:
    """Write text that stays text: no formula even if it starts with '=', no illegal XML chars."""
    cell.value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", clip(text))
    cell.data_type = "s"


def _merged_anchor(ws: Worksheet, row: int, col: int) -> tuple[int, int]:
    for rng in ws.merged_cells.ranges:
        if rng.min_row <= row <= rng.max_row and rng.min_col <= col <= rng.max_col:
            return rng.min_row, rng.min_col
    return row, col


def _locate(
    wb: Workbook, titles: dict[str, str], issue: Issue
) -> tuple[str, list[tuple[int, int]]]:
    """(sheet title, cells) an issue points at, or ('', []) when it names no cell in the book."""
    title = titles.get(issue.sheet, issue.sheet)
    if not title or title not in wb.sheetnames or not issue.cell:
        return "", []
    ws = wb[title]
    if not isinstance(ws, Worksheet):
        return "", []
    try:
        min_col, min_row, max_col, max_row = range_boundaries(issue.cell.replace("$", "").upper())
    except (ValueError, TypeError):
        return "", []
    if None in (min_col, min_row, max_col, max_row):
        return "", []  # a whole row or column: listed, not painted
    assert min_col and min_row and max_col and max_row
    cells: list[tuple[int, int]] = []
    for r in range(min_row, max_row + 1):
        for c in range(min_col, max_col + 1):
            anchor = _merged_anchor(ws, r, c)
            if anchor not in cells:
                cells.append(anchor)
            if len(cells) >= MAX_RANGE_CELLS:
                return title, cells
    return title, cells


def _comment_text(issues: list[Issue]) -> str:
    lines = ["校验发现的问题："]
    for issue in sorted(issues, key=lambda i: _RANK.get(i.severity, 3)):
        lines.append(f"【{SEVERITY_LABELS.get(issue.severity, issue.severity)}】{issue.message}")
    return "\n".join(lines)


def _paint(ws: Worksheet, row: int, col: int, severity: str) -> None:
    rgb = _FILLS.get(severity)
    if rgb:
        ws.cell(row=row, column=col).fill = PatternFill("solid", fgColor=rgb, bgColor=rgb)


def _mark_cells(wb: Workbook, titles: dict[str, str], issues: list[Issue]) -> set[int]:
    """Paint and comment every cell the issues name; return the ids of issues marked."""
    marks: dict[tuple[str, int, int], _Mark] = {}
    marked: set[int] = set()
    for issue in issues:
        title, cells = _locate(wb, titles, issue)
        if not cells:
            continue
        marked.add(id(issue))
        first = cells[0]
        key = (title, *first)
        mark = marks.setdefault(key, _Mark(title, first[0], first[1]))
        mark.issues.append(issue)
        for extra in cells[1:]:
            mark.extra.append(extra)
    for mark in marks.values():
        ws = wb[mark.sheet]
        assert isinstance(ws, Worksheet)
        worst = min((i.severity for i in mark.issues), key=lambda s: _RANK.get(s, 3))
        for r, c in [(mark.row, mark.col), *mark.extra]:
            _paint(ws, r, c, worst)
        cell = ws.cell(row=mark.row, column=mark.col)
        text = _comment_text(mark.issues)
        old = cell.comment
        if old is not None and old.author != AUTHOR and old.content:
            text += "\n\n原批注：" + old.content
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", clip(text))
        lines = sum(1 + len(line) // 22 for line in text.splitlines())
        cell.comment = Comment(text, AUTHOR, height=min(30 + 16 * lines, 600), width=300)
    return marked


def _strip_previous_annotation(wb: Workbook) -> None:
    """A county may send back our own annotated copy, corrected; drop the old marks first."""
    first = wb.worksheets[0] if wb.worksheets else None
    if first is None or first.title != ISSUES_SHEET or first["A1"].value != TITLE:
        return
    wb.remove(first)
    for ws in wb.worksheets:
        for cell in list(ws._cells.values()):
            if cell.comment is not None and cell.comment.author == AUTHOR:
                content = cell.comment.content or ""
                _, sep, original = content.partition("\n\n原批注：")
                cell.comment = Comment(original, "") if sep and original else None
            fill = cell.fill
            if fill is not None and fill.fill_type == "solid":
                rgb = getattr(fill.fgColor, "rgb", None)
                if rgb in (ERROR_RGB, WARNING_RGB):
                    cell.fill = PatternFill(fill_type=None)


# --- the 问题清单 sheet -----------------------------------------------------------------------------


def _issues_sheet(
    wb: Workbook,
    ret: Return,
    titles: dict[str, str],
    marked: set[int],
    rebuilt_from: str,
    on_template: bool = False,
) -> Worksheet:
    """Insert the first sheet: what the file is, what to do, and one row per issue.

    `rebuilt_from` is the original format ("xls", "ods") when the copy was rebuilt from values,
    `on_template` whether it was rebuilt on the form's template."""
    name = ISSUES_SHEET if ISSUES_SHEET not in wb.sheetnames else "问题清单（校验）"
    ws = wb.create_sheet(name, 0)
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    top = Alignment(vertical="top")

    _set_text(ws["A1"], TITLE)
    ws["A1"].font = Font(bold=True, size=14)
    errors = len(ret.errors)
    others = len(ret.issues) - errors
    summary = f"本文件有 {errors} 个错误" + (f"、{others} 个警告或提示" if others else "")
    how = (
        "请逐条修改下表所列单元格（已在各工作表中标红，鼠标指向单元格可查看批注；"
        "标黄为警告，请核实），修改后重新报送。本工作表仅作说明，报送时可删除。"
    )
    if rebuilt_from and on_template:
        how += (
            f"原文件为 .{rebuilt_from} 格式，本副本按标准模板重建，填入了原文件各单元格的内容"
            "（公式只保留计算结果），可在本副本或原文件中修改后重新报送。"
        )
    elif rebuilt_from:
        how += (
            f"原文件为 .{rebuilt_from} 格式，"
            "本副本只保留了单元格内容以便标注，请在原文件中修改后重新报送。"
        )
    info = [
        ("文件", ret.rel),
        ("表单", form_name(ret.form_id) or "未能识别"),
        ("单位", unit_text(ret) or "未能识别"),
        ("期间", ret.period or "未能识别"),
        ("结论", f"退回修改：{summary}。"),
        ("修改要求", how),
    ]
    merged_width = sum(width for _, width in ISSUE_COLUMNS[1:])  # B:H, where the values sit
    for i, (label, value) in enumerate(info, start=2):
        _set_text(ws.cell(row=i, column=1), label)
        ws.cell(row=i, column=1).font = bold
        ws.cell(row=i, column=1).alignment = top
        _set_text(ws.cell(row=i, column=2), value)
        ws.cell(row=i, column=2).alignment = wrap
        ws.merge_cells(start_row=i, start_column=2, end_row=i, end_column=8)
        _fit_row(ws, i, [(str(ws.cell(row=i, column=2).value), merged_width)])

    header_row = len(info) + 3
    for c, (title, width) in enumerate(ISSUE_COLUMNS, start=1):
        cell = ws.cell(row=header_row, column=c)
        _set_text(cell, title)
        cell.font = bold
        cell.fill = PatternFill("solid", fgColor="FFD9E1F2", bgColor="FFD9E1F2")
        ws.column_dimensions[get_column_letter(c)].width = width
    issues = sorted(ret.issues, key=lambda i: _RANK.get(i.severity, 3))
    row = header_row
    for n, issue in enumerate(issues, start=1):
        row += 1
        ws.cell(row=row, column=1).value = n
        _set_text(ws.cell(row=row, column=2), issue.sheet)
        cell = ws.cell(row=row, column=3)
        _set_text(cell, issue.cell)
        title = titles.get(issue.sheet, issue.sheet)
        if id(issue) in marked:
            first = issue.cell.replace("$", "").split(":")[0].upper()
            quoted = title.replace("'", "''")
            cell.hyperlink = Hyperlink(ref=cell.coordinate, location=f"'{quoted}'!{first}")
            cell.font = Font(color="FF0563C1", underline="single")
        _set_text(ws.cell(row=row, column=4), SEVERITY_LABELS.get(issue.severity, issue.severity))
        _set_text(ws.cell(row=row, column=5), issue.value)
        _set_text(ws.cell(row=row, column=6), issue.message)
        action = ACTIONS.get(issue.severity, "")
        if issue.severity == "error" and issue.cell and id(issue) not in marked:
            action += "（该单元格在本副本中找不到，请对照原文件）"
        _set_text(ws.cell(row=row, column=7), action)
        _set_text(ws.cell(row=row, column=8), issue.rule)
        rgb = _FILLS.get(issue.severity)
        if rgb:
            ws.cell(row=row, column=4).fill = PatternFill("solid", fgColor=rgb, bgColor=rgb)
        for c in range(1, 9):
            ws.cell(row=row, column=c).alignment = wrap if c in _WRAPPED_COLUMNS else top
        _fit_row(
            ws,
            row,
            [
                (str(ws.cell(row=row, column=c).value or ""), ISSUE_COLUMNS[c - 1][1])
                for c in _WRAPPED_COLUMNS
            ],
        )
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    # printed (or sent as PDF), the list fits the page width, landscape
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.auto_filter.ref = f"A{header_row}:H{max(row, header_row + 1)}"
    for sheet in wb.worksheets:
        sheet.sheet_view.tabSelected = False
    ws.sheet_view.tabSelected = True
    wb.active = 0
    return ws


def _fit_row(ws: Worksheet, row: int, cells: list[tuple[str, float]]) -> None:
    """Rows of wrapped text get the height they need: Excel and LibreOffice keep the stored one."""
    height = wrapped_height(cells)
    if height is not None:
        ws.row_dimensions[row].height = height


# --- saving -------------------------------------------------------------------------------------


def _stamp(ret: Return) -> dt.datetime:
    stamp = ret.received or ret.mtime or FALLBACK_CREATED
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp.replace(microsecond=0)


def _stable_bytes(wb: Workbook, stamp: dt.datetime) -> bytes:
    """Serialise without the clock: fixed document times and zip entry times."""
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.lastModifiedBy = AUTHOR
    raw = io.BytesIO()
    # ExcelWriter directly: openpyxl's save() would stamp the current time into core.xml
    archive = zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    ExcelWriter(wb, archive).save()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=_STABLE_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


# --- public -------------------------------------------------------------------------------------


def annotate(ret: Return, out_dir: Path, *, dest: Path | None = None) -> AnnotatedCopy:
    """Write the annotated copy of `ret`; say where it went, or why there is none.

    Never raises for a bad county file; raises OSError only when OUT cannot be written.
    """
    target = dest or annotated_path(ret.rel, out_dir)
    try:
        data, fmt = _checked_bytes(ret)
        rebuilt = fmt not in ("xlsx", "xlsm")
        on_template = False
        if rebuilt:
            wb, titles, on_template = _rebuild(data, ret)
        else:
            wb = _load_original(data)
            _strip_previous_annotation(wb)
            titles = {name: name for name in wb.sheetnames}
        marked = _mark_cells(wb, titles, ret.issues)
        _issues_sheet(wb, ret, titles, marked, fmt if rebuilt else "", on_template)
        data = _stable_bytes(wb, _stamp(ret))
    except CannotOpen as exc:
        return AnnotatedCopy(None, str(exc))
    except Exception as exc:  # a county file openpyxl chokes on late (odd styles, broken parts)
        return AnnotatedCopy(None, f"文件内容异常，未能生成标注副本（{type(exc).__name__}）")
    try:
        atomic_write_bytes(target, data)
    except OSError as exc:
        if exc.errno not in _NAME_ERRORS:
            raise  # OUT itself cannot be written (disk full, no permission): stop
        # a name only a .zip could hold (a file and a folder of one name, a path too long)
        return AnnotatedCopy(None, f"标注副本无法按此文件名保存（{os_error_text(exc)}）")
    return AnnotatedCopy(target)


_NAME_ERRORS = frozenset(
    {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EINVAL}
)


def write_annotated_copy(ret: Return, out_dir: Path, *, dest: Path | None = None) -> Path | None:
    """The annotated copy of one rejected return under out_dir/退回修改/, or None if the file
    cannot be opened (the reason is in `annotate(...)` and in the report)."""
    return annotate(ret, out_dir, dest=dest).path


def _copy_targets(rejected: list[Return], staging: Path) -> dict[str, Path]:
    """Where each rejected return's copy goes (by Return.rel), every one its own path, however
    the file system compares names (case-insensitively on Windows and macOS) and whatever
    names a .zip held: a copy of an .xlsx keeps its name first ("a.xls" beside "a.xlsx" is
    a.xls.xlsx), a file gives way to a folder of its name ("a.xlsx" beside "a.xlsx/b.xlsx"),
    names made alike by _fit ("a:b" and "a_b") are told apart, all in the order of the
    returns' paths, so the same inbox always gives the same names."""
    wanted = {r.rel: annotated_path(r.rel, staging) for r in rejected}
    folders = {str(p).casefold() for t in wanted.values() for p in t.parents}
    order = sorted(rejected, key=lambda r: (not r.rel.lower().endswith(".xlsx"), r.rel))
    taken: set[str] = set()
    out: dict[str, Path] = {}
    for ret in order:
        target = wanted[ret.rel]
        if str(target).casefold() in taken and not ret.rel.lower().endswith(".xlsx"):
            target = target.with_name(_fit(PurePosixPath(ret.rel).name + ".xlsx"))
        while str(target).casefold() in taken or str(target).casefold() in folders:
            target = target.with_name(_fit(f"{target.stem}（另一个）{target.suffix}"))
        taken.add(str(target).casefold())
        out[ret.rel] = target
    return out


def _annotate_job(job: tuple[Return, Path, Path]) -> AnnotatedCopy:
    ret, out_dir, target = job
    return annotate(ret, out_dir, dest=target)


def _slim(ret: Return) -> Return:
    """What annotation needs of a return (no parsed data), cheap to send to a worker process."""
    return dataclasses.replace(ret, ledger=None, inspections=[], progress={}, progress_cells={})


def write_annotated_copies(
    returns: Iterable[Return],
    out_dir: Path,
    *,
    jobs: int = 1,
    replaced: Mapping[str, str] | None = None,
) -> dict[str, AnnotatedCopy]:
    """Annotated copies of every rejected return, replacing OUT/退回修改 as a whole (so a copy
    of a file that has since been accepted does not linger). Keyed by `Return.rel`.

    `replaced`: rejected returns the unit has since replaced by a corrected one (rel -> the
    rel of that one): nothing to send back, so no copy, only the reason.
    `jobs` > 1 annotates in that many worker processes; the copies are the same bytes."""
    replaced = replaced or {}
    rejected = [r for r in sorted_returns(returns) if r.status == "rejected"]
    skipped = {
        r.rel: AnnotatedCopy(None, f"已被 {replaced[r.rel]} 替代，不需退回")
        for r in rejected
        if r.rel in replaced
    }
    rejected = [r for r in rejected if r.rel not in skipped]
    final = out_dir / ANNOTATED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = temp_dir(out_dir, prefix=".退回修改-")
    results: dict[str, AnnotatedCopy] = {}
    try:
        targets = _copy_targets(rejected, staging)
        work = [(_slim(ret), staging, targets[ret.rel]) for ret in rejected]
        if jobs > 1 and len(work) > 1:
            with worker_pool(jobs) as pool:
                done = list(pool.map(_annotate_job, work))
        else:
            done = [_annotate_job(job) for job in work]
        results = {job[0].rel: copy for job, copy in zip(work, done, strict=True)}
        # swap the new folder in; the old one is moved aside first and then deleted
        holder = temp_dir(out_dir, prefix=".退回修改-old-")
        try:
            if final.exists() or final.is_symlink():
                os.replace(final, holder / ANNOTATED_DIR)
            staged = staging / ANNOTATED_DIR
            if staged.exists():
                os.replace(staged, final)
        finally:
            shutil.rmtree(holder, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return skipped | {
        rel: AnnotatedCopy(final / c.path.relative_to(staging / ANNOTATED_DIR), c.reason)
        if c.path is not None
        else c
        for rel, c in results.items()
    }
