"""The output stage read back: sheet order, values, merged ranges, formats, CSV, JSON, bytes."""

from __future__ import annotations

import csv
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from fixtures_consolidate import (
    CITY_2023_07,
    CS,
    GL,
    MW,
    TJ,
    build_returns,
    fixture_units,
    ledger_return,
    progress_return,
)
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.consolidate import Consolidation, consolidate
from pipeline.forms import progress_form
from pipeline.layout import a1, progress_layout
from pipeline.output import (
    SHEETS,
    csv_safe,
    output_stem,
    to_json,
    workbook_name,
    write_outputs,
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

    def broken(_result: Consolidation, path: Path) -> None:
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
