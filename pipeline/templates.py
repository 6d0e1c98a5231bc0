"""Official Excel templates of every form, written with xlsxwriter from the form data and layout.

`generate_templates` writes one workbook per unit and form for a period plus a blank set;
`write_template` writes one workbook (optionally with a unit's last accepted 附件4 figures as
captions naming their month, or ledger rows prefilled). Every cell position comes from
pipeline.layout, every label from the form definition, so the reader finds exactly what the
writer put. Output is byte-identical for the same inputs: no timestamps, a fixed creation date
derived from the period, fixed zip entry dates.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import numbers
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from pipeline import __version__
from pipeline.forms import (
    SCHEMAS_DIR,
    TICKS,
    Calendar,
    ChecklistForm,
    Form,
    LedgerColumn,
    LedgerForm,
    ProgressForm,
    Unit,
    load_calendar,
    load_forms,
    load_units,
    parse_period,
    period_end,
    period_label,
    shift_period,
)
from pipeline.fsutil import atomic_write_bytes
from pipeline.layout import (
    INSTRUCTIONS_SHEET,
    META_KEYS,
    META_SHEET,
    PERIOD_LABEL,
    UNIT_LABEL,
    Cell,
    ChecklistLayout,
    LedgerLayout,
    ProgressLayout,
    checklist_layout,
    col_letter,
    ledger_input_rows,
    progress_layout,
)

GENERATOR = "pipeline.templates"
AUTHOR = "福州市城乡建设局"
BLANK_DIR = "空白模板"
TICK_MARK = "√"

BODY_FONT = "宋体"
TITLE_FONT = "黑体"
BODY_SIZE = 11
SMALL_SIZE = 9
# printable width of landscape A4 with our margins, and a column-width unit as LibreOffice draws it
LANDSCAPE_WIDTH_PT = 760.0
PT_PER_UNIT = 7.6
LEDGER_RULED_ROWS = 20
A4_LABEL_SIZE = 10
GREY = "#595959"
RECONSTRUCTED_FILL = "#FFF2CC"
HEADER_FILL = "#F2F2F2"
DATE_FORMAT = "yyyy-mm-dd"
LONG_DATE_FORMAT = 'yyyy"年"m"月"d"日"'
COUNT_FORMAT = "0"
MONEY_FORMAT = "0.00##"
DATE_MIN = dt.date(2000, 1, 1)
DATE_MAX = dt.date(2099, 12, 31)
# xlsxwriter (and Excel) limit an inline dropdown list to 255 characters.
INLINE_LIST_LIMIT = 255
A4 = 9
PAGE_FOOTER = "&C&9第 &P 页 共 &N 页"


# --- file names and the whole set ----------------------------------------------------------


def template_filename(form: Form, unit: Unit | None, period: str | None) -> str:
    """A name a clerk understands: 附件4_进展情况调度表_鼓楼区_2023年5月.xlsx.

    The blank template has neither unit nor period: 附件4_进展情况调度表_空白模板.xlsx.
    """
    parts = [form.annex, form.short_name]
    if unit is None and period is None:
        parts.append(BLANK_DIR)
    else:
        if unit is not None:
            parts.append(unit.name)
        if period is not None:
            parts.append(period_label(period))
    return "_".join(parts) + ".xlsx"


def generate_templates(
    period: str,
    out_dir: Path,
    *,
    schemas_dir: Path = SCHEMAS_DIR,
    units: Sequence[Unit] | None = None,
    blank: bool = True,
) -> list[Path]:
    """Write every form's template for every unit, plus a blank set, for `period` (YYYY-MM).

    Layout: out_dir/<period>/<unit name>/<file> and out_dir/<period>/空白模板/<file>.
    Returns the written paths in generation order. Raises ValueError on a malformed period and
    DefinitionError on a malformed form definition.
    """
    parse_period(period)
    forms = load_forms(schemas_dir)
    chosen = tuple(load_units(schemas_dir) if units is None else units)
    base = Path(out_dir) / period
    written: list[Path] = []
    for unit in chosen:
        for form in forms.values():
            path = base / unit.name / template_filename(form, unit, period)
            write_template(form, path, unit=unit, period=period, schemas_dir=schemas_dir)
            written.append(path)
    if blank:
        for form in forms.values():
            path = base / BLANK_DIR / template_filename(form, None, None)
            write_template(form, path, unit=None, period=None, schemas_dir=schemas_dir)
            written.append(path)
    return written


def write_template(
    form: Form,
    path: Path,
    *,
    unit: Unit | None,
    period: str | None,
    reference: Mapping[str, Decimal] | None = None,
    reference_period: str | None = None,
    ledger_rows: Sequence[Mapping[str, Any]] | None = None,
    ledger_period: str | None = None,
    schemas_dir: Path = SCHEMAS_DIR,
) -> None:
    """Write one template workbook to `path` (atomically; parent folders are created).

    `unit`/`period` None leaves them as input cells with dropdowns (the blank template).
    `reference` (附件4 only): the unit's last accepted figures by value code, from the month
    `reference_period`, shown as locked captions: "上月 12" when that is the month just before
    `period` (or not given), else naming it, "2023年6月 12". `ledger_rows` (ledger only): rows
    keyed by column key, prefilled into the data rows and still editable, with room after them
    for new hazards (layout.ledger_input_rows); `ledger_period` is the month of the ledger they
    come from. The 填表说明 sheet says where the prefilled data come from. Raises ValueError when
    these do not fit the form.
    """
    for p in (period, reference_period, ledger_period):
        if p is not None:
            parse_period(p)
    if reference and not isinstance(form, ProgressForm):
        raise ValueError(f"reference figures only apply to 附件4, not {form.id}")
    if ledger_rows and not isinstance(form, LedgerForm):
        raise ValueError(f"ledger rows only apply to the ledger, not {form.id}")
    calendar = load_calendar(schemas_dir)
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "default_format_properties": {"font_name": BODY_FONT, "font_size": BODY_SIZE},
        },
    )
    ctx = _Context(workbook, form, unit, period, calendar, load_units(schemas_dir))
    if isinstance(form, ProgressForm):
        ctx.reference_period = reference_period
        _write_progress(ctx, form, reference or {})
    elif isinstance(form, ChecklistForm):
        _write_checklist(ctx, form)
    else:
        ctx.ledger_period = ledger_period
        _write_ledger(ctx, form, ledger_rows or ())
    _write_instructions(ctx)
    _write_meta(ctx)
    _set_properties(ctx)
    workbook.close()
    atomic_write_bytes(Path(path), buffer.getvalue())


# --- shared machinery ------------------------------------------------------------------------


class _Context:
    """One workbook being written: its sheets, a format cache and the form's unit/period."""

    def __init__(
        self,
        workbook: Workbook,
        form: Form,
        unit: Unit | None,
        period: str | None,
        calendar: Calendar,
        all_units: Sequence[Unit],
    ) -> None:
        self.wb = workbook
        self.form = form
        self.unit = unit
        self.period = period
        self.calendar = calendar
        self.all_units = all_units
        self.ws = workbook.add_worksheet(form.sheet_name)
        self.notes_ws = workbook.add_worksheet(INSTRUCTIONS_SHEET)
        self.meta_ws = workbook.add_worksheet(META_SHEET)
        self._formats: dict[tuple[tuple[str, Any], ...], Format] = {}
        self._lists_col = 3  # meta sheet columns D… hold long dropdown lists
        # What the sheet was prefilled with, for the 填表说明: reference figures shown (附件4) and
        # the month they come from; ledger rows written and the month of their ledger.
        self.reference_shown = False
        self.reference_period: str | None = None
        self.ledger_rows = 0
        self.ledger_period: str | None = None

    def fmt(self, **props: Any) -> Format:
        """A cached format: body font, vertically centred, plus `props`."""
        full: dict[str, Any] = {"font_name": BODY_FONT, "font_size": BODY_SIZE, "valign": "vcenter"}
        full.update(props)
        key = tuple(sorted(full.items()))
        if key not in self._formats:
            self._formats[key] = self.wb.add_format(full)
        return self._formats[key]

    def list_source(self, values: Sequence[str]) -> list[str] | str:
        """An inline list when short enough, else a range on the hidden metadata sheet."""
        if len(",".join(values)) <= INLINE_LIST_LIMIT:
            return list(values)
        col = self._lists_col
        self._lists_col += 1
        for i, value in enumerate(values):
            self.meta_ws.write_string(i, col, value)
        letter = col_letter(col)
        return f"='{META_SHEET}'!${letter}$1:${letter}${len(values)}"

    @property
    def period_text(self) -> str:
        return period_label(self.period) if self.period else ""

    @property
    def reference_tag(self) -> str:
        return reference_tag(self.period, self.reference_period)


