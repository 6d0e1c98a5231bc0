"""Fill a template the way a county clerk does, with openpyxl, at the cells pipeline.layout names.

Used by the tests and the sample generator so that every filled return is made the same way.
Values are written as given (a str stays text, numbers and dates keep their type), so callers can
also type what a clerk really types ("12个", "１２", "2023.6.5"). A str starting with "=" becomes
a formula, as it would in Excel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.forms import TICKS, ChecklistForm, Form, LedgerForm, ProgressForm, load_forms
from pipeline.layout import Cell, LedgerLayout, checklist_layout, progress_layout

TICK = "√"


def fill_workbook(
    template_path: Path,
    out_path: Path,
    form: Form | str,
    *,
    progress: Mapping[str, Any] | None = None,
    inspections: Sequence[Mapping[str, Any]] | None = None,
    ledger_rows: Sequence[Mapping[str, Any]] | None = None,
    unit_name: str | None = None,
    period_text: str | None = None,
    report_date: Any = None,
    cells: Mapping[str, Any] | None = None,
) -> Path:
    """Open `template_path`, write the values into the layout's input cells, save `out_path`.

    - progress (附件4): value code -> value, e.g. {"A1": 3, "C3b": Decimal("3.5")}.
    - inspections (附件1–3): one mapping per inspection; the first fills the template's sheet,
      each further one a copy of it (named like Excel names copies: "附件1 (2)"). Keys:
      "answers" {item no: "是"|"否"|"不涉及"}, "details" {item no: {"description",
      "requirement", "deadline", "major": "是"|"否"}}, "footer" {footer key: value}, optional
      "mark" (default "√"), "sheet" (a name for the copy) and "cells" {A1: raw value}.
    - ledger_rows (台账): rows keyed by column key, written from the first data row.
    - unit_name / period_text: typed into 填报单位 / 报送期间 (a blank template needs them);
      report_date: 附件4's 时间 cell; cells: raw {A1: value} writes on the form's sheet.
    """
    if isinstance(form, str):
        form = load_forms()[form]
    wb = openpyxl.load_workbook(template_path)
    ws = wb[form.sheet_name]
    if isinstance(form, ChecklistForm):
        cl = checklist_layout(form)
        unit_cell, period_cell = cl.unit_cell, cl.period_cell
        sheets: list[Worksheet] = [ws]
        for i, spec in enumerate((inspections or [])[1:], start=2):
            copy = wb.copy_worksheet(ws)
            copy.title = str(spec.get("sheet") or f"{ws.title} ({i})")
            wb.move_sheet(copy, offset=wb.index(ws) + i - 1 - wb.index(copy))
            sheets.append(copy)
        for sheet in sheets:
            _put(sheet, unit_cell, unit_name)
            _put(sheet, period_cell, period_text)
        for sheet, spec in zip(sheets, inspections or [], strict=False):
            _fill_inspection(sheet, form, spec)
    elif isinstance(form, ProgressForm):
        pl = progress_layout(form)
        _put(ws, pl.unit_cell, unit_name)
        _put(ws, pl.period_cell, period_text)
        _put(ws, pl.date_cell, report_date)
        for code, value in (progress or {}).items():
            _put(ws, pl.value_cells[code], value, force=True)
    elif isinstance(form, LedgerForm):
        ll = LedgerLayout(form=form)
        _put(ws, ll.unit_cell, unit_name)
        _put(ws, ll.period_cell, period_text)
        for i, row in enumerate(ledger_rows or ()):
            for key, value in row.items():
                _put(ws, Cell(ll.first_data_row + i, ll.col(key)), value, force=True)
    for address, value in (cells or {}).items():
        ws[address] = _cell_value(value)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out_path)
    return out_path


def _fill_inspection(ws: Worksheet, form: ChecklistForm, spec: Mapping[str, Any]) -> None:
    lay = checklist_layout(form)
    mark = spec.get("mark", TICK)
    for no, answer in (spec.get("answers") or {}).items():
        row = lay.item_row(int(no))
        for a in [answer] if isinstance(answer, str) else list(answer):
            if a not in TICKS:
                raise ValueError(f"item {no}: answer must be one of {TICKS}, not {a!r}")
            _put(ws, Cell(row, lay.tick_col(a)), mark, force=True)
    for no, details in (spec.get("details") or {}).items():
        row = lay.item_row(int(no))
        for key in ("description", "requirement", "deadline"):
            if key in details:
                _put(ws, Cell(row, lay.col(key)), details[key], force=True)
        if details.get("major") is not None:
            if not form.has_major_column:
                raise ValueError(f"{form.id} has no 是否重大隐患 column")
            _put(ws, Cell(row, lay.major_col(details["major"])), mark, force=True)
    for key, value in (spec.get("footer") or {}).items():
        _put(ws, lay.footer_cell(key), value, force=True)
    for address, value in (spec.get("cells") or {}).items():
        ws[address] = _cell_value(value)


def _put(ws: Worksheet, cell: Cell, value: Any, *, force: bool = False) -> None:
    if value is None and not force:
        return
    ws.cell(row=cell.row + 1, column=cell.col + 1).value = _cell_value(value)


def _cell_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        # openpyxl writes Decimal through str(); keep it numeric and exact to 15 digits
        return float(value)
    if isinstance(value, dt.datetime | dt.date | int | float | str) or value is None:
        return value
    return str(value)
