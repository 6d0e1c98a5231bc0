"""The output stage read back: sheet order, values, merged ranges, formats, CSV, JSON, bytes."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import math
import os
import re
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import openpyxl
import pandas as pd
import pytest
from fixtures_consolidate import (
    CITY_2023_07,
    CS,
    GL,
    MW,
    TJ,
    build_returns,
    fixture_units,
    hazard,
    ledger_return,
    progress_return,
)
from openpyxl.worksheet.worksheet import Worksheet
from xlsxwriter import Workbook
from xlsxwriter.format import Format

from pipeline import output
from pipeline.consolidate import Consolidation, consolidate
from pipeline.forms import ledger_form, progress_form
from pipeline.fsutil import ForkedFiles
from pipeline.layout import a1, col_letter, progress_layout
from pipeline.output import (
    SHEETS,
    WORKBOOK_OPTIONS,
    CsvTable,
    _csv_cell,
    _excel_serial,
    _excel_text,
    _ledger_kind,
    _ledger_sheet,
    _print_setup,
    _sheet_ledger,
    _Styles,
    _XmlRowsWorksheet,
    csv_safe,
    csv_tables,
    output_stem,
    records,
    to_json,
    workbook_name,
    write_csv,
    write_outputs,
    write_workbook,
)

HYPERLINK = '=HYPERLINK("http://x")'  # typed by a clerk as 企业名称 of 鼓楼区 G-003


@pytest.fixture(scope="module")
def result() -> Consolidation:
    return consolidate(build_returns(), "2023-07", units=fixture_units())


@pytest.fixture(scope="module")
def written(result: Consolidation, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_outputs(result, tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def book(written: dict[str, Path]) -> openpyxl.Workbook:
    return openpyxl.load_workbook(written["workbook"])


def _sheet(book: openpyxl.Workbook, name: str) -> Worksheet:
    ws = book[name]
    assert isinstance(ws, Worksheet)
    return ws


def _find_row(ws: Worksheet, col: int, value: str, start: int = 1) -> int:
    for row in range(start, ws.max_row + 1):
        if ws.cell(row, col).value == value:
            return row
    raise AssertionError(f"{value!r} not found in column {col} of {ws.title}")


def test_names_and_sheet_order(written: dict[str, Path], book: openpyxl.Workbook) -> None:
    assert (
        written["workbook"].name
        == "福州市重大事故隐患专项排查整治2023行动进展情况调度表_2023年7月.xlsx"
    )
    assert written["workbook"].name == workbook_name("2023-07")
    assert written["csv"].name == f"{output_stem('2023-07')}_数据.csv"
    assert book.sheetnames == list(SHEETS)
    assert SHEETS[0] == "调度表"


def test_status_sheet_is_of_the_files_received_not_of_a_day(book: openpyxl.Workbook) -> None:
    # the workbook is made after the deadline and its bytes must not depend on the day
    ws = _sheet(book, "报送进度")
    line = str(ws["A2"].value)
    assert line.startswith("报送截止：2023年8月1日（当天报送仍算按时）")
    assert "收到时间统计" in line and "统计日期" not in line and "今天" not in line
    heads = {c.value for row in ws.iter_rows() for c in row}
    assert "专项行动后续时间节点" in heads and "剩余天数" not in heads


def test_table_sheet_has_the_city_figures_in_the_seed_layout(
    result: Consolidation, book: openpyxl.Workbook
) -> None:
    form = progress_form()
    lay = progress_layout(form)
    ws = _sheet(book, "调度表")
    assert ws["A1"].value == "附件4"
    assert ws.cell(lay.title_row + 1, 1).value == form.title
    assert ws.cell(lay.unit_label_cell.row + 1, 1).value == "填报单位："
    assert ws.cell(lay.unit_cell.row + 1, lay.unit_cell.col + 1).value == "福州市城乡建设局"
    assert ws.cell(lay.date_label_cell.row + 1, lay.date_label_cell.col + 1).value == "时间："
    date_cell = ws.cell(lay.date_cell.row + 1, lay.date_cell.col + 1)
    assert date_cell.value.date().isoformat() == "2023-08-01"  # the due date
    assert date_cell.number_format == 'yyyy"年"m"月"d"日"'
    for code, cell in lay.value_cells.items():
        got = ws.cell(cell.row + 1, cell.col + 1)
        expected = CITY_2023_07.get(code, Decimal(0))
        assert got.value == (float(expected) if form.value(code).is_money else int(expected)), code
        assert got.number_format == ("0.00##" if form.value(code).is_money else "0"), code
    # labels, sections and footnotes verbatim
    for cells in lay.items:
        item = next(it for s in form.sections for it in s.items if it.code == cells.code)
        assert ws.cell(cells.label_cell.row + 1, cells.label_cell.col + 1).value == item.label
    for row, text in zip(lay.footnote_rows, form.footnotes, strict=True):
        assert ws.cell(row + 1, 1).value == text
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.paperSize == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth in (None, 1)  # 1 is the default, left out of the XML
    assert ws.page_setup.fitToHeight in (None, 1)  # one page tall, like the template


def _carry_mix() -> Consolidation:
    """鼓楼区 reports July; 台江区 last reported June, 仓山区 May; 马尾区 never did."""
    rets = [
        progress_return(GL, "2023-06", {"A1": "1"}),
        progress_return(GL, "2023-07", {"A1": "2"}),
        progress_return(TJ, "2023-06", {"A1": "3"}),
        progress_return(CS, "2023-05", {"A1": "4"}),
    ]
    return consolidate(rets, "2023-07", units=fixture_units())


def _note_cell(ws: Worksheet) -> Any:
    lay = progress_layout(progress_form())
    return ws.cell(lay.period_cell.row + 1, lay.period_cell.col + 2)


def test_table_note_tells_carried_units_from_those_that_never_reported(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_workbook(_carry_mix(), path)
    note = _note_cell(_sheet(openpyxl.load_workbook(path), "调度表")).value
    assert note == (
        "（自专项行动开始至2023年7月31日的累计数，4个单位合计；"
        "台江区本月未报送，沿用其2023年6月的累计数；仓山区本月未报送，沿用其2023年5月的累计数；"
        "马尾区从未报送，按0计）"
    )


def test_table_note_wraps_and_its_row_is_tall_enough(tmp_path: Path) -> None:
    # 13 units, 11 of them silent: the note is several lines long and must all be printed
    from pipeline.forms import load_units

    rets = [
        progress_return(GL, "2023-07", {"A1": "2"}),
        progress_return(TJ, "2023-07", {"A1": "1"}),
        progress_return(CS, "2023-06", {"A1": "3"}),
    ]
    path = tmp_path / "out.xlsx"
    write_workbook(consolidate(rets, "2023-07", units=load_units()), path)
    ws = _sheet(openpyxl.load_workbook(path), "调度表")
    cell = _note_cell(ws)
    assert "仓山区本月未报送，沿用其2023年6月的累计数" in cell.value
    assert "福州高新区从未报送，按0计）" in cell.value
    assert cell.alignment.wrap_text
    lay = progress_layout(progress_form())
    merged = next(
        r for r in ws.merged_cells.ranges if r.min_row == cell.row and r.min_col == cell.column
    )
    assert merged.max_col == lay.last_col + 1  # within the table's (and the print area's) width
    # a CJK character at 9 pt is 12 px wide; a column width unit is 7 px
    width_px = sum(
        ws.column_dimensions[col_letter(c - 1)].width * 7
        for c in range(cell.column, merged.max_col + 1)
    )
    lines = math.ceil(len(cell.value) * 12 / width_px)
    assert lines >= 3
    assert ws.row_dimensions[cell.row].height >= lines * 9 * 1.2


def test_table_sheet_merges_follow_the_layout(book: openpyxl.Workbook) -> None:
    lay = progress_layout(progress_form())
    ws = _sheet(book, "调度表")
    merged = {str(r) for r in ws.merged_cells.ranges}
    expected = set()
    for _code, m in lay.section_merges:
        expected.add(f"{a1(m.first.row, m.first.col)}:{a1(m.last.row, m.last.col)}")
    for cells in lay.items:
        m = cells.label_merge
        expected.add(f"{a1(m.first.row, m.first.col)}:{a1(m.last.row, m.last.col)}")
        for _code, _cap, _cell, im in cells.inputs:
            if im is not None:
                expected.add(f"{a1(im.first.row, im.first.col)}:{a1(im.last.row, im.last.col)}")
    assert expected <= merged
    assert "A2:I2" in merged  # the title across the table


def test_unit_sheet_total_equals_the_table_and_marks_flags(
    result: Consolidation, book: openpyxl.Workbook
) -> None:
    form = progress_form()
    lay = progress_layout(form)
    table = _sheet(book, "调度表")
    ws = _sheet(book, "分县明细")
    codes = form.value_codes
    header = _find_row(ws, 1, "单位")
    code_cols = {ws.cell(header + 1, c).value.split("（")[0]: c for c in range(3, 3 + len(codes))}
    assert list(code_cols) == list(codes)
    total = _find_row(ws, 1, "合计", header)
    for code, cell in lay.value_cells.items():
        assert ws.cell(total, code_cols[code]).value == table.cell(cell.row + 1, cell.col + 1).value
    rows = {ws.cell(r, 1).value: r for r in range(header + 2, total)}
    assert list(rows) == [GL, TJ, CS, MW]
    # carried-forward unit: marked and greyed
    assert ws.cell(rows[TJ], 2).value == "未报送，沿用2023年6月"
    assert ws.cell(rows[TJ], code_cols["A1"]).fill.fgColor.rgb == "FFD9D9D9"
    assert ws.cell(rows[TJ], 2).comment is not None  # the unit-not-reported flag
    # a flagged cell: highlighted with the flag as a comment
    flagged = ws.cell(rows[CS], code_cols["B1"])
    assert flagged.value == 5
    assert flagged.fill.fgColor.rgb == "FFFFEB9C"
    assert "累计数减少" in flagged.comment.text
    plain = ws.cell(rows[CS], code_cols["A2"])
    assert plain.comment is None and plain.fill.fgColor.rgb != "FFFFEB9C"
    # the 本月新增 block below: the outlier is marked there
    inc_header = _find_row(ws, 1, "单位", total + 1)
    inc_rows = {ws.cell(r, 1).value: r for r in range(inc_header + 2, inc_header + 6)}
    d3 = ws.cell(inc_rows[GL], code_cols["D3"])
    assert d3.value == 500 and "本月新增异常" in d3.comment.text
    assert ws.cell(inc_rows[CS], code_cols["B1"]).value == -1
    assert ws.cell(inc_rows[CS], code_cols["C3b"]).value == pytest.approx(0.7)


def test_anomaly_sheet_lists_every_flag_with_its_source(
    result: Consolidation, book: openpyxl.Workbook
) -> None:
    ws = _sheet(book, "异常标记")
    header = [c.value for c in ws[1]]
    assert header[:6] == ["序号", "严重程度", "规则代码", "规则名称", "单位", "项目"]
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(result.anomalies)
    got = {(r[2], r[4], r[5] or "") for r in rows}
    assert got == {(a.rule, a.unit, a.item) for a in result.anomalies}
    overdue = next(r for r in rows if r[2] == "ledger-overdue")
    assert overdue[9:] == ("2023-07/鼓楼区_台账.xlsx", "隐患台账", "M6")
    assert ws.auto_filter.ref == f"A1:L{len(rows) + 1}"
    # 上月值/对照值 and 本期值 hold the same kind of number on every 附件4 item's row: the
    # outlier's are both cumulative figures (as the decrease's), its +500 is in the message
    assert header[6:8] == ["上月值/对照值", "本期值"]
    down = next(r for r in rows if r[2] == "cumulative-decreased")
    assert down[6:8] == (6, 5)
    outlier = next(r for r in rows if r[2] == "increment-outlier")
    assert outlier[6:8] == (20, 520)
    assert "本月新增 500（本月累计 520，上月累计 20）" in outlier[8]


def test_submission_sheet_lists_statuses_and_the_files_that_do_not_count(
    book: openpyxl.Workbook,
) -> None:
    ws = _sheet(book, "报送情况")
    values = [[c.value for c in row] for row in ws.iter_rows(min_row=1)]
    statuses = {(r[0], r[2], r[3], r[5]) for r in values[3:] if r[0] and r[3]}
    assert (GL, "附件4 进展情况调度表", "已被替代", "2023-07/鼓楼区_附件4_初稿.xlsx") in statuses
    assert (TJ, "附件4 进展情况调度表", "退回修改", "2023-07/台江区_附件4.xlsx") in statuses
    assert (MW, "重大事故隐患台账", "未报送", None) in statuses
    late = next(r for r in values if r[5] == "2023-07/仓山区_附件4.xlsx")
    assert late[4] == "是" and late[6] == "2023-08-02 00:00:00"
    section = next(i for i, r in enumerate(values) if r[0] == "被替代和被退回的文件")
    listed = [r for r in values[section + 2 :] if r[0]]
    assert {r[5] for r in listed} == {"2023-07/鼓楼区_附件4_初稿.xlsx", "2023-07/台江区_附件4.xlsx",
                                      "2023-07/仓山区_附件3_初稿.xlsx"}  # fmt: skip


def test_ledger_sheet_merges_units_highlights_overdue_and_filters(book: openpyxl.Workbook) -> None:
    ws = _sheet(book, "隐患台账汇总")
    assert ws.cell(1, 1).value == "单位" and ws.cell(1, 2).value == "隐患编号"
    assert ws.freeze_panes == "C2"
    assert ws.auto_filter.ref is not None and ws.auto_filter.ref.startswith("A1:")
    ids = {ws.cell(r, 2).value: r for r in range(2, ws.max_row + 1)}
    assert list(ids) == [
        "G-001",
        "G-002",
        "G-003",
        "G-004",
        "G-005",
        "G-006",
        "C-001",
        "C-002",
        "C-003",
    ]
    assert ws.cell(ids["G-003"], 1).fill.fgColor.rgb == "FFFFC7CE"
    assert ws.cell(ids["G-005"], 1).fill.fgColor.rgb != "FFFFC7CE"
    assert ws.cell(ids["G-003"], 4).value == HYPERLINK  # a string, not a formula
    found = ws.cell(ids["G-003"], 10)
    assert found.value.date().isoformat() == "2023-07-05" and found.number_format == "yyyy-mm-dd"


def test_an_overdue_hazard_in_a_carried_ledger_is_to_be_confirmed_not_red(
    tmp_path: Path,
) -> None:
    # 台江区 sent no July ledger: its June row past its deadline may have been rectified since
    june = [
        hazard("T-1", "部门检查", "整改中", found="2023-06-05", deadline="2023-07-10"),
        hazard("T-2", "部门检查", "整改中", found="2023-06-05", deadline="2023-09-10"),
    ]
    july = [hazard("G-1", "部门检查", "整改中", found="2023-07-01", deadline="2023-07-20")]
    returns = [
        progress_return(TJ, "2023-06", {"A3": "2"}),
        progress_return(TJ, "2023-07", {"A3": "2"}),
        progress_return(GL, "2023-07", {"A3": "1"}),
        ledger_return(TJ, "2023-06", june),
        ledger_return(GL, "2023-07", july),
    ]
    res = consolidate(returns, "2023-07", units=fixture_units()[:2])
    paths = write_outputs(res, tmp_path)
    ws = openpyxl.load_workbook(paths["workbook"])["隐患台账汇总"]
    head = [c.value for c in ws[1]]
    flag, unit = head.index("是否逾期") + 1, head.index("单位") + 1
    shown = {ws.cell(r, 2).value: ws.cell(r, flag).value for r in range(2, ws.max_row + 1)}
    assert shown == {"G-1": "是", "T-1": "待核实", "T-2": "否"}
    rows = {ws.cell(r, 2).value: r for r in range(2, ws.max_row + 1)}
    assert ws.cell(rows["G-1"], unit).fill.fgColor.rgb == "FFFFC7CE"
    assert ws.cell(rows["T-1"], unit).fill.fgColor.rgb != "FFFFC7CE"
    with paths["ledger_csv"].open(encoding="utf-8-sig") as fh:
        table = list(csv.DictReader(fh))
    assert {r["隐患编号"]: r["是否逾期"] for r in table} == shown


def test_formula_like_county_text_is_a_string_cell_in_the_xml(written: dict[str, Path]) -> None:
    with zipfile.ZipFile(written["workbook"]) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        for name in sheets:
            assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name
        assert f"<t>{HYPERLINK}</t>" in z.read("xl/sharedStrings.xml").decode()


def test_checklist_sheet_counts_inspections_and_hazards(book: openpyxl.Workbook) -> None:
    ws = _sheet(book, "检查清单统计")
    head = _find_row(ws, 1, "表单")
    cols = {ws.cell(head, c).value: c for c in range(1, ws.max_column + 1)}
    row = next(
        r
        for r in range(head + 1, ws.max_row)
        if ws.cell(r, 1).value == "附件2" and ws.cell(r, 2).value == 5
    )
    assert ws.cell(row, cols["检查次数"]).value == 2  # 鼓楼区 and 仓山区 inspected
    assert ws.cell(row, cols["发现隐患"]).value == 1
    assert ws.cell(row, cols["其中重大隐患"]).value == 1
    assert ws.cell(row, cols[f"{GL}\n发现隐患"]).value == 1
    assert ws.cell(row, cols[f"{CS}\n发现隐患"]).value == 0
    a3 = next(
        r
        for r in range(head + 1, ws.max_row)
        if ws.cell(r, 1).value == "附件3" and ws.cell(r, 2).value == 5
    )
    assert ws.cell(a3, cols["发现隐患"]).value == 0  # the corrected resubmission counts
    # 附件1/附件3 record hazards under 重大隐患描述: each counts as major, as the cross-check does
    rows13 = [
        r for r in range(head + 1, ws.max_row + 1) if ws.cell(r, 1).value in ("附件1", "附件3")
    ]
    assert any(ws.cell(r, cols["发现隐患"]).value for r in rows13)
    for r in rows13:
        assert ws.cell(r, cols["其中重大隐患"]).value == ws.cell(r, cols["发现隐患"]).value


def test_charts_sheet_has_a_column_and_a_line_chart(
    written: dict[str, Path], book: openpyxl.Workbook
) -> None:
    ws = _sheet(book, "图表")
    assert [ws.cell(r, 1).value for r in range(2, 6)] == [GL, TJ, CS, MW]
    assert [ws.cell(2, c).value for c in (2, 3)] == [5, 3]  # 鼓楼区 A1+A3, A2+A4
    with zipfile.ZipFile(written["workbook"]) as z:
        charts = sorted(n for n in z.namelist() if n.startswith("xl/charts/chart"))
        assert len(charts) == 2
        kinds = [z.read(n).decode() for n in charts]
    assert "<c:barChart>" in kinds[0] and '<c:barDir val="col"/>' in kinds[0]
    assert "<c:lineChart>" in kinds[1]


def test_sources_trace_every_figure_including_carried_ones(
    result: Consolidation, book: openpyxl.Workbook
) -> None:
    ws = _sheet(book, "数据来源")
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(progress_form().value_codes) * len(result.units)
    by = {(r[1], r[3]): r for r in rows}
    gl = by[("A1", GL)]
    assert (
        gl[0] == "调度表!D6"
        and gl[4] == 3
        and gl[7:10] == ("2023-07/鼓楼区_附件4_修改.xlsx", "调度表", "D6")
    )
    assert gl[10] == "sha-鼓楼区-2023-07-2023-07/鼓楼区_附件4_修改.xlsx"
    tj = by[("A1", TJ)]
    assert tj[5:8] == ("是", "2023-06", "2023-06/台江区_附件4.xlsx")


def test_identical_bytes_on_rerun(
    result: Consolidation, written: dict[str, Path], tmp_path: Path
) -> None:
    again = write_outputs(consolidate(build_returns(), "2023-07", units=fixture_units()), tmp_path)
    for key, path in written.items():
        assert again[key].read_bytes() == path.read_bytes(), key


def test_outputs_replace_atomically_and_leave_no_temp_files(
    result: Consolidation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_outputs(result, tmp_path)
    before = paths["workbook"].read_bytes()

    def broken(_result: Consolidation, path: Path, **_options: object) -> None:
        path.write_bytes(b"half a workbook")
        raise OSError("disk full")

    monkeypatch.setattr("pipeline.output.write_workbook", broken)
    with pytest.raises(OSError):
        write_outputs(result, tmp_path)
    assert paths["workbook"].read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())


def test_csv_is_utf8_bom_and_neutralises_formula_like_text(written: dict[str, Path]) -> None:
    raw = written["ledger_csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:3] == ["单位", "单位代码", "隐患编号"]
    g3 = next(r for r in rows if r[2] == "G-003")
    assert g3[4] == "'" + HYPERLINK
    figures = list(csv.reader(written["csv"].read_bytes().decode("utf-8-sig").splitlines()))
    cs_b1 = next(r for r in figures if r[0] == "2023-07" and r[1] == CS and r[3] == "B1")
    assert cs_b1[6:9] == ["5", "6", "-1"]  # our own numbers are never quoted
    c3b = next(r for r in figures if r[0] == "2023-07" and r[1] == GL and r[3] == "C3b")
    assert c3b[6] == "0.7001"


@pytest.mark.parametrize(
    ("text", "shown"),
    [("=1+1", "'=1+1"), ("+86", "'+86"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
     ("\tx", "'\tx"), ("\rx", "'\rx"), ("鼓楼区", "鼓楼区"), ("a=b", "a=b")],
)  # fmt: skip
def test_csv_safe(text: str, shown: str) -> None:
    assert csv_safe(text) == shown


def test_json_document_shape_and_numbers(result: Consolidation, written: dict[str, Path]) -> None:
    doc = to_json(result)
    assert json.loads(written["json"].read_text(encoding="utf-8")) == doc
    assert doc["period"] == "2023-07"
    assert doc["city"]["A1"] == 11 and isinstance(doc["city"]["A1"], int)
    assert doc["city"]["C3b"] == 1.6002
    assert list(doc["units"]) == [GL, TJ, CS, MW]
    assert doc["units"][TJ]["A1"] == 2  # carried forward as it enters the total
    assert doc["carried_forward"] == [TJ]
    assert doc["carried_from"] == {TJ: "2023-06"}
    assert to_json(_carry_mix())["carried_from"] == {TJ: "2023-06", CS: "2023-05", MW: None}
    assert {a["rule"] for a in doc["anomalies"]} >= {"unit-not-reported", "ledger-mismatch"}
    first = doc["anomalies"][0]
    assert set(first) >= {"rule", "severity", "unit", "item", "message"}
    sub = next(s for s in doc["submissions"] if s["file"] == "2023-07/鼓楼区_附件4_初稿.xlsx")
    assert sub == sub | {
        "unit": GL,
        "form": "annex4_progress",
        "status": "superseded",
        "late": False,
    }


def test_summary_tells_carried_units_from_those_that_never_reported(tmp_path: Path) -> None:
    from pipeline.output import summary_lines

    paths = {"workbook": tmp_path / "out.xlsx", "csv": tmp_path / "out.csv"}
    lines = summary_lines(_carry_mix(), paths, [])
    assert lines[1] == (
        "报送：4 个单位中 1 个已报送进展情况调度表，2 个未报送、沿用最近一次报送的数据"
        f"（{TJ}沿用2023年6月；{CS}沿用2023年5月），1 个从未报送、按0计（{MW}）。"
    )
    only_carried = summary_lines(
        consolidate(build_returns(), "2023-07", units=fixture_units()), paths, []
    )
    assert only_carried[1] == (
        "报送：4 个单位中 3 个已报送进展情况调度表，1 个未报送、沿用最近一次报送的数据"
        f"（{TJ}沿用2023年6月）。"
    )


def test_a_quiet_month_with_one_unit_writes_every_sheet(tmp_path: Path) -> None:
    """No checklists, an empty ledger, no flags: every sheet is still there and says so."""
    rets = [progress_return(GL, "2023-07", {"B1": "3"}), ledger_return(GL, "2023-07", [])]
    res = consolidate(rets, units=fixture_units()[:1])
    assert res.anomalies == [] and res.ledger.empty and res.checklist.empty
    book = openpyxl.load_workbook(write_outputs(res, tmp_path)["workbook"])
    assert book.sheetnames == list(SHEETS)
    assert _sheet(book, "异常标记")["A2"].value == "本期未发现异常。"
    assert _sheet(book, "隐患台账汇总").max_row == 1
    assert _sheet(book, "分县明细").cell(7, 1).value == GL


def test_checklist_csv_leaves_major_blank_for_forms_without_that_column(
    written: dict[str, Path],
) -> None:
    rows = list(
        csv.DictReader(written["checklist_csv"].read_bytes().decode("utf-8-sig").splitlines())
    )
    major = {(r["单位"], r["表单"], r["序号"]): r["是否重大隐患"] for r in rows}
    assert major[(GL, "附件2", "5")] == "是"  # a hazard judged major
    assert major[(CS, "附件2", "10")] == "否"  # a hazard judged not major
    assert major[(GL, "附件2", "1")] == "否"  # no hazard
    cs3 = {k: v for k, v in major.items() if k[1] == "附件3"}
    assert len(cs3) == 7 and set(cs3.values()) == {""}  # 附件3 has no 是否重大隐患 column
    assert {r["是否隐患"] for r in rows if r["表单"] == "附件3" and r["序号"] == "2"} == {"是"}


# --- the fast paths against the cell-by-cell code they replace --------------------------------
#
# The CSVs and the 隐患台账汇总 sheet are rendered a column at a time (values grouped, formatted
# once per distinct value). The references below are the cell-by-cell code they replaced; both
# must give the same bytes for values of every type, empty ones and overdue rows included.

LONG_TEXT = "隐" * 40_000  # beyond Excel's 32,767 UTF-16 units: truncated
WEIRD: list[object] = [
    "文本", "", None, "=HYPERLINK(\"http://x\")", "-5", "a,b", 'say "hi"', "two\nlines", "\rx",
    "\tx", "@x", "+86", "x\0y", LONG_TEXT, True, False, 0, 1, -3, Decimal("1"), Decimal("1.0"),
    Decimal("-0"), Decimal("0"), Decimal("0.7001"), 2.5, -0.0, 0.0,
    float("nan"), dt.date(2023, 7, 5), dt.datetime(2023, 7, 5, 13, 30), dt.datetime(1900, 1, 1),
    dt.date(1900, 3, 1), Path("a/b"), "文本",
]  # fmt: skip


def _reference_csv(table: CsvTable) -> bytes:
    """A table as the cell-by-cell writer wrote it: csv.writer, one _csv_cell per value."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([csv_safe(h) for h in table.header])
    for row in zip(*table.columns, strict=True):
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue().encode("utf-8-sig")


