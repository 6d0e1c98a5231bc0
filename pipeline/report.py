"""The validation report, rendered three ways: a workbook, a JSON document and a screen summary.

In: the list of `Return`s from validation (and, optionally, where their annotated copies went).
The workbook (one row per issue in 问题清单, one row per file in 文件汇总) is written with
xlsxwriter to a temporary file and renamed into place; its bytes depend only on the input (no
clock is read) and every piece of county text is written as a string, never as a formula.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter
from rich.console import Console
from rich.table import Table
from rich.text import Text
from xlsxwriter.worksheet import Worksheet

from pipeline.console import safe_text
from pipeline.forms import DefinitionError, load_forms
from pipeline.fsutil import atomic_write
from pipeline.model import Return, mtime_shown, received_source_name

REPORT_NAME = "校验报告.xlsx"
ANNOTATED_DIR = "退回修改"  # the folder of annotated copies in OUT (written by pipeline.annotate)
ISSUES_SHEET = "问题清单"
FILES_SHEET = "文件汇总"

SEVERITY_LABELS = {"error": "错误", "warning": "警告", "info": "提示"}
STATUS_LABELS = {"accepted": "已接收", "rejected": "退回", "ignored": "忽略"}
IDENTIFIED_LABELS = {"metadata": "模板元数据", "labels": "表头文字"}

# Excel's limits: characters in a cell, rows in a sheet.
MAX_CELL_CHARS = 32767
MAX_ROWS = 1_048_576
# docProps/core.xml needs a creation time; when no return carries one, this fixed one is used.
FALLBACK_CREATED = dt.datetime(2023, 5, 1)


@dataclass(frozen=True)
class AnnotatedCopy:
    """Where the annotated copy of one rejected return went, or why there is none."""

    path: Path | None
    reason: str = ""


def form_name(form_id: str | None) -> str:
    """'annex4_progress' -> '附件4 进展情况调度表'; unknown ids are shown as they are."""
    if not form_id:
        return ""
    try:
        form = load_forms().get(form_id)
    except DefinitionError:
        form = None
    if form is None:
        return form_id
    if form.kind == "ledger":
        return form.short_name
    return f"{form.annex} {form.short_name}"


def unit_text(ret: Return) -> str:
    """The unit as a clerk names it (name, else the code read from the file)."""
    return ret.unit_name or ret.unit_code or ""


def issue_location(sheet: str, cell: str) -> str:
    """'附件4', 'C5' -> '附件4!C5' (how a clerk finds the cell)."""
    if sheet and cell:
        return f"{sheet}!{cell}"
    return sheet or cell


def clip(text: object) -> str:
    """Text fit for one Excel cell: encodable, and no longer than Excel allows."""
    out = safe_text(text)
    if len(out) > MAX_CELL_CHARS:
        out = out[: MAX_CELL_CHARS - 1] + "…"
    return out


def sorted_returns(returns: Iterable[Return]) -> list[Return]:
    """Returns in a stable order (by their path in the inbox), so outputs never depend on timing."""
    return sorted(returns, key=lambda r: (r.rel, str(r.path)))


def _naive(value: dt.datetime) -> dt.datetime:
    """Excel has no time zones: show local wall-clock time."""
    if value.tzinfo is not None:
        return value.astimezone().replace(tzinfo=None)
    return value


def _mtime_shown(ret: Return) -> dt.datetime | None:
    return ret.mtime if mtime_shown(ret.received_source, ret.status) else None


def _created(returns: list[Return]) -> dt.datetime:
    stamps = [_naive(t) for r in returns for t in (r.received, _mtime_shown(r)) if t is not None]
    return max(stamps) if stamps else FALLBACK_CREATED


def _copy_text(ret: Return, copies: Mapping[str, AnnotatedCopy] | None, out_dir: Path) -> str:
    if ret.status != "rejected" or copies is None:
        return ""
    copy = copies.get(ret.rel)
    if copy is None:
        return ""
    if copy.path is None:
        return f"未生成：{copy.reason}" if copy.reason else "未生成"
    try:
        return copy.path.relative_to(out_dir).as_posix()
    except ValueError:
        return str(copy.path)


LINE_HEIGHT = 15  # points per line of 11pt text
MAX_LINES = 20


def _text_width(text: str) -> int:
    """Width in Excel column units: a CJK or full-width character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrapped_height(cells: Iterable[tuple[str, float]]) -> float | None:
    """Points a row needs to show its wrapped texts, each (text, column width), in full; None
    when one line is enough. Excel and LibreOffice do not grow rows when opening a file, so
    every writer of a wrapped sheet sets the heights itself."""
    lines = 1
    for text, width in cells:
        needed = sum(
            max(1, math.ceil(_text_width(part) / max(width - 1, 1)))
            for part in (text.splitlines() or [""])
        )
        lines = max(lines, needed)
    return LINE_HEIGHT * min(lines, MAX_LINES) if lines > 1 else None


