"""Templates read back with openpyxl: labels from the form data, validations, protection, metadata."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.cell.cell import Cell as XlCell
from openpyxl.workbook.workbook import Workbook as XlWorkbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet as XlSheet

from pipeline import __version__
from pipeline.forms import (
    FORM_IDS,
    SCHEMAS_DIR,
    TICKS,
    ChecklistForm,
    LedgerForm,
    ProgressForm,
    load_calendar,
    load_forms,
    load_units,
    period_label,
)
from pipeline.layout import (
    INSTRUCTIONS_SHEET,
    META_KEYS,
    META_SHEET,
    PERIOD_LABEL,
    UNIT_LABEL,
    Cell,
    LedgerLayout,
    ProgressLayout,
    a1,
    checklist_layout,
    progress_layout,
)
from pipeline.templates import (
    AUTHOR,
    BLANK_DIR,
    GENERATOR,
    generate_templates,
    template_filename,
    write_template,
)

PERIOD = load_calendar().default_period
UNIT = load_units()[0]  # 鼓楼区
FORMS = load_forms()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Path]:
    """(form id, blank?) -> path, for one unit plus the blank set."""
    out = tmp_path_factory.mktemp("templates")
    paths = generate_templates(PERIOD, out, units=[UNIT])
    found: dict[tuple[str, bool], Path] = {}
    for path in paths:
        blank = path.parent.name == BLANK_DIR
        form_id = next(f.id for f in FORMS.values() if path.name.startswith(f"{f.annex}_"))
        found[(form_id, blank)] = path
    assert len(found) == 2 * len(FORMS)
    return found


_BOOKS: dict[Path, XlWorkbook] = {}


def book(path: Path) -> XlWorkbook:
    if path not in _BOOKS:
        _BOOKS[path] = openpyxl.load_workbook(path)
    return _BOOKS[path]


def main_sheet(path: Path) -> XlSheet:
    return book(path).worksheets[0]


def value(ws: XlSheet, cell: Cell) -> Any:
    return ws.cell(row=cell.row + 1, column=cell.col + 1).value


def merged(ws: XlSheet) -> set[str]:
    return {str(r) for r in ws.merged_cells.ranges}


def validations_at(ws: XlSheet, ref: str) -> list[DataValidation]:
    return [dv for dv in ws.data_validations.dataValidation if ref in dv.sqref]


def only_validation(ws: XlSheet, ref: str) -> DataValidation:
    found = validations_at(ws, ref)
    assert len(found) == 1, f"{ref}: {len(found)} validations"
    dv = found[0]
    # every validation explains itself and refuses bad input, in Chinese
    assert dv.showInputMessage and dv.prompt and dv.promptTitle
    assert dv.showErrorMessage and dv.error and dv.errorTitle
    assert re.search(r"[\u4e00-\u9fff]", dv.prompt + dv.error)
    assert dv.errorStyle in (None, "stop")
    return dv


def unlocked(ws: XlSheet) -> set[str]:
    out = set()
    for row in ws.iter_rows():
        for c in row:
            if (isinstance(c, XlCell) and c.has_style and not c.protection.locked) or (
                not isinstance(c, XlCell) and not c.protection.locked
            ):
                out.add(c.coordinate)
    return out


def span(first: Cell, last: Cell) -> set[str]:
    return {
        a1(r, c) for r in range(first.row, last.row + 1) for c in range(first.col, last.col + 1)
    }


# --- file names and folders ------------------------------------------------------------------


def test_file_names_are_what_a_clerk_understands() -> None:
    assert (
        template_filename(FORMS["annex4_progress"], UNIT, "2023-05")
        == "附件4_进展情况调度表_鼓楼区_2023年5月.xlsx"
    )
    assert (
        template_filename(FORMS["ledger"], UNIT, "2023-05")
        == "台账_重大事故隐患台账_鼓楼区_2023年5月.xlsx"
    )
    assert (
        template_filename(FORMS["annex2_construction"], UNIT, "2023-05")
        == "附件2_建筑施工检查清单_鼓楼区_2023年5月.xlsx"
    )
    assert template_filename(FORMS["annex1_gas"], None, None) == "附件1_燃气检查清单_空白模板.xlsx"


def test_every_unit_gets_every_form_and_regeneration_is_byte_identical(tmp_path: Path) -> None:
    first = generate_templates(PERIOD, tmp_path / "a")
    second = generate_templates(PERIOD, tmp_path / "b")
    units = load_units()
    assert len(first) == (len(units) + 1) * len(FORMS)
    for unit in units:
        for form in FORMS.values():
            assert (
                tmp_path / "a" / PERIOD / unit.name / template_filename(form, unit, PERIOD)
            ).is_file()
    for form in FORMS.values():
        assert (tmp_path / "a" / PERIOD / BLANK_DIR / template_filename(form, None, None)).is_file()
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert not list((tmp_path / "a").rglob(".tmp-*"))


def test_committed_templates_match_the_form_definitions(tmp_path: Path) -> None:
    committed = Path(__file__).resolve().parents[1] / "template_workbooks" / PERIOD
    fresh = generate_templates(PERIOD, tmp_path)
    names = sorted(str(p.relative_to(committed)) for p in committed.rglob("*.xlsx"))
    assert names == sorted(str(p.relative_to(tmp_path / PERIOD)) for p in fresh)
    stale = [
        str(p.relative_to(tmp_path))
        for p in fresh
        if p.read_bytes() != (committed / p.relative_to(tmp_path / PERIOD)).read_bytes()
    ]
    assert not stale, f"template_workbooks/ is out of date, run `make templates`: {stale[:3]}"


def test_a_bad_period_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_templates("2023-13", tmp_path)


# --- every form: sheets, metadata, protection, properties, print setup ----------------------


@pytest.mark.parametrize("blank", [False, True], ids=["unit", "blank"])
@pytest.mark.parametrize("form_id", FORM_IDS)
def test_sheets_metadata_and_properties(
    generated: dict[tuple[str, bool], Path], form_id: str, blank: bool
) -> None:
    form = FORMS[form_id]
    wb = book(generated[(form_id, blank)])
    assert wb.sheetnames == [form.sheet_name, INSTRUCTIONS_SHEET, META_SHEET]
    assert wb.active is not None and wb.active.title == form.sheet_name
    meta = wb[META_SHEET]
    assert meta.sheet_state == "hidden"
    rows = {r[0]: r[1] for r in meta.iter_rows(min_col=1, max_col=2, values_only=True)}
    assert list(rows)[: len(META_KEYS)] == list(META_KEYS)
    expected = {
        "form_id": form.id,
        "form_version": form.version,
        "form_title": form.title,
        "unit_code": None if blank else UNIT.code,
        "unit_name": None if blank else UNIT.name,
        "period": None if blank else PERIOD,
        "generator": GENERATOR,
        "generator_version": __version__,
    }
    assert {k: rows[k] for k in META_KEYS} == expected
    props = wb.properties
    assert props.creator == AUTHOR
    year, month = map(int, (PERIOD if not blank else load_calendar().first_period).split("-"))
    assert props.created == dt.datetime(year, month, 1)
    assert form.title in (props.title or "")
    for ws in wb.worksheets:
        assert ws.protection.sheet, ws.title
        assert not ws.protection.password
        assert ws.protection.formatRows is False and ws.protection.formatColumns is False
    ws = wb.worksheets[0]
    assert ws.page_setup.paperSize == 9
    assert ws.page_setup.orientation == "landscape"
    assert ws.print_options.horizontalCentered
    assert ws.oddFooter.center.text == "第 &P 页 共 &N 页"
    assert ws.freeze_panes is not None
    assert wb[INSTRUCTIONS_SHEET].page_setup.paperSize == 9


def test_text_never_becomes_a_formula_and_fonts_render_chinese(
    generated: dict[tuple[str, bool], Path],
) -> None:
    ws = main_sheet(generated[("annex4_progress", False)])
    fonts = {c.font.name for row in ws.iter_rows() for c in row if c.value is not None}
    assert fonts <= {"宋体", "黑体"}
    assert "宋体" in fonts


# --- 附件4 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", [False, True], ids=["unit", "blank"])
def test_progress_labels_are_the_seed_labels(
    generated: dict[tuple[str, bool], Path], blank: bool
) -> None:
    form = FORMS["annex4_progress"]
    assert isinstance(form, ProgressForm)
    lay = progress_layout(form)
    ws = main_sheet(generated[("annex4_progress", blank)])
    assert value(ws, lay.annex_cell) == "附件4"
    assert value(ws, Cell(lay.title_row, 0)) == form.title
    assert value(ws, lay.unit_label_cell) == "填报单位："
    assert value(ws, lay.date_label_cell) == "时间："
    assert value(ws, lay.period_label_cell) == PERIOD_LABEL
    assert value(ws, lay.unit_cell) == (None if blank else "鼓楼区")
    assert value(ws, lay.period_cell) == (None if blank else "2023年5月")
    ranges = merged(ws)
    for code, merge in lay.section_merges:
        section = next(s for s in form.sections if s.code == code)
        assert value(ws, merge.first) == section.label
        assert f"{merge.first.a1}:{merge.last.a1}" in ranges
    items = {it.code: it for s in form.sections for it in s.items}
    assert [c.code for c in lay.items] == list(items)
    for cells in lay.items:
        item = items[cells.code]
        assert value(ws, cells.no_cell) == item.no
        assert value(ws, cells.label_cell) == item.label
        assert f"{cells.label_merge.first.a1}:{cells.label_merge.last.a1}" in ranges
        for code, caption_cell, input_cell, input_merge in cells.inputs:
            v = form.value(code)
            assert value(ws, caption_cell) == (v.sub_label or v.unit)
            assert value(ws, input_cell) is None
            if input_merge is not None:
                assert f"{input_merge.first.a1}:{input_merge.last.a1}" in ranges
            font = ws[caption_cell.a1].font
            assert font.sz is not None and font.sz < 11
    c3 = next(c for c in lay.items if c.code == "C3")
    assert [value(ws, cap) for _code, cap, _i, _m in c3.inputs] == ["次", "万元"]
    for row, text in zip(lay.footnote_rows, form.footnotes, strict=True):
        assert value(ws, Cell(row, 0)) == text
        assert f"A{row + 1}:{a1(row, lay.last_col)}" in ranges
        assert ws.cell(row=row + 1, column=1).alignment.wrap_text


@pytest.mark.parametrize("blank", [False, True], ids=["unit", "blank"])
def test_progress_validations_and_unlocked_cells(
    generated: dict[tuple[str, bool], Path], blank: bool
) -> None:
    form = FORMS["annex4_progress"]
    assert isinstance(form, ProgressForm)
    lay = progress_layout(form)
    ws = main_sheet(generated[("annex4_progress", blank)])
    expected: set[str] = set()
    for cells in lay.items:
        for code, _caption, input_cell, input_merge in cells.inputs:
            dv = only_validation(ws, input_cell.a1)
            assert dv.operator == "greaterThanOrEqual" and dv.formula1 == "0"
            money = form.value(code).is_money
            assert dv.type == ("decimal" if money else "whole"), code
            assert ws[input_cell.a1].number_format == ("0.00##" if money else "0")
            expected |= (
                span(input_merge.first, input_merge.last) if input_merge else {input_cell.a1}
            )
    date = only_validation(ws, lay.date_cell.a1)
    assert date.type == "date"
    assert form.date_placeholder == "2023 年 月 日"  # the seed's "时间：2023 年 月 日"
    assert f"{form.date_label}{form.date_placeholder}" in (date.prompt or "")
    assert value(ws, lay.date_cell) is None
    expected |= span(lay.date_cell, Cell(lay.date_cell.row, lay.last_col))
    if blank:
        units = only_validation(ws, lay.unit_cell.a1)
        assert units.type == "list"
        assert units.formula1 == '"' + ",".join(u.name for u in load_units()) + '"'
        periods = only_validation(ws, lay.period_cell.a1)
        assert periods.type == "list" and "2023年6月" in (periods.formula1 or "")
        expected |= span(lay.unit_cell, Cell(lay.unit_cell.row, lay.unit_cell.col + 2))
        expected.add(lay.period_cell.a1)
    else:
        assert not validations_at(ws, lay.unit_cell.a1)
        assert ws[lay.unit_cell.a1].protection.locked
    assert unlocked(ws) == expected


def test_progress_reference_figures_show_as_locked_captions(tmp_path: Path) -> None:
    form = FORMS["annex4_progress"]
    assert isinstance(form, ProgressForm)
    lay = progress_layout(form)
    path = tmp_path / "a4.xlsx"
    reference = {"A1": Decimal("12"), "C3b": Decimal("3.5000"), "D5a": Decimal("0.0001")}
    write_template(form, path, unit=UNIT, period="2023-06", reference=reference)
    ws = main_sheet(path)
    captions = {code: cap for cells in lay.items for code, cap, _i, _m in cells.inputs}
    assert "上月 12" in ws[captions["A1"].a1].value
    assert "个" in ws[captions["A1"].a1].value
    assert "上月 3.5" in ws[captions["C3b"].a1].value
    assert ws[captions["C3b"].a1].value.startswith("万元")
    assert "上月 0.0001" in ws[captions["D5a"].a1].value
    assert ws[captions["A2"].a1].value == "个"
    assert ws[captions["A1"].a1].protection.locked
    assert value(ws, lay.value_cells["A1"]) is None  # the input itself stays empty
    assert value(ws, lay.period_cell) == "2023年6月"


def _notes(path: Path) -> str:
    return "\n".join(str(c.value) for c in book(path)[INSTRUCTIONS_SHEET]["A"] if c.value)


def _prefilled_a4(
    path: Path, reference: dict[str, Decimal], reference_period: str | None
) -> ProgressLayout:
    """UNIT's 附件4 template for 2023-08 with `reference` figures from `reference_period`."""
    form = FORMS["annex4_progress"]
    assert isinstance(form, ProgressForm)
    write_template(
        form,
        path,
        unit=UNIT,
        period="2023-08",
        reference=reference,
        reference_period=reference_period,
    )
    return progress_layout(form)