def _written_csv(table: CsvTable, tmp_path: Path) -> bytes:
    path = tmp_path / "t.csv"
    write_csv(path, table)
    return path.read_bytes()


@pytest.mark.parametrize(
    "columns",
    [
        [WEIRD, list(reversed(WEIRD))],  # every type in one column: cell by cell
        [[w for w in WEIRD if isinstance(w, str)], [f"第{i}行" for i in range(14)]],
        [["a", None, "", "=x"], [True, False, True, True], [1, -2, 3, 0], [1, 2.5, None, 0.0]],
        [[Decimal("1.50"), Decimal("-0"), Decimal("7"), Decimal("NaN")],
         [dt.date(2023, 1, 2), None, None, dt.date(2023, 1, 3)], ["x", "y", "z", "-"]],
        [["", "a", ""]],  # one column: csv.writer quotes a lone empty field
        [[], []],
    ],
)  # fmt: skip
def test_csv_columns_render_as_the_cell_by_cell_writer(
    columns: list[list[object]], tmp_path: Path
) -> None:
    table = CsvTable([f"列{i}" for i in range(len(columns) - 1)] + ["=头"], columns)
    assert _written_csv(table, tmp_path) == _reference_csv(table)


def test_written_csv_tables_match_the_cell_by_cell_writer(
    result: Consolidation, written: dict[str, Path]
) -> None:
    for key, table in csv_tables(result).items():
        assert written[key].read_bytes() == _reference_csv(table), key


