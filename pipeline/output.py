"""Output stage: the consolidated workbook (xlsxwriter), tidy CSV files and the JSON document.

`write_outputs(result, out_dir)` writes, for one Consolidation, the workbook the city emails
(调度表 first, in the seed's layout), the tidy CSVs (UTF-8 with BOM, formula-like text neutralised)
and the JSON document of DESIGN §10. Every file is written to a temporary name in `out_dir` and
renamed into place; the same inputs give the same bytes (the workbook's dates derive from the
period, never from the clock). County text is only ever written as a string cell.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import itertools
import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from pipeline.consolidate import (
    WAS_REJECTED,
    Anomaly,
    Consolidation,
    checklist_major_definition,
    fmt_decimal,
    json_value,
)
from pipeline.forms import (
    ProgressForm,
    checklist_forms,
    ledger_form,
    load_forms,
    period_end,
    period_label,
    progress_form,
)
from pipeline.fsutil import ForkedFiles, atomic_write
from pipeline.layout import a1, col_letter, progress_layout
from pipeline.messages import CATALOGUE, carried_groups
from pipeline.model import Return, mtime_shown, received_source_name
from pipeline.status import status_from_consolidation, write_status_sheet
from pipeline.zipwrite import parallel_parts

BODY_FONT = "宋体"
TITLE_FONT = "黑体"
BODY_SIZE = 10
SMALL_SIZE = 9
A4 = 9
COUNT_FORMAT = "0"
MONEY_FORMAT = "0.00##"
DATE_FORMAT = "yyyy-mm-dd"
LONG_DATE_FORMAT = 'yyyy"年"m"月"d"日"'
HEADER_FILL = "#F2F2F2"
CARRIED_FILL = "#D9D9D9"
FLAG_FILL = "#FFEB9C"
OVERDUE_FILL = "#FFC7CE"
REJECTED_FILL = "#FFC7CE"
LATE_FILL = "#FCE4D6"
GREY = "#595959"

SHEETS = (
    "调度表",
    "分县明细",
    "异常标记",
    "报送情况",
    "报送进度",
    "隐患台账汇总",
    "检查清单统计",
    "图表",
    "数据来源",
)
WORKBOOK_OPTIONS: dict[str, Any] = {
    # county text must never become a formula, a link or a number
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    "default_format_properties": {"font_name": BODY_FONT, "font_size": BODY_SIZE},
}
STATUS_NAMES = {
    "accepted": "已采用",
    "rejected": "退回修改",
    "missing": "未报送",
    "superseded": "已被替代",
}
SEVERITY_NAMES = {"error": "错误", "warning": "警告", "info": "提示"}
CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as plain dicts keyed by column name (as to_dict("records") gives them,
    built column-wise: much faster for big frames)."""
    names = list(df.columns)
    columns = [df.iloc[:, i].tolist() for i in range(len(names))]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


# --- names -----------------------------------------------------------------------------------


def output_stem(period: str) -> str:
    """'福州市重大事故隐患专项排查整治2023行动进展情况调度表_2023年7月'."""
    return f"{''.join(progress_form().title.split())}_{period_label(period)}"


def workbook_name(period: str) -> str:
    return f"{output_stem(period)}.xlsx"


def form_name(form_id: str) -> str:
    """How a clerk names a form: '附件4 进展情况调度表', '重大事故隐患台账'."""
    forms = load_forms()
    if form_id not in forms:
        return "（未识别）"
    form = forms[form_id]
    return form.short_name if form.annex == "台账" else f"{form.annex} {form.short_name}"


# --- the entry point -------------------------------------------------------------------------


# Below this many table cells (the CSVs' and the ledger sheet's) the outputs are written in one
# process; above it a forked helper renders the ledger sheet's rows, the CSVs and the JSON
# while this one writes the rest of the workbook (a fork costs milliseconds; a province's
# tables take seconds).
FORK_MIN_CELLS = 200_000


def write_outputs(result: Consolidation, out_dir: Path) -> dict[str, Path]:
    """Write the workbook, the CSVs and the JSON for `result` into `out_dir`; return their paths.

    Keys: workbook, csv (the 附件4 figures), ledger_csv, checklist_csv, anomalies_csv, json.
    Files are replaced one at a time in that order, each atomically. For big results a helper
    process, forked once the ledger sheet's shared strings are known, renders that sheet's rows,
    the CSVs and the JSON into temporary files meanwhile; this process still renames each file
    into place in turn (and renders whatever the helper did not deliver itself).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = output_stem(result.period)
    paths = {
        "workbook": out_dir / f"{stem}.xlsx",
        "csv": out_dir / f"{stem}_数据.csv",
        "ledger_csv": out_dir / f"{stem}_隐患台账.csv",
        "checklist_csv": out_dir / f"{stem}_检查清单.csv",
        "anomalies_csv": out_dir / f"{stem}_异常标记.csv",
        "json": out_dir / f"{stem}.json",
    }
    tables = functools.cache(lambda: csv_tables(result))

    def render_table(tmp: Path, key: str) -> None:
        _render_csv(tmp, tables()[key])

    jobs: dict[str, Callable[[Path], object]] = {
        key: functools.partial(render_table, key=key)
        for key in ("csv", "ledger_csv", "checklist_csv", "anomalies_csv")
    }
    jobs["json"] = lambda tmp: _render_json(tmp, result)
    lform = ledger_form()
    ledger_cells = 2 * (len(lform.columns) + 6) * len(result.ledger)  # in the CSV and the sheet
    cells = ledger_cells + 13 * len(result.checklist) + 15 * len(result.figures)
    with ForkedFiles(out_dir, jobs, fork=cells >= FORK_MIN_CELLS) as helper:
        # the ledger sheet starts the helper, with its rows as the first job
        _atomic(paths["workbook"], lambda tmp: write_workbook(result, tmp, helper=helper))
        helper.start()  # a no-op once started
        for key in ("csv", "ledger_csv", "checklist_csv", "anomalies_csv"):

            def write_table(tmp: Path, key: str = key) -> None:
                rendered = helper.take(key)
                write_csv(tmp, RenderedFile(rendered) if rendered else tables()[key])

            _atomic(paths[key], write_table)

        def write_json(tmp: Path) -> None:
            rendered = helper.take("json")
            if rendered:
                os.replace(rendered, tmp)
            else:
                _render_json(tmp, result)

        _atomic(paths["json"], write_json)
    return paths


def _render_json(path: Path, result: Consolidation) -> None:
    text = json.dumps(to_json(result), ensure_ascii=False, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, then rename it over `path`."""
    atomic_write(path, write)


# --- JSON ------------------------------------------------------------------------------------


def _number(value: Decimal, code: str, form: ProgressForm) -> int | float:
    if form.value(code).is_money:
        return float(value)
    return int(value)


def to_json(result: Consolidation) -> dict[str, Any]:
    """The document of DESIGN §10: city and per-unit figures (万元 as numbers), flags, returns."""
    form = progress_form()
    rows = result.unit_figures()
    units: dict[str, dict[str, int | float]] = {}
    increments: dict[str, dict[str, int | float]] = {}
    for rec in records(rows):
        units.setdefault(rec["unit"], {})[rec["code"]] = _number(rec["value"], rec["code"], form)
        increments.setdefault(rec["unit"], {})[rec["code"]] = json_number(rec["increment"])
    subs = result.submissions
    return {
        "period": result.period,
        "period_end": period_end(result.period).isoformat(),
        "due_date": result.due_date.isoformat(),
        "city": {c: _number(result.city[c], c, form) for c in form.value_codes},
        "units": units,
        "increments": increments,
        "carried_forward": result.carried_units(),
        # each of them -> the period its figures come from, null when it never reported
        "carried_from": {u: p or None for u, p in result.carried_sources().items()},
        "anomalies": [a.to_json() for a in result.anomalies],
        "submissions": [
            {
                "unit": r["unit"],
                "form": r["form"],
                "status": r["status"],
                "late": bool(r["late"]),
                "file": r["file"],
                "received": r["received"],
                "sha256": r["sha256"],
                "issues": int(r["issues"]),
                "superseded_by": r["superseded_by"],
            }
            for r in records(subs)
        ],
    }


def json_number(value: Decimal) -> int | float:
    out = json_value(value)
    assert isinstance(out, int | float)
    return out


# --- the screen summary ----------------------------------------------------------------------


def period_rejections(result: Consolidation, returns: Sequence[Return]) -> list[Return]:
    """Rejected returns that concern the result's period (for it, or unidentified: no period)
    and that the unit has not since replaced by a corrected, accepted return."""
    replaced = result.superseded_files()
    return [
        r
        for r in returns
        if r.status == "rejected" and r.period in (result.period, None) and r.rel not in replaced
    ]


