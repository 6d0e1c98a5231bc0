"""Next month's templates: last accepted 附件4 figures as locked captions, ledger rows prefilled."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from fixtures_consolidate import CS, GL, MW, TJ, build_returns, hazard, ledger_return

from pipeline.forms import ledger_form, load_units, progress_form, unit_by_name
from pipeline.layout import (
    INSTRUCTIONS_SHEET,
    LedgerLayout,
    ledger_input_rows,
    progress_layout,
)
from pipeline.prefill import (
    PrefillError,
    next_period,
    prefill_json,
    prefill_next_period,
    unit_prefill,
)
from pipeline.status import cycle_from_returns
from pipeline.templates import template_filename

PERIOD = "2023-07"
NEXT = "2023-08"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("prefill")
    cycle = cycle_from_returns(build_returns(), PERIOD)
    units = [unit_by_name(n) for n in (GL, TJ, CS, MW, "闽侯县")]
    result = prefill_next_period(cycle, out, units=units)  # type: ignore[arg-type]
    return out, prefill_json(result)


def _progress_sheet(out: Path, unit: str) -> openpyxl.worksheet.worksheet.Worksheet:
    form = progress_form()
    path = out / NEXT / unit / template_filename(form, unit_by_name(unit), NEXT)
    return openpyxl.load_workbook(path)[form.sheet_name]


def _captions(ws: openpyxl.worksheet.worksheet.Worksheet) -> dict[str, tuple[str, str, str]]:
    """value code -> (caption text, caption cell address, input cell address)."""
    out = {}
    for item in progress_layout(progress_form()).items:
        for code, caption, cell, _merge in item.inputs:
            out[code] = (ws[caption.a1].value, caption.a1, cell.a1)
    return out


def test_progress_template_shows_last_accepted_figures_in_locked_captions(
    written: tuple[Path, dict[str, object]],
) -> None:
    out, _doc = written
    ws = _progress_sheet(out, GL)
    caps = _captions(ws)
    # 鼓楼区's July figures (the later of its two July returns): A1 3, C3b 0.7001, D5a 0.15
    assert caps["A1"][0] == "个（上月 3）"
    assert caps["C3a"][0] == "次\n上月 3"
    assert caps["C3b"][0] == "万元\n上月 0.7001"
    assert caps["D5a"][0] == "奖励\n上月 0.15"
    assert ws.protection.sheet is True
    for code, (_text, caption, cell) in caps.items():
        assert ws[caption].protection.locked is True, code
        assert ws[cell].protection.locked is False, code
        assert ws[cell].value is None, code  # the inputs stay empty for this month's figures


def _instructions(out: Path, unit: str, form_id: str) -> str:
    form = progress_form() if form_id == "annex4_progress" else ledger_form()
    path = out / NEXT / unit / template_filename(form, unit_by_name(unit), NEXT)
    ws = openpyxl.load_workbook(path)[INSTRUCTIONS_SHEET]
    return "\n".join(str(c.value) for c in ws["A"] if c.value)


def test_a_unit_whose_july_return_was_rejected_carries_its_june_figures_named_as_june(
    written: tuple[Path, dict[str, object]],
) -> None:
    out, doc = written
    ws = _progress_sheet(out, TJ)
    caps = _captions(ws)
    # June's figures in an August template are not "上月": the caption names their month
    assert caps["A1"][0] == "个（2023年6月 2）"
    assert caps["B1"][0] == "家（2023年6月 8）"
    assert caps["C3b"][0] == "万元\n2023年6月 0.2"
    assert not any("上月" in str(text) for text, _cap, _cell in caps.values())
    # the caption rows are tall enough for the longer, wrapping captions
    row = int("".join(ch for ch in caps["C3b"][1] if ch.isdigit()))
    assert ws.row_dimensions[row].height >= 3 * 9 * 1.45
    notes = _instructions(out, TJ, "annex4_progress")
    assert "“2023年6月 数字”是贵单位最近一次已接收的附件4（2023年6月）的累计数" in notes
    assert "此后各月未收到贵单位通过校验的附件4" in notes
    assert "上月" not in notes.split("二、注意事项")[0]
    tj = next(u for u in doc["units"] if u["unit"] == TJ)  # type: ignore[attr-defined]
    assert tj["reference_period"] == "2023-06"
    assert tj["reference"]["A1"] == 2 and tj["reference"]["C3b"] == 0.2


def test_last_months_figures_are_called_last_month_in_caption_and_instructions(
    written: tuple[Path, dict[str, object]],
) -> None:
    out, _doc = written
    notes = _instructions(out, GL, "annex4_progress")
    assert "“上月 数字”是贵单位上月（2023年7月）已接收的累计数" in notes
    assert "此后各月" not in notes


def test_the_ledger_instructions_name_the_month_of_the_prefilled_rows(
    written: tuple[Path, dict[str, object]],
) -> None:
    out, _doc = written
    notes = _instructions(out, GL, "ledger")
    assert "表中已预填贵单位2023年7月已接收的台账中的 6 条隐患" in notes
    assert "此后各月" not in notes
    # no prefilled rows, no such line
    assert "已预填" not in _instructions(out, MW, "ledger")


def test_a_ledger_carried_from_an_older_month_is_named_by_its_month(tmp_path: Path) -> None:
    # 鼓楼区 without its July ledger: its June ledger (4 rows) is the last accepted one
    returns = [
        r
        for r in build_returns()
        if not (r.form_id == "ledger" and r.unit_name == GL and r.period == PERIOD)
    ]
    cycle = cycle_from_returns(returns, PERIOD)
    result = prefill_next_period(cycle, tmp_path, units=[unit_by_name(GL)])  # type: ignore[list-item]
    (gl,) = prefill_json(result)["units"]
    assert (gl["ledger_period"], gl["ledger_rows"]) == ("2023-06", 4)
    notes = _instructions(tmp_path, GL, "ledger")
    assert (
        "表中已预填贵单位2023年6月已接收的台账（此后各月未收到贵单位通过校验的台账）中的 4 条隐患"
        in notes
    )


def test_a_unit_that_never_reported_gets_plain_captions(
    written: tuple[Path, dict[str, object]],
) -> None:
    out, doc = written
    caps = _captions(_progress_sheet(out, "闽侯县"))
    assert caps["A1"][0] == "个"
    assert not any("上月" in str(text) for text, _cap, _cell in caps.values())
    mh = next(u for u in doc["units"] if u["unit"] == "闽侯县")  # type: ignore[attr-defined]
    assert mh["reference_period"] is None and mh["ledger_rows"] == 0


def test_ledger_template_carries_the_accepted_rows_editable(
    written: tuple[Path, dict[str, object]],
) -> None:
    out, doc = written
    form = ledger_form()
    lay = LedgerLayout(form=form)
    path = out / NEXT / GL / template_filename(form, unit_by_name(GL), NEXT)
    ws = openpyxl.load_workbook(path)[form.sheet_name]
    col = {c.key: lay.col(c.key) + 1 for c in form.columns}
    first = lay.first_data_row + 1
    ids = [ws.cell(first + i, col["hazard_id"]).value for i in range(7)]
    assert ids == ["G-001", "G-002", "G-003", "G-004", "G-005", "G-006", None]
    g3 = first + 2
    assert ws.cell(g3, col["status"]).value == "整改中"
    assert ws.cell(g3, col["found_date"]).value == dt.datetime(2023, 7, 5)
    assert ws.cell(g3, col["deadline"]).value == dt.datetime(2023, 7, 20)
    assert ws.cell(g3, col["funds"]).value == 1.5
    # county text never turns into a formula
    assert ws.cell(g3, col["enterprise"]).value == '=HYPERLINK("http://x")'
    assert ws.cell(g3, col["enterprise"]).data_type == "s"
    assert ws.cell(g3, col["status"]).protection.locked is False
    assert ws.cell(first + 6, col["hazard_id"]).protection.locked is False  # room to add rows
    gl = next(u for u in doc["units"] if u["unit"] == GL)  # type: ignore[attr-defined]
    assert (gl["ledger_period"], gl["ledger_rows"]) == ("2023-07", 6)


def test_a_ledger_longer_than_the_template_is_prefilled_whole(tmp_path: Path) -> None:
    # 鼓楼区's July ledger with 505 rows, more than the template's 500: every unit still gets
    # its templates, and 鼓楼区's ledger carries all 505 rows with room for new ones after them
    form = ledger_form()
    rows = [
        hazard(f"G-{i + 1:03d}", "企业自查", "整改中", found="2023-07-05", deadline="2023-08-31")
        for i in range(form.rows + 5)
    ]
    returns = [
        r
        for r in build_returns()
        if not (r.form_id == "ledger" and r.unit_name == GL and r.period == PERIOD)
    ]
    cycle = cycle_from_returns([*returns, ledger_return(GL, PERIOD, rows)], PERIOD)
    result = prefill_next_period(cycle, tmp_path)
    assert sum(len(p) for p in result.paths.values()) == 5 * len(load_units())
    gl = next(u for u in prefill_json(result)["units"] if u["unit"] == GL)
    assert (gl["ledger_period"], gl["ledger_rows"]) == (PERIOD, len(rows))
    path = tmp_path / NEXT / GL / template_filename(form, unit_by_name(GL), NEXT)
    ws = openpyxl.load_workbook(path)[form.sheet_name]
    lay = LedgerLayout(form=form, input_rows=ledger_input_rows(form, len(rows)))
    assert lay.last_data_row - lay.first_data_row + 1 > len(rows) + 200
    last = lay.first_data_row + len(rows)  # 1-based: the last prefilled row
    assert [ws.cell(r, 1).value for r in (last, last + 1)] == [f"G-{len(rows)}", None]
    assert ws.cell(lay.last_data_row + 1, 1).protection.locked is False
    assert ws.cell(lay.last_data_row + 2, 1).protection.locked is True
    assert f"中的 {len(rows)} 条隐患" in _instructions(tmp_path, GL, "ledger")


def test_a_unit_without_any_ledger_gets_an_empty_one(
    written: tuple[Path, dict[str, object]],
) -> None:
    out, _doc = written
    form = ledger_form()
    lay = LedgerLayout(form=form)
    path = out / NEXT / MW / template_filename(form, unit_by_name(MW), NEXT)
    ws = openpyxl.load_workbook(path)[form.sheet_name]
    assert ws.cell(lay.first_data_row + 1, 1).value is None


def test_every_form_is_written_for_every_unit(written: tuple[Path, dict[str, object]]) -> None:
    out, doc = written
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.xlsx"))
    assert len(files) == 5 * 5
    assert f"{NEXT}/{GL}/附件4_进展情况调度表_{GL}_2023年8月.xlsx" in files
    assert all(len(u["files"]) == 5 for u in doc["units"])  # type: ignore[attr-defined]


def test_unit_prefill_for_a_reminder_uses_the_figures_carried_into_the_period() -> None:
    cycle = cycle_from_returns(build_returns(), PERIOD)
    tj = unit_by_name(TJ)
    assert tj is not None
    data = unit_prefill(cycle.result, tj, PERIOD, ledger=ledger_form())
    assert data.reference_period == "2023-06"
    assert data.reference["A2"] == Decimal("1")
    assert unit_prefill(None, tj, PERIOD, ledger=ledger_form()).reference == {}


def test_no_next_period_after_the_campaign_ends() -> None:
    assert next_period("2023-11") == "2023-12"
    with pytest.raises(PrefillError, match="最后一期为 2023-12"):
        next_period("2023-12")