def test_records_are_to_dict_records(result: Consolidation) -> None:
    for frame in (result.submissions, result.unit_figures(), result.ledger, result.checklist):
        assert records(frame) == frame.to_dict("records")


class _ReferenceRows(_XmlRowsWorksheet):
    pass


# A ledger cell as the cell-by-cell code wrote it: (row, column, what, value, format) where what
# is "s" (text), "n" (a number or a date's serial) or "b" (a formatted blank).
_Op = tuple[int, int, str, object, Format | None]


def _reference_sheet_ledger(
    wb: Workbook,
    st: _Styles,
    result: Consolidation,
    _helper: object = None,
    *,
    public: bool = False,
) -> None:
    """隐患台账汇总 as it was written cell by cell, row by row: as ready XML, or (`public`)
    through xlsxwriter's own write_string/write_number/write_blank and set_row."""
    # the sheet, its header row and formats as the fast writer makes them: the rows are
    # what this reference renders its own way
    ws, width, plain, red = _ledger_sheet(wb, st, _ReferenceRows)
    lform = ledger_form()
    kinds = [_ledger_kind(c) for c in lform.columns]
    keys = [c.key for c in lform.columns]
    led = result.ledger
    unit_rank = {u.name: i for i, u in enumerate(result.units)}
    columns = {
        k: led[k].tolist()
        for k in [*keys, "unit", "overdue", "carried", "ledger_period", "file", "_sheet", "_row"]
    }
    order = sorted(
        range(len(led)),
        key=lambda i: (unit_rank.get(columns["unit"][i], len(unit_rank)), columns["_row"][i]),
    )
    for fmt in [*plain.values(), *red.values()]:  # formats numbered in this order
        if fmt is not None:
            fmt._get_xf_index()
    flag_col = len(keys) + 1
    ops: list[_Op] = []
    red_rows: list[int] = []

    def text(row: int, col: int, value: str | None, fmt: Format | None) -> None:
        if value:
            ops.append((row, col, "s", _excel_text(value), fmt))
        elif fmt is not None:
            ops.append((row, col, "b", None, fmt))

    row = 0
    for i in order:
        row += 1
        # overdue in a carried-forward ledger: to be confirmed, not filled red
        unconfirmed = bool(columns["overdue"][i]) and bool(columns["carried"][i])
        overdue = bool(columns["overdue"][i]) and not unconfirmed
        f = red if overdue else plain
        if overdue:
            red_rows.append(row)
        text(row, 0, columns["unit"][i], f["text"])
        for j, key in enumerate(keys):
            value, kind = columns[key][i], kinds[j]
            if value is None or value == "":
                continue
            if type(value) is str:
                text(row, 1 + j, value, f[kind])
            elif isinstance(value, bool):
                text(row, 1 + j, "是" if value else "否", f[kind])
            elif isinstance(value, dt.date):
                if kind == "date" and isinstance(value, dt.datetime):
                    value = value.date()
                ops.append((row, 1 + j, "n", _excel_serial(value), f[kind]))
            elif isinstance(value, Decimal | int | float):
                if isinstance(value, float) and math.isnan(value):
                    text(row, 1 + j, None, f[kind])
                else:
                    ops.append((row, 1 + j, "n", float(value), f[kind]))
            else:
                text(row, 1 + j, str(value), f[kind])
        text(row, flag_col, "待核实" if unconfirmed else "是" if overdue else "否", f["text"])
        for k, key in enumerate(("ledger_period", "file", "_sheet"), start=1):
            text(row, flag_col + k, columns[key][i], f["text"])
        ops.append((row, flag_col + 4, "n", int(columns["_row"][i]), f["text"]))
    if public:
        for r in red_rows:
            ws.set_row(r, None, red["text"])
        for r, c, what, value, fmt in ops:
            if what == "s":
                ws.write_string(r, c, cast(str, value), fmt)
            elif what == "n":
                ws.write_number(r, c, cast(float, value), fmt)
            else:
                ws.write_blank(r, c, None, fmt)
    elif row:
        index_of = ws.str_table._get_shared_string_index
        red_row = red["text"]._get_xf_index()
        xml: list[str] = []
        current = 0
        for r, c, what, value, fmt in ops:
            if r != current:  # every row has cells: 是否逾期 and 行号 at least
                opened = f' s="{red_row}" customFormat="1"' if r in red_rows else ""
                xml.append(
                    f'</row><row r="{r + 1}"{opened}>' if current else f'<row r="2"{opened}>'
                )
                current = r
            s = f' s="{fmt._get_xf_index()}"' if fmt is not None else ""
            ref = f"{col_letter(c)}{r + 1}"
            if what == "s":
                xml.append(f'<c r="{ref}"{s} t="s"><v>{index_of(cast(str, value))}</v></c>')
            elif what == "n":
                xml.append(f'<c r="{ref}"{s}><v>{value:.16G}</v></c>')
            else:
                xml.append(f'<c r="{ref}"{s}/>')
        xml.append("</row>")
        ws._check_dimensions(row, flag_col + 4)
        ws.xml_rows = lambda fh: fh.write("".join(xml))
    ws.autofilter(0, 0, max(row, 1), width - 1)
    _print_setup(ws, repeat_rows=(0, 0))