def summary_lines(
    result: Consolidation, paths: dict[str, Path], returns: Sequence[Return]
) -> list[str]:
    """The short Chinese summary the CLI prints: who reported, rejections, flags, outputs."""
    end = period_end(result.period)
    sources = result.carried_sources()
    carried = [unit for unit, source in sources.items() if source]
    never = [unit for unit, source in sources.items() if not source]
    units = len(result.units)
    subs = result.submissions
    rejected = period_rejections(result, returns)
    gone = subs[subs["status"] == "superseded"]
    sha = dict(zip(subs["file"], subs["sha256"], strict=True))
    copies = sum(
        1
        for f, by in zip(gone["file"], gone["superseded_by"], strict=True)
        if sha[f] == sha.get(by)
    )
    superseded = len(gone) - copies
    lines = [
        f"{period_label(result.period)}汇总完成（截至{end.year}年{end.month}月{end.day}日的累计数）。"
    ]
    reported = f"报送：{units} 个单位中 {units - len(sources)} 个已报送进展情况调度表"
    if carried:
        shown = "；".join(f"{unit}沿用{period_label(sources[unit])}" for unit in carried)
        reported += f"，{len(carried)} 个未报送、沿用最近一次报送的数据（{shown}）"
    if never:
        reported += f"，{len(never)} 个从未报送、按0计（{'、'.join(never)}）"
    lines.append(reported + "。")
    files = f"文件：退回修改 {len(rejected)} 个"
    if superseded:
        files += f"，被更晚的报送替代 {superseded} 个"
    if copies:
        files += f"，与先收到的文件完全相同、只计一次 {copies} 个"
    late = int(subs["late"].sum())
    if late:
        files += f"，逾期报送 {late} 个"
    lines.append(files + "。")
    counts = {sev: sum(1 for a in result.anomalies if a.severity == sev) for sev in SEVERITY_NAMES}
    shown = "，".join(f"{SEVERITY_NAMES[s]} {n} 条" for s, n in counts.items() if n)
    lines.append(f"异常标记：{shown or '无'}（详见“异常标记”工作表）。")
    city = result.city
    lines.append(
        f"全市：企业自查发现重大隐患 {fmt_decimal(city['A1'])} 个（已整改 {fmt_decimal(city['A2'])} 个），"
        f"部门检查发现 {fmt_decimal(city['A3'])} 个（已整改 {fmt_decimal(city['A4'])} 个），"
        f"挂牌督办 {fmt_decimal(city['A5'])} 个（已整改 {fmt_decimal(city['A6'])} 个）。"
    )
    lines.append(f"汇总表：{paths['workbook']}")
    lines.append(f"数据（CSV、JSON）：{paths['csv'].parent}{os.sep}")
    return lines


# --- CSV -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvTable:
    """A tidy table column-wise: the header and one list of values per column."""

    header: list[str]
    columns: list[list[Any]]


@dataclass(frozen=True)
class RenderedFile:
    """A file already rendered in full (by the helper process); writing it is a rename."""

    path: Path


def csv_safe(value: str) -> str:
    """OWASP CSV injection: text starting with = + - @ tab or CR gets a leading single quote."""
    return "'" + value if value.startswith(CSV_DANGEROUS) else value