@pytest.mark.parametrize(
    ("reference_period", "tag"),
    [(None, "上月"), ("2023-07", "上月"), ("2023-06", "2023年6月"), ("2023-05", "2023年5月")],
)
def test_reference_captions_name_the_month_unless_it_is_last_month(
    tmp_path: Path, reference_period: str | None, tag: str
) -> None:
    path = tmp_path / "a4.xlsx"
    reference = {"A1": Decimal("9"), "C3b": Decimal("0.7001")}
    lay = _prefilled_a4(path, reference, reference_period)
    ws = main_sheet(path)
    captions = {code: cap for cells in lay.items for code, cap, _i, _m in cells.inputs}
    assert ws[captions["A1"].a1].value == f"个（{tag} 9）"
    assert ws[captions["C3b"].a1].value == f"万元\n{tag} 0.7001"
    assert ws[captions["A2"].a1].value == "个"
    notes = _notes(path)
    assert f"各项小字中的“{tag} 数字”是贵单位" in notes
    if tag == "上月":
        assert "贵单位上月（2023年7月）已接收的累计数" in notes
    else:
        assert "上月" not in ws[captions["A1"].a1].value
        assert f"贵单位最近一次已接收的附件4（{tag}）的累计数" in notes
        assert "此后各月未收到贵单位通过校验的附件4" in notes