def _ledger_frame(result: Consolidation, kind: str) -> pd.DataFrame:
    """A ledger of the fixture's units (and one unknown) with values of one kind per column:
    as read ("plain"), every type everywhere ("mixed"), values equal across types but shown
    differently ("equal": True == 1 == Decimal(1), -0.0 == 0) or no rows at all ("empty")."""
    keys = [c.key for c in ledger_form().columns]
    units = [u.name for u in result.units]
    n = 0 if kind == "empty" else 3 * len(WEIRD)
    cols: dict[str, list[object]] = {
        "unit": [[*reversed(units), "外县", ""][i % 6] for i in range(n)],
        "_row": [4 + (i * 7) % 11 for i in range(n)],  # repeats: ties keep the frame's order
        "overdue": [i % 3 == 0 or i % 7 == 0 for i in range(n)],
        "carried": [i % 5 == 0 for i in range(n)],
        "ledger_period": [["2023-07", "", None][i % 3] if kind == "mixed" else "2023-07"
                          for i in range(n)],
        "file": [f"{i % 4}/台账.xlsx" for i in range(n)],
        "_sheet": ["隐患台账"] * n,
    }  # fmt: skip
    equal: list[list[object]] = [
        [Decimal("0"), Decimal("-0"), Decimal("1"), Decimal("1.0"), 3, Decimal("2.50")],
        [True, 1, Decimal(1), 1.0, False, 0, Decimal("0"), -0.0, 0.0],
        [-0.0, 0.0, 1.0, 1],
        [Decimal("2"), True, 1, Decimal("3")],
        ["文本", None, "", "是", True, dt.date(2023, 7, 5), dt.datetime(2023, 7, 5)],
    ]
    for j, key in enumerate(keys):
        if kind == "equal":
            pool = equal[0 if key == "funds" else j % len(equal)]
            cols[key] = [pool[(i * (j + 1)) % len(pool)] for i in range(n)]
        elif kind == "mixed":
            cols[key] = [WEIRD[(i * (j + 3)) % len(WEIRD)] for i in range(n)]
        elif key == "funds":
            cols[key] = [Decimal(i % 9 + 1) / 4 for i in range(n)]  # no zero: grouped by value
        elif key.endswith("date") or key == "deadline":
            cols[key] = [dt.date(2023, 7, 1 + i % 20) if i % 4 else None for i in range(n)]
        else:
            cols[key] = [f"{key}{i % 13}" if i % 5 else [None, ""][i % 2] for i in range(n)]
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()})
    return frame.astype({"_row": "int64", "overdue": "bool", "carried": "bool"})