def reference_tag(period: str | None, reference_period: str | None) -> str:
    """How a prefilled figure's month is named beside it: '上月' when it is the month just before
    `period` (or unknown), else the month itself, '2023年6月' (a unit that did not report, or was
    rejected, last month shows its older figures under their own month, never as 上月)."""
    if reference_period is None or (
        period is not None and reference_period == shift_period(period, -1)
    ):
        return "上月"
    return period_label(reference_period)


def _older_than_last_month(period: str | None, source: str | None) -> bool:
    """Whether prefilled data from `source` skip at least one month before `period`."""
    return period is not None and source is not None and source < shift_period(period, -1)


def _text_units(text: str, size: float) -> float:
    """Approximate width of `text` in column-width units (a CJK glyph is two digits wide)."""
    units = sum(2.0 if ord(ch) > 0x2E7F else 1.0 for ch in text)
    return units * size / BODY_SIZE


def _line_count(text: str, width: float, size: float = BODY_SIZE) -> int:
    usable = max(width - 1.2, 1.0)
    return sum(max(1, math.ceil(_text_units(part, size) / usable)) for part in text.split("\n"))


def _line_height(size: float) -> float:
    return size * 1.45


def _width(columns: Sequence[Any], first: int, last: int) -> float:
    return float(sum(c.width for c in columns[first : last + 1]))


def _protect(ws: Worksheet) -> None:
    # No password: the protection only stops accidental edits of labels and layout.
    ws.protect(
        "",
        {
            "format_rows": True,
            "format_columns": True,
            "select_locked_cells": True,
            "select_unlocked_cells": True,
        },
    )


def _print_setup(
    ws: Worksheet,
    *,
    landscape: bool,
    repeat: tuple[int, int] | None,
    tall: int = 0,
    scale: int | None = None,
) -> None:
    ws.set_paper(A4)
    if landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    if scale is None:
        ws.fit_to_pages(1, tall)
    else:
        ws.set_print_scale(scale)
    ws.center_horizontally()
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.7)
    ws.set_footer(PAGE_FOOTER, {"margin": 0.3})
    if repeat is not None:
        ws.repeat_rows(*repeat)


def _validation(
    ws: Worksheet,
    first: Cell,
    last: Cell,
    spec: dict[str, Any],
    *,
    input_title: str,
    input_message: str,
    error_title: str,
    error_message: str,
) -> None:
    options = dict(spec)
    options.update(
        {
            "ignore_blank": True,
            "input_title": input_title,
            "input_message": input_message,
            "error_title": error_title,
            "error_message": error_message,
            "error_type": "stop",
        }
    )
    ws.data_validation(first.row, first.col, last.row, last.col, options)


def _tick_validation(ws: Worksheet, first: Cell, last: Cell, what: str) -> None:
    _validation(
        ws,
        first,
        last,
        {"validate": "list", "source": [TICK_MARK]},
        input_title=what,
        input_message=f"符合的一栏从下拉列表选择“{TICK_MARK}”，其余栏留空。",
        error_title="只能填“√”",
        error_message=f"此处只能填“{TICK_MARK}”，请从下拉列表中选择；不选的栏请留空。",
    )


def _date_validation(ws: Worksheet, first: Cell, last: Cell, what: str) -> None:
    _validation(
        ws,
        first,
        last,
        {"validate": "date", "criteria": "between", "minimum": DATE_MIN, "maximum": DATE_MAX},
        input_title=what,
        input_message="请填写日期，格式如 2023-06-05。",
        error_title="日期格式不对",
        error_message="请填写有效日期，格式如 2023-06-05（年-月-日）。",
    )


def _unit_period_inputs(ctx: _Context, unit_cell: Cell, period_cell: Cell) -> None:
    """Dropdowns of unit names and campaign periods for the blank template."""
    names = [u.name for u in ctx.all_units]
    _validation(
        ctx.ws,
        unit_cell,
        unit_cell,
        {"validate": "list", "source": ctx.list_source(names)},
        input_title="填报单位",
        input_message="请从下拉列表中选择本单位名称。",
        error_title="填报单位不对",
        error_message="请从下拉列表中选择本单位名称，不要自行输入简称或全称。",
    )
    labels = [period_label(p) for p in ctx.calendar.periods]
    _validation(
        ctx.ws,
        period_cell,
        period_cell,
        {"validate": "list", "source": ctx.list_source(labels)},
        input_title="报送期间",
        input_message="请从下拉列表中选择报送期间（月份），如“2023年6月”表示截至6月末。",
        error_title="报送期间不对",
        error_message="请从下拉列表中选择报送期间，如“2023年6月”。",
    )