def fit_row(ws: Worksheet, row: int, cells: Iterable[tuple[str, float]]) -> None:
    """Give a row (xlsxwriter) the height its wrapped texts need."""
    height = wrapped_height(cells)
    if height is not None:
        ws.set_row(row, height)


class _Writer:
    """Cell formats and string-safe write helpers for one report workbook."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.header = book.add_format(
            {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "valign": "top"}
        )
        self.text = book.add_format({"valign": "top"})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        self.count = book.add_format({"num_format": "0", "valign": "top"})
        self.size = book.add_format({"num_format": "#,##0", "valign": "top"})
        self.stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss", "valign": "top"})
        self.severity = {
            "error": book.add_format(
                {"font_color": "#9C0006", "bg_color": "#FFC7CE", "valign": "top"}
            ),
            "warning": book.add_format(
                {"font_color": "#9C5700", "bg_color": "#FFEB9C", "valign": "top"}
            ),
            "info": book.add_format({"valign": "top"}),
        }
        self.status = {
            "rejected": book.add_format(
                {"font_color": "#9C0006", "bg_color": "#FFC7CE", "valign": "top"}
            ),
            "accepted": book.add_format(
                {"font_color": "#006100", "bg_color": "#C6EFCE", "valign": "top"}
            ),
            "ignored": book.add_format({"font_color": "#7F7F7F", "valign": "top"}),
        }

    def table_header(self, ws: Worksheet, columns: list[tuple[str, float]]) -> None:
        for col, (title, width) in enumerate(columns):
            ws.write_string(0, col, title, self.header)
            ws.set_column(col, col, width)
        ws.freeze_panes(1, 0)
        # printed, a sheet is landscape A4, as wide as the page, the header on every page
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(0)

    def string(self, ws: Worksheet, row: int, col: int, value: object, fmt: Any = None) -> None:
        # write_string only: text a county typed ("=1+1", "http://…") must never turn into
        # a formula or a link.
        ws.write_string(row, col, clip(value), fmt or self.text)


_ISSUE_COLUMNS: list[tuple[str, float]] = [
    ("文件", 44),
    ("工作表", 14),
    ("单元格", 9),
    ("规则代码", 26),
    ("严重程度", 9),
    ("填写值", 18),
    ("问题说明", 60),
    ("表单", 22),
    ("单位", 12),
    ("期间", 10),
]

_FILE_COLUMNS: list[tuple[str, float]] = [
    ("文件", 44),
    ("表单", 22),
    ("单位", 12),
    ("期间", 10),
    ("识别方式", 12),
    ("状态", 8),
    ("问题数", 8),
    ("其中错误", 9),
    ("大小（字节）", 12),
    ("修改时间", 19),
    ("收到时间", 19),
    ("收到时间来源", 13),
    ("SHA-256", 66),
    ("退回修改副本", 40),
    ("说明", 40),
]


def _write_issues(ws: Worksheet, w: _Writer, returns: list[Return]) -> None:
    w.table_header(ws, _ISSUE_COLUMNS)
    row = 0
    limit = MAX_ROWS - 2  # leave room for the truncation note
    total = sum(len(r.issues) for r in returns)
    for ret in returns:
        form, unit, period = form_name(ret.form_id), unit_text(ret), ret.period or ""
        for issue in ret.issues:
            if row >= limit:
                break
            row += 1
            w.string(ws, row, 0, issue.file or ret.rel)
            w.string(ws, row, 1, issue.sheet)
            w.string(ws, row, 2, issue.cell)
            w.string(ws, row, 3, issue.rule)
            w.string(
                ws,
                row,
                4,
                SEVERITY_LABELS.get(issue.severity, issue.severity),
                w.severity.get(issue.severity),
            )
            w.string(ws, row, 5, issue.value, w.wrap)
            w.string(ws, row, 6, issue.message, w.wrap)
            w.string(ws, row, 7, form)
            w.string(ws, row, 8, unit)
            w.string(ws, row, 9, period)
            fit_row(
                ws,
                row,
                [
                    (clip(issue.value), _ISSUE_COLUMNS[5][1]),
                    (clip(issue.message), _ISSUE_COLUMNS[6][1]),
                ],
            )
    if total > row:
        row += 1
        w.string(ws, row, 6, f"问题过多，仅列出前 {row - 1} 条（共 {total} 条）。", w.wrap)
    ws.autofilter(0, 0, max(row, 1), len(_ISSUE_COLUMNS) - 1)


def _write_files(
    ws: Worksheet,
    w: _Writer,
    returns: list[Return],
    copies: Mapping[str, AnnotatedCopy] | None,
    out_dir: Path,
) -> None:
    w.table_header(ws, _FILE_COLUMNS)
    for row, ret in enumerate(returns[: MAX_ROWS - 1], start=1):
        w.string(ws, row, 0, ret.rel)
        w.string(ws, row, 1, form_name(ret.form_id))
        w.string(ws, row, 2, unit_text(ret))
        w.string(ws, row, 3, ret.period or "")
        identified = IDENTIFIED_LABELS.get(ret.identified_by, "")
        if not identified and ret.status != "ignored":
            identified = "未能识别"
        w.string(ws, row, 4, identified)
        w.string(ws, row, 5, STATUS_LABELS.get(ret.status, ret.status), w.status.get(ret.status))
        ws.write_number(row, 6, len(ret.issues), w.count)
        ws.write_number(row, 7, len(ret.errors), w.count)
        ws.write_number(row, 8, ret.size, w.size)
        for col, stamp in ((9, _mtime_shown(ret)), (10, ret.received)):
            if stamp is not None:
                ws.write_datetime(row, col, _naive(stamp), w.stamp)
        w.string(ws, row, 11, received_source_name(ret.received_source, unknown=""))
        w.string(ws, row, 12, ret.sha256)
        w.string(ws, row, 13, _copy_text(ret, copies, out_dir), w.wrap)
        w.string(ws, row, 14, ret.ignore_reason, w.wrap)
        fit_row(
            ws,
            row,
            [
                (_copy_text(ret, copies, out_dir), _FILE_COLUMNS[13][1]),
                (ret.ignore_reason, _FILE_COLUMNS[14][1]),
            ],
        )
    ws.autofilter(0, 0, max(len(returns), 1), len(_FILE_COLUMNS) - 1)


def write_validation_report(
    returns: Iterable[Return],
    path: Path,
    *,
    copies: Mapping[str, AnnotatedCopy] | None = None,
) -> Path:
    """Write the validation report to `path` (atomically) and return `path`.

    `copies` maps a rejected return's `rel` to its annotated copy (or why there is none); the
    文件汇总 sheet shows it relative to the report's folder.
    """
    ordered = sorted_returns(returns)

    def write(tmp: Path) -> None:
        book = xlsxwriter.Workbook(
            str(tmp),
            {
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "remove_timezone": True,
            },
        )
        book.set_properties(
            {
                "title": "报表校验报告",
                "subject": "福州市建设系统重大事故隐患专项排查整治2023行动",
                "author": "福州市城乡建设局",
                "created": _created(ordered),
            }
        )
        w = _Writer(book)
        _write_issues(book.add_worksheet(ISSUES_SHEET), w, ordered)
        _write_files(book.add_worksheet(FILES_SHEET), w, ordered, copies, path.parent)
        book.close()

    return atomic_write(path, write, prefix=".校验报告-")


# --- JSON and screen ----------------------------------------------------------------------------


def validation_json(returns: Iterable[Return]) -> dict[str, Any]:
    """The `--json` document of `validate` (DESIGN §10). Unknown form/unit/period are ""."""
    return {
        "files": [
            {
                "file": safe_text(r.rel),
                "form": r.form_id or "",
                "unit": unit_text(r),
                "period": r.period or "",
                "status": r.status,
                "issues": [i.to_json() for i in r.issues],
            }
            for r in sorted_returns(returns)
        ]
    }


SHOWN_ISSUES = 5  # per rejected file on screen; the report has them all


def print_summary(
    console: Console,
    returns: Iterable[Return],
    *,
    report: Path,
    copies: Mapping[str, AnnotatedCopy],
    annotated_dir: Path,
) -> None:
    """The clerk's screen: one row per file, the first problems of each rejected file, and
    where the report and the annotated copies are."""
    ordered = sorted_returns(returns)
    table = Table(title="报表校验结果", title_justify="left", show_lines=False)
    table.add_column("文件", overflow="fold")  # the whole name: the clerk must find the file
    table.add_column("表单")
    table.add_column("单位")
    table.add_column("期间", no_wrap=True)
    table.add_column("状态", no_wrap=True)
    table.add_column("问题数", justify="right", no_wrap=True)
    styles = {"accepted": "green", "rejected": "bold red", "ignored": "dim"}
    for r in ordered:
        table.add_row(
            Text(safe_text(r.rel)),
            Text(form_name(r.form_id) or ("—" if r.status == "ignored" else "未能识别")),
            Text(unit_text(r)),
            Text(r.period or ""),
            Text(STATUS_LABELS.get(r.status, r.status), style=styles.get(r.status, "")),
            Text(str(len(r.issues)) if r.status != "ignored" else ""),
        )
    console.print(table)

    rejected = [r for r in ordered if r.status == "rejected"]
    if rejected:
        console.print(Text(f"退回修改的文件（{len(rejected)} 个）：", style="bold"))
    for r in rejected:
        issues = sorted(r.issues, key=lambda i: ("error", "warning", "info").index(i.severity))
        console.print(Text(f"  {safe_text(r.rel)}：{len(r.errors)} 个错误"))
        for issue in issues[:SHOWN_ISSUES]:
            where = issue_location(issue.sheet, issue.cell)
            line = f"    · {SEVERITY_LABELS.get(issue.severity, issue.severity)}"
            line += f" {where}：" if where else "："
            line += issue.message
            console.print(Text(safe_text(line)))
        if len(issues) > SHOWN_ISSUES:
            console.print(Text(f"    …… 另有 {len(issues) - SHOWN_ISSUES} 个问题，见校验报告"))

    console.print(Text(f"校验报告：{safe_text(report)}"))
    made = [c.path for c in copies.values() if c.path is not None]
    if made:
        console.print(
            Text(
                f"退回修改副本（{len(made)} 个，问题单元格已标红并加批注）：{safe_text(annotated_dir)}"
            )
        )
    for rel, copy in sorted(copies.items()):
        if copy.path is None:
            console.print(Text(f"  未生成副本：{safe_text(rel)}（{copy.reason}）"))
    counts = {s: sum(1 for r in ordered if r.status == s) for s in STATUS_LABELS}
    if counts["accepted"] + counts["rejected"] == 0:
        console.print(Text("收件箱中没有报表文件。", style="bold"))
    console.print(
        Text(
            f"合计 {len(ordered)} 个文件：已接收 {counts['accepted']} 个，"
            f"退回 {counts['rejected']} 个，忽略 {counts['ignored']} 个。"
        )
    )