def test_a_caption_that_wraps_gets_a_taller_row(tmp_path: Path) -> None:
    reference = {"C3a": Decimal("3"), "C3b": Decimal("0.7")}
    heights = {}
    for ref_period in ("2023-07", "2023-05"):
        path = tmp_path / f"{ref_period}.xlsx"
        lay = _prefilled_a4(path, reference, ref_period)
        ws = main_sheet(path)
        cells = next(c for c in lay.items if c.code == "C3")
        heights[ref_period] = ws.row_dimensions[cells.no_cell.row + 1].height
    # "万元 / 2023年5月 0.7" takes three lines of the narrow cell, "万元 / 上月 0.7" two
    assert heights["2023-05"] > heights["2023-07"]


def test_templates_without_prefilled_data_say_nothing_about_it(
    generated: dict[tuple[str, bool], Path],
) -> None:
    assert "小字中的" not in _notes(generated[("annex4_progress", False)])
    assert "已预填" not in _notes(generated[("ledger", False)])


def test_the_ledger_instructions_name_the_month_of_the_prefilled_rows(tmp_path: Path) -> None:
    form = FORMS["ledger"]
    rows = [{"hazard_id": "GL-001"}, {"hazard_id": "GL-002"}]
    path = tmp_path / "last.xlsx"
    write_template(
        form, path, unit=UNIT, period="2023-08", ledger_rows=rows, ledger_period="2023-07"
    )
    notes = _notes(path)
    assert "表中已预填贵单位2023年7月已接收的台账中的 2 条隐患" in notes
    path = tmp_path / "older.xlsx"
    write_template(
        form, path, unit=UNIT, period="2023-08", ledger_rows=rows, ledger_period="2023-06"
    )
    assert (
        "表中已预填贵单位2023年6月已接收的台账（此后各月未收到贵单位通过校验的台账）中的 2 条隐患"
        in _notes(path)
    )
    with pytest.raises(ValueError):
        write_template(
            form, tmp_path / "x.xlsx", unit=UNIT, period="2023-08", ledger_rows=rows,
            ledger_period="2023年6月",
        )  # fmt: skip