def _set_properties(ctx: _Context) -> None:
    form = ctx.form
    first = ctx.period or ctx.calendar.first_period
    year, month = parse_period(first)
    title = " ".join(x for x in (_heading(form), *(_who_when(ctx))) if x)
    ctx.wb.set_properties(
        {
            "title": title,
            "subject": ctx.calendar.campaign,
            "author": AUTHOR,
            "manager": AUTHOR,
            "company": AUTHOR,
            "category": ctx.calendar.document,
            "keywords": form.id,
            "comments": f"由 {GENERATOR} {__version__} 生成（表单版本 {form.version}）",
            "created": dt.datetime(year, month, 1, 0, 0, 0),
        }
    )
    ctx.wb.set_custom_property("form_id", form.id)
    ctx.wb.set_custom_property("form_version", form.version)
    if ctx.unit is not None:
        ctx.wb.set_custom_property("unit_code", ctx.unit.code)
    if ctx.period is not None:
        ctx.wb.set_custom_property("period", ctx.period)


def _heading(form: Form) -> str:
    """附件4 福州市…调度表; the ledger has no annex number, just its title."""
    return form.title if isinstance(form, LedgerForm) else f"{form.annex} {form.title}"


def _who_when(ctx: _Context) -> tuple[str, ...]:
    if ctx.unit is None and ctx.period is None:
        return (BLANK_DIR,)
    return (ctx.unit.name if ctx.unit else "", ctx.period_text)


def _write_meta(ctx: _Context) -> None:
    """Hidden key/value sheet (META_KEYS in column A, values in B) naming form, unit, period."""
    values = {
        "form_id": ctx.form.id,
        "form_version": ctx.form.version,
        "form_title": ctx.form.title,
        "unit_code": ctx.unit.code if ctx.unit else "",
        "unit_name": ctx.unit.name if ctx.unit else "",
        "period": ctx.period or "",
        "generator": GENERATOR,
        "generator_version": __version__,
    }
    ws = ctx.meta_ws
    text = ctx.fmt(num_format="@")
    for row, key in enumerate(META_KEYS):
        ws.write_string(row, 0, key, text)
        if values[key]:
            ws.write_string(row, 1, values[key], text)
    ws.set_column(0, 0, 18)
    ws.set_column(1, 1, 40)
    ws.hide()
    _protect(ws)


# --- 附件4 -------------------------------------------------------------------------------------


def _decimal_text(value: Decimal) -> str:
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _write_progress(ctx: _Context, form: ProgressForm, reference: Mapping[str, Decimal]) -> None:
    # Codes the form does not have, and non-finite figures, are not shown.
    figures = {code: Decimal(str(value)) for code, value in reference.items()}
    reference = {c: v for c, v in figures.items() if c in form.value_codes and v.is_finite()}
    ctx.reference_shown = bool(reference)
    tag = ctx.reference_tag
    lay: ProgressLayout = progress_layout(form)
    ws = ctx.ws
    last = lay.last_col
    for i, column in enumerate(lay.columns):
        ws.set_column(i, i, column.width)

    ws.write_string(
        lay.annex_cell.row,
        lay.annex_cell.col,
        form.annex,
        ctx.fmt(font_name=TITLE_FONT, font_size=14),
    )
    ws.set_row(lay.title_row, 36)
    ws.merge_range(
        lay.title_row,
        0,
        lay.title_row,
        last,
        form.title,
        ctx.fmt(font_name=TITLE_FONT, font_size=18, bold=True, align="center"),
    )

    # 填报单位：… 时间：…
    label = ctx.fmt(align="left")
    ws.set_row(lay.unit_label_cell.row, 24)
    _label_merged(ws, lay.unit_label_cell, lay.unit_cell.col - 1, form.unit_label, label)
    unit_fmt = ctx.fmt(bottom=1, align="left", locked=ctx.unit is not None)
    ws.merge_range(
        lay.unit_cell.row,
        lay.unit_cell.col,
        lay.unit_cell.row,
        lay.unit_cell.col + 2,
        ctx.unit.name if ctx.unit else "",
        unit_fmt,
    )
    ws.write_string(
        lay.date_label_cell.row, lay.date_label_cell.col, form.date_label, ctx.fmt(align="right")
    )
    date_fmt = ctx.fmt(bottom=1, align="center", locked=False, num_format=LONG_DATE_FORMAT)
    ws.merge_range(lay.date_cell.row, lay.date_cell.col, lay.date_cell.row, last, "", date_fmt)
    # The seed's "时间：2023 年 月 日" is the input's prompt: text in the cell would be read as input.
    seed = f"原表为“{form.date_label}{form.date_placeholder}”，" if form.date_placeholder else ""
    _validation(
        ws,
        lay.date_cell,
        lay.date_cell,
        {"validate": "date", "criteria": "between", "minimum": DATE_MIN, "maximum": DATE_MAX},
        input_title="填报时间",
        input_message=f"{seed}请填写填报日期，格式如 2023-06-05（显示为“2023年6月5日”）。",
        error_title="日期格式不对",
        error_message="请填写有效日期，格式如 2023-06-05（年-月-日）。",
    )

    # 报送期间：… (the month whose end the cumulative figures run to)
    ws.set_row(lay.period_label_cell.row, 24)
    _label_merged(ws, lay.period_label_cell, lay.period_cell.col - 1, PERIOD_LABEL, label)
    _write_text(
        ws,
        lay.period_cell.row,
        lay.period_cell.col,
        ctx.period_text,
        ctx.fmt(bottom=1, align="left", locked=ctx.period is not None),
    )
    if ctx.period:
        end = period_end(ctx.period)
        note = (
            f"（各项填自专项行动开始至{end.year}年{end.month}月{end.day}日的累计数；"
            f"不填单位，未发生的填0）"
        )
    else:
        note = "（各项填自专项行动开始至所选月份月末的累计数；不填单位，未发生的填0）"
    ws.merge_range(
        lay.period_cell.row,
        lay.period_cell.col + 1,
        lay.period_cell.row,
        last,
        note,
        ctx.fmt(font_size=SMALL_SIZE, font_color=GREY, align="left"),
    )
    if ctx.unit is None or ctx.period is None:
        _unit_period_inputs(ctx, lay.unit_cell, lay.period_cell)

    # The table: sections, items in pairs, caption row above input row.
    section_fmt = ctx.fmt(border=1, align="center", text_wrap=True, bold=True)
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
    no_fmt = ctx.fmt(border=1, align="center")
    label_fmt = ctx.fmt(border=1, align="left", text_wrap=True, font_size=A4_LABEL_SIZE)
    cap = {"font_size": SMALL_SIZE, "font_color": GREY, "align": "center", "text_wrap": True}
    caption_fmt = ctx.fmt(top=1, left=1, right=1, **cap)
    count_fmt = ctx.fmt(
        bottom=1, left=1, right=1, align="center", locked=False, num_format=COUNT_FORMAT
    )
    money_fmt = ctx.fmt(
        bottom=1, left=1, right=1, align="center", locked=False, num_format=MONEY_FORMAT
    )
    items = {it.code: it for s in form.sections for it in s.items}
    row_lines: dict[int, tuple[int, int]] = {}  # top row -> (label lines, caption lines)
    for cells in lay.items:
        item = items[cells.code]
        ws.merge_range(
            cells.label_merge.first.row,
            cells.label_merge.first.col,
            cells.label_merge.last.row,
            cells.label_merge.last.col,
            item.label,
            label_fmt,
        )
        caption_lines = 1
        for code, caption_cell, input_cell, input_merge in cells.inputs:
            value = form.value(code)
            caption = value.sub_label or value.unit
            two = len(cells.inputs) > 1
            if code in reference:
                previous = f"{tag} {_decimal_text(reference[code])}"
                caption = f"{caption}\n{previous}" if two else f"{caption}（{previous}）"
                # a caption naming an older month may wrap in its narrow cell
                width = (
                    _width(lay.columns, input_merge.first.col, input_merge.last.col)
                    if input_merge is not None
                    else lay.columns[caption_cell.col].width
                )
                lines = _line_count(caption, width, SMALL_SIZE)
            else:
                lines = caption.count("\n") + 1
            caption_lines = max(caption_lines, lines)
            if input_merge is None:
                ws.write_string(caption_cell.row, caption_cell.col, caption, caption_fmt)
            else:
                ws.merge_range(
                    caption_cell.row,
                    input_merge.first.col,
                    caption_cell.row,
                    input_merge.last.col,
                    caption,
                    caption_fmt,
                )
            fmt = money_fmt if value.is_money else count_fmt
            if input_merge is None:
                ws.write_blank(input_cell.row, input_cell.col, None, fmt)
            else:
                ws.merge_range(
                    input_merge.first.row,
                    input_merge.first.col,
                    input_merge.last.row,
                    input_merge.last.col,
                    "",
                    fmt,
                )
            _progress_validation(ws, input_cell, item.label, value.unit, value.is_money)
        lines = _line_count(item.label, lay.columns[cells.label_cell.col].width, A4_LABEL_SIZE)
        top = cells.no_cell.row
        old = row_lines.get(top, (1, 1))
        row_lines[top] = (max(old[0], lines), max(old[1], caption_lines))
        # the no cell spans both rows visually
        ws.merge_range(top, cells.no_cell.col, top + 1, cells.no_cell.col, item.no, no_fmt)
    # Empty right half of a pair when a section has an odd number of items.
    used_cols: dict[int, set[int]] = {}
    for cells in lay.items:
        used_cols.setdefault(cells.no_cell.row, set()).add(cells.no_cell.col)
    right = max(c.no_cell.col for c in lay.items)
    for top, cols in used_cols.items():
        if right not in cols:
            for row in (top, top + 1):
                for col in range(right, last + 1):
                    ws.write_blank(row, col, None, ctx.fmt(border=1))
    for top, (label_lines, caption_lines) in row_lines.items():
        caption_h = max(14.0, caption_lines * _line_height(SMALL_SIZE) + 2)
        total = max(caption_h + 20.0, label_lines * _line_height(A4_LABEL_SIZE) + 5)
        ws.set_row(top, caption_h)
        ws.set_row(top + 1, total - caption_h)

    # The seed's footnotes, verbatim, under the table.
    note_fmt = ctx.fmt(font_size=10, align="left", valign="top", text_wrap=True)
    width = _width(lay.columns, 0, last)
    for row, text in zip(lay.footnote_rows, form.footnotes, strict=True):
        ws.merge_range(row, 0, row, last, text, note_fmt)
        ws.set_row(row, _line_count(text, width, 10) * _line_height(10) + 4)

    ws.freeze_panes(lay.first_table_row, 0)
    _print_setup(ws, landscape=True, repeat=None, tall=1)
    ws.print_area(0, 0, lay.footnote_rows[-1] if form.footnotes else lay.last_table_row, last)
    _protect(ws)
    ws.activate()