def _csv_cell(value: Any) -> str:
    if type(value) is str:
        return csv_safe(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return fmt_decimal(value)  # our own number, written by us: never neutralised
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return csv_safe(str(value))


_YES_NO = {True: "是", False: "否"}
_NoneType = type(None)


# a dangerous first character after the separator of _csv_texts' joined column (each of
# CSV_DANGEROUS is one character)
_CSV_DANGER_AFTER_NUL = re.compile("\0[" + re.escape("".join(CSV_DANGEROUS)) + "]")


def _csv_texts(values: list[str]) -> list[str]:
    """csv_safe over a column of text, looking at each value only if one needs it."""
    joined = "\0".join(values)
    if (
        values
        and joined.count("\0") == len(values) - 1  # NUL only as the separator
        and not joined.startswith(CSV_DANGEROUS)
        and not _CSV_DANGER_AFTER_NUL.search(joined)
    ):
        return values
    return [("'" + v) if v.startswith(CSV_DANGEROUS) else v for v in values]


def csv_column(values: list[Any]) -> list[str]:
    """One column of cells as _csv_cell writes them, by the column's value types: a column of
    one plain type is converted in one pass for that type, any other column cell by cell."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return _csv_texts(values)
    if kinds <= {str, _NoneType}:
        return _csv_texts(["" if v is None else v for v in values])
    if kinds <= {bool}:
        return list(map(_YES_NO.__getitem__, values))
    if kinds <= {int}:
        return list(map(str, values))
    if kinds <= {Decimal}:
        return list(map(fmt_decimal, values))
    if kinds <= {dt.date, _NoneType}:  # a few hundred distinct days: each written once
        shown = {v: v.isoformat() for v in set(values) if v is not None}
        shown[None] = ""
        return list(map(shown.__getitem__, values))
    return [_csv_cell(v) for v in values]


_CSV_QUOTED = re.compile(r'[,"\r\n]')


def _csv_quoted(fields: list[str]) -> list[str]:
    """Fields as csv.writer's excel dialect writes them: quoted when they hold a comma, a
    double quote, CR or LF (quotes doubled), otherwise as they are."""
    joined = "".join(fields)
    if not any(c in joined for c in ',"\r\n'):  # four plain searches: quicker than _CSV_QUOTED
        return fields
    return [
        '"' + f.replace('"', '""') + '"' if _CSV_QUOTED.search(f) is not None else f for f in fields
    ]


def csv_lines(table: CsvTable, chunk: int = 20_000) -> Iterator[str]:
    """The CSV text of `table` in pieces of whole CRLF-ended lines, as csv.writer writes it:
    the header and text cells neutralised, the columns converted one at a time."""
    header = _csv_quoted([csv_safe(h) for h in table.header])
    cols = [_csv_quoted(csv_column(values)) for values in table.columns]
    if len(cols) == 1:  # csv.writer quotes the lone empty field of a one-column row
        cols = [[f or '""' for f in cols[0]]]
    yield ",".join(header) + "\r\n"
    rows = zip(*cols, strict=True)
    while lines := list(map(",".join, itertools.islice(rows, chunk))):
        lines.append("")
        yield "\r\n".join(lines)


def _render_csv(path: Path, table: CsvTable) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        for text in csv_lines(table):
            fh.write(text)


def write_csv(path: Path, table: CsvTable | RenderedFile) -> None:
    """UTF-8 with BOM (Excel opens it), CRLF rows; text cells neutralised. A RenderedFile (the
    same table, rendered by the helper process) is renamed to `path`."""
    if isinstance(table, RenderedFile):
        os.replace(table.path, path)
    else:
        _render_csv(path, table)


def _frame_columns(df: pd.DataFrame, names: Sequence[str]) -> list[list[Any]]:
    """The named columns as lists of plain Python values."""
    return [df[n].tolist() for n in names]


# 是否逾期 of a ledger row: 0 no, 1 yes, 2 to be confirmed: past its deadline and 整改中 in a
# ledger carried forward from an earlier month (the unit sent none this month, so today's
# status is unknown; the ledger-overdue-unconfirmed flag asks the city to check)
OVERDUE_SHOWN = ("否", "是", "待核实")


def _overdue_codes(ledger: pd.DataFrame) -> npt.NDArray[np.intp]:
    """Each ledger row's index into OVERDUE_SHOWN (frame order)."""
    overdue = ledger["overdue"].to_numpy(dtype=bool)
    carried = ledger["carried"].to_numpy(dtype=bool)
    return overdue.astype(np.intp) + (overdue & carried)


def csv_tables(result: Consolidation) -> dict[str, CsvTable]:
    """The tidy tables of the model, keyed like write_outputs' paths."""
    form = progress_form()
    fig = result.figures
    labels = {v.code: form.item_of(v.code).label for v in form.values}
    units = {v.code: v.unit for v in form.values}
    codes = fig["code"].tolist()
    figures = CsvTable(
        ["期间", "单位", "单位代码", "项目代码", "项目", "计量单位", "累计数", "上月累计",
         "本月新增", "是否沿用", "数据期间", "来源文件", "工作表", "单元格", "SHA-256"],
        [*_frame_columns(fig, ["period", "unit", "unit_code", "code"]),
         [labels.get(c) for c in codes], [units.get(c) for c in codes],
         *_frame_columns(fig, ["value", "previous", "increment", "carried", "source_period",
                               "file", "sheet", "cell", "sha256"])],
    )  # fmt: skip
    lform = ledger_form()
    overdue_codes = _overdue_codes(result.ledger)
    ledger = CsvTable(
        ["单位", "单位代码", *(c.label for c in lform.columns), "是否逾期", "台账期间", "来源文件",
         "工作表", "行号"],
        [*_frame_columns(result.ledger, ["unit", "unit_code", *(c.key for c in lform.columns)]),
         [OVERDUE_SHOWN[c] for c in overdue_codes.tolist()],
         *_frame_columns(result.ledger, ["ledger_period", "file", "_sheet", "_row"])],
    )  # fmt: skip
    chk = result.checklist
    annexes = {f.id: f.annex for f in checklist_forms()}
    forms = chk["form"].tolist()
    # 是否重大隐患 only for forms with that column; 附件1/附件3 (重大隐患描述) leave it blank
    with_major = {f.id for f in checklist_forms() if f.has_major_column}
    checklist = CsvTable(
        ["期间", "单位", "单位代码", "表单", "文件", "工作表", "检查对象", "检查时间", "序号",
         "检查结果", "是否隐患", "是否重大隐患", "单元格"],
        [*_frame_columns(chk, ["period", "unit", "unit_code"]),
         [annexes.get(f) for f in forms],
         *_frame_columns(chk, ["file", "sheet", "subject", "inspection_date", "item", "answer",
                               "hazard"]),
         [m if f in with_major else None
          for f, m in zip(forms, chk["major"].tolist(), strict=True)],
         chk["cell"].tolist()],
    )  # fmt: skip
    anomaly_header = ["严重程度", "规则代码", "规则名称", "单位", "项目", "上月值/对照值", "本期值",
                      "说明", "来源文件", "工作表", "单元格"]  # fmt: skip
    anomaly_rows = [
        [
            SEVERITY_NAMES[a.severity], a.rule, CATALOGUE[a.rule].title, a.unit, a.item,
            a.previous, a.current, a.message, a.file, a.sheet, a.cell,
        ]
        for a in result.anomalies
    ]  # fmt: skip
    anomalies = CsvTable(
        anomaly_header,
        [list(col) for col in zip(*anomaly_rows, strict=True)]
        if anomaly_rows
        else [[] for _ in anomaly_header],
    )
    return {
        "csv": figures,
        "ledger_csv": ledger,
        "checklist_csv": checklist,
        "anomalies_csv": anomalies,
    }


# --- workbook --------------------------------------------------------------------------------


class _Styles:
    """Formats created once per distinct set of properties (xlsxwriter wants few formats)."""

    def __init__(self, wb: Workbook) -> None:
        self.wb = wb
        self._cache: dict[tuple[tuple[str, Any], ...], Format] = {}

    def __call__(self, **props: Any) -> Format:
        full: dict[str, Any] = {"font_name": BODY_FONT, "font_size": BODY_SIZE, "valign": "vcenter"}
        full.update(props)
        key = tuple(sorted(full.items()))
        if key not in self._cache:
            self._cache[key] = self.wb.add_format(full)
        return self._cache[key]

    def header(self, **props: Any) -> Format:
        return self(
            bold=True, border=1, bg_color=HEADER_FILL, align="center", text_wrap=True, **props
        )

    def cell(self, **props: Any) -> Format:
        return self(border=1, **props)


def _lines(text: str, width: float, size: float = BODY_SIZE) -> int:
    """Lines a wrapped text takes in a column `width` units wide (CJK ≈ 2 units at 11 pt)."""
    units = sum(2.0 if ord(ch) > 0x2E7F else 1.1 for ch in text) * size / 11
    return max(1, math.ceil(units / max(width - 1, 1)))


def _line_height(size: float = BODY_SIZE) -> float:
    return size * 1.45


def _string(ws: Worksheet, row: int, col: int, text: str, fmt: Format | None = None) -> None:
    """Text as a string cell (never a formula or link); an empty text as a formatted blank."""
    if text:
        ws.write_string(row, col, text, fmt)
    else:
        ws.write_blank(row, col, None, fmt)


def _write(ws: Worksheet, row: int, col: int, value: Any, fmt: Format | None = None) -> None:
    """Write one value by its type; text always as a string cell, never a formula or link."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        ws.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        _string(ws, row, col, "是" if value else "否", fmt)
    elif isinstance(value, Decimal):
        ws.write_number(row, col, float(value), fmt)
    elif isinstance(value, int | float):
        ws.write_number(row, col, value, fmt)
    elif isinstance(value, dt.datetime):
        ws.write_datetime(row, col, value, fmt)
    elif isinstance(value, dt.date):
        ws.write_datetime(row, col, dt.datetime.combine(value, dt.time()), fmt)
    else:
        _string(ws, row, col, str(value), fmt)


def _print_setup(
    ws: Worksheet,
    *,
    landscape: bool = True,
    repeat_rows: tuple[int, int] | None = None,
    wide: int = 1,
) -> None:
    """A4, fitted to `wide` pages across and as many down as needed, page numbers below."""
    ws.set_paper(A4)
    if landscape:
        ws.set_landscape()
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    ws.center_horizontally()
    ws.fit_to_pages(wide, 0)
    ws.set_footer("&C&9第 &P 页 共 &N 页")
    if repeat_rows is not None:
        ws.repeat_rows(*repeat_rows)


def write_workbook(result: Consolidation, path: Path, *, helper: ForkedFiles | None = None) -> None:
    """The output workbook, sheets in SHEETS order. Same result, same bytes.

    With a `helper`, the ledger sheet starts it with the rendering of its rows as the first
    job, and takes them from it when the workbook is closed."""
    # a fresh copy each time: xlsxwriter mutates the options it is given
    wb = Workbook(str(path), copy.deepcopy(WORKBOOK_OPTIONS))
    created = dt.datetime.combine(result.due_date, dt.time())
    wb.set_properties(
        {
            "title": f"{''.join(progress_form().title.split())}（{period_label(result.period)}）",
            "subject": result.calendar.campaign,
            "author": result.calendar.city_unit,
            "company": result.calendar.city_unit,
            "comments": f"依据{result.calendar.document}汇总生成",
            "created": created,
        }
    )
    st = _Styles(wb)
    flags = _cell_flags(result)
    _sheet_table(wb, st, result)
    _sheet_units(wb, st, result, flags)
    _sheet_anomalies(wb, st, result)
    _sheet_submissions(wb, st, result)
    # the status board as of the due date (not today), so identical inputs give identical bytes
    # of the files received, not of a day: the same inputs give the same workbook
    write_status_sheet(wb, status_from_consolidation(result, today=result.due_date), dated=False)
    _sheet_ledger(wb, st, result, helper)
    _sheet_checklists(wb, st, result)
    _sheet_charts(wb, st, result)
    _sheet_sources(wb, st, result)
    with parallel_parts():  # the ledger sheet's 160 MB of XML, at province scale
        wb.close()


# 调度表 ---------------------------------------------------------------------------------------


def _sheet_table(wb: Workbook, st: _Styles, result: Consolidation) -> None:
    form = progress_form()
    lay = progress_layout(form)
    ws = wb.add_worksheet(form.sheet_name)
    last = lay.last_col
    for i, column in enumerate(lay.columns):
        ws.set_column(i, i, column.width)
    _string(
        ws,
        lay.annex_cell.row,
        lay.annex_cell.col,
        form.annex,
        st(font_name=TITLE_FONT, font_size=14),
    )
    ws.set_row(lay.title_row, 36)
    ws.merge_range(
        lay.title_row, 0, lay.title_row, last, form.title,
        st(font_name=TITLE_FONT, font_size=18, bold=True, align="center"),
    )  # fmt: skip

    # 填报单位：福州市城乡建设局   时间：<due date>
    label = st(align="left", font_size=11)
    ws.set_row(lay.unit_label_cell.row, 24)
    ws.merge_range(
        lay.unit_label_cell.row, lay.unit_label_cell.col, lay.unit_label_cell.row,
        lay.unit_cell.col - 1, form.unit_label, label,
    )  # fmt: skip
    ws.merge_range(
        lay.unit_cell.row, lay.unit_cell.col, lay.unit_cell.row, lay.unit_cell.col + 2,
        result.calendar.city_unit, st(align="left", font_size=11, bottom=1),
    )  # fmt: skip
    _string(
        ws,
        lay.date_label_cell.row,
        lay.date_label_cell.col,
        form.date_label,
        st(align="right", font_size=11),
    )
    ws.merge_range(
        lay.date_cell.row,
        lay.date_cell.col,
        lay.date_cell.row,
        last,
        "",
        st(align="center", font_size=11, bottom=1, num_format=LONG_DATE_FORMAT),
    )
    ws.write_datetime(
        lay.date_cell.row, lay.date_cell.col, dt.datetime.combine(result.due_date, dt.time()),
        st(align="center", font_size=11, bottom=1, num_format=LONG_DATE_FORMAT),
    )  # fmt: skip

    # 报送期间：2023年7月 (and how the figures were put together)
    ws.set_row(lay.period_label_cell.row, 24)
    ws.merge_range(
        lay.period_label_cell.row, lay.period_label_cell.col, lay.period_label_cell.row,
        lay.period_cell.col - 1, "报送期间：", label,
    )  # fmt: skip
    _string(
        ws,
        lay.period_cell.row,
        lay.period_cell.col,
        period_label(result.period),
        st(align="left", font_size=11, bottom=1),
    )
    note = _table_note(result)
    ws.merge_range(
        lay.period_cell.row, lay.period_cell.col + 1, lay.period_cell.row, last, note,
        st(font_size=SMALL_SIZE, font_color=GREY, align="left", text_wrap=True),
    )  # fmt: skip
    # the note wraps within the table's width: its row as tall as its lines (a merged cell is
    # never fitted by Excel or LibreOffice), at least the row the template has
    note_width = sum(c.width for c in lay.columns[lay.period_cell.col + 1 :])
    note_height = _lines(note, note_width, SMALL_SIZE) * _line_height(SMALL_SIZE) + 6
    ws.set_row(lay.period_cell.row, max(24.0, note_height))

    section_fmt = st.cell(align="center", text_wrap=True, bold=True)
    for code, merge in lay.section_merges:
        section = next(s for s in form.sections if s.code == code)
        ws.merge_range(
            merge.first.row,
            merge.first.col,
            merge.last.row,
            merge.last.col,
            section.label,
            section_fmt,
        )
    no_fmt = st.cell(align="center")
    label_fmt = st.cell(align="left", text_wrap=True)
    caption_fmt = st(
        top=1,
        left=1,
        right=1,
        font_size=SMALL_SIZE,
        font_color=GREY,
        align="center",
        text_wrap=True,
    )
    count_fmt = st(bottom=1, left=1, right=1, align="center", num_format=COUNT_FORMAT, bold=True)
    money_fmt = st(bottom=1, left=1, right=1, align="center", num_format=MONEY_FORMAT, bold=True)
    items = {it.code: it for s in form.sections for it in s.items}
    heights: dict[int, int] = {}
    for cells in lay.items:
        item = items[cells.code]
        top = cells.no_cell.row
        ws.merge_range(top, cells.no_cell.col, top + 1, cells.no_cell.col, item.no, no_fmt)
        m = cells.label_merge
        ws.merge_range(m.first.row, m.first.col, m.last.row, m.last.col, item.label, label_fmt)
        heights[top] = max(heights.get(top, 1), _lines(item.label, lay.columns[m.first.col].width))
        for code, caption_cell, input_cell, input_merge in cells.inputs:
            value = form.value(code)
            caption = value.sub_label or value.unit
            fmt = money_fmt if value.is_money else count_fmt
            number = float(result.city[code]) if value.is_money else int(result.city[code])
            if input_merge is None:
                _string(ws, caption_cell.row, caption_cell.col, caption, caption_fmt)
                ws.write_number(input_cell.row, input_cell.col, number, fmt)
            else:
                ws.merge_range(
                    caption_cell.row, input_merge.first.col, caption_cell.row,
                    input_merge.last.col, caption, caption_fmt,
                )  # fmt: skip
                ws.merge_range(
                    input_merge.first.row, input_merge.first.col, input_merge.last.row,
                    input_merge.last.col, "", fmt,
                )  # fmt: skip
                ws.write_number(input_cell.row, input_cell.col, number, fmt)
    # the right half of a pair stays boxed when a section has an odd number of items
    used = {(c.no_cell.row, c.no_cell.col) for c in lay.items}
    right = max(c.no_cell.col for c in lay.items)
    for top in heights:
        if (top, right) not in used:
            for row in (top, top + 1):
                for col in range(right, last + 1):
                    ws.write_blank(row, col, None, st.cell())
    for top, lines in heights.items():
        caption_h = 15.0
        ws.set_row(top, caption_h)
        ws.set_row(top + 1, max(22.0, lines * _line_height() + 5 - caption_h))
    note_fmt = st(align="left", valign="top", text_wrap=True)
    width = sum(c.width for c in lay.columns)
    for row, text in zip(lay.footnote_rows, form.footnotes, strict=True):
        ws.merge_range(row, 0, row, last, text, note_fmt)
        ws.set_row(row, _lines(text, width) * _line_height() + 4)
    _print_setup(ws)
    ws.fit_to_pages(1, 1)  # the table is emailed and printed as one A4 page, like the template
    ws.print_area(0, 0, lay.footnote_rows[-1] if form.footnotes else lay.last_table_row, last)
    ws.activate()


def _table_note(result: Consolidation) -> str:
    """How the city figures were put together, under the period: which units' figures are
    carried forward from which month, and which never reported and count as 0 (README 汇总口径)."""
    end = period_end(result.period)
    note = f"（自专项行动开始至{end.year}年{end.month}月{end.day}日的累计数，{len(result.units)}个单位合计"
    carried, never = carried_groups(result.carried_sources())
    for source, units in reversed(carried):  # the latest month first
        note += f"；{'、'.join(units)}本月未报送，沿用其{period_label(source)}的累计数"
    if never:
        note += f"；{'、'.join(never)}从未报送，按0计"
    return note + "）"


# 分县明细 -------------------------------------------------------------------------------------


def _cell_flags(result: Consolidation) -> dict[tuple[str, str, str], list[Anomaly]]:
    """(block, unit, code) -> flags to show on that cell of 分县明细; code '' = the unit's row."""
    codes = set(progress_form().value_codes)
    out: dict[tuple[str, str, str], list[Anomaly]] = {}
    for a in result.anomalies:
        if a.rule in ("ledger-overdue", "ledger-row-vanished", "ledger-status-regressed"):
            continue  # shown on 隐患台账汇总 and 异常标记
        if a.item in codes:
            block = "increment" if a.rule == "increment-outlier" else "value"
            out.setdefault((block, a.unit, a.item), []).append(a)
        else:
            out.setdefault(("value", a.unit, ""), []).append(a)
    return out


def _comment(ws: Worksheet, row: int, col: int, flags: Sequence[Anomaly], author: str) -> None:
    text = "\n".join(f"【{CATALOGUE[a.rule].title}】{a.message}" for a in flags)
    ws.write_comment(row, col, text, {"author": author, "x_scale": 4, "y_scale": 3})


def _value_headers(
    ws: Worksheet,
    st: _Styles,
    form: ProgressForm,
    row: int,
    first_col: int,
    first_headers: Sequence[str],
) -> None:
    head = st.header(valign="top")
    for i, text in enumerate(first_headers):
        ws.merge_range(row, i, row + 1, i, text, head)
    col = first_col
    for section in form.sections:
        for item in section.items:
            n = len(item.values)
            if n > 1:
                ws.merge_range(
                    row, col, row, col + n - 1, f"{section.code}{item.no} {item.label}", head
                )
            else:
                _string(ws, row, col, f"{section.code}{item.no} {item.label}", head)
            for k, value in enumerate(item.values):
                _string(ws, row + 1, col + k, f"{value.code}（{value.unit}）", st.header())
            col += n


def _sheet_units(
    wb: Workbook,
    st: _Styles,
    result: Consolidation,
    flags: dict[tuple[str, str, str], list[Anomaly]],
) -> None:
    form = progress_form()
    codes = form.value_codes
    ws = wb.add_worksheet("分县明细")
    ws.set_column(0, 0, 12)
    ws.set_column(1, 1, 20)
    ws.set_column(2, 1 + len(codes), 10)
    last = 1 + len(codes)
    end = period_end(result.period)
    ws.merge_range(
        0, 0, 0, last,
        f"各县（市）区累计数明细（{period_label(result.period)}，截至{end.year}年{end.month}月{end.day}日）",
        st(font_name=TITLE_FONT, font_size=14, bold=True, align="left"),
    )  # fmt: skip
    ws.merge_range(
        1, 0, 1, last,
        "灰色底纹：本月未报送，沿用最近一次报送的累计数（从未报送的按0计）；黄色底纹：有异常标记（见单元格批注和“异常标记”表）。"
        "“合计”行等于“调度表”各项；本月新增 = 本月累计 − 上月累计。",
        st(font_size=SMALL_SIZE, font_color=GREY, align="left"),
    )  # fmt: skip
    rows = result.unit_figures()
    by_unit: dict[str, dict[str, dict[str, Any]]] = {}
    for rec in records(rows):
        by_unit.setdefault(rec["unit"], {})[rec["code"]] = rec
    author = result.calendar.city_unit
    row = 3
    for block, title in (("value", "本月累计数"), ("increment", "本月新增（本月累计 − 上月累计）")):
        ws.merge_range(row, 0, row, last, title, st(bold=True, font_size=11, align="left"))
        row += 1
        _value_headers(ws, st, form, row, 2, ("单位", "报送情况"))
        ws.set_row(row, 120)
        ws.set_row(row + 1, 28)
        if block == "value":
            ws.freeze_panes(row + 2, 2)
        row += 2
        for unit in result.units:
            recs = by_unit[unit.name]
            first = recs[codes[0]]
            carried = bool(first["carried"])
            fill: dict[str, Any] = {"bg_color": CARRIED_FILL} if carried else {}
            if carried:
                status = (
                    f"未报送，沿用{period_label(first['source_period'])}"
                    if first["source_period"]
                    else "未报送（从未报送，按0计）"
                )
            else:
                status = "已报送"
            _string(ws, row, 0, unit.name, st.cell(**fill))
            unit_flags = flags.get((block, unit.name, "")) if block == "value" else None
            status_fmt = st.cell(bg_color=FLAG_FILL) if unit_flags else st.cell(**fill)
            _string(ws, row, 1, status, status_fmt)
            if unit_flags:
                _comment(ws, row, 1, unit_flags, author)
            for i, code in enumerate(codes):
                money = form.value(code).is_money
                cell_flags = flags.get((block, unit.name, code))
                props: dict[str, Any] = {
                    "num_format": MONEY_FORMAT if money else COUNT_FORMAT,
                    "align": "right",
                }
                props.update({"bg_color": FLAG_FILL} if cell_flags else fill)
                ws.write_number(row, 2 + i, float(recs[code][block]), st.cell(**props))
                if cell_flags:
                    _comment(ws, row, 2 + i, cell_flags, author)
            row += 1
        total_fmt = st.cell(bold=True, bg_color=HEADER_FILL)
        _string(ws, row, 0, "合计", total_fmt)
        _string(
            ws,
            row,
            1,
            f"{len(result.units) - len(result.carried_units())}/{len(result.units)} 个单位已报送",
            total_fmt,
        )
        for i, code in enumerate(codes):
            money = form.value(code).is_money
            total = sum((by_unit[u.name][code][block] for u in result.units), Decimal(0))
            if block == "value":
                assert total == result.city[code]  # the 合计 row is the 调度表 figure
            ws.write_number(
                row,
                2 + i,
                float(total),
                st.cell(
                    bold=True,
                    bg_color=HEADER_FILL,
                    num_format=MONEY_FORMAT if money else COUNT_FORMAT,
                    align="right",
                ),
            )
        row += 3
    # 37 columns: three pages across, the unit columns repeated on each
    _print_setup(ws, wide=3)
    ws.repeat_columns(0, 1)


# 异常标记 -------------------------------------------------------------------------------------

ANOMALY_HEADERS = (
    ("序号", 6),
    ("严重程度", 8),
    ("规则代码", 24),
    ("规则名称", 16),
    ("单位", 10),
    ("项目", 10),
    ("上月值/对照值", 14),
    ("本期值", 14),
    ("说明", 80),
    ("来源文件", 36),
    ("工作表", 10),
    ("单元格", 8),
)


def _sheet_anomalies(wb: Workbook, st: _Styles, result: Consolidation) -> None:
    ws = wb.add_worksheet("异常标记")
    for i, (text, width) in enumerate(ANOMALY_HEADERS):
        ws.set_column(i, i, width)
        _string(ws, 0, i, text, st.header())
    ws.freeze_panes(1, 0)
    wrap = st.cell(text_wrap=True, valign="top")
    plain = st.cell(valign="top")
    number = st.cell(valign="top", num_format="0.####", align="right")
    fills = {"error": REJECTED_FILL, "warning": FLAG_FILL, "info": None}
    for n, a in enumerate(result.anomalies, start=1):
        row = n
        fill = fills[a.severity]
        ws.write_number(row, 0, n, plain)
        _string(
            ws,
            row,
            1,
            SEVERITY_NAMES[a.severity],
            st.cell(valign="top", bg_color=fill) if fill else plain,
        )
        _string(ws, row, 2, a.rule, plain)
        _string(ws, row, 3, CATALOGUE[a.rule].title, plain)
        _string(ws, row, 4, a.unit, plain)
        _string(ws, row, 5, a.item, plain)
        for col, value in ((6, a.previous), (7, a.current)):
            _write(ws, row, col, value, number if isinstance(value, Decimal) else plain)
        _string(ws, row, 8, a.message, wrap)
        _string(ws, row, 9, a.file, wrap)
        _string(ws, row, 10, a.sheet, plain)
        _string(ws, row, 11, a.cell, plain)
        ws.set_row(row, max(1, _lines(a.message, ANOMALY_HEADERS[8][1])) * _line_height() + 4)
    last_row = max(1, len(result.anomalies))
    if not result.anomalies:
        ws.merge_range(1, 0, 1, len(ANOMALY_HEADERS) - 1, "本期未发现异常。", plain)
    ws.autofilter(0, 0, last_row, len(ANOMALY_HEADERS) - 1)
    _print_setup(ws, repeat_rows=(0, 0))


# 报送情况 -------------------------------------------------------------------------------------

SUBMISSION_HEADERS = (
    ("单位", 10),
    ("单位代码", 9),
    ("表单", 22),
    ("状态", 10),
    ("是否逾期", 8),
    ("文件", 40),
    ("接收时间", 19),
    ("时间来源", 12),
    ("文件修改时间", 19),
    ("SHA-256", 66),
    ("问题数", 7),
    ("说明", 50),
)


def _sheet_submissions(wb: Workbook, st: _Styles, result: Consolidation) -> None:
    ws = wb.add_worksheet("报送情况")
    for i, (_, width) in enumerate(SUBMISSION_HEADERS):
        ws.set_column(i, i, width)
    last = len(SUBMISSION_HEADERS) - 1
    ws.merge_range(
        0, 0, 0, last,
        f"报送情况（{period_label(result.period)}，应于{result.due_date.isoformat()}当天结束前报送）",
        st(font_name=TITLE_FONT, font_size=14, bold=True, align="left"),
    )  # fmt: skip
    header_row = 2
    for i, (text, _) in enumerate(SUBMISSION_HEADERS):
        _string(ws, header_row, i, text, st.header())
    ws.freeze_panes(header_row + 1, 1)
    fills = {"rejected": REJECTED_FILL, "missing": CARRIED_FILL, "superseded": HEADER_FILL}
    subs = records(result.submissions)
    row = header_row
    for r in subs:
        row += 1
        fill = fills.get(r["status"])
        fmt = st.cell(bg_color=fill) if fill else st.cell()
        late_fmt = st.cell(bg_color=LATE_FILL) if r["late"] else fmt
        _string(ws, row, 0, r["unit"] or "（未识别）", fmt)
        _string(ws, row, 1, r["unit_code"], fmt)
        _string(ws, row, 2, form_name(r["form"]) if r["form"] else "（未识别）", fmt)
        _string(ws, row, 3, STATUS_NAMES[r["status"]], fmt)
        _string(
            ws, row, 4, "" if r["status"] == "missing" else ("是" if r["late"] else "否"), late_fmt
        )
        _string(ws, row, 5, r["file"], fmt)
        _string(ws, row, 6, r["received"], late_fmt)
        _string(ws, row, 7, received_source_name(r["received_source"], unknown=""), fmt)
        _string(ws, row, 8, r["mtime"] if mtime_shown(r["received_source"]) else "", fmt)
        _string(ws, row, 9, r["sha256"], fmt)
        ws.write_number(row, 10, int(r["issues"]), fmt)
        _string(ws, row, 11, r["note"], fmt)
    ws.autofilter(header_row, 0, max(row, header_row + 1), last)

    # the files that do not count, and why
    row += 3
    ws.merge_range(
        row, 0, row, last, "被替代和被退回的文件", st(bold=True, font_size=11, align="left")
    )
    row += 1
    heads = ("单位", "表单", "状态", "文件", "接收时间", "SHA-256", "问题数", "原因")
    cols = (0, 2, 3, 5, 6, 9, 10, 11)
    for col, text in zip(cols, heads, strict=True):
        _string(ws, row, col, text, st.header())
    listed = [r for r in subs if r["status"] in ("superseded", "rejected")]
    if not listed:
        row += 1
        _string(ws, row, 0, "无。", st())
    for r in listed:
        row += 1
        if r["status"] == "rejected":
            reason = f"校验未通过（{r['issues']} 个问题）：{r['note']}"
        elif r["note"].endswith(WAS_REJECTED):
            reason = f"曾被退回修改，单位已重报通过校验的文件：{r['superseded_by']}"
        else:
            reason = f"同一单位、期间和表单有更晚收到的文件：{r['superseded_by']}"
        values = (
            r["unit"] or "（未识别）",
            form_name(r["form"]) if r["form"] else "（未识别）",
            STATUS_NAMES[r["status"]],
            r["file"],
            r["received"],
            r["sha256"],
            int(r["issues"]),
            reason,
        )
        for col, value in zip(cols, values, strict=True):
            _write(ws, row, col, value, st.cell(text_wrap=col == 11))
    _print_setup(ws, repeat_rows=(header_row, header_row))


# 隐患台账汇总 ---------------------------------------------------------------------------------


_KindFormats = dict[str, Format | None]


def _ledger_sheet(
    wb: Workbook, st: _Styles, sheet_class: type[_XmlRowsWorksheet]
) -> tuple[_XmlRowsWorksheet, int, _KindFormats, dict[str, Format]]:
    """隐患台账汇总 with its header row: the sheet, its number of columns, and the plain and the
    overdue-row format of each kind of cell (_ledger_kind).

    A data sheet that may hold a province's 200,000 rows: no borders, and only non-empty
    cells are written; an overdue row is filled through its row format, blanks included."""
    ws = cast(_XmlRowsWorksheet, wb.add_worksheet("隐患台账汇总", sheet_class))
    headers: list[tuple[str, float]] = [("单位", 10)]
    headers += [(c.label, c.width) for c in ledger_form().columns]
    headers += [("是否逾期", 8), ("台账期间", 9), ("来源文件", 36), ("工作表", 10), ("行号", 6)]
    for i, (text, width) in enumerate(headers):
        ws.set_column(i, i, width)
        _string(ws, 0, i, text, st.header())
    ws.set_row(0, 30)
    ws.freeze_panes(1, 2)
    plain = {"text": None, "date": st(num_format=DATE_FORMAT), "money": st(num_format=MONEY_FORMAT)}
    red = {
        "text": st(bg_color=OVERDUE_FILL),
        "date": st(bg_color=OVERDUE_FILL, num_format=DATE_FORMAT),
        "money": st(bg_color=OVERDUE_FILL, num_format=MONEY_FORMAT),
    }
    return ws, len(headers), plain, red


def _ledger_kind(column: Any) -> str:
    """A ledger column's kind of cell on the sheet: date, money or text."""
    return "date" if column.type == "date" else "money" if column.type == "money" else "text"


def _sheet_ledger(
    wb: Workbook, st: _Styles, result: Consolidation, helper: ForkedFiles | None = None
) -> None:
    ws, width, plain, red = _ledger_sheet(wb, st, _XmlRowsWorksheet)
    lform = ledger_form()
    # xlsxwriter numbers formats as they are first asked for their index: ask in a fixed order
    plain_s = {kind: _style(fmt) for kind, fmt in plain.items()}
    red_s = {kind: _style(fmt) for kind, fmt in red.items()}
    red_row = red["text"]._get_xf_index()
    led = result.ledger
    unit_rank = {u.name: i for i, u in enumerate(result.units)}
    # by unit in report order, then by the row in the county's ledger (a stable sort)
    rank = [unit_rank.get(u, len(unit_rank)) for u in led["unit"].tolist()]
    order = np.lexsort((led["_row"].to_numpy(), np.asarray(rank, dtype=np.int64)))

    def column(key: str, kind: str = "text", blank: bool = True) -> _LedgerColumn:
        values = led[key].to_numpy(dtype=object)
        styles = (plain_s[kind], red_s[kind])
        return _ledger_column(values, order, kind, styles, blank=blank)

    state = _overdue_codes(led)[order]
    overdue = state == 1  # filled red: overdue as a fact, not only to be confirmed
    cols = [column("unit")]
    for c in lform.columns:
        cols.append(column(c.key, _ledger_kind(c), blank=False))
    # 是否逾期: 否, 是 or 待核实
    text_s = (plain_s["text"], red_s["text"])
    cols.append(_LedgerColumn(state, [*OVERDUE_SHOWN, None], text_s))
    cols += [column(key) for key in ("ledger_period", "file", "_sheet")]
    rownos = [f"{int(r)}" for r in led["_row"].to_numpy(dtype=object)[order].tolist()]
    rows = _ledger_rows(ws, cols, rownos, overdue, red_row, helper)
    ws.autofilter(0, 0, max(rows, 1), width - 1)
    _print_setup(ws, repeat_rows=(0, 0))


class _XmlRowsWorksheet(Worksheet):
    """A worksheet whose data rows, after those written the usual way, come as ready XML.

    xlsxwriter keeps every cell as a Python object and renders it at close (about 5 us and
    100 bytes a cell); a province's ledger sheet has four million cells. Its rows are prepared
    column by column instead and written straight into the sheet's XML at close; text still
    goes into the workbook's shared strings (when the rows are added, in cell order) and every
    format through the workbook, so the cells are what xlsxwriter would write.
    """

    def __init__(self) -> None:
        super().__init__()
        # writes the <row> elements that follow the others into the sheet's XML file
        self.xml_rows: Callable[[Any], None] | None = None

    def _write_rows(self) -> None:
        super()._write_rows()
        if self.xml_rows is not None:
            self.xml_rows(self.fh)
            self.xml_rows = None


def _excel_serial(value: dt.date) -> float:
    """A date (or datetime) as Excel's serial number, as xlsxwriter computes it."""
    day = value.date() if isinstance(value, dt.datetime) else value
    days = day - dt.date(1899, 12, 31)
    serial = float(days.days + 1 if days.days > 59 else days.days)  # Excel's 1900 leap year
    if isinstance(value, dt.datetime):
        serial += (value - dt.datetime.combine(value.date(), dt.time())).total_seconds() / 86400
    return serial


def _excel_text(text: str) -> str:
    """Excel keeps at most 32,767 UTF-16 units in a cell (xlsxwriter truncates the same way)."""
    if len(text) > 16383:
        units = text.encode("utf-16-le")
        if len(units) > 65534:
            return units[:65534].decode("utf-16-le", errors="ignore")
    return text


def _style(fmt: Format | None) -> str:
    return f' s="{fmt._get_xf_index()}"' if fmt is not None else ""


# What a ledger cell holds: a text (to go into the shared strings), a number or date as the
# text of its <v> element, a blank that only shows its format, or nothing at all.
_Number = tuple[str, str]  # ("n", "45123")
_BLANK = ("b", "")
_Cell = str | _Number | None

# value types whose equal values show the same (and equal no value of another type that shows
# differently): a column of them is keyed by value
_SAME_WHEN_EQUAL = {str, _NoneType, dt.date}


def _ledger_cell(value: Any, kind: str, blank: bool) -> _Cell:
    """What one value becomes on the ledger sheet (as _write would write it, without borders)."""
    if blank:  # 单位 and the source columns: any text, or a blank
        return _excel_text(value) if value else _BLANK
    if value is None or value == "":
        return None
    if type(value) is str:
        return _excel_text(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.date):
        if kind == "date" and isinstance(value, dt.datetime):
            value = value.date()
        return ("n", f"{_excel_serial(value):.16G}")
    if isinstance(value, Decimal | int | float):
        number = float(value)
        if not math.isfinite(number):  # no spreadsheet number (NaN, ±∞, of either type)
            return _BLANK
        return ("n", f"{number:.16G}")
    return str(value) or _BLANK


@dataclass
class _LedgerColumn:
    """One column of the ledger sheet: for each row (in sheet order) a code into `cells`, what
    the column's distinct values show (code -1, the last cell: an empty value), and the plain
    and the overdue-row s="…" attribute (or "")."""

    codes: npt.NDArray[np.intp]
    cells: list[_Cell]
    styles: tuple[str, str]


def _ledger_column(
    values: npt.NDArray[Any],
    order: npt.NDArray[np.intp],
    kind: str,
    styles: tuple[str, str],
    *,
    blank: bool,
) -> _LedgerColumn:
    """A ledger column from its values (frame order) and the sheet's row order. `blank`: an
    empty value is a formatted blank in an overdue row (the 单位 and source columns), not no
    cell at all (the ledger's own columns). Values are grouped by equality only where equal
    values show the same; any other column is grouped by what each value shows."""
    codes, uniques = pd.factorize(values)
    distinct = uniques.tolist()
    missing = values[codes < 0].tolist()  # None, and NaN (which shows differently)
    kinds = set(map(type, distinct)) | set(map(type, missing))
    if kinds <= _SAME_WHEN_EQUAL:
        cells = [_ledger_cell(v, kind, blank) for v in distinct]
    elif (
        not blank
        and set(map(type, values.tolist())) <= {Decimal, int}
        and not any(v == 0 or (type(v) is Decimal and not v.is_finite()) for v in distinct)
    ):  # amounts: equal amounts show the same, but for zero (Decimal("-0") shows as -0)
        cells = [("n", f"{float(v):.16G}") for v in distinct]
    else:  # True == 1 == Decimal(1): group by what each value shows
        shows = (_ledger_cell(v, kind, blank) for v in values.tolist())
        codes, uniques = pd.factorize(np.fromiter(shows, dtype=object, count=len(values)))
        cells = uniques.tolist()
    cells.append(_ledger_cell(None, kind, blank))
    return _LedgerColumn(codes[order], cells, styles)


def _ledger_rows(
    ws: _XmlRowsWorksheet,
    cols: Sequence[_LedgerColumn],
    rownos: Sequence[str],
    overdue: npt.NDArray[np.bool_],
    red_row: int,
    helper: ForkedFiles | None = None,
) -> int:
    """The ledger's data rows (from row 2), columns A onwards, then the 行号 column; returns the
    last row. Text goes into the shared strings now, in the order xlsxwriter would add it (row
    by row, left to right); the rows' XML is written when the workbook is closed.

    Each column's distinct cells are rendered once, as the XML around the row number; a row
    is then its cells' pieces with the row number in between, joined in large chunks."""
    n_rows = len(rownos)
    table = ws.str_table
    known = table.string_table
    n_text = 0  # cells holding text: each counts once in the shared strings' total
    firsts: list[tuple[int, int, str]] = []  # (first row, column, text) of each new text
    for j, col in enumerate(cols):
        is_text = np.fromiter((type(c) is str for c in col.cells), dtype=bool)
        n_text += int(np.count_nonzero(is_text[col.codes]))
        new = [k for k, c in enumerate(col.cells) if type(c) is str and c not in known]
        if new:
            first = np.full(len(col.cells), n_rows, dtype=np.intp)
            np.minimum.at(first, col.codes, np.arange(n_rows))
            # a text no row shows (a 是否逾期 state unused) is not a shared string
            firsts += [
                (int(first[k]), j, cast(str, col.cells[k])) for k in new if first[k] < n_rows
            ]
    firsts.sort()
    for _row, _col, text in firsts:
        table._get_shared_string_index(text)
    table.count += n_text - len(firsts)
    index = table.string_table

    letters = [col_letter(c) for c in range(len(cols) + 1)]
    red_rows = bool(overdue.any())
    # per column: the cell's opening '<c r="B' (or nothing) and, per distinct cell (and plain or
    # overdue row), what follows the row number and whether there is a cell at all
    parts: list[tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[np.bool_]]] = []
    for j, col in enumerate(cols):
        variants = [col.styles[0], col.styles[1]] if red_rows else [col.styles[0]]
        tails = np.empty((len(variants), len(col.cells)), dtype=object)
        for v, s in enumerate(variants):
            tails[v] = [  # (a text not in the shared strings is shown by no row)
                "" if type(cell) is str and cell not in index else _cell_tail(cell, s, index)
                for cell in col.cells
            ]
        shown = tails != ""
        parts.append((np.array(["", f'<c r="{letters[j]}'], dtype=object), tails, shown))
    tail_s, red_tail_s = cols[0].styles
    closing = np.array([f'"{tail_s}><v>{r}</v></c></row>' for r in rownos], dtype=object)
    opening = np.array(['">'] * n_rows, dtype=object)
    if red_rows:
        closing[overdue] = [
            f'"{red_tail_s}><v>{rownos[i]}</v></c></row>' for i in np.flatnonzero(overdue).tolist()
        ]
        opening[overdue] = f'" s="{red_row}" customFormat="1">'
    numbers = np.array([str(n) for n in range(2, n_rows + 2)], dtype=object)
    last_ref = f'<c r="{letters[-1]}'

    def write(fh: Any, chunk: int = 10_000) -> None:
        for start in range(0, n_rows, chunk):
            stop = min(start + chunk, n_rows)
            ns = numbers[start:stop]
            red = overdue[start:stop].astype(np.intp) if red_rows else 0
            pieces = np.empty((stop - start, 3 * len(cols) + 6), dtype=object)
            pieces[:, 0] = '<row r="'
            pieces[:, 1] = ns
            pieces[:, 2] = opening[start:stop]
            for j, (col, (refs, tails, shown)) in enumerate(zip(cols, parts, strict=True)):
                codes = col.codes[start:stop]
                on = shown[red, codes]
                pieces[:, 3 * j + 3] = refs[on.astype(np.intp)]
                pieces[:, 3 * j + 4] = np.where(on, ns, "")
                pieces[:, 3 * j + 5] = tails[red, codes]
            pieces[:, -3] = last_ref
            pieces[:, -2] = ns
            pieces[:, -1] = closing[start:stop]
            fh.write("".join(pieces.ravel().tolist()))

    if not n_rows:
        if helper is not None:
            helper.start()  # for the CSVs and the JSON
        return 0
    ws._check_dimensions(n_rows, len(cols))
    if helper is None:
        ws.xml_rows = write
        return n_rows

    def render(path: Path) -> None:
        with path.open("w", encoding="ascii") as fh:
            write(fh)

    # the helper process renders the rows (a local temporary file, like xlsxwriter's own)
    helper.start({"ledger_rows": render}, first_folder=Path(tempfile.gettempdir()))

    def rows_xml(fh: Any) -> None:
        rendered = helper.take("ledger_rows")
        if rendered is None or not hasattr(fh, "buffer"):
            write(fh)
            return
        fh.flush()
        with rendered.open("rb") as src:
            shutil.copyfileobj(src, fh.buffer, 1 << 20)

    ws.xml_rows = rows_xml
    return n_rows


