"""Status board: days left around the deadline, per unit × form status, JSON, screen and sheet."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from fixtures_consolidate import build_returns
from rich.console import Console

from pipeline.consolidate import consolidate
from pipeline.forms import load_calendar, load_units
from pipeline.status import (
    SHEET_NAME,
    Submission,
    cycle_from_returns,
    days_left,
    render_status,
    status_frame,
    status_from_consolidation,
    status_from_submissions,
    status_json,
    status_of_cycle,
    upcoming_deadlines,
    write_status_sheet,
)

PERIOD = "2023-07"  # due 2023-08-01 (inclusive)


def _subs(*rows: tuple[str, str, str, bool, str]) -> list[Submission]:
    return [
        Submission(unit=u, form=f, status=s, late=late, file=file) for u, f, s, late, file in rows
    ]  # type: ignore[arg-type]


def test_the_due_day_itself_is_day_zero_and_on_time() -> None:
    due = load_calendar().due_date(PERIOD)
    assert due == dt.date(2023, 8, 1)
    assert days_left(due, dt.date(2023, 7, 29)) == 3
    assert days_left(due, dt.date(2023, 7, 31)) == 1
    assert days_left(due, dt.date(2023, 8, 1)) == 0
    assert days_left(due, dt.date(2023, 8, 2)) == -1
    on_day = status_from_submissions([], PERIOD, today=dt.date(2023, 8, 1))
    after = status_from_submissions([], PERIOD, today=dt.date(2023, 8, 2))
    assert (on_day.days_left, on_day.overdue) == (0, False)
    assert (after.days_left, after.overdue) == (-1, True)


def test_december_is_due_on_the_first_of_january() -> None:
    report = status_from_submissions([], "2023-12", today=dt.date(2023, 12, 31))
    assert report.due == dt.date(2024, 1, 1)
    assert report.days_left == 1


def test_upcoming_deadlines_start_at_today_and_count_days() -> None:
    cal = load_calendar()
    found = upcoming_deadlines(cal, dt.date(2023, 8, 5))
    assert [(d.date.isoformat(), d.days_left) for d in found] == [
        ("2023-08-05", 0),
        ("2023-11-15", 102),
        ("2023-12-05", 122),
        ("2023-12-31", 148),
    ]
    assert upcoming_deadlines(cal, dt.date(2024, 1, 1)) == []


def test_each_unit_and_form_gets_the_current_returns_verdict() -> None:
    subs = _subs(
        ("鼓楼区", "annex4_progress", "accepted", False, "a.xlsx"),
        ("鼓楼区", "annex4_progress", "superseded", False, "a0.xlsx"),
        ("鼓楼区", "ledger", "accepted", True, "l.xlsx"),
        ("鼓楼区", "annex2_construction", "accepted", False, "c1.xlsx"),
        ("鼓楼区", "annex2_construction", "accepted", False, "c2.xlsx"),
        ("台江区", "annex4_progress", "rejected", False, "t.xlsx"),
        ("台江区", "ledger", "missing", False, ""),
        ("平潭县", "annex4_progress", "accepted", False, "p.xlsx"),
    )
    report = status_from_submissions(subs, PERIOD, today=dt.date(2023, 7, 28))
    units = {u.name: u for u in report.units}
    gl, tj = units["鼓楼区"], units["台江区"]
    a4 = report.cell(gl, "annex4_progress")
    assert (a4.status, a4.accepted, a4.superseded, a4.files) == ("accepted", 1, 1, ("a.xlsx",))
    assert report.cell(gl, "ledger").late is True
    assert report.cell(gl, "annex2_construction").accepted == 2
    assert report.cell(gl, "annex1_gas").status == "none"
    assert report.cell(tj, "annex4_progress").status == "rejected"
    assert report.cell(tj, "ledger").status == "missing"
    assert report.unknown_units == ("平潭县",)
    assert report.count("rejected") == 1 and report.late_count() == 1
    assert report.unit_complete(gl) and not report.unit_complete(tj)


def test_a_rejected_return_since_corrected_is_no_longer_outstanding() -> None:
    # 台江区's rejected 附件4 is followed by a corrected one that passed
    from fixtures_consolidate import TJ, progress_return

    fixed = progress_return(
        TJ, PERIOD, {"A1": "2"}, rel="2023-07/台江区_附件4_更正.xlsx",
        received=dt.datetime(2023, 8, 2, 9),
    )  # fmt: skip
    report = status_of_cycle(
        cycle_from_returns([*build_returns(), fixed], PERIOD), today=dt.date(2023, 8, 3)
    )
    tj = report.cell(next(u for u in report.units if u.name == TJ), "annex4_progress")
    assert (tj.status, tj.rejected, tj.superseded, tj.late) == ("accepted", 0, 1, True)


def test_status_of_the_consolidated_fixture() -> None:
    cycle = cycle_from_returns(build_returns(), PERIOD)
    report = status_of_cycle(cycle, today=dt.date(2023, 8, 3))
    units = {u.name: u for u in report.units}
    # 鼓楼区 sent 附件4 twice: the later return counts, the first is superseded
    gl = report.cell(units["鼓楼区"], "annex4_progress")
    assert (gl.status, gl.files, gl.superseded) == (
        "accepted",
        ("2023-07/鼓楼区_附件4_修改.xlsx",),
        1,
    )
    assert report.cell(units["台江区"], "annex4_progress").status == "rejected"
    assert report.cell(units["仓山区"], "annex4_progress").late is True
    assert report.cell(units["马尾区"], "ledger").status == "missing"
    assert report.cell(units["闽侯县"], "annex4_progress").status == "missing"
    assert report.days_left == -2
    doc = status_json(report)
    assert doc["due_date"] == "2023-08-01" and doc["days_left"] == -2
    assert doc["units"]["台江区"]["forms"]["annex4_progress"]["status"] == "rejected"
    assert doc["units"]["仓山区"]["forms"]["annex4_progress"]["late"] is True
    assert [d["date"] for d in doc["deadlines"]] == [
        "2023-08-05",
        "2023-11-15",
        "2023-12-05",
        "2023-12-31",
    ]
    frame = status_frame(report)
    assert len(frame) == len(report.units) * len(report.forms)
    gas = frame[(frame["unit"] == "闽侯县") & (frame["form"] == "annex1_gas")].iloc[0]
    assert (gas["status"], gas["required"], gas["text"]) == ("missing", False, "本期无")
    row = frame[(frame["unit"] == "台江区") & (frame["form"] == "annex4_progress")].iloc[0]
    assert (row["status"], row["days_left"]) == ("rejected", -2)


def test_status_works_before_any_progress_return_is_accepted() -> None:
    only_rejected = [r for r in build_returns() if r.status == "rejected"]
    cycle = cycle_from_returns(only_rejected, PERIOD)
    assert cycle.result is None
    report = status_of_cycle(cycle, today=dt.date(2023, 7, 20))
    units = {u.name: u for u in report.units}
    assert report.cell(units["台江区"], "annex4_progress").status == "rejected"
    assert report.cell(units["鼓楼区"], "annex4_progress").status == "missing"


def test_screen_table_names_units_statuses_and_deadlines() -> None:
    subs = _subs(
        ("鼓楼区", "annex4_progress", "accepted", True, "a.xlsx"),
        ("台江区", "annex4_progress", "missing", False, ""),
    )
    report = status_from_submissions(subs, PERIOD, today=dt.date(2023, 8, 2))
    buf = io.StringIO()
    render_status(report, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert "2023年7月 报送情况" in text and "已逾期 1 天" in text
    assert "已接收（迟报）" in text and "逾期未报" in text
    assert "报送贯彻落实情况（第一次）" in text


def test_status_sheet_in_an_xlsxwriter_workbook(tmp_path: Path) -> None:
    subs = _subs(
        ("鼓楼区", "annex4_progress", "accepted", False, "a.xlsx"),
        ("鼓楼区", "ledger", "accepted", False, "l.xlsx"),
        ("台江区", "annex4_progress", "rejected", False, "t.xlsx"),
        ("台江区", "ledger", "missing", False, ""),
    )
    report = status_from_submissions(subs, PERIOD, today=dt.date(2023, 7, 30))
    path = tmp_path / "out.xlsx"
    wb = xlsxwriter.Workbook(path)
    write_status_sheet(wb, report)
    wb.close()
    ws = openpyxl.load_workbook(path)[SHEET_NAME]
    assert ws["A1"].value == "2023年7月 报送进度"
    assert "还剩 2 天" in ws["A2"].value
    headers = [c.value for c in ws[4]]
    assert headers[:2] == ["单位编码", "单位"]
    a4_col = headers.index("附件4 进展情况调度表") + 1
    by_unit = {ws.cell(r, 2).value: r for r in range(5, 5 + len(report.units))}
    assert ws.cell(by_unit["鼓楼区"], a4_col).value == "已接收"
    assert ws.cell(by_unit["台江区"], a4_col).value == "退回修改"
    assert ws.cell(by_unit["台江区"], headers.index("重大事故隐患台账") + 1).value == "未报送"
    assert ws.cell(by_unit["鼓楼区"], headers.index("是否报齐") + 1).value == "是"
    assert ws.freeze_panes == "C5"
    texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    assert "报送贯彻落实情况（第一次）" in texts


def test_status_sheet_prints_on_a4_landscape_one_page_wide(tmp_path: Path) -> None:
    report = status_from_consolidation(
        consolidate(build_returns(), PERIOD, units=load_units()), today=dt.date(2023, 8, 5)
    )
    path = tmp_path / "out.xlsx"
    wb = xlsxwriter.Workbook(path)
    write_status_sheet(wb, report)
    wb.close()
    ws = openpyxl.load_workbook(path)[SHEET_NAME]
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.paperSize == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.page_setup.fitToWidth in (None, 1)  # 1 is the default, left out of the XML
    assert ws.page_setup.fitToHeight == 0  # as many pages down as the units need
    assert ws.print_title_rows == "$4:$4"  # the header row on every page
    assert ws.print_title_cols == "$A:$B"  # 单位编码 and 单位
    assert ws["A4"].value == "单位编码" and ws["B4"].value == "单位"
    assert ws.oddFooter.center.text == "第 &P 页 共 &N 页"


@pytest.mark.parametrize("today", [dt.date(2023, 7, 31), dt.date(2023, 8, 1)])
def test_missing_before_or_on_the_due_day_is_not_overdue(today: dt.date) -> None:
    report = status_from_submissions(
        _subs(("台江区", "annex4_progress", "missing", False, "")), PERIOD, today=today
    )
    tj = next(u for u in report.units if u.name == "台江区")
    frame = status_frame(report)
    text = frame[(frame["unit"] == "台江区") & (frame["form"] == "annex4_progress")]["text"].iloc[0]
    assert report.cell(tj, "annex4_progress").status == "missing"
    assert text == "未报送"


def test_a_rejected_file_of_no_readable_unit_counts_for_the_unit_its_path_names(
    tmp_path: Path,
) -> None:
    from helpers_fill import nameless_inbox

    from pipeline.status import unidentified_rejected
    from pipeline.validate import validate_inbox

    files = nameless_inbox(tmp_path / "inbox")
    returns = validate_inbox(tmp_path / "inbox")
    assert {r.rel for r in returns if r.status == "rejected" and not r.unit_name} == set(
        files.values()
    )
    report = status_of_cycle(cycle_from_returns(returns, PERIOD), today=dt.date(2023, 8, 3))
    units = {u.name: u for u in report.units}
    cell = report.cell
    # the file name says 附件4: 鼓楼区's 附件4 is to be corrected, not unsent
    assert (cell(units["鼓楼区"], "annex4_progress").status, cell(units["鼓楼区"], "annex4_progress").files) == ("rejected", (files["pdf"],))  # fmt: skip
    # the photo names no form: in no cell, but 鼓楼区's all the same
    assert [s.file for s in report.unplaced(units["鼓楼区"])] == [files["photo"]]
    assert cell(units["鼓楼区"], "ledger").status == "missing"
    # the folder names the unit; the period is the folder's too
    assert cell(units["台江区"], "ledger").status == "rejected"
    # June's file (by its name) does not answer for July
    assert cell(units["台江区"], "annex4_progress").status == "missing"
    # a unit typed wrong in a readable return: its folder's
    assert cell(units["马尾区"], "annex4_progress").status == "rejected"
    # 长乐路 is no unit; a .rar is the city's to extract, whoever sent it
    assert cell(units["仓山区"], "annex4_progress").status == "missing"
    # listed apart as before, June's file among them: of no period read, it may be July's
    assert unidentified_rejected(report) == sorted([files["no_unit"], files["rar"], files["june"]])
    doc = status_json(report)
    pdf = next(s for s in doc["submissions"] if s["file"] == files["pdf"])
    assert (pdf["unit"], pdf["form"], pdf["status"]) == ("", "", "rejected")
    assert (pdf["path_unit"], pdf["path_form"]) == ("鼓楼区", "annex4_progress")
    assert doc["units"]["鼓楼区"]["forms"]["annex4_progress"]["status"] == "rejected"
    buf = io.StringIO()
    render_status(report, Console(file=buf, width=300, color_system=None))
    text = buf.getvalue()
    assert f"{files['photo']}（按所在文件夹“鼓楼区”）→ 鼓楼区" in text
    assert files["rar"] in text and files["no_unit"] in text


def test_a_file_put_down_by_its_path_is_superseded_by_a_later_accepted_return() -> None:
    from pipeline.status import PathOwner

    def at(day: int) -> dt.datetime:
        return dt.datetime(2023, 7, day, 9)

    subs = [
        Submission("鼓楼区", "annex4_progress", "accepted", file="a.xlsx", received=at(30)),
        Submission("", "", "rejected", file="鼓楼区/附件4.pdf.xlsx", received=at(28)),
        Submission("", "", "rejected", file="鼓楼区/附件4(1).xlsx", received=at(31)),
    ]
    by_path = {
        s.file: PathOwner("鼓楼区", "annex4_progress", "所在文件夹“鼓楼区”") for s in subs[1:]
    }
    report = status_from_submissions(subs, PERIOD, today=dt.date(2023, 8, 3), by_path=by_path)
    gl = report.cell(next(u for u in report.units if u.name == "鼓楼区"), "annex4_progress")
    # sent before the good one: corrected since; sent after: outstanding, as consolidate has it
    assert (gl.status, gl.accepted, gl.rejected, gl.superseded) == ("rejected", 1, 1, 1)
    assert gl.files == ("a.xlsx", "鼓楼区/附件4(1).xlsx")
    assert (
        status_from_submissions(subs, PERIOD, today=dt.date(2023, 8, 3))
        .cell(next(u for u in report.units if u.name == "鼓楼区"), "annex4_progress")
        .status
        == "accepted"
    )  # without by_path: consolidate's table as it stands


def test_an_export_beside_an_accepted_workbook_or_a_file_of_no_month_is_put_down_to_nobody(
    tmp_path: Path,
) -> None:
    from helpers_fill import make_return

    from pipeline.status import owners_by_path
    from pipeline.validate import validate_inbox

    inbox = tmp_path / "inbox"
    month = inbox / "2023年6月" / "鼓楼区"
    month.mkdir(parents=True)
    made = make_return(tmp_path / "made", "annex4_progress", period="2023-06")
    made.replace(month / "附件4_鼓楼区_2023年6月.xlsx")
    (month / "附件4_鼓楼区_2023年6月.csv").write_text("x", encoding="utf-8")  # its export
    (month / "台账_鼓楼区_2023年6月.csv").write_text("x", encoding="utf-8")  # no workbook
    (inbox / "鼓楼区" / "附件4.xlsx").parent.mkdir(parents=True)
    (inbox / "鼓楼区" / "附件4.xlsx").write_bytes(b"")  # no month in its path at all
    owners = owners_by_path(validate_inbox(inbox), "2023-06")
    assert sorted(owners) == ["2023年6月/鼓楼区/台账_鼓楼区_2023年6月.csv"]
    assert owners["2023年6月/鼓楼区/台账_鼓楼区_2023年6月.csv"].form == "ledger"


def test_the_workbooks_status_sheet_counts_a_file_by_its_path_as_status_does(
    tmp_path: Path,
) -> None:
    # the consolidated workbook's 报送进度 sheet said 逾期未报 where `status` said 退回修改
    from helpers_fill import make_return, nameless_inbox

    from pipeline.consolidate import consolidate
    from pipeline.status import status_from_consolidation
    from pipeline.validate import validate_inbox

    files = nameless_inbox(tmp_path / "inbox")
    made = make_return(tmp_path / "made", "annex4_progress", unit="晋安区", period=PERIOD)
    made.replace(tmp_path / "inbox" / "2023年7月" / "晋安区附件4.xlsx")
    returns = validate_inbox(tmp_path / "inbox")
    result = consolidate(returns, PERIOD)
    assert files["pdf"] in result.path_owners
    board = status_from_consolidation(result, today=result.due_date)
    gl = next(u for u in board.units if u.name == "鼓楼区")
    assert board.cell(gl, "annex4_progress").status == "rejected"
    assert board.cell(gl, "annex4_progress").files == (files["pdf"],)