def test_a_long_unit_list_moves_to_the_hidden_sheet(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    names = [f"福州市第{i}号示范功能区管理委员会" for i in range(1, 31)]
    lines = ["code,name,kind,contact_name,contact_email"]
    lines += [f"39{i:04d},{n},区,," for i, n in enumerate(names)]
    (schemas / "units.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    form = load_forms(schemas)["annex3_confined_space"]
    assert isinstance(form, ChecklistForm)
    path = tmp_path / "blank.xlsx"
    write_template(form, path, unit=None, period=None, schemas_dir=schemas)
    lay = checklist_layout(form)
    dv = only_validation(main_sheet(path), lay.unit_cell.a1)
    assert dv.type == "list"
    match = re.fullmatch(r"'?_meta'?!\$([A-Z]+)\$1:\$\1\$30", dv.formula1 or "")
    assert match, dv.formula1
    meta = book(path)[META_SHEET]
    assert [meta[f"{match.group(1)}{i}"].value for i in range(1, 31)] == names
    assert meta["A1"].value == "form_id"


def test_reference_and_ledger_rows_belong_to_their_own_forms(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_template(
            FORMS["ledger"],
            tmp_path / "x.xlsx",
            unit=UNIT,
            period=PERIOD,
            reference={"A1": Decimal(1)},
        )
    with pytest.raises(ValueError):
        write_template(
            FORMS["annex1_gas"], tmp_path / "x.xlsx", unit=UNIT, period=PERIOD, ledger_rows=[{}]
        )
    assert not (tmp_path / "x.xlsx").exists()


# --- 附件1–3 -----------------------------------------------------------------------------------


CHECKLISTS = [f for f in FORMS.values() if isinstance(f, ChecklistForm)]


def _runs(values: list[str]) -> Iterator[tuple[int, int]]:
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            yield start, i - 1
            start = i


@pytest.mark.parametrize("form", CHECKLISTS, ids=lambda f: f.id)
def test_checklist_labels_headers_and_merges(
    generated: dict[tuple[str, bool], Path], form: ChecklistForm
) -> None:
    lay = checklist_layout(form)
    ws = main_sheet(generated[(form.id, False)])
    assert value(ws, lay.annex_cell) == form.annex
    assert value(ws, Cell(lay.title_row, 0)) == form.title
    assert value(ws, lay.unit_label_cell) == UNIT_LABEL
    assert value(ws, lay.unit_cell) == "鼓楼区"
    assert value(ws, lay.period_label_cell) == PERIOD_LABEL
    assert value(ws, lay.period_cell) == period_label(PERIOD)
    top, sub = lay.header_rows
    headers = [
        value(ws, Cell(top, i))
        for i, c in enumerate(lay.columns)
        if not c.group or c.sub_header in ("是",)
    ]
    expected_headers = ["序号", "检查类别", "重点检查事项"]
    if form.has_content_column:
        expected_headers.append("检查内容")
    expected_headers += ["检查结果", form.description_label]
    if form.has_major_column:
        expected_headers.append("是否重大隐患")
    expected_headers += ["整改要求", "整改时限"]
    assert headers == expected_headers
    assert [value(ws, Cell(sub, lay.tick_col(t))) for t in TICKS] == list(TICKS)
    ranges = merged(ws)
    assert f"{a1(top, lay.tick_col('是'))}:{a1(top, lay.tick_col('不涉及'))}" in ranges
    assert f"A{top + 1}:A{sub + 1}" in ranges
    if form.has_major_column:
        assert [value(ws, Cell(sub, lay.major_col(t))) for t in ("是", "否")] == ["是", "否"]
    text_col = lay.col("content") if form.has_content_column else lay.col("matter")
    for item in form.items:
        row = lay.item_row(item.no)
        assert value(ws, Cell(row, lay.col("no"))) == item.no
        assert value(ws, Cell(row, text_col)) == (
            item.content if form.has_content_column else item.matter
        )
    # 检查类别 (and 附件2's 重点检查事项 groups) merged where consecutive items share the value
    cat_col = lay.col("category")
    if form.has_content_column:
        matters = [it.matter for it in form.items]
        for a, b in _runs(matters):
            row_a = lay.first_item_row + a
            assert value(ws, Cell(row_a, lay.col("matter"))) == matters[a]
            assert value(ws, Cell(row_a, cat_col)) == form.items[a].category
            if b > a:
                assert (
                    f"{a1(row_a, lay.col('matter'))}:{a1(lay.first_item_row + b, lay.col('matter'))}"
                    in ranges
                )
                assert f"{a1(row_a, cat_col)}:{a1(lay.first_item_row + b, cat_col)}" in ranges
    else:
        cats = [it.category for it in form.items]
        for a, b in _runs(cats):
            first = Cell(lay.first_item_row + a, cat_col)
            assert value(ws, first) == cats[a]
            if b > a:
                assert f"{first.a1}:{a1(lay.first_item_row + b, cat_col)}" in ranges
    for f in form.footer:
        assert value(ws, lay.footer_label_cell(f.key)) == f"{f.label}："
        assert value(ws, lay.footer_cell(f.key)) is None


@pytest.mark.parametrize("blank", [False, True], ids=["unit", "blank"])
@pytest.mark.parametrize("form", CHECKLISTS, ids=lambda f: f.id)
def test_checklist_validations_and_unlocked_cells(
    generated: dict[tuple[str, bool], Path], form: ChecklistForm, blank: bool
) -> None:
    lay = checklist_layout(form)
    ws = main_sheet(generated[(form.id, blank)])
    first, last = lay.first_item_row, lay.last_item_row
    ticks = only_validation(ws, a1(first, lay.tick_col("是")))
    assert ticks.type == "list" and ticks.formula1 == '"√"'
    assert str(ticks.sqref) == f"{a1(first, lay.tick_col('是'))}:{a1(last, lay.tick_col('不涉及'))}"
    if form.has_major_column:
        major = only_validation(ws, a1(last, lay.major_col("否")))
        assert major.type == "list" and major.formula1 == '"√"'
        assert (
            str(major.sqref) == f"{a1(first, lay.major_col('是'))}:{a1(last, lay.major_col('否'))}"
        )
    deadline = only_validation(ws, a1(last, lay.col("deadline")))
    assert deadline.type == "date"
    expected: set[str] = set()
    input_keys = ["tick_0", "tick_1", "tick_2", "description", "requirement", "deadline"]
    if form.has_major_column:
        input_keys += ["major_yes", "major_no"]
    for key in input_keys:
        expected |= span(Cell(first, lay.col(key)), Cell(last, lay.col(key)))
    for f in form.footer:
        cell = lay.footer_cell(f.key)
        dv = only_validation(ws, cell.a1)
        assert dv.type == ("date" if f.type == "date" else "textLength")
        end = max(lay.col(k) for k in ("matter", "content") if k in [c.key for c in lay.columns])
        expected |= span(cell, Cell(cell.row, max(end, cell.col)))
    if blank:
        assert only_validation(ws, lay.unit_cell.a1).type == "list"
        assert only_validation(ws, lay.period_cell.a1).type == "list"
        expected |= span(lay.unit_cell, Cell(lay.unit_cell.row, lay.col("matter")))
        expected |= span(lay.period_cell, Cell(lay.period_cell.row, lay.last_col))
    assert unlocked(ws) == expected


def test_reconstructed_items_are_marked_without_touching_their_wording(
    generated: dict[tuple[str, bool], Path],
) -> None:
    form = FORMS["annex2_construction"]
    assert isinstance(form, ChecklistForm)
    lay = checklist_layout(form)
    ws = main_sheet(generated[(form.id, False)])
    fills = {}
    for item in form.items:
        cell = ws[a1(lay.item_row(item.no), lay.col("content"))]
        assert cell.value == item.content
        fills[item.no] = cell.fill.fgColor.rgb if cell.fill.fill_type == "solid" else None
    marked = {no for no, rgb in fills.items() if rgb}
    assert marked == {it.no for it in form.items if it.reconstructed} == set(range(1, 32))
    info = [c.value for c in ws[lay.info_row + 1] if isinstance(c.value, str)]
    assert any("1—31" in v and "待市建设局确认" in v for v in info)
    notes = [ws.cell(row=r, column=1).value for r in range(lay.notes_row + 1, ws.max_row + 1)]
    assert any(form.reconstructed_note in (n or "") for n in notes)


def test_annex1_and_annex3_have_no_reconstruction_legend(
    generated: dict[tuple[str, bool], Path],
) -> None:
    for form_id in ("annex1_gas", "annex3_confined_space"):
        ws = main_sheet(generated[(form_id, False)])
        texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
        assert not any("待市建设局确认" in t for t in texts)


SHARED = Path(__file__).resolve().parents[2] / "shared"
README = Path(__file__).resolve().parents[1] / "README.md"


def test_reconstructed_items_quote_the_judging_standard() -> None:
    reference = SHARED / "reference" / "judging-standard-2022.md"
    if not reference.exists():
        pytest.skip(f"reference not found at {reference}")
    text = reference.read_text(encoding="utf-8")
    form = FORMS["annex2_construction"]
    assert isinstance(form, ChecklistForm)
    quoted = [it for it in form.items if it.reconstructed and it.source.startswith("判定标准")]
    assert len(quoted) == 29
    for item in quoted:
        # an article's lead-in and its sign (第五条（四）1–4) are each the standard's own words
        for part in item.content.split("："):
            assert part in text, (item.no, part)
    signs = [it.content for it in quoted if it.source.startswith("判定标准第五条（四）")]
    assert len(signs) == 4
    assert all(c.startswith("有下列基坑坍塌风险预兆之一，且未及时处理：") for c in signs)


def test_the_readme_says_whose_the_notes_under_the_checklists_are(
    generated: dict[tuple[str, bool], Path],
) -> None:
    seed = SHARED / "seed" / "000_bced4c741a718fdd.txt"
    if not seed.exists():
        pytest.skip(f"seed document not found at {seed}")
    seed_text = seed.read_text(encoding="utf-8")
    added = []
    for form in CHECKLISTS:
        lay = checklist_layout(form)
        ws = main_sheet(generated[(form.id, False)])
        notes = [ws.cell(row=r, column=1).value for r in range(lay.notes_row + 1, ws.max_row + 1)]
        assert str(notes[0]).startswith("注：")
        added += [n for n in form.notes if n not in seed_text]
    # the notes under 附件1–3 are the pipeline's filling hints, not the document's: README says so
    assert added
    readme = "".join(README.read_text(encoding="utf-8").split())  # wrapped lines joined
    assert "附件1–3表下的“注”是本工具所加的填写提示" in readme
    assert "栏目、检查事项、脚注均取自文件原文" not in readme


# --- 台账 --------------------------------------------------------------------------------------


def test_ledger_headers_rows_and_validations(generated: dict[tuple[str, bool], Path]) -> None:
    form = FORMS["ledger"]
    assert isinstance(form, LedgerForm)
    lay = LedgerLayout(form=form)
    ws = main_sheet(generated[("ledger", False)])
    assert form.title in [c.value for c in ws[lay.title_row + 1]]
    assert value(ws, lay.unit_label_cell) == form.unit_label
    assert value(ws, lay.unit_cell) == "鼓楼区"
    assert value(ws, lay.period_label_cell) == PERIOD_LABEL
    assert value(ws, lay.period_cell) == "2023年5月"
    assert [value(ws, Cell(lay.header_row, i)) for i in range(len(form.columns))] == [
        c.label for c in form.columns
    ]
    assert form.rows >= 500
    first, last = lay.first_data_row, lay.last_data_row
    for i, column in enumerate(form.columns):
        dv = only_validation(ws, a1(last, i))
        assert str(dv.sqref) == f"{a1(first, i)}:{a1(last, i)}"
        kind = {"choice": "list", "bool": "list", "date": "date", "money": "decimal"}
        assert dv.type == kind.get(column.type, "textLength"), column.key
        if column.type == "choice":
            assert dv.formula1 == '"' + ",".join(column.choices) + '"'
        if column.type == "credit_code":
            assert dv.operator == "equal" and dv.formula1 == "18"
        cell = ws[a1(last, i)]
        assert not cell.protection.locked
        if column.type == "date":
            assert cell.number_format == "yyyy-mm-dd"
        if column.type in ("text", "credit_code"):
            assert cell.number_format == "@"
    assert ws[a1(last + 1, 0)].protection.locked
    assert ws.freeze_panes == a1(first, 1)
    assert ws.print_title_rows == f"${lay.header_row + 1}:${lay.header_row + 1}"
    expected = span(Cell(first, 0), Cell(last, lay.last_col))
    assert unlocked(ws) == expected


def test_ledger_rows_are_prefilled_and_stay_editable(tmp_path: Path) -> None:
    form = FORMS["ledger"]
    assert isinstance(form, LedgerForm)
    lay = LedgerLayout(form=form)
    rows: list[dict[str, Any]] = [
        {
            "hazard_id": "GL-001",
            "domain": "建筑施工",
            "enterprise": '=HYPERLINK("http://x")',
            "credit_code": "91350100MA2XXXXX0X",
            "found_date": dt.date(2023, 5, 10),
            "funds": Decimal("3.5"),
            "status": "整改中",
            "rectified_date": None,
        },
        {"hazard_id": "0012", "description": "深基坑未进行第三方监测"},
    ]
    path = tmp_path / "ledger.xlsx"
    write_template(form, path, unit=UNIT, period="2023-06", ledger_rows=rows)
    ws = main_sheet(path)
    r0, r1 = lay.first_data_row, lay.first_data_row + 1

    def at(row: int, key: str) -> XlCell:
        cell = ws[a1(row, lay.col(key))]
        assert isinstance(cell, XlCell)
        return cell

    assert at(r0, "hazard_id").value == "GL-001"
    assert at(r0, "enterprise").value == '=HYPERLINK("http://x")'
    assert at(r0, "enterprise").data_type == "s"
    assert at(r0, "found_date").value == dt.datetime(2023, 5, 10)
    assert at(r0, "funds").value == 3.5
    assert at(r0, "rectified_date").value is None
    assert at(r1, "hazard_id").value == "0012"  # stays text
    assert at(r1, "description").value == "深基坑未进行第三方监测"
    assert not at(r0, "funds").protection.locked
    assert value(ws, lay.period_cell) == "2023年6月"
    with pytest.raises(ValueError):
        write_template(
            form, tmp_path / "bad.xlsx", unit=UNIT, period=PERIOD, ledger_rows=[{"nope": 1}]
        )
    # a few prefilled rows keep the normal input area (longer ledgers: test_templates_big_ledger)
    assert ws[a1(lay.last_data_row, 0)].protection.locked is False
    assert ws[a1(lay.last_data_row + 1, 0)].protection.locked is True


# --- 填表说明 ----------------------------------------------------------------------------------


HAZARD_DETAILS = {
    "annex1_gas": "存在隐患的，填写重大隐患描述、整改要求和整改时限。",
    "annex2_construction": "存在隐患的，填写隐患描述、是否重大隐患、整改要求和整改时限。",
    "annex3_confined_space": "存在隐患的，填写重大隐患描述、整改要求和整改时限。",
}


@pytest.mark.parametrize("form_id", FORM_IDS)
def test_instructions_sheet(generated: dict[tuple[str, bool], Path], form_id: str) -> None:
    form = FORMS[form_id]
    ws = book(generated[(form_id, False)])[INSTRUCTIONS_SHEET]
    lines = [c.value for c in ws["A"] if c.value]
    text = "\n".join(lines)
    assert lines[0] == INSTRUCTIONS_SHEET
    assert "2023-06-05" in text and ".xlsx" in text and ".xls" in text and ".ods" in text
    assert "工作表" in text and "插入" in text
    assert "2023年6月1日" in text  # the due date of the 2023-05 return
    if isinstance(form, ProgressForm):
        for footnote in form.footnotes:
            assert footnote in lines  # verbatim, one line each
        assert "12个" in text  # numbers without units
    for note in getattr(form, "notes", ()):
        assert note in text
    if isinstance(form, ChecklistForm):
        assert "√" in text
        if form.reconstructed_note:
            assert form.reconstructed_note in lines
        # what a hazard needs: every detail column by its own header, as the table's notes say
        (line,) = [t for t in lines if "存在隐患的，填写" in t]
        assert line.split(". ", 1)[1].startswith(HAZARD_DETAILS[form_id]), line
        assert any(HAZARD_DETAILS[form_id].split("，")[1] in note for note in form.notes)


# --- forms as data ----------------------------------------------------------------------------


def test_a_data_only_edit_shows_up_in_the_next_template(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    toml = schemas / "forms" / "annex1_gas.toml"
    text = toml.read_text(encoding="utf-8")
    old = "重点排查整治易导致重特大事故的老旧管道"
    assert old in text
    text = text.replace(old, "重点排查整治易导致重特大事故的老化管道")
    text += (
        '\n[[items]]\nno = 4\ncategory = "瓶装液化石油气"\n'
        'matter = "重点排查整治瓶装液化石油气充装站违规充装问题。"\nhazard_answer = "是"\n'
    )
    toml.write_text(text, encoding="utf-8")
    paths = generate_templates(
        PERIOD, tmp_path / "out", schemas_dir=schemas, units=[UNIT], blank=False
    )
    path = next(p for p in paths if p.name.startswith("附件1_"))
    form = load_forms(schemas)["annex1_gas"]
    assert isinstance(form, ChecklistForm)
    lay = checklist_layout(form)
    ws = main_sheet(path)
    matter = lay.col("matter")
    assert value(ws, Cell(lay.item_row(3), matter)).startswith(
        "重点排查整治易导致重特大事故的老化管道"
    )
    assert (
        value(ws, Cell(lay.item_row(4), matter)) == "重点排查整治瓶装液化石油气充装站违规充装问题。"
    )
    assert value(ws, Cell(lay.item_row(4), lay.col("category"))) == "瓶装液化石油气"
    assert value(ws, Cell(lay.item_row(4), lay.col("no"))) == 4
    ticks = only_validation(ws, a1(lay.item_row(4), lay.tick_col("不涉及")))
    assert ticks.formula1 == '"√"'
    assert value(ws, lay.footer_label_cell("inspection_date")) == "检查时间："