def _cell_tail(cell: _Cell, s: str, index: dict[str, int]) -> str:
    """What follows a cell's row number in its XML ('<c r="B' + row + tail), given what it
    shows and its style attribute; "" for no cell."""
    if cell is None:
        return ""
    if type(cell) is str:
        return f'"{s} t="s"><v>{index[cell]}</v></c>'
    if cell[0] == "n":
        return f'"{s}><v>{cell[1]}</v></c>'
    return f'"{s}/>' if s else ""


# 检查清单统计 ---------------------------------------------------------------------------------


def _sheet_checklists(wb: Workbook, st: _Styles, result: Consolidation) -> None:
    ws = wb.add_worksheet("检查清单统计")
    chk = result.checklist
    units = [u.name for u in result.units]
    fixed = [
        ("表单", 10),
        ("序号", 5),
        ("检查类别", 10),
        ("重点检查事项", 48),
        ("检查次数", 8),
        ("涉及次数", 8),
        ("发现隐患", 8),
        ("其中重大隐患", 8),
    ]
    last = len(fixed) + len(units) - 1
    for i, (_, width) in enumerate(fixed):
        ws.set_column(i, i, width)
    ws.set_column(len(fixed), last, 8)
    ws.merge_range(
        0, 0, 0, last,
        f"检查清单统计（{period_label(result.period)}，按检查时所属期间）",
        st(font_name=TITLE_FONT, font_size=14, bold=True, align="left"),
    )  # fmt: skip
    ws.merge_range(
        1, 0, 1, last,
        "检查次数：填写了该项检查结果的检查份数；涉及次数：其中未勾选“不涉及”的；发现隐患：勾选了表示存在隐患的一栏"
        "（附件2第42项和附件3各项为勾选“否”）；其中重大隐患："
        f"{checklist_major_definition()}；右侧各单位列为该单位发现隐患的次数。",
        st(font_size=SMALL_SIZE, font_color=GREY, align="left"),
    )  # fmt: skip
    head_row = 3
    for i, (text, _) in enumerate(fixed):
        _string(ws, head_row, i, text, st.header())
    for j, name in enumerate(units):
        _string(ws, head_row, len(fixed) + j, f"{name}\n发现隐患", st.header())
    ws.set_row(head_row, 30)
    ws.freeze_panes(head_row + 1, 4)
    # counts per (form, item) and per (form, item, unit), column-wise
    form_ids = chk["form"].tolist()
    unit_names = chk["unit"].tolist()
    hazards = [bool(h) for h in chk["hazard"].tolist()]
    majors = [bool(m) for m in chk["major"].tolist()]
    keys = list(zip(form_ids, map(int, chk["item"].tolist()), strict=True))
    involved = [a != "不涉及" for a in chk["answer"].tolist()]
    tallies = (
        Counter(keys),
        Counter(itertools.compress(keys, involved)),
        Counter(itertools.compress(keys, hazards)),
        Counter(itertools.compress(keys, majors)),
    )
    per_unit = Counter(
        itertools.compress(((f, i, u) for (f, i), u in zip(keys, unit_names, strict=True)), hazards)
    )
    row = head_row
    wrap = st.cell(text_wrap=True, valign="top")
    plain = st.cell(valign="top")
    for cform in checklist_forms():
        for item in cform.items:
            row += 1
            c = [tally[(cform.id, item.no)] for tally in tallies]
            matter = f"{item.matter}：{item.content}" if item.content else item.matter
            _string(ws, row, 0, cform.annex, plain)
            ws.write_number(row, 1, item.no, plain)
            _string(ws, row, 2, item.category, plain)
            _string(ws, row, 3, matter, wrap)
            for k in range(4):
                ws.write_number(row, 4 + k, c[k], plain)
            for j, name in enumerate(units):
                ws.write_number(row, len(fixed) + j, per_unit[(cform.id, item.no, name)], plain)
            ws.set_row(row, min(_lines(matter, 48), 8) * _line_height() + 4)
    ws.autofilter(head_row, 0, row, last)

    # per unit and form: inspections, hazards, major hazards
    row += 3
    ws.merge_range(
        row,
        0,
        row,
        7,
        "各单位检查情况（检查份数、发现隐患项数、其中重大隐患项数）",
        st(bold=True, font_size=11, align="left"),
    )
    row += 1
    forms = checklist_forms()
    _string(ws, row, 0, "单位", st.header())
    for k, cform in enumerate(forms):
        ws.merge_range(
            row, 1 + 3 * k, row, 3 + 3 * k, f"{cform.annex} {cform.short_name}", st.header()
        )
    row += 1
    _string(ws, row, 0, "", st.header())
    for k in range(len(forms)):
        for m, text in enumerate(("检查份数", "发现隐患", "重大隐患")):
            _string(ws, row, 1 + 3 * k + m, text, st.header())
    # inspections (distinct sheets, counted where first seen), hazards and majors per unit
    # (None: all units) and form
    sheets = list(zip(chk["file"].tolist(), chk["sheet"].tolist(), strict=True))
    first_row = dict(zip(reversed(sheets), range(len(sheets) - 1, -1, -1), strict=True))
    firsts = [False] * len(sheets)
    for i in first_row.values():
        firsts[i] = True
    unit_forms = list(zip(unit_names, form_ids, strict=True))
    all_forms = [(None, f) for f in form_ids]
    per_form: list[Counter[tuple[str | None, str]]] = []
    for flags in (firsts, hazards, majors):
        tally = Counter(itertools.compress(unit_forms, flags))
        tally.update(itertools.compress(all_forms, flags))
        per_form.append(tally)
    for name, unit_key in [*((u, u) for u in units), ("合计", None)]:
        row += 1
        fmt = st.cell(bold=True, bg_color=HEADER_FILL) if unit_key is None else plain
        _string(ws, row, 0, name, fmt)
        for k, cform in enumerate(forms):
            c = [tally[(unit_key, cform.id)] for tally in per_form]
            ws.write_number(row, 1 + 3 * k, c[0], fmt)
            ws.write_number(row, 2 + 3 * k, c[1], fmt)
            ws.write_number(row, 3 + 3 * k, c[2], fmt)
    _print_setup(ws, repeat_rows=(head_row, head_row))