def _write_text(ws: Worksheet, row: int, col: int, text: str, fmt: Format) -> None:
    """A string cell, or a formatted blank one (not an empty string) when there is no text."""
    if text:
        ws.write_string(row, col, text, fmt)
    else:
        ws.write_blank(row, col, None, fmt)


def _label_merged(ws: Worksheet, cell: Cell, last_col: int, text: str, fmt: Format) -> None:
    if last_col > cell.col:
        ws.merge_range(cell.row, cell.col, cell.row, last_col, text, fmt)
    else:
        ws.write_string(cell.row, cell.col, text, fmt)


def _progress_validation(ws: Worksheet, cell: Cell, label: str, unit: str, is_money: bool) -> None:
    title = label[:32] if len(label) <= 32 else label[:31] + "…"
    if is_money:
        _validation(
            ws,
            cell,
            cell,
            {"validate": "decimal", "criteria": ">=", "value": 0},
            input_title=title,
            input_message="填写累计金额（万元），只填数字，最多4位小数，如 3.5；未发生的填0。",
            error_title="请填写数字",
            error_message="此处只能填写不小于0的数字（单位万元，最多4位小数），不要带单位或文字。",
        )
    else:
        _validation(
            ws,
            cell,
            cell,
            {"validate": "integer", "criteria": ">=", "value": 0},
            input_title=title,
            input_message=f"填写累计数（{unit}），只填整数，如 12，不要带“{unit}”字；未发生的填0。",
            error_title="请填写整数",
            error_message="此处只能填写不小于0的整数，不要带单位、小数或文字。",
        )


# --- 附件1–3 -----------------------------------------------------------------------------------


def _runs(values: Sequence[str], breaks: Sequence[int] = ()) -> list[tuple[int, int]]:
    """Index ranges [first, last] of consecutive equal values; a run also ends before `breaks`."""
    runs: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start] or i in breaks:
            runs.append((start, i - 1))
            start = i
    return runs


