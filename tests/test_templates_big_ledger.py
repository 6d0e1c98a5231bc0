"""A unit whose accepted ledger is longer than the template's `form.rows`: `prefill` and `remind`
write its ledger template with every accepted row and room for new hazards, and the reader reads
such a template back whole."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from openpyxl.worksheet.worksheet import Worksheet as XlSheet

from pipeline.cli import main
from pipeline.forms import ledger_form, load_units, progress_form, unit_by_name
from pipeline.layout import (
    LEDGER_SPARE_MIN,
    Cell,
    LedgerLayout,
    a1,
    ledger_input_rows,
    progress_layout,
)
from pipeline.templates import LEDGER_RULED_ROWS, template_filename, write_template
from pipeline.validate import validate_inbox

UNIT = "鼓楼区"
LONG = 600  # accepted rows, more than the template's 500


def hazard(i: int, **extra: Any) -> dict[str, Any]:
    """The i-th (0-based) hazard of a valid June ledger; every third one still 整改中."""
    open_ = i % 3 == 0
    row: dict[str, Any] = {
        "hazard_id": f"GL-{i + 1:04d}",
        "domain": "建筑施工",
        "enterprise": f"福州某建设有限公司{i % 17}",
        "site": f"某安置房项目{i}号楼",
        "description": "高支模未按专项方案搭设",
        "basis": "附件2第14项",
        "found_by": "企业自查",
        "found_date": dt.date(2023, 6, 1 + i % 20),
        "measures": "停工整改，按方案加固",
        "responsible": "张三",
        "funds": 1.5,
        "deadline": dt.date(2023, 8, 31),
        "emergency_plan": "有",
        "supervised": "否",
        "status": "整改中" if open_ else "已整改待验收",
        "rectified_date": None if open_ else dt.date(2023, 6, 25),
    }
    row.update(extra)
    return row


def test_the_input_area_grows_with_the_prefilled_rows() -> None:
    form = ledger_form()
    assert ledger_input_rows(form) == ledger_input_rows(form, 6) == form.rows
    assert ledger_input_rows(form, form.rows - LEDGER_SPARE_MIN) == form.rows
    assert ledger_input_rows(form, 400) == 400 + LEDGER_SPARE_MIN  # at least 200 more
    assert ledger_input_rows(form, 600) == 900  # half as many again
    assert ledger_input_rows(form, 2000) == 3000  # the province benchmark's ledgers
    assert LedgerLayout(form=form).last_data_row == LedgerLayout(form=form).first_data_row + 499


def _check_input_area(ws: XlSheet, rows: int) -> None:
    """Formatted, unlocked and validated exactly as the normal template, over `rows` rows."""
    form = ledger_form()
    lay = LedgerLayout(form=form, input_rows=rows)
    first, last = lay.first_data_row, lay.last_data_row
    for i, column in enumerate(form.columns):
        found = [dv for dv in ws.data_validations.dataValidation if a1(last, i) in dv.sqref]
        assert len(found) == 1, column.key
        assert str(found[0].sqref) == f"{a1(first, i)}:{a1(last, i)}"
        assert found[0].prompt, column.key
        assert not ws[a1(last, i)].protection.locked
        if column.type == "date":
            assert ws[a1(last, i)].number_format == "yyyy-mm-dd"
        if column.type in ("text", "credit_code"):
            assert ws[a1(last, i)].number_format == "@"
    assert ws[a1(last + 1, 0)].protection.locked  # nothing after the area
    assert ws.protection.sheet
    # ruled as the normal template: LEDGER_RULED_ROWS rows, then borders as rows are used
    assert ws[a1(first + LEDGER_RULED_ROWS - 1, 0)].border.left.style == "thin"
    assert ws[a1(first + LEDGER_RULED_ROWS, 0)].border.left.style is None
    (rule,) = ws.conditional_formatting
    ruled = Cell(first + LEDGER_RULED_ROWS, 0)
    assert str(rule.sqref) == f"{ruled.a1}:{a1(last, lay.last_col)}"


def test_a_ledger_longer_than_the_template_is_written_whole_with_room_after_it(
    tmp_path: Path,
) -> None:
    form = ledger_form()
    rows = [hazard(i) for i in range(form.rows + 5)]
    path = tmp_path / "ledger.xlsx"
    write_template(form, path, unit=unit_by_name(UNIT), period="2023-07", ledger_rows=rows)
    ws = openpyxl.load_workbook(path)[form.sheet_name]
    lay = LedgerLayout(form=form)
    first = lay.first_data_row
    ids = [ws[a1(first + i, 0)].value for i in range(len(rows) + 1)]
    assert ids == [r["hazard_id"] for r in rows] + [None]
    _check_input_area(ws, ledger_input_rows(form, len(rows)))
    assert ledger_input_rows(form, len(rows)) - len(rows) >= LEDGER_SPARE_MIN


# --- prefill and remind end to end, and the prefilled template read back ----------------------


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """鼓楼区 reports a 600-row ledger and its 附件4 in June and only its 附件4 in July."""
    root = tmp_path_factory.mktemp("inbox")
    unit = unit_by_name(UNIT)
    ledger = ledger_form()
    write_template(
        ledger,
        root / "2023-06" / template_filename(ledger, unit, "2023-06"),
        unit=unit,
        period="2023-06",
        ledger_rows=[hazard(i) for i in range(LONG)],
    )
    form = progress_form()
    for period, a1_ in (("2023-06", LONG), ("2023-07", LONG + 2)):
        path = root / period / template_filename(form, unit, period)
        write_template(form, path, unit=unit, period=period)
        wb = openpyxl.load_workbook(path)
        ws = wb[form.sheet_name]
        for code, cell in progress_layout(form).value_cells.items():
            ws[cell.a1] = {"A1": a1_, "A2": LONG * 2 // 3, "B1": 10}.get(code, 0)
        wb.save(path)
    returns = {(r.period, r.form_id): r for r in validate_inbox(root)}
    assert returns[("2023-06", "ledger")].status == "accepted"
    return root


def test_prefill_writes_every_template_with_the_whole_ledger(inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "templates"
    result = CliRunner().invoke(
        main, ["prefill", str(inbox), "--period", "2023-06", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    units = {u["unit"]: u for u in doc["units"]}
    assert (units[UNIT]["ledger_period"], units[UNIT]["ledger_rows"]) == ("2023-06", LONG)
    # every unit after it gets its templates too
    assert len(list((out / "2023-07").rglob("*.xlsx"))) == 5 * len(load_units())
    form = ledger_form()
    path = out / "2023-07" / UNIT / template_filename(form, unit_by_name(UNIT), "2023-07")
    ws = openpyxl.load_workbook(path)[form.sheet_name]
    first = LedgerLayout(form=form).first_data_row
    assert [ws[a1(first + i, 0)].value for i in (0, LONG - 1, LONG)] == ["GL-0001", "GL-0600", None]
    _check_input_area(ws, ledger_input_rows(form, LONG))

    # Read back as it is, then with the clerk's next hazard in the first free row.
    back = tmp_path / "back"
    back.mkdir()
    shutil.copy(path, back / path.name)
    (ret,) = validate_inbox(back)
    assert ret.status == "accepted", [i.message for i in ret.issues]
    assert ret.ledger is not None and len(ret.ledger) == LONG
    assert list(ret.ledger["hazard_id"].iloc[[0, -1]]) == ["GL-0001", "GL-0600"]
    wb = openpyxl.load_workbook(path)
    ws = wb[form.sheet_name]
    lay = LedgerLayout(form=form)
    new = hazard(LONG, found_date=dt.date(2023, 7, 3), status="整改中", rectified_date=None)
    for key, value in new.items():
        if isinstance(value, dt.date):
            value = dt.datetime.combine(value, dt.time())
        cell = ws.cell(first + LONG + 1, lay.col(key) + 1)
        assert not cell.protection.locked
        cell.value = value
    wb.save(back / path.name)
    (ret,) = validate_inbox(back)
    assert ret.status == "accepted", [i.message for i in ret.issues]
    assert ret.ledger is not None and len(ret.ledger) == LONG + 1
    assert ret.ledger["hazard_id"].iloc[-1] == "GL-0601"


def test_remind_attaches_the_whole_ledger_prefilled(inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "remind",
            str(inbox),
            "--period",
            "2023-07",
            "--out",
            str(out),
            "--today",
            "2023-07-31",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (draft,) = [d for d in doc["drafts"] if d["unit"] == UNIT]
    assert {i["form"]: i["kind"] for i in draft["items"]}["ledger"] == "missing"
    msg = BytesParser(policy=policy.default).parsebytes(Path(draft["eml"]).read_bytes())
    assert isinstance(msg, EmailMessage)
    form = ledger_form()
    name = template_filename(form, unit_by_name(UNIT), "2023-07")
    (data,) = [
        p.get_payload(decode=True) for p in msg.iter_attachments() if p.get_filename() == name
    ]
    assert isinstance(data, bytes)
    ws = openpyxl.load_workbook(io.BytesIO(data))[form.sheet_name]
    first = LedgerLayout(form=form).first_data_row
    assert [ws[a1(first + i, 0)].value for i in (0, LONG - 1, LONG)] == ["GL-0001", "GL-0600", None]
    _check_input_area(ws, ledger_input_rows(form, LONG))