# 图表 -----------------------------------------------------------------------------------------


def _sheet_charts(wb: Workbook, st: _Styles, result: Consolidation) -> None:
    ws = wb.add_worksheet("图表")
    name = "图表"
    ws.set_column(0, 0, 12)
    ws.set_column(1, 3, 14)
    head = st.header()
    plain = st.cell()
    _string(ws, 0, 0, "单位", head)
    _string(ws, 0, 1, "发现（A1+A3）", head)
    _string(ws, 0, 2, "已整改（A2+A4）", head)
    rows = result.unit_figures()
    vals: dict[tuple[str, str], Decimal] = {
        (u, c): v for u, c, v in zip(rows["unit"], rows["code"], rows["value"], strict=True)
    }
    for i, unit in enumerate(result.units, start=1):
        _string(ws, i, 0, unit.name, plain)
        ws.write_number(i, 1, int(vals[(unit.name, "A1")] + vals[(unit.name, "A3")]), plain)
        ws.write_number(i, 2, int(vals[(unit.name, "A2")] + vals[(unit.name, "A4")]), plain)
    n = len(result.units)
    column = wb.add_chart({"type": "column"})
    column.add_series(
        {"name": [name, 0, 1], "categories": [name, 1, 0, n, 0], "values": [name, 1, 1, n, 1]}
    )
    column.add_series(
        {"name": [name, 0, 2], "categories": [name, 1, 0, n, 0], "values": [name, 1, 2, n, 2]}
    )
    column.set_title(
        {
            "name": f"各单位重大事故隐患发现与整改（截至{period_label(result.period)}末）",
            "name_font": {"size": 12},
        }
    )
    column.set_y_axis({"name": "个"})
    column.set_legend({"position": "bottom"})
    column.set_size({"width": 760, "height": 360})
    ws.insert_chart(0, 5, column)

    top = n + 3
    _string(ws, top, 0, "期间", head)
    _string(ws, top, 1, "发现（A1+A3）", head)
    _string(ws, top, 2, "已整改（A2+A4）", head)
    _string(ws, top, 3, "挂牌督办（A5）", head)
    trend = result.city_trend
    city: dict[tuple[str, str], Decimal] = {
        (p, c): v for p, c, v in zip(trend["period"], trend["code"], trend["value"], strict=True)
    }
    for i, per in enumerate(result.periods, start=1):
        _string(ws, top + i, 0, period_label(per), plain)
        ws.write_number(top + i, 1, int(city[(per, "A1")] + city[(per, "A3")]), plain)
        ws.write_number(top + i, 2, int(city[(per, "A2")] + city[(per, "A4")]), plain)
        ws.write_number(top + i, 3, int(city[(per, "A5")]), plain)
    m = len(result.periods)
    line = wb.add_chart({"type": "line"})
    for col in (1, 2, 3):
        line.add_series(
            {
                "name": [name, top, col],
                "categories": [name, top + 1, 0, top + m, 0],
                "values": [name, top + 1, col, top + m, col],
                "marker": {"type": "circle"},
            }
        )
    line.set_title({"name": "全市累计数逐月趋势", "name_font": {"size": 12}})
    line.set_y_axis({"name": "个"})
    line.set_legend({"position": "bottom"})
    line.set_size({"width": 760, "height": 360})
    ws.insert_chart(20, 5, line)
    _print_setup(ws)