def _ledger_workbook(
    path: Path, result: Consolidation, sheet: Callable[[Workbook, _Styles, Consolidation], None]
) -> bytes:
    """A workbook with text before and after the ledger sheet (the shared strings go on)."""
    wb = Workbook(str(path), copy.deepcopy(WORKBOOK_OPTIONS))
    wb.set_properties({"created": dt.datetime(2023, 8, 1)})
    st = _Styles(wb)
    before = wb.add_worksheet("前")
    for i, text in enumerate(["文本", "是", "2023-07", "单位", "domain3"]):
        before.write_string(i, 0, text, st.cell())
    sheet(wb, st, result)
    after = wb.add_worksheet("后")
    for i, text in enumerate(["否", "新的", "site4", "文本"]):
        after.write_string(i, 0, text, st.cell(bold=True))
    wb.close()
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["plain", "mixed", "equal", "empty"])
def test_ledger_sheet_renders_as_the_cell_by_cell_code(
    result: Consolidation, tmp_path: Path, kind: str
) -> None:
    ledger = _ledger_frame(result, kind)
    res = cast(Consolidation, SimpleNamespace(ledger=ledger, units=result.units))
    fast = _ledger_workbook(tmp_path / "fast.xlsx", res, _sheet_ledger)
    slow = _ledger_workbook(tmp_path / "slow.xlsx", res, _reference_sheet_ledger)
    assert fast == slow
    if kind != "empty":  # the rows are there, the long text cut where Excel cuts it
        sheet = openpyxl.load_workbook(tmp_path / "fast.xlsx")["隐患台账汇总"]
        assert sheet.max_row == len(ledger) + 1
        texts = {c.value for row in sheet.iter_rows() for c in row}
        assert (LONG_TEXT[:32767] in texts) == (kind == "mixed")