def _write_checklist(ctx: _Context, form: ChecklistForm) -> None:
    lay: ChecklistLayout = checklist_layout(form)
    ws = ctx.ws
    last = lay.last_col
    columns = list(lay.columns)
    widths = [c.width for c in columns]
    # Column A (序号) also carries "填报单位：" and the footer labels start there; it must be
    # wide enough for the label to show in full on screen and on paper.
    widths[0] = max(widths[0], _text_units(UNIT_LABEL, 10) + 1.0)
    for i, w in enumerate(widths):
        ws.set_column(i, i, w)

    ws.write_string(
        lay.annex_cell.row,
        lay.annex_cell.col,
        form.annex,
        ctx.fmt(font_name=TITLE_FONT, font_size=14),
    )
    ws.set_row(lay.title_row, 34)
    ws.merge_range(
        lay.title_row,
        0,
        lay.title_row,
        last,
        form.title,
        ctx.fmt(font_name=TITLE_FONT, font_size=18, bold=True, align="center"),
    )

    # 填报单位：… [legend] 报送期间：…
    info = lay.info_row
    ws.set_row(info, 24)
    label = ctx.fmt(font_size=10, align="left")
    ws.write_string(info, lay.unit_label_cell.col, UNIT_LABEL, label)
    text_cols = [i for i, c in enumerate(columns) if c.key in ("category", "matter", "content")]
    unit_last = lay.col("matter")
    ws.merge_range(
        info,
        lay.unit_cell.col,
        info,
        max(unit_last, lay.unit_cell.col),
        ctx.unit.name if ctx.unit else "",
        ctx.fmt(bottom=1, align="left", locked=ctx.unit is not None),
    )
    legend_first = max(unit_last, lay.unit_cell.col) + 1
    legend_last = lay.period_label_cell.col - 2
    reconstructed = [it.no for it in form.items if it.reconstructed]
    if reconstructed and legend_last >= legend_first:
        legend = f"浅黄色底纹的第{_ranges(reconstructed)}项为补全内容，待市建设局确认（见表下注及“填表说明”）"
        ws.merge_range(
            info,
            legend_first,
            info,
            legend_last,
            legend,
            ctx.fmt(
                font_size=SMALL_SIZE,
                font_color=GREY,
                align="left",
                text_wrap=True,
                bg_color=RECONSTRUCTED_FILL,
            ),
        )
    ws.write_string(
        info, lay.period_label_cell.col, PERIOD_LABEL, ctx.fmt(font_size=10, align="right")
    )
    ws.merge_range(
        info,
        lay.period_cell.col,
        info,
        last,
        ctx.period_text,
        ctx.fmt(bottom=1, align="left", locked=ctx.period is not None),
    )
    if ctx.unit is None or ctx.period is None:
        _unit_period_inputs(ctx, lay.unit_cell, lay.period_cell)

    # Two-row header.
    head = ctx.fmt(
        border=1, align="center", text_wrap=True, bold=True, bg_color=HEADER_FILL, font_size=10
    )
    top, sub = lay.header_rows
    ws.set_row(top, 30)
    ws.set_row(sub, 22)
    col = 0
    while col <= last:
        column = columns[col]
        if column.group:
            end = col
            while end + 1 <= last and columns[end + 1].group == column.group:
                end += 1
            ws.merge_range(top, col, top, end, column.header, head)
            for c in range(col, end + 1):
                ws.write_string(sub, c, columns[c].sub_header, head)
            col = end + 1
        else:
            ws.merge_range(top, col, sub, col, column.header, head)
            col += 1

    # One row per item.
    items = form.items
    first = lay.first_item_row
    center = ctx.fmt(border=1, align="center", text_wrap=True)
    left = ctx.fmt(border=1, align="left", text_wrap=True)
    left_new = ctx.fmt(border=1, align="left", text_wrap=True, bg_color=RECONSTRUCTED_FILL)
    center_new = ctx.fmt(border=1, align="center", text_wrap=True, bg_color=RECONSTRUCTED_FILL)
    tick_fmt = ctx.fmt(border=1, align="center", locked=False, font_size=12)
    text_in = ctx.fmt(
        border=1, align="left", valign="top", text_wrap=True, locked=False, font_size=10
    )
    date_in = ctx.fmt(border=1, align="center", locked=False, num_format=DATE_FORMAT, font_size=10)
    # matter is a group label when there is a content column (附件2), else the item text itself
    matter_runs = _runs([it.matter for it in items]) if form.has_content_column else []
    breaks = [r[0] for r in matter_runs]
    category_col = lay.col("category")
    for a, b in _runs([it.category for it in items], breaks):
        _merge_or_write(ws, first + a, first + b, category_col, items[a].category, center)
    matter_col = lay.col("matter")
    if form.has_content_column:
        for a, b in matter_runs:
            new = all(it.reconstructed for it in items[a : b + 1])
            _merge_or_write(
                ws, first + a, first + b, matter_col, items[a].matter, center_new if new else center
            )
    for i, item in enumerate(items):
        row = first + i
        ws.write_number(row, lay.col("no"), item.no, center_new if item.reconstructed else center)
        text_col = lay.col("content") if form.has_content_column else matter_col
        text = item.content if form.has_content_column else item.matter
        ws.write_string(row, text_col, text, left_new if item.reconstructed else left)
        for answer in TICKS:
            ws.write_blank(row, lay.tick_col(answer), None, tick_fmt)
        if form.has_major_column:
            for answer in ("是", "否"):
                ws.write_blank(row, lay.major_col(answer), None, tick_fmt)
        ws.write_blank(row, lay.col("description"), None, text_in)
        ws.write_blank(row, lay.col("requirement"), None, text_in)
        ws.write_blank(row, lay.col("deadline"), None, date_in)
        lines = _line_count(text, widths[text_col], BODY_SIZE)
        ws.set_row(row, max(30.0, lines * _line_height(BODY_SIZE) + 6))
    last_item = lay.last_item_row
    _tick_validation(
        ws, Cell(first, lay.tick_col("是")), Cell(last_item, lay.tick_col("不涉及")), "检查结果"
    )
    if form.has_major_column:
        _tick_validation(
            ws,
            Cell(first, lay.major_col("是")),
            Cell(last_item, lay.major_col("否")),
            "是否重大隐患",
        )
    _validation(
        ws,
        Cell(first, lay.col("description")),
        Cell(last_item, lay.col("description")),
        {"validate": "length", "criteria": "<=", "value": 1000},
        input_title=form.description_label,
        input_message="存在隐患的，简要描述隐患情况（部位、问题）；无隐患的留空。",
        error_title="内容过长",
        error_message="描述请控制在1000字以内。",
    )
    _validation(
        ws,
        Cell(first, lay.col("requirement")),
        Cell(last_item, lay.col("requirement")),
        {"validate": "length", "criteria": "<=", "value": 1000},
        input_title="整改要求",
        input_message="存在隐患的，填写整改要求；无隐患的留空。",
        error_title="内容过长",
        error_message="整改要求请控制在1000字以内。",
    )
    _date_validation(
        ws, Cell(first, lay.col("deadline")), Cell(last_item, lay.col("deadline")), "整改时限"
    )

    # Footer fields: label, then an underlined input cell.
    input_last = max(text_cols) if text_cols else 2
    for f in form.footer:
        label_cell = lay.footer_label_cell(f.key)
        cell = lay.footer_cell(f.key)
        ws.set_row(cell.row, 24)
        _label_merged(ws, label_cell, cell.col - 1, f"{f.label}：", ctx.fmt(align="left"))
        if f.type == "date":
            fmt = ctx.fmt(bottom=1, align="left", locked=False, num_format=DATE_FORMAT)
        else:
            fmt = ctx.fmt(bottom=1, align="left", locked=False, num_format="@")
        _merge_or_write_row(ws, cell.row, cell.col, max(input_last, cell.col), "", fmt)
        if f.type == "date":
            _date_validation(ws, cell, cell, f.label)
        else:
            _validation(
                ws,
                cell,
                cell,
                {"validate": "length", "criteria": "<=", "value": 255},
                input_title=f.label,
                input_message=f"请填写{f.label}（必填）。",
                error_title="内容过长",
                error_message="请控制在255字以内。",
            )

    # Notes under the form: the reconstruction note (附件2) and the form's notes.
    notes = [*([form.reconstructed_note] if form.reconstructed_note else []), *form.notes]
    note_fmt = ctx.fmt(font_size=SMALL_SIZE, align="left", valign="top", text_wrap=True)
    width = sum(widths)
    last_row = lay.notes_row - 1
    for i, text in enumerate(notes):
        row = lay.notes_row + i
        if len(notes) == 1:
            shown = f"注：{text}"
        else:
            shown = f"{'注：' if i == 0 else '　　'}{i + 1}. {text}"
        ws.merge_range(row, 0, row, last, shown, note_fmt)
        ws.set_row(row, _line_count(shown, width, SMALL_SIZE) * _line_height(SMALL_SIZE) + 4)
        last_row = row

    ws.freeze_panes(first, 0)
    _print_setup(ws, landscape=True, repeat=(top, sub))
    ws.print_area(0, 0, last_row, last)
    _protect(ws)
    ws.activate()