# 数据来源 -------------------------------------------------------------------------------------


def _sheet_sources(wb: Workbook, st: _Styles, result: Consolidation) -> None:
    ws = wb.add_worksheet("数据来源")
    form = progress_form()
    lay = progress_layout(form)
    headers = (
        ("调度表单元格", 10),
        ("项目代码", 8),
        ("项目", 40),
        ("单位", 10),
        ("数值", 10),
        ("是否沿用", 8),
        ("数据期间", 9),
        ("来源文件", 40),
        ("工作表", 10),
        ("单元格", 8),
        ("SHA-256", 66),
    )
    for i, (text, width) in enumerate(headers):
        ws.set_column(i, i, width)
        _string(ws, 0, i, text, st.header())
    ws.freeze_panes(1, 0)
    rows = result.unit_figures()
    by: dict[tuple[str, str], dict[str, Any]] = {(r["code"], r["unit"]): r for r in records(rows)}
    plain = st.cell()
    grey = st.cell(bg_color=CARRIED_FILL)
    row = 0
    for code in form.value_codes:
        cell = lay.value_cells[code]
        label = form.item_of(code).label
        money = form.value(code).is_money
        for unit in result.units:
            r = by[(code, unit.name)]
            row += 1
            fmt = grey if r["carried"] else plain
            _string(ws, row, 0, f"{form.sheet_name}!{a1(cell.row, cell.col)}", fmt)
            _string(ws, row, 1, code, fmt)
            _string(ws, row, 2, label, fmt)
            _string(ws, row, 3, unit.name, fmt)
            ws.write_number(
                row, 4, float(r["value"]),
                st.cell(num_format=MONEY_FORMAT if money else COUNT_FORMAT, **({"bg_color": CARRIED_FILL} if r["carried"] else {})),
            )  # fmt: skip
            _string(ws, row, 5, "是" if r["carried"] else "否", fmt)
            _string(ws, row, 6, r["source_period"], fmt)
            _string(ws, row, 7, r["file"] or "（无，按0计）", fmt)
            _string(ws, row, 8, r["sheet"], fmt)
            _string(ws, row, 9, r["cell"], fmt)
            _string(ws, row, 10, r["sha256"], fmt)
    ws.autofilter(0, 0, max(row, 1), len(headers) - 1)
    _print_setup(ws, repeat_rows=(0, 0))


__all__ = [
    "SHEETS",
    "csv_safe",
    "csv_tables",
    "output_stem",
    "period_rejections",
    "summary_lines",
    "to_json",
    "workbook_name",
    "write_csv",
    "write_outputs",
    "write_workbook",
]