def test_amounts_that_are_no_number_are_written_blank(
    result: Consolidation, tmp_path: Path
) -> None:
    # NaN and infinities have no spreadsheet number (a <v>NAN</v> makes the file unreadable):
    # such an amount, Decimal or float, shows as a blank cell, the others as their number
    ledger = _ledger_frame(result, "plain")
    odd = [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), float("inf")]
    funds = [*odd, Decimal("2.5")]
    ledger["funds"] = pd.Series([funds[i % len(funds)] for i in range(len(ledger))], dtype=object)
    res = cast(Consolidation, SimpleNamespace(ledger=ledger, units=result.units))
    _ledger_workbook(tmp_path / "odd.xlsx", res, _sheet_ledger)
    sheet = openpyxl.load_workbook(tmp_path / "odd.xlsx")["隐患台账汇总"]
    header = [c.value for c in sheet[1]]
    col = header.index(next(c.label for c in ledger_form().columns if c.key == "funds")) + 1
    shown = [sheet.cell(row=2 + k, column=col).value for k in range(len(ledger))]
    blanks = sum(1 for i in range(len(ledger)) if i % len(funds) < len(odd))
    assert shown.count(None) == blanks and shown.count(2.5) == len(ledger) - blanks


def _cells(xlsx: bytes, part: str) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        return re.findall(r"<c [^>]*?(?:/>|>.*?</c>)", z.read(part).decode())