def _ranges(numbers: Sequence[int]) -> str:
    """[1, 2, 3, 7] -> '1—3、7'."""
    parts: list[str] = []
    for a, b in _runs_of_consecutive(sorted(numbers)):
        parts.append(str(a) if a == b else f"{a}—{b}")
    return "、".join(parts)


def _runs_of_consecutive(numbers: Sequence[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def _merge_or_write(ws: Worksheet, r0: int, r1: int, col: int, text: str, fmt: Format) -> None:
    if r1 > r0:
        ws.merge_range(r0, col, r1, col, text, fmt)
    else:
        ws.write_string(r0, col, text, fmt)


def _merge_or_write_row(ws: Worksheet, row: int, c0: int, c1: int, text: str, fmt: Format) -> None:
    if c1 > c0:
        ws.merge_range(row, c0, row, c1, text, fmt)
    else:
        ws.write_blank(row, c0, None, fmt)


# --- 台账 --------------------------------------------------------------------------------------


def _write_ledger(ctx: _Context, form: LedgerForm, rows: Sequence[Mapping[str, Any]]) -> None:
    # A long prefilled ledger gets a longer input area, with room left for new hazards.
    lay = LedgerLayout(form=form, input_rows=ledger_input_rows(form, len(rows)))
    keys = {c.key for c in form.columns}
    for i, row in enumerate(rows):
        extra = sorted(set(row) - keys)
        if extra:
            raise ValueError(f"ledger row {i + 1}: unknown columns {', '.join(extra)}")
    ctx.ledger_rows = len(rows)
    ws = ctx.ws
    last = lay.last_col
    for i, column in enumerate(form.columns):
        ws.set_column(i, i, column.width)
    # Printed two A4 pages wide; the title and the period note stay on the left page. Column A
    # (隐患编号) is repeated on the right page, so the title starts in column B.
    split = _ledger_split(form.columns)
    ws.set_row(lay.title_row, 34)
    ws.merge_range(
        lay.title_row,
        1 if split > 2 else 0,
        lay.title_row,
        split - 1 if split > 2 else last,
        form.title,
        ctx.fmt(font_name=TITLE_FONT, font_size=18, bold=True, align="center"),
    )
    info = lay.unit_label_cell.row
    ws.set_row(info, 24)
    ws.write_string(info, lay.unit_label_cell.col, form.unit_label, ctx.fmt(align="left"))
    ws.merge_range(
        info,
        lay.unit_cell.col,
        info,
        lay.period_label_cell.col - 1,
        ctx.unit.name if ctx.unit else "",
        ctx.fmt(bottom=1, align="left", locked=ctx.unit is not None),
    )
    ws.write_string(info, lay.period_label_cell.col, PERIOD_LABEL, ctx.fmt(align="right"))
    _write_text(
        ws,
        info,
        lay.period_cell.col,
        ctx.period_text,
        ctx.fmt(bottom=1, align="left", locked=ctx.period is not None),
    )
    if ctx.period:
        end = period_end(ctx.period)
        note = f"（自专项行动开始累计，截至{end.year}年{end.month}月{end.day}日）"
    else:
        note = "（自专项行动开始累计，截至所选月份月末）"
    note_last = split - 1 if split - 1 > lay.period_cell.col + 1 else last
    if note_last > lay.period_cell.col:
        ws.merge_range(
            info,
            lay.period_cell.col + 1,
            info,
            note_last,
            note,
            ctx.fmt(font_size=SMALL_SIZE, font_color=GREY, align="left"),
        )
    if ctx.unit is None or ctx.period is None:
        _unit_period_inputs(ctx, lay.unit_cell, lay.period_cell)

    head = ctx.fmt(
        border=1, align="center", text_wrap=True, bold=True, bg_color=HEADER_FILL, font_size=10
    )
    header_lines = max(_line_count(c.label, c.width, 10) for c in form.columns)
    ws.set_row(lay.header_row, max(30.0, header_lines * _line_height(10) + 6))
    for i, column in enumerate(form.columns):
        ws.write_string(lay.header_row, i, column.label, head)

    # Every data row is formatted (unlocked, number/date format, validation); the first
    # LEDGER_RULED_ROWS rows are ruled, and any later row gets its borders as soon as something
    # is typed in it. So a printout shows the ruled form plus the rows in use, not hundreds of
    # empty rows.
    first, last_row = lay.first_data_row, lay.last_data_row
    ruled = first + LEDGER_RULED_ROWS
    for i, column in enumerate(form.columns):
        ruled_fmt = _ledger_format(ctx, column, ruled=True)
        plain_fmt = _ledger_format(ctx, column, ruled=False)
        for r in range(first, last_row + 1):
            k = r - first
            value = rows[k].get(column.key) if k < len(rows) else None
            _write_ledger_value(ws, r, i, value, ruled_fmt if r < ruled else plain_fmt)
        _ledger_validation(ctx, column, Cell(first, i), Cell(last_row, i))
    if ruled <= last_row:
        ws.conditional_format(
            ruled,
            0,
            last_row,
            last,
            {
                "type": "formula",
                "criteria": f"=COUNTA(${col_letter(0)}{ruled + 1}:${col_letter(last)}{ruled + 1})>0",
                "format": ctx.wb.add_format({"border": 1}),
            },
        )

    ws.freeze_panes(first, 1)
    # 21 columns do not fit one A4 width legibly: two pages wide at a fixed scale (a fit-to
    # setting would override the manual column break), 隐患编号 repeated on the right page.
    bands = (
        _width(form.columns, 0, split - 1),
        _width(form.columns, 0, 0) + _width(form.columns, split, last),
    )
    scale = max(10, min(100, int(LANDSCAPE_WIDTH_PT / (max(bands) * PT_PER_UNIT) * 100)))
    _print_setup(ws, landscape=True, repeat=(lay.header_row, lay.header_row), scale=scale)
    ws.repeat_columns(0, 0)
    if 0 < split <= last:
        ws.set_v_pagebreaks([split])
    _protect(ws)
    ws.activate()


def _ledger_split(columns: Sequence[LedgerColumn]) -> int:
    """The first column of the right-hand page: the split that best balances the two pages."""
    widths = [c.width for c in columns]
    if len(widths) < 3:
        return len(widths)
    best, best_width = len(widths), math.inf
    for split in range(2, len(widths)):
        wider = max(sum(widths[:split]), widths[0] + sum(widths[split:]))
        if wider < best_width:
            best, best_width = split, wider
    return best


def _ledger_format(ctx: _Context, column: LedgerColumn, *, ruled: bool) -> Format:
    base: dict[str, Any] = {"border": 1 if ruled else 0, "locked": False, "font_size": 10}
    if column.type == "date":
        return ctx.fmt(align="center", num_format=DATE_FORMAT, **base)
    if column.type == "money":
        return ctx.fmt(align="right", num_format=MONEY_FORMAT, **base)
    if column.type in ("choice", "bool"):
        return ctx.fmt(align="center", **base)
    return ctx.fmt(align="left", text_wrap=True, num_format="@", **base)


def _write_ledger_value(ws: Worksheet, row: int, col: int, value: Any, fmt: Format) -> None:
    if value is None or value == "":
        ws.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        ws.write_string(row, col, "是" if value else "否", fmt)
    elif isinstance(value, dt.date):
        day = value if not isinstance(value, dt.datetime) else value.date()
        ws.write_datetime(row, col, dt.datetime(day.year, day.month, day.day), fmt)
    elif isinstance(value, Decimal | numbers.Real):
        ws.write_number(row, col, float(value), fmt)
    else:
        # County text stays text: never a formula, URL or number.
        ws.write_string(row, col, str(value), fmt)


def _ledger_validation(ctx: _Context, column: LedgerColumn, first: Cell, last: Cell) -> None:
    ws = ctx.ws
    need = (
        "必填。"
        if column.required
        else ("整改中的隐患必填（五落实）。" if column.open_required else "")
    )
    hint = f"{column.hint}。" if column.hint else ""
    title = column.label[:32]
    if column.type in ("choice", "bool"):
        choices = list(column.choices) or ["是", "否"]
        _validation(
            ws,
            first,
            last,
            {"validate": "list", "source": ctx.list_source(choices)},
            input_title=title,
            input_message=f"{need}请从下拉列表中选择：{'/'.join(choices)}。{hint}",
            error_title="请从列表中选择",
            error_message=f"“{column.label}”只能选择：{'/'.join(choices)}。",
        )
    elif column.type == "date":
        _validation(
            ws,
            first,
            last,
            {"validate": "date", "criteria": "between", "minimum": DATE_MIN, "maximum": DATE_MAX},
            input_title=title,
            input_message=f"{need}请填写日期，格式如 2023-06-05。{hint}",
            error_title="日期格式不对",
            error_message="请填写有效日期，格式如 2023-06-05（年-月-日）。",
        )
    elif column.type == "money":
        _validation(
            ws,
            first,
            last,
            {"validate": "decimal", "criteria": ">=", "value": 0},
            input_title=title,
            input_message=f"{need}单位万元，只填数字，最多4位小数，不要带单位。{hint}",
            error_title="请填写数字",
            error_message="此处只能填写不小于0的数字（单位万元，最多4位小数），不要带单位或文字。",
        )
    elif column.type == "credit_code":
        _validation(
            ws,
            first,
            last,
            {"validate": "length", "criteria": "==", "value": 18},
            input_title=title,
            input_message=f"{need or '可不填。'}填写的须为18位统一社会信用代码。{hint}",
            error_title="统一社会信用代码位数不对",
            error_message="统一社会信用代码应为18位（数字和大写字母），请核对。",
        )
    else:
        _validation(
            ws,
            first,
            last,
            {"validate": "length", "criteria": "<=", "value": 1000},
            input_title=title,
            input_message=f"{need}{hint}" or f"填写{column.label}。",
            error_title="内容过长",
            error_message="请控制在1000字以内。",
        )


# --- 填表说明 ----------------------------------------------------------------------------------


def _instruction_lines(ctx: _Context) -> list[tuple[str, str]]:
    """(style, text) lines of the 填表说明 sheet; style is 'title', 'head' or 'body'."""
    form = ctx.form
    cal = ctx.calendar
    out: list[tuple[str, str]] = [("title", INSTRUCTIONS_SHEET)]
    heading = _heading(form)
    out.append(("body", f"{heading}（表单版本 {form.version}）"))
    if ctx.unit is not None or ctx.period is not None:
        who = ctx.unit.name if ctx.unit else "（请选择）"
        when = ctx.period_text or "（请选择）"
        out.append(("body", f"填报单位：{who}　　报送期间：{when}"))
    else:
        out.append(("body", "本表为空白模板：请在表格上方的下拉列表中选择填报单位和报送期间。"))

    how: list[str] = [
        "只有需要填写的单元格可以编辑，其余单元格已锁定（工作表保护未设密码，仅为防止误改）。"
    ]
    if isinstance(form, ProgressForm):
        how += [
            "各项填写自专项行动开始至报送期间月末的累计数（不是当月数）；未发生的填0，不要留空。",
            "只填阿拉伯数字，不要带单位：填“12”，不要填“12个”或“十二”。"
            "“万元”栏可填小数，最多4位；其余各栏填整数。",
            "“行政处罚”“公布典型案例”“辖区举报奖励”三项各有两个数，分别填在小字标注的两个格内。",
            "“时间”填填报日期，格式如 2023-06-05。",
        ]
        if ctx.reference_shown:
            how.append(_reference_line(ctx))
    elif isinstance(form, ChecklistForm):
        how += [
            f"检查结果在“是”“否”“不涉及”三栏中选一栏，点击该格后从下拉列表选择“{TICK_MARK}”，其余两栏留空。",
            _hazard_details_line(form),
            "日期（整改时限、检查时间）按 2023-06-05 的格式填写。",
            "一份清单记录一次检查。同一报送期间有多次检查的，可复制本工作表（右键工作表标签→"
            "移动或复制→建立副本），每次检查填写一张。",
        ]
    else:
        how += [
            "每个重大事故隐患填写一行，从表头下第一行起连续填写，不要隔行。",
            "带下拉箭头的栏请从列表中选择；日期按 2023-06-05 的格式填写；金额只填数字（万元）。",
            "统一社会信用代码、隐患编号等请按文本填写，不要改成数字格式。",
        ]
        if ctx.ledger_rows:
            how.append(_prefilled_ledger_line(ctx))
    out.append(("head", "一、填写方法"))
    out += [("body", f"{i}. {t}") for i, t in enumerate(how, 1)]

    rules = [
        "请勿修改工作表名称，请勿插入或删除行、列，请勿删除任何工作表（包括隐藏的工作表）。",
        "文件名可以修改；请不要把几个单位或几个月的数据填在同一个文件里。",
        f"填好后以 .xlsx 格式通过电子邮件发送至市建设局（{cal.city_email}）；"
        "用 WPS 或 LibreOffice 另存为 .xls、.ods 格式的也可接收。",
    ]
    if ctx.period:
        due = cal.due_date(ctx.period)
        rules.append(
            f"本期（{ctx.period_text}）报表请于{due.year}年{due.month}月{due.day}日前报送"
            "（每月1日前上报截至上月末的累计情况）。"
        )
    else:
        rules.append("每月1日前上报截至上月末的累计情况。")
    out.append(("head", "二、注意事项"))
    out += [("body", f"{i}. {t}") for i, t in enumerate(rules, 1)]

    n = 3
    if isinstance(form, ProgressForm) and form.footnotes:
        out.append(("head", f"{_cn(n)}、原表注释"))
        out += [("body", t) for t in form.footnotes]
        n += 1
    notes = getattr(form, "notes", ())
    if notes:
        out.append(("head", f"{_cn(n)}、本表说明"))
        out += [("body", f"{i}. {t}") for i, t in enumerate(notes, 1)]
        n += 1
    if isinstance(form, LedgerForm):
        out.append(("head", f"{_cn(n)}、各栏填写要求"))
        out += [("body", _ledger_column_line(c)) for c in form.columns]
        n += 1
    if isinstance(form, ChecklistForm) and form.reconstructed_note:
        out.append(("head", f"{_cn(n)}、关于待确认事项"))
        out.append(("body", form.reconstructed_note))
        out.append(("body", "上述待确认事项在检查清单中以浅黄色底纹标示。"))
        if form.edition:
            out.append(("body", f"参照标准：{form.edition}"))
        n += 1
    out.append(("body", ""))
    out.append(("body", f"{cal.city_unit}　{cal.document}"))
    return out


def _hazard_details_line(form: ChecklistForm) -> str:
    """What a hazard found needs, named by the columns' own headers in the table's order."""
    headers = {c.key: c.header for c in checklist_layout(form).columns}
    names = [
        headers[k] for k in ("description", "major_yes", "requirement", "deadline") if k in headers
    ]
    line = f"存在隐患的，填写{'、'.join(names[:-1])}和{names[-1]}。"
    if "major_yes" in headers:
        line += f"“{headers['major_yes']}”同样在“是”“否”两栏中选一栏，选择“{TICK_MARK}”。"
    return line


def _reference_line(ctx: _Context) -> str:
    """The 填表说明 line on the figures shown beside the 附件4 inputs, naming their month."""
    tag = ctx.reference_tag
    if tag == "上月":
        month = f"（{period_label(shift_period(ctx.period, -1))}）" if ctx.period else ""
        whose = f"贵单位上月{month}已接收的累计数"
    else:
        whose = f"贵单位最近一次已接收的附件4（{tag}）的累计数"
        if _older_than_last_month(ctx.period, ctx.reference_period):
            whose += "（此后各月未收到贵单位通过校验的附件4）"
    return (
        f"各项小字中的“{tag} 数字”是{whose}，仅供参考，已锁定；"
        "请在其下方的格内填写截至本期月末的累计数（累计数一般不会少于参考数）。"
    )


def _prefilled_ledger_line(ctx: _Context) -> str:
    """The 填表说明 line on the ledger rows prefilled from the unit's last accepted ledger."""
    if ctx.ledger_period is None:
        source = "贵单位已接收的台账"
    else:
        source = f"贵单位{period_label(ctx.ledger_period)}已接收的台账"
        if _older_than_last_month(ctx.period, ctx.ledger_period):
            source += "（此后各月未收到贵单位通过校验的台账）"
    return (
        f"表中已预填{source}中的 {ctx.ledger_rows} 条隐患：请逐条核对，更新整改状态、"
        "整改完成日期、验收人、销号日期等；已预填的隐患不要删除，隐患编号不要改动；"
        "本期新发现的隐患接在已有各行之后填写。"
    )


def _cn(n: int) -> str:
    return "一二三四五六七八九十"[n - 1]


def _ledger_column_line(column: LedgerColumn) -> str:
    need = "必填" if column.required else ("整改中的隐患必填" if column.open_required else "选填")
    kind = {
        "text": "文字",
        "choice": "从列表选择：" + "/".join(column.choices),
        "bool": "从列表选择：是/否",
        "date": "日期，如 2023-06-05",
        "money": "数字，单位万元，最多4位小数",
        "credit_code": "18位统一社会信用代码",
    }[column.type]
    hint = f"；{column.hint}" if column.hint else ""
    return f"{column.label}：{need}；{kind}{hint}。"


def _write_instructions(ctx: _Context) -> None:
    ws = ctx.notes_ws
    width = 80.0
    ws.set_column(0, 0, width)
    styles = {
        "title": ctx.fmt(font_name=TITLE_FONT, font_size=16, bold=True, align="center"),
        "head": ctx.fmt(bold=True, align="left", text_wrap=True),
        "body": ctx.fmt(align="left", valign="top", text_wrap=True),
    }
    lines = _instruction_lines(ctx)
    for row, (style, text) in enumerate(lines):
        _write_text(ws, row, 0, text, styles[style])
        size = 16 if style == "title" else BODY_SIZE
        height = _line_count(text, width, size) * _line_height(size) + (
            10 if style == "title" else 4
        )
        ws.set_row(row, height)
    ws.set_paper(A4)
    ws.set_portrait()
    ws.fit_to_pages(1, 0)
    ws.center_horizontally()
    ws.set_margins(left=0.7, right=0.7, top=0.8, bottom=0.8)
    ws.set_footer(PAGE_FOOTER, {"margin": 0.3})
    ws.print_area(0, 0, len(lines) - 1, 0)
    _protect(ws)