def test_ledger_cells_are_those_xlsxwriter_writes(result: Consolidation, tmp_path: Path) -> None:
    """The ledger's rows bypass xlsxwriter's cell API (its shared strings table and format
    numbering are used directly): the cells, shared strings and formats must be those
    xlsxwriter writes through its public API. Fails if a new xlsxwriter changes them."""
    ledger = _ledger_frame(result, "plain")
    assert ledger["overdue"].any() and not ledger["overdue"].all()
    res = cast(Consolidation, SimpleNamespace(ledger=ledger, units=result.units))
    fast = _ledger_workbook(tmp_path / "fast.xlsx", res, _sheet_ledger)
    public = _ledger_workbook(
        tmp_path / "public.xlsx",
        res,
        lambda wb, st, r: _reference_sheet_ledger(wb, st, r, public=True),
    )
    for part in ("xl/sharedStrings.xml", "xl/styles.xml", "xl/worksheets/sheet3.xml"):
        with zipfile.ZipFile(io.BytesIO(fast)) as f, zipfile.ZipFile(io.BytesIO(public)) as p:
            assert f.read(part) == p.read(part), part
    cells = _cells(fast, "xl/worksheets/sheet2.xml")
    assert len(cells) > 20 * len(ledger)
    assert cells == _cells(public, "xl/worksheets/sheet2.xml")


def test_written_ledger_sheet_is_the_cell_by_cell_one(
    result: Consolidation, written: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipeline.output._sheet_ledger", _reference_sheet_ledger)
    write_workbook(result, tmp_path / "slow.xlsx")
    assert (tmp_path / "slow.xlsx").read_bytes() == written["workbook"].read_bytes()


# --- the helper process ----------------------------------------------------------------------


def _job(text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(f"{text} {os.getpid()}", encoding="utf-8")

    return write


def _broken(path: Path) -> None:
    path.write_text("half", encoding="utf-8")
    raise OSError(28, "No space left on device")


def test_forked_files_are_written_by_a_child_and_handed_over(tmp_path: Path) -> None:
    with ForkedFiles(tmp_path, {"a": _job("A"), "b": _job("B")}) as helper:
        assert helper.take("a") is None and list(tmp_path.iterdir()) == []  # not started yet
        helper.start()
        b, a = helper.take("b"), helper.take("a")
        assert a is not None and b is not None
        text, pid = a.read_text(encoding="utf-8").split()
        assert text == "A" and int(pid) != os.getpid()  # written by another process
        assert b.read_text(encoding="utf-8").split()[0] == "B"
        assert helper.take("a") is None  # handed over once
        a.rename(tmp_path / "a.txt")
    # b was taken but not renamed into place: removed with the rest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_failing_job_leaves_its_file_and_the_later_ones_to_the_caller(tmp_path: Path) -> None:
    with ForkedFiles(tmp_path, {"a": _job("A"), "b": _broken, "c": _job("C")}) as helper:
        helper.start()
        a = helper.take("a")
        assert a is not None
        assert helper.take("c") is None and helper.take("b") is None
    assert list(tmp_path.iterdir()) == []


def test_closing_stops_the_child_and_removes_every_file_not_taken(tmp_path: Path) -> None:
    def endless(path: Path) -> None:
        path.write_text("started", encoding="utf-8")
        time.sleep(3600)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with (
        pytest.raises(RuntimeError),
        ForkedFiles(tmp_path, {"a": _job("A"), "b": endless}) as helper,
    ):
        helper.start({"first": _job("F")}, first_folder=elsewhere)
        first = helper.take("first")
        assert first is not None and first.parent == elsewhere
        child = helper._pid
        raise RuntimeError("the caller failed")  # before taking the others
    assert list(tmp_path.iterdir()) == [elsewhere] and list(elsewhere.iterdir()) == []
    assert child and not helper._pid
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # killed and reaped: not even a zombie left


def test_no_fork_when_not_asked_or_with_another_thread_alive(tmp_path: Path) -> None:
    with ForkedFiles(tmp_path, {"a": _job("A")}, fork=False) as helper:
        helper.start()
        assert list(tmp_path.iterdir()) == []
        assert helper.take("a") is None
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        with ForkedFiles(tmp_path, {"a": _job("A")}) as helper:
            helper.start()
            assert list(tmp_path.iterdir()) == []
            assert helper.take("a") is None
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[tuple[str, bool]]]:
    """Every output is big enough for the helper process; records what it delivered. Local
    temporary files (the ledger rows', xlsxwriter's) go to tmp_path/tmp. Afterwards, every
    helper has been stopped and reaped."""
    monkeypatch.setattr("pipeline.output.FORK_MIN_CELLS", 0)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    log: list[tuple[str, bool]] = []
    helpers: list[ForkedFiles] = []
    real_take, real_start = ForkedFiles.take, ForkedFiles.start

    def take(self: ForkedFiles, key: str) -> Path | None:
        path = real_take(self, key)
        log.append((key, path is not None))
        return path

    def start(self: ForkedFiles, *args: Any, **kwargs: Any) -> None:
        real_start(self, *args, **kwargs)
        helpers.append(self)

    monkeypatch.setattr(ForkedFiles, "take", take)
    monkeypatch.setattr(ForkedFiles, "start", start)
    yield log
    children = [h._pid for h in helpers]
    for helper in helpers:
        helper.close()  # a no-op if write_outputs closed it
    for child in filter(None, children):
        with pytest.raises(ChildProcessError):
            os.waitpid(child, os.WNOHANG)


HELPED = ["ledger_rows", "csv", "ledger_csv", "checklist_csv", "anomalies_csv", "json"]


def test_outputs_rendered_by_the_helper_process_are_the_same(
    result: Consolidation,
    written: dict[str, Path],
    tmp_path: Path,
    taken: list[tuple[str, bool]],
) -> None:
    again = write_outputs(result, tmp_path / "out")
    assert taken == [(key, True) for key in HELPED]
    for key, path in written.items():
        assert again[key].read_bytes() == path.read_bytes(), key
        assert again[key].stat().st_mode == path.stat().st_mode, key
    assert sorted(p.name for p in again["csv"].parent.iterdir()) == sorted(
        p.name for p in again.values()
    )
    assert list((tmp_path / "tmp").iterdir()) == []


def test_what_the_helper_fails_to_render_is_written_here(
    result: Consolidation,
    written: dict[str, Path],
    tmp_path: Path,
    taken: list[tuple[str, bool]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent = os.getpid()
    real = output._render_csv

    def render(path: Path, table: CsvTable) -> None:
        if os.getpid() != parent and len(table.columns) == 13:  # the checklist CSV, in the child
            _broken(path)
        real(path, table)

    monkeypatch.setattr("pipeline.output._render_csv", render)
    again = write_outputs(result, tmp_path / "out")
    assert taken == [(k, True) for k in HELPED[:3]] + [(k, False) for k in HELPED[3:]]
    for key, path in written.items():
        assert again[key].read_bytes() == path.read_bytes(), key
    assert sorted(p.name for p in again["csv"].parent.iterdir()) == sorted(
        p.name for p in again.values()
    )
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize(("writer", "failing_call"), [("write_workbook", 1), ("write_csv", 2)])
def test_a_failed_write_with_the_helper_keeps_old_outputs_and_leaves_no_temp_files(
    result: Consolidation,
    tmp_path: Path,
    taken: list[tuple[str, bool]],
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
    failing_call: int,
) -> None:
    out = tmp_path / "out"
    old = {p.name: p.read_bytes() for p in write_outputs(result, out).values()}
    taken.clear()
    real = getattr(output, writer)
    calls = {"n": 0}

    def half_then_fail(*args: object, **options: object) -> None:
        calls["n"] += 1
        if calls["n"] == failing_call:
            cast(Path, args[0] if writer == "write_csv" else args[1]).write_bytes(b"PK half")
            raise OSError(28, "No space left on device")
        real(*args, **options)

    monkeypatch.setattr(f"pipeline.output.{writer}", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_outputs(result, out)
    assert calls["n"] == failing_call
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert list((tmp_path / "tmp").iterdir()) == []


def test_without_ledger_rows_the_helper_still_renders_the_tables(
    tmp_path: Path, taken: list[tuple[str, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    rets = [progress_return(GL, "2023-07", {"B1": "3"}), ledger_return(GL, "2023-07", [])]
    res = consolidate(rets, units=fixture_units()[:1])
    forked = write_outputs(res, tmp_path / "forked")
    assert taken == [(key, True) for key in HELPED[1:]]
    monkeypatch.setattr("pipeline.output.FORK_MIN_CELLS", 10**9)
    alone = write_outputs(res, tmp_path / "alone")
    assert taken[len(HELPED) - 1 :] == [(key, False) for key in HELPED[1:]]
    for key, path in forked.items():
        assert path.read_bytes() == alone[key].read_bytes(), key
