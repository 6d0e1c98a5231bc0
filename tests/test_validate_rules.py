"""One test per validation rule: a filled template breaking exactly that rule, asserted as
(rule code, cell). Plus: good returns pass, the schemas come from the form data, and every
rule of the catalogue's validation section is exercised somewhere in the tests."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers_fill import (
    edit,
    errors,
    first,
    good_inspection,
    good_ledger_rows,
    good_progress,
    make_return,
    read_one,
    rules,
    valid_credit_code,
)

from pipeline.forms import ChecklistForm, LedgerForm, load_forms, progress_form
from pipeline.layout import LedgerLayout, a1, checklist_layout, progress_layout
from pipeline.messages import CATALOGUE
from pipeline.model import Return
from pipeline.validate import checklist_items_schema, ledger_schema, progress_schema

TESTS = Path(__file__).parent
LEDGER = load_forms()["ledger"]
assert isinstance(LEDGER, LedgerForm)
LL = LedgerLayout(form=LEDGER)
PL = progress_layout(progress_form())


def _cell(code: str) -> str:
    return PL.value_cells[code].a1


def _ledger_cell(index: int, key: str) -> str:
    return a1(LL.first_data_row + index, LL.col(key))


def _ticks(lay: Any, row: int) -> str:
    """The range of a checklist row's three tick cells (是 … 不涉及)."""
    return f"{a1(row, lay.tick_col('是'))}:{a1(row, lay.tick_col('不涉及'))}"


def _majors(lay: Any, row: int) -> str:
    return f"{a1(row, lay.major_col('是'))}:{a1(row, lay.major_col('否'))}"


def _checklist(form_id: str) -> tuple[ChecklistForm, Any]:
    form = load_forms()[form_id]
    assert isinstance(form, ChecklistForm)
    return form, checklist_layout(form)


def progress(tmp_path: Path, **changes: Any) -> Return:
    return read_one(
        make_return(tmp_path / "inbox", "annex4_progress", progress=good_progress() | changes)
    )


def checklist(tmp_path: Path, form_id: str, spec: dict[str, Any]) -> Return:
    return read_one(make_return(tmp_path / "inbox", form_id, inspections=[spec]))


def ledger(tmp_path: Path, *changes: dict[str, Any]) -> Return:
    rows = good_ledger_rows()
    for i, change in enumerate(changes):
        rows[i] = rows[i] | change
    return read_one(make_return(tmp_path / "inbox", "ledger", ledger_rows=rows))


def test_which_check_names_a_cell_does_not_depend_on_pandera_s_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a cell failing several checks gets the issue of the first the schema declares; pandera
    # lists failures in an order that changes with their number (an unstable sort), so the
    # runner sorts them itself: the same issues whatever order pandera gives
    import copy
    import random

    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    from pipeline.validate import validate_returns

    money = next(c.key for c in LL.form.columns if c.type == "money")
    rows = good_ledger_rows()
    for row in rows:  # too many decimals and too large, on every row
        row[money] = Decimal("123456.12345")
    rows[0]["status"] = "已完成"  # and a choice failing beside a row-wide rule
    ret = read_one(make_return(tmp_path / "inbox", "ledger", ledger_rows=rows), validate=False)
    real = pa.DataFrameSchema.validate
    rng = random.Random(3)

    def shuffled(self: Any, frame: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return real(self, frame, *args, **kwargs)
        except SchemaErrors as exc:
            exc.failure_cases = exc.failure_cases.sample(frac=1, random_state=rng.randrange(99))
            raise

    def issues(shuffle: bool) -> list[tuple[str, str, str]]:
        with monkeypatch.context() as m:
            if shuffle:
                m.setattr(pa.DataFrameSchema, "validate", shuffled)
            one = copy.deepcopy(ret)
            validate_returns([one])
        return [(i.rule, i.sheet, i.cell) for i in one.issues]

    expected = issues(shuffle=False)
    cells = {cell: rule for rule, _sheet, cell in expected}
    assert [cells[_ledger_cell(i, money)] for i in range(len(rows))] == [
        "value-too-many-decimals"
    ] * len(rows)
    assert cells[_ledger_cell(0, "status")] == "ledger-choice-invalid"
    for _ in range(8):
        assert issues(shuffle=True) == expected


# --- good returns -----------------------------------------------------------------------------


@pytest.mark.parametrize("form_id", list(load_forms()))
def test_good_return_is_accepted(tmp_path: Path, form_id: str) -> None:
    ret = read_one(make_return(tmp_path / "inbox", form_id))
    assert ret.status == "accepted", ret.issues
    assert ret.issues == []


# --- 附件4 ------------------------------------------------------------------------------------


def test_progress_missing(tmp_path: Path) -> None:
    assert errors(progress(tmp_path, B3=None)) == [("progress-missing", _cell("B3"))]


def test_progress_not_a_number(tmp_path: Path) -> None:
    assert errors(progress(tmp_path, C5="无")) == [("value-not-number", _cell("C5"))]


def test_progress_ambiguous(tmp_path: Path) -> None:
    ret = progress(tmp_path, D3="约120")
    assert errors(ret) == [("value-ambiguous", _cell("D3"))]
    assert first(ret, "value-ambiguous").value == "约120"


def test_progress_number_with_the_items_unit_is_accepted(tmp_path: Path) -> None:
    ret = progress(tmp_path, A1="12个", A3="8处", B1="40家", C3a="4起", D3="120人次")
    assert ret.status == "accepted" and ret.issues == []
    assert (ret.progress["A1"], ret.progress["B1"]) == (12, 40)


def test_progress_number_with_another_unit_is_a_warning(tmp_path: Path) -> None:
    # "12家" in an item counted in 个 may be a figure meant for another item
    ret = progress(tmp_path, A3="8.0家", D8="3人")
    assert ret.status == "accepted"
    assert [(i.rule, i.severity, i.cell) for i in ret.issues] == [
        ("value-unit-mismatch", "warning", _cell("A3")),
        ("value-unit-mismatch", "warning", _cell("D8")),
    ]
    assert ret.progress["A3"] == 8
    message = ret.issues[0].message
    assert "“家”" in message and "“个”" in message and "“8.0家”" in message
    assert "已按 8 读取" in message  # the number read, as a count is written


def test_progress_digits_apart_are_not_joined(tmp_path: Path) -> None:
    # "1 2" read as 12 would add a figure the clerk may never have meant
    ret = progress(tmp_path, B7="1 2", B1="1 234")
    assert errors(ret) == [("value-ambiguous", _cell("B7"))]
    assert ret.progress.get("B1") == 1234


def test_progress_not_integer(tmp_path: Path) -> None:
    assert errors(progress(tmp_path, A5=1.5)) == [("value-not-integer", _cell("A5"))]


def test_progress_negative(tmp_path: Path) -> None:
    assert errors(progress(tmp_path, D8=-2)) == [("value-negative", _cell("D8"))]


def test_progress_money_decimals(tmp_path: Path) -> None:
    ret = progress(tmp_path, C3b="3.12345")
    assert errors(ret) == [("value-too-many-decimals", _cell("C3b"))]
    assert first(ret, "value-too-many-decimals").value == "3.12345"


def test_progress_money_keeps_four_decimals_exactly(tmp_path: Path) -> None:
    ret = progress(tmp_path, D5a=Decimal("0.1") + Decimal("0.2"), D5b=Decimal("0.3"))
    assert ret.status == "accepted", ret.issues
    assert ret.progress["D5a"] == Decimal("0.3") == ret.progress["D5b"]


def test_progress_absurd_number(tmp_path: Path) -> None:
    assert errors(progress(tmp_path, D4=35_000_000)) == [("value-too-large", _cell("D4"))]


def _violation(kind: str, left: str, right: str) -> dict[str, Any]:
    if kind == "le":
        return {right: 2, left: 3}
    return {left: Decimal("1.5"), right: 0}


@pytest.mark.parametrize(
    ("code", "kind", "left", "right"),
    [(r.code, r.kind, left, r.right) for r in progress_form().rules for left in r.left],
)
def test_progress_rules_from_the_form_definition(
    tmp_path: Path, code: str, kind: str, left: str, right: str
) -> None:
    changes = _violation(kind, left, right)
    if kind == "le" and right == "B1":
        changes |= {k: 0 for k in ("B2", "B3", "B4", "B5", "B6", "B7", "B8") if k != left}
    ret = progress(tmp_path, **changes)
    assert errors(ret) == [(code, _cell(left))]
    issue = first(ret, code)
    assert issue.value == str(changes[left])


_B_PARTS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # the audit's file: A1 negative, A2 fine; "A2 > A1" would send the clerk to A2 too
        ({"A1": -1, "A2": 1}, [("value-negative", "A1")]),
        ({"A1": "-3", "A2": 1}, [("value-negative", "A1")]),
        ({"A3": Decimal("2.5"), "A4": 3}, [("value-not-integer", "A3")]),
        ({"A5": 200_000, "A6": 0}, [("value-too-large", "A5")]),
        ({"B1": -1} | dict.fromkeys(_B_PARTS, 1), [("value-negative", "B1")]),
        ({"C8a": Decimal("0.5"), "C8b": 1}, [("value-not-integer", "C8a")]),
        ({"D5a": "1.23456", "D5b": 2}, [("value-too-many-decimals", "D5a")]),
        ({"C3a": -2, "C3b": 5}, [("value-negative", "C3a")]),
        # both operands wrong on their own: each cell its own issue, no rule on top
        ({"A1": -1, "A2": Decimal("0.5")}, [("value-negative", "A1"), ("value-not-integer", "A2")]),
    ],
)
def test_a_rule_between_items_is_not_checked_when_an_operand_is_itself_wrong(
    tmp_path: Path, changes: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    ret = progress(tmp_path, **changes)
    assert errors(ret) == [(rule, _cell(code)) for rule, code in expected]


def test_a_rule_between_items_still_checks_the_other_pairs(tmp_path: Path) -> None:
    # A1 wrong silences "A2 > A1" only: C8b > C8a in the same return is still reported
    ret = progress(tmp_path, A1=-1, A2=1, C8a=1, C8b=2)
    assert errors(ret) == [("value-negative", _cell("A1")), ("a4-c8b-gt-c8a", _cell("C8b"))]


def test_rule_message_names_both_items(tmp_path: Path) -> None:
    ret = progress(tmp_path, A1=3, A2=5)
    assert first(ret, "a4-a2-gt-a1").message == (
        "总体情况第2项“辖区部门接报的企业自查发现重大事故隐患中已完成整改的（个）”填了 5，"
        "大于第1项“辖区部门接报的企业自查发现的重大事故隐患（个）”的 3；前者是后者的一部分，不能更多。"
        "请核对这两项。"
    )


def test_progress_messages_never_name_an_item_like_a_cell(tmp_path: Path) -> None:
    # D8 is a real cell of the sheet, and not the one of item D8: a clerk must not be sent there
    bad = {code: "无" for code in progress_form().value_codes}
    ret = progress(tmp_path, **bad)
    assert len(ret.errors) == len(bad)
    ruled = progress(tmp_path / "2", A1=3, A2=5, C8a=1, C8b=2, D8=-1, C3a=0)
    assert rules(ruled) == ["a4-a2-gt-a1", "a4-c3b-without-c3a", "a4-c8b-gt-c8a", "value-negative"]
    cell_like = re.compile(r"(?<![A-Za-z])[A-Z]{1,3}[0-9]+")
    messages = [i.message for i in ret.issues + ruled.issues]
    assert [m for m in messages if cell_like.search(m)] == []
    money = first(progress(tmp_path / "3", C3b="无"), "value-not-number")
    assert money.message.startswith("辖区部门精准严格执法情况第3项“行政处罚（次，万元）”中的“万元”")


def test_progress_report_date_problem_is_only_a_warning(tmp_path: Path) -> None:
    ret = read_one(make_return(tmp_path / "inbox", "annex4_progress", report_date="2023年7月"))
    assert ret.status == "accepted"
    assert [(i.rule, i.severity, i.cell) for i in ret.issues] == [
        ("date-invalid", "warning", PL.date_cell.a1)
    ]


# --- 附件1–3 ----------------------------------------------------------------------------------


def test_checklist_no_tick(tmp_path: Path) -> None:
    _form, lay = _checklist("annex1_gas")
    spec = good_inspection("annex1_gas")
    del spec["answers"][2]
    assert errors(checklist(tmp_path, "annex1_gas", spec)) == [
        ("checklist-no-tick", _ticks(lay, lay.item_row(2)))
    ]


def test_checklist_multiple_ticks(tmp_path: Path) -> None:
    _form, lay = _checklist("annex3_confined_space")
    spec = good_inspection("annex3_confined_space")
    spec["answers"][4] = ["是", "不涉及"]
    ret = checklist(tmp_path, "annex3_confined_space", spec)
    assert errors(ret) == [("checklist-multiple-ticks", _ticks(lay, lay.item_row(4)))]
    assert "“是”、“不涉及”" in first(ret, "checklist-multiple-ticks").message
    assert first(ret, "checklist-multiple-ticks").value == "是、不涉及"


def test_checklist_tick_unrecognised(tmp_path: Path) -> None:
    _form, lay = _checklist("annex1_gas")
    spec = good_inspection("annex1_gas")
    spec["cells"] = {a1(lay.item_row(3), lay.tick_col("否")): "？"}
    ret = checklist(tmp_path, "annex1_gas", spec)
    # item 3 also has "不涉及" ticked; the unreadable mark is reported, not a second tick
    assert errors(ret) == [("tick-unrecognized", a1(lay.item_row(3), lay.tick_col("否")))]


def test_checklist_cross_alone_is_an_error_at_its_cell(tmp_path: Path) -> None:
    # "x" in the 否 column and nothing else: the clerk may have meant 否 itself
    _form, lay = _checklist("annex2_construction")
    spec = good_inspection("annex2_construction")
    del spec["answers"][3]
    cell = a1(lay.item_row(3), lay.tick_col("否"))
    spec["cells"] = {cell: "x"}
    ret = checklist(tmp_path, "annex2_construction", spec)
    assert errors(ret) == [("tick-cross", cell)]
    issue = first(ret, "tick-cross")
    assert issue.value == "x"
    assert "“x”" in issue.message and "√ ✓ ✔ v V 1 是" in issue.message
    assert "“否”栏" in issue.message


def test_checklist_cross_beside_a_tick_is_a_warning(tmp_path: Path) -> None:
    _form, lay = _checklist("annex3_confined_space")
    spec = good_inspection("annex3_confined_space")
    assert spec["answers"][2] == "是"
    cells = [a1(lay.item_row(2), lay.tick_col(a)) for a in ("否", "不涉及")]
    spec["cells"] = {cells[0]: "×", cells[1]: "X"}
    ret = checklist(tmp_path, "annex3_confined_space", spec)
    assert ret.status == "accepted"
    assert [(i.rule, i.severity, i.cell) for i in ret.issues] == [
        ("tick-cross-ignored", "warning", cells[0]),
        ("tick-cross-ignored", "warning", cells[1]),
    ]
    assert "按勾选的“是”栏读取" in ret.issues[0].message
    assert ret.inspections[0].answers[2] == "是"


def test_checklist_cross_in_the_major_columns(tmp_path: Path) -> None:
    form, lay = _checklist("annex2_construction")
    spec = good_inspection("annex2_construction")
    no = form.items[0].no
    spec["details"][no]["major"] = None
    cell = a1(lay.item_row(no), lay.major_col("否"))
    spec["cells"] = {cell: "✗"}
    assert errors(checklist(tmp_path, "annex2_construction", spec)) == [("tick-cross", cell)]


def test_checklist_other_marks_count(tmp_path: Path) -> None:
    spec = good_inspection("annex3_confined_space") | {"mark": "✔"}
    assert checklist(tmp_path, "annex3_confined_space", spec).status == "accepted"


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("description", "checklist-hazard-description-missing"),
        ("requirement", "checklist-hazard-requirement-missing"),
        ("deadline", "checklist-hazard-deadline-missing"),
    ],
)
@pytest.mark.parametrize("form_id", ["annex1_gas", "annex2_construction", "annex3_confined_space"])
def test_checklist_hazard_details(tmp_path: Path, form_id: str, key: str, code: str) -> None:
    form, lay = _checklist(form_id)
    spec = good_inspection(form_id)
    hazard_item = form.items[0]
    spec["details"][hazard_item.no][key] = None
    ret = checklist(tmp_path, form_id, spec)
    assert errors(ret) == [(code, a1(lay.item_row(hazard_item.no), lay.col(key)))]
    assert f"勾选“{hazard_item.hazard_answer}”" in first(ret, code).message


def test_checklist_hazard_answer_is_per_item(tmp_path: Path) -> None:
    # 附件2 item 42 is phrased positively: 否 is the hazard there, 是 is fine
    form, lay = _checklist("annex2_construction")
    spec = good_inspection("annex2_construction")
    assert form.item(42).hazard_answer == "否"
    spec["answers"][42] = "否"
    ret = checklist(tmp_path, "annex2_construction", spec)
    row = lay.item_row(42)
    assert errors(ret) == [
        ("checklist-hazard-description-missing", a1(row, lay.col("description"))),
        ("checklist-major-missing", _majors(lay, row)),
        ("checklist-hazard-requirement-missing", a1(row, lay.col("requirement"))),
        ("checklist-hazard-deadline-missing", a1(row, lay.col("deadline"))),
    ]


def test_checklist_major_missing(tmp_path: Path) -> None:
    form, lay = _checklist("annex2_construction")
    spec = good_inspection("annex2_construction")
    no = form.items[0].no
    spec["details"][no]["major"] = None
    assert errors(checklist(tmp_path, "annex2_construction", spec)) == [
        ("checklist-major-missing", _majors(lay, lay.item_row(no)))
    ]


def test_checklist_major_multiple(tmp_path: Path) -> None:
    form, lay = _checklist("annex2_construction")
    spec = good_inspection("annex2_construction")
    no = form.items[0].no
    spec["cells"] = {a1(lay.item_row(no), lay.major_col("否")): "√"}
    assert errors(checklist(tmp_path, "annex2_construction", spec)) == [
        ("checklist-major-multiple", _majors(lay, lay.item_row(no)))
    ]


def test_checklist_deadline_not_a_date(tmp_path: Path) -> None:
    _form, lay = _checklist("annex1_gas")
    spec = good_inspection("annex1_gas")
    spec["details"][1]["deadline"] = "立即"
    assert errors(checklist(tmp_path, "annex1_gas", spec)) == [
        ("date-invalid", a1(lay.item_row(1), lay.col("deadline")))
    ]


@pytest.mark.parametrize("form_id", ["annex1_gas", "annex2_construction", "annex3_confined_space"])
def test_checklist_footer_missing(tmp_path: Path, form_id: str) -> None:
    form, lay = _checklist(form_id)
    spec = good_inspection(form_id)
    spec["footer"] = {}
    assert errors(checklist(tmp_path, form_id, spec)) == [
        ("checklist-footer-missing", lay.footer_cell(f.key).a1) for f in form.footer
    ]


def test_checklist_date_before_campaign(tmp_path: Path) -> None:
    _form, lay = _checklist("annex3_confined_space")
    spec = good_inspection("annex3_confined_space")
    spec["footer"]["inspection_date"] = "2023-04-28"
    cell = lay.footer_cell("inspection_date").a1
    assert errors(checklist(tmp_path, "annex3_confined_space", spec)) == [
        ("checklist-date-before-campaign", cell)
    ]


def test_checklist_date_after_period(tmp_path: Path) -> None:
    _form, lay = _checklist("annex2_construction")
    spec = good_inspection("annex2_construction")
    spec["footer"]["inspection_date"] = dt.date(2023, 7, 2)
    cell = lay.footer_cell("inspection_date").a1
    ret = checklist(tmp_path, "annex2_construction", spec)
    assert errors(ret) == [("checklist-date-after-period", cell)]
    assert first(ret, "checklist-date-after-period").value == "2023-07-02"


def test_checklist_item_missing(tmp_path: Path) -> None:
    _form, lay = _checklist("annex1_gas")
    path = make_return(tmp_path / "inbox", "annex1_gas")
    cell = a1(lay.item_row(2), lay.col("no"))
    edit(path, "附件1", {cell: None})
    assert errors(read_one(path)) == [("checklist-item-missing", cell)]


def test_checklist_rules_are_reported_per_sheet(tmp_path: Path) -> None:
    _form, lay = _checklist("annex1_gas")
    second = good_inspection("annex1_gas")
    del second["answers"][1]
    path = make_return(
        tmp_path / "inbox", "annex1_gas", inspections=[good_inspection("annex1_gas"), second]
    )
    ret = read_one(path)
    assert [(i.rule, i.sheet, i.cell) for i in ret.errors] == [
        ("checklist-no-tick", "附件1 (2)", _ticks(lay, lay.item_row(1)))
    ]


# --- 台账 --------------------------------------------------------------------------------------


def test_ledger_column_missing(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "ledger")
    cell = a1(LL.header_row, LL.col("status"))
    edit(path, "隐患台账", {cell: "状态"})
    ret = read_one(path)
    assert errors(ret)[0] == ("ledger-column-missing", cell)


def test_ledger_optional_column_missing_is_a_warning(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "ledger")
    cell = a1(LL.header_row, LL.col("remarks"))
    edit(path, "隐患台账", {cell: None})
    ret = read_one(path)
    assert ret.status == "accepted"
    assert [(i.rule, i.severity, i.cell) for i in ret.issues] == [
        ("ledger-column-missing", "warning", cell)
    ]


@pytest.mark.parametrize("key", [c.key for c in LEDGER.columns if c.required])
def test_ledger_required_missing(tmp_path: Path, key: str) -> None:
    ret = ledger(tmp_path, {}, {key: None})
    assert errors(ret) == [("ledger-required-missing", _ledger_cell(1, key))]


@pytest.mark.parametrize(
    ("key", "typed"),
    [
        ("domain", "市政"),
        ("found_by", "群众举报"),
        ("emergency_plan", "没有"),
        ("supervised", "Y"),
        ("status", "已完成"),
    ],
)
def test_ledger_choice_invalid(tmp_path: Path, key: str, typed: str) -> None:
    ret = ledger(tmp_path, {key: typed})
    assert errors(ret)[0] == ("ledger-choice-invalid", _ledger_cell(0, key))
    assert first(ret, "ledger-choice-invalid").value == typed


def test_ledger_choice_tolerates_spacing(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {"status": " 整改 中", "emergency_plan": "有 "})
    assert ret.status == "accepted", ret.issues


def test_ledger_duplicate_id(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {}, {}, {"hazard_id": " GL-2023-001"})
    assert errors(ret) == [("ledger-duplicate-id", _ledger_cell(2, "hazard_id"))]
    assert "第 4 行" in first(ret, "ledger-duplicate-id").message


def test_ledger_credit_code_check_digit(tmp_path: Path) -> None:
    code = valid_credit_code()
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    ret = ledger(tmp_path, {"credit_code": wrong})
    assert errors(ret) == [("ledger-credit-code-invalid", _ledger_cell(0, "credit_code"))]
    assert "校验位" in first(ret, "ledger-credit-code-invalid").message


def test_ledger_valid_credit_code_lowercase_is_accepted(tmp_path: Path) -> None:
    assert ledger(tmp_path, {"credit_code": valid_credit_code().lower()}).status == "accepted"


def test_ledger_date_order_rectified_before_found(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {}, {"rectified_date": dt.date(2023, 5, 1)})
    assert errors(ret) == [("ledger-date-order", _ledger_cell(1, "rectified_date"))]


def test_ledger_date_order_closed_before_rectified(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {}, {}, {"closed_date": dt.date(2023, 5, 27)})
    assert errors(ret) == [("ledger-date-order", _ledger_cell(2, "closed_date"))]


def test_a_wrong_found_date_does_not_hide_closed_before_rectified(tmp_path: Path) -> None:
    # 销号日期 vs 整改完成日期 does not read 发现日期: its error stands beside the other
    late_found = {"found_date": dt.date(2023, 7, 3), "closed_date": dt.date(2023, 5, 27)}
    ret = ledger(tmp_path, {}, {}, late_found)
    assert sorted(errors(ret)) == sorted(
        [
            ("ledger-date-after-period", _ledger_cell(2, "found_date")),
            ("ledger-date-order", _ledger_cell(2, "closed_date")),
        ]
    )


@pytest.mark.parametrize("key", ["found_date", "rectified_date", "closed_date"])
def test_ledger_date_after_period(tmp_path: Path, key: str) -> None:
    late = dt.date(2023, 7, 3)
    changes = {key: late} | ({"closed_date": late} if key != "closed_date" else {})
    ret = ledger(tmp_path, {}, {}, changes)
    # the later date (closed_date, set with it) is fine on its own; any "date order" issue on
    # it would only echo the one wrong date
    assert errors(ret) == [
        ("ledger-date-after-period", _ledger_cell(2, k))
        for k in ("found_date", "rectified_date", "closed_date")
        if k in changes
    ]


@pytest.mark.parametrize(
    ("index", "changes", "wrong"),
    [
        # 发现日期 after the period end, 整改完成日期 fine: not also "完成早于发现"
        (1, {"found_date": dt.date(2023, 7, 3)}, "found_date"),
        # 整改完成日期 after the period end, 销号日期 fine: not also "销号早于完成"
        (2, {"rectified_date": dt.date(2023, 7, 3)}, "rectified_date"),
        # 发现日期 after the period end, 整改期限 fine: not also "期限早于发现"
        (0, {"found_date": dt.date(2023, 7, 20)}, "found_date"),
    ],
)
def test_ledger_date_rules_skip_a_date_that_is_itself_wrong(
    tmp_path: Path, index: int, changes: dict[str, Any], wrong: str
) -> None:
    ret = ledger(tmp_path, *([{}] * index), changes)
    assert errors(ret) == [("ledger-date-after-period", _ledger_cell(index, wrong))]


def test_ledger_date_order_is_not_hidden_by_a_warning_on_the_same_cell(tmp_path: Path) -> None:
    # 2021 is a warning (before the campaign) and before the 发现日期: the order error wins
    ret = ledger(tmp_path, {}, {"rectified_date": dt.date(2021, 6, 10)})
    assert errors(ret) == [("ledger-date-order", _ledger_cell(1, "rectified_date"))]
    assert ret.status == "rejected"


def test_ledger_dates_before_the_campaign_are_warnings(tmp_path: Path) -> None:
    early = dict.fromkeys(("found_date", "rectified_date", "closed_date"), dt.date(2022, 5, 10))
    ret = ledger(tmp_path, {}, {}, early)
    warned = {(i.rule, i.cell) for i in ret.issues if i.severity == "warning"}
    assert warned == {("ledger-date-before-campaign", _ledger_cell(2, k)) for k in early}
    assert "2022-05-10" in first(ret, "ledger-date-before-campaign").message
    assert ret.status == "accepted"


def test_a_date_in_an_implausible_year_is_an_error_not_a_warning(tmp_path: Path) -> None:
    # 1923 typed for 2023 (a date cell, or text): not a hazard found a century ago
    for typed in (dt.date(1923, 6, 5), "1923-06-05", dt.datetime(2123, 6, 5)):
        ret = ledger(tmp_path, {"found_date": typed})
        assert errors(ret) == [("date-invalid", _ledger_cell(0, "found_date"))], typed
        assert "年份" in first(ret, "date-invalid").message


def test_ledger_deadline_may_be_after_the_period(tmp_path: Path) -> None:
    assert ledger(tmp_path, {"deadline": dt.date(2023, 12, 31)}).status == "accepted"


def test_ledger_date_not_a_date(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {"found_date": "六月初"})
    assert errors(ret) == [("date-invalid", _ledger_cell(0, "found_date"))]


@pytest.mark.parametrize("key", [c.key for c in LEDGER.columns if c.open_required])
def test_ledger_open_hazard_five_implementations(tmp_path: Path, key: str) -> None:
    ret = ledger(tmp_path, {key: None})
    assert errors(ret) == [("ledger-open-incomplete", _ledger_cell(0, key))]
    assert "GL-2023-001" in first(ret, "ledger-open-incomplete").message


def test_five_implementations_are_the_five_design_names() -> None:
    # written out, not read from ledger.toml: dropping one from the data must fail here (the
    # test above is parametrised by that same data)
    assert {c.label for c in LEDGER.columns if c.open_required} == {
        "整改措施",
        "整改责任人",
        "整改资金（万元）",
        "整改期限",
        "应急预案",
    }


def test_ledger_open_hazard_needs_an_emergency_plan(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {"emergency_plan": "无"})
    assert errors(ret) == [("ledger-open-no-plan", _ledger_cell(0, "emergency_plan"))]


def test_ledger_rectified_needs_a_date(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {}, {"rectified_date": None})
    assert errors(ret) == [("ledger-status-needs-date", _ledger_cell(1, "rectified_date"))]


def test_ledger_closed_needs_acceptor(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {}, {}, {"accepted_by": None})
    assert errors(ret) == [("ledger-closed-needs-acceptor", _ledger_cell(2, "accepted_by"))]


def test_ledger_closed_needs_date(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {}, {}, {"closed_date": None})
    assert errors(ret) == [("ledger-closed-needs-date", _ledger_cell(2, "closed_date"))]


def test_ledger_supervised_needs_a_level(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {}, {}, {"supervision_level": None})
    assert errors(ret) == [
        ("ledger-supervision-level-missing", _ledger_cell(2, "supervision_level"))
    ]


def test_ledger_deadline_before_found(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {"deadline": dt.date(2023, 6, 1)})
    assert errors(ret) == [("ledger-deadline-before-found", _ledger_cell(0, "deadline"))]
    assert "2023-06-02" in first(ret, "ledger-deadline-before-found").message


def test_ledger_deadline_on_the_day_found_is_accepted(tmp_path: Path) -> None:
    assert ledger(tmp_path, {"deadline": dt.date(2023, 6, 2)}).status == "accepted"


@pytest.mark.parametrize(
    ("index", "changes", "key"),
    [
        (0, {"rectified_date": dt.date(2023, 6, 20)}, "rectified_date"),
        (0, {"closed_date": dt.date(2023, 6, 25)}, "closed_date"),
        (1, {"closed_date": dt.date(2023, 6, 20)}, "closed_date"),
    ],
)
def test_ledger_status_contradicts_a_date(
    tmp_path: Path, index: int, changes: dict[str, Any], key: str
) -> None:
    ret = ledger(tmp_path, *([{}] * index), changes)
    assert errors(ret) == [("ledger-status-date-conflict", _ledger_cell(index, key))]
    message = first(ret, "ledger-status-date-conflict").message
    assert "改为“" in message and "清空" in message


def test_ledger_open_with_both_dates_gets_an_issue_at_each(tmp_path: Path) -> None:
    dates = {"rectified_date": dt.date(2023, 6, 20), "closed_date": dt.date(2023, 6, 25)}
    ret = ledger(tmp_path, dates)
    assert errors(ret) == [
        ("ledger-status-date-conflict", _ledger_cell(0, "rectified_date")),
        ("ledger-status-date-conflict", _ledger_cell(0, "closed_date")),
    ]


def test_ledger_level_without_supervision(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {}, {"supervision_level": "县"})
    assert errors(ret) == [
        ("ledger-supervision-level-unexpected", _ledger_cell(1, "supervision_level"))
    ]
    assert first(ret, "ledger-supervision-level-unexpected").value == "县"


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        (-1, "value-negative"),
        ("1.23456", "value-too-many-decimals"),
        (5_000_000, "value-too-large"),
        ("十万", "value-ambiguous"),
        ("若干", "value-ambiguous"),
    ],
)
def test_ledger_funds(tmp_path: Path, typed: Any, code: str) -> None:
    ret = ledger(tmp_path, {"funds": typed})
    assert errors(ret) == [(code, _ledger_cell(0, "funds"))]
    # every message about a ledger cell names its row, as a clerk reads the sheet by rows
    assert first(ret, code).message.startswith("第 4 行整改资金（万元）")


def test_ledger_issue_message_names_row_and_hazard(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {"responsible": None})
    assert first(ret, "ledger-open-incomplete").message == (
        "第 4 行隐患 GL-2023-001 仍在整改中，须落实“五落实”（责任人、措施、资金、期限、应急预案），"
        "未填写整改责任人。"
    )


# --- the schemas come from the form data -------------------------------------------------------


def test_schemas_are_built_from_the_definitions() -> None:
    schema = progress_schema(progress_form())
    names = {c.name for c in schema.checks}
    assert {f"{r.code}:{left}" for r in progress_form().rules for left in r.left} <= names
    ledger_checks = ledger_schema(LEDGER)
    assert set(ledger_checks.columns) == {c.key for c in LEDGER.columns}
    open_checks = {
        c.name for c in ledger_checks.checks if c.name.startswith("ledger-open-incomplete:")
    }
    assert open_checks == {
        f"ledger-open-incomplete:{c.key}" for c in LEDGER.columns if c.open_required
    }
    gas, _ = _checklist("annex1_gas")
    construction, _ = _checklist("annex2_construction")
    assert not any("major" in c.name for c in checklist_items_schema(gas).checks)
    assert any("major" in c.name for c in checklist_items_schema(construction).checks)


def test_every_rule_between_cells_names_the_cells_it_compares() -> None:
    # the runner skips such a rule when one of its cells is wrong on its own: it must know them
    from pipeline.validate import ledger_operands, progress_operands

    progress_ops = progress_operands(progress_form())
    for rule in progress_form().rules:
        for left in rule.left:
            assert progress_ops[f"{rule.code}:{left}"] == {left, rule.right}
    ledger_ops = ledger_operands(LEDGER)
    assert ledger_ops["ledger-date-order:rectified_date"] == {"found_date", "rectified_date"}
    assert ledger_ops["ledger-date-order:closed_date"] == {"rectified_date", "closed_date"}
    assert ledger_ops["ledger-deadline-before-found:deadline"] == {"found_date", "deadline"}
    single = ("ledger-duplicate-id", "ledger-date-after-period", "ledger-date-before-campaign")
    for check in ledger_schema(LEDGER).checks:
        if check.name.startswith(single):
            assert check.name not in ledger_ops
        else:
            assert len(ledger_ops[check.name]) >= 2, check.name


def test_every_validation_rule_is_tested() -> None:
    source = (Path(__file__).parent.parent / "pipeline" / "messages.py").read_text(encoding="utf-8")
    section = source[source.index("# --- validation") : source.index("# --- anomalies")]
    codes = set(re.findall(r'Rule\(\s*"([a-z0-9-]+)"', section))
    codes |= {r.code for r in progress_form().rules}
    assert codes <= set(CATALOGUE)
    tested = "".join(
        (TESTS / name).read_text(encoding="utf-8")
        for name in (
            "test_read.py",
            "test_validate_rules.py",
            "test_roundtrip_libreoffice.py",
            "test_archive.py",
        )
        if (TESTS / name).exists()
    )
    untested = sorted(
        c
        for c in codes
        if f'"{c}"' not in tested and c not in {r.code for r in progress_form().rules}
    )
    assert untested == []


# --- batches -----------------------------------------------------------------------------------


def test_a_batch_puts_each_issue_on_its_own_return(tmp_path: Path) -> None:
    from helpers_fill import read_one as read_only

    from pipeline.validate import validate_returns

    inbox = tmp_path / "inbox"
    good = make_return(inbox, "ledger", "good.xlsx")
    bad = make_return(
        inbox, "ledger", "bad.xlsx", ledger_rows=[good_ledger_rows()[0] | {"responsible": None}]
    )
    also_bad = make_return(
        inbox, "annex4_progress", "a4.xlsx", progress=good_progress() | {"A2": 99}
    )
    returns = [read_only(p, validate=False) for p in (good, bad, also_bad)]
    validate_returns(returns)
    assert [(r.rel, r.status, errors(r)) for r in returns] == [
        ("good.xlsx", "accepted", []),
        ("bad.xlsx", "rejected", [("ledger-open-incomplete", _ledger_cell(0, "responsible"))]),
        ("a4.xlsx", "rejected", [("a4-a2-gt-a1", _cell("A2"))]),
    ]


def test_the_same_hazard_id_in_two_units_is_not_a_duplicate(tmp_path: Path) -> None:
    from pipeline.validate import validate_returns

    inbox = tmp_path / "inbox"
    paths = [
        make_return(inbox, "ledger", "gl.xlsx"),
        make_return(inbox, "ledger", "tj.xlsx", unit="台江区"),
    ]
    returns = [read_one(p, validate=False) for p in paths]
    validate_returns(returns)
    assert [r.status for r in returns] == ["accepted", "accepted"]


def test_a_failing_check_is_pinned_on_its_return_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.validate as validate

    inbox = tmp_path / "inbox"
    paths = [make_return(inbox, "annex4_progress", f"{n}.xlsx") for n in ("a", "b")]
    returns = [read_one(p, validate=False) for p in paths]
    returns[1].progress["A1"] = "not a number"  # what a bug upstream would look like
    validate.validate_returns(returns)
    assert [(r.status, errors(r)) for r in returns] == [
        ("accepted", []),
        ("rejected", [("file-read-failed", "")]),
    ]


def test_checklist_spare_blank_copy_is_skipped_with_a_warning(tmp_path: Path) -> None:
    blank: dict[str, Any] = {"answers": {}, "details": {}, "footer": {}}
    path = make_return(
        tmp_path / "inbox", "annex1_gas", inspections=[good_inspection("annex1_gas"), blank]
    )
    ret = read_one(path)
    assert ret.status == "accepted"
    assert [(i.rule, i.severity, i.sheet) for i in ret.issues] == [
        ("checklist-blank-sheet", "warning", "附件1 (2)")
    ]
    assert len(ret.inspections) == 1


def test_checklist_sheet_copied_and_left_as_it_was_is_a_warning(tmp_path: Path) -> None:
    """A filled sheet copied and not changed: the consolidation counts that inspection once
    (same subject and date), so the copy is named, with the sheet it repeats."""
    done = good_inspection("annex2_construction")
    other = good_inspection("annex2_construction")
    other["footer"] = other["footer"] | {"project": "另一个项目"}
    path = make_return(
        tmp_path / "inbox", "annex2_construction", inspections=[done, other, done, done]
    )
    ret = read_one(path)
    assert ret.status == "accepted"
    assert [(i.rule, i.severity, i.sheet) for i in ret.issues] == [
        ("checklist-sheet-copy", "warning", "附件2 (3)"),
        ("checklist-sheet-copy", "warning", "附件2 (4)"),
    ]
    assert all("与“附件2”页内容完全相同" in i.message for i in ret.issues)
    assert len(ret.inspections) == 4  # read as before: how copies count is consolidation's
    assert _counted_sheets(ret) == ["附件2", "附件2 (2)"]  # the copies once


def _counted_sheets(ret: Return) -> list[str]:
    """The sheets of a checklist return that the consolidation counts as inspections."""
    from pipeline.consolidate import _select

    (kept,) = _select([ret]).checklists.values()
    return sorted(insp.sheet for _ret, insp in kept)


def test_two_sheets_of_one_inspection_with_different_results_both_count_and_warn(
    tmp_path: Path,
) -> None:
    """A sheet copied for another inspection, its ticks changed but its subject and date not:
    it was silently replaced by the later sheet in the consolidation; now both count and the
    clerk is asked whether it is one inspection or two."""
    done = good_inspection("annex1_gas")
    changed = good_inspection("annex1_gas") | {"answers": {1: "否", 2: "否", 3: "否"}}
    changed["details"] = {}
    path = make_return(tmp_path / "inbox", "annex1_gas", inspections=[done, changed])
    ret = read_one(path)
    assert ret.status == "accepted"
    assert [(i.rule, i.severity, i.sheet) for i in ret.issues] == [
        ("checklist-same-inspection", "warning", "附件1 (2)")
    ]
    assert "与“附件1”页的检查对象和检查时间相同" in ret.issues[0].message
    assert _counted_sheets(ret) == ["附件1", "附件1 (2)"]
    # the file sent again (re-saved, received later) replaces both sheets, one for one
    from pipeline.consolidate import _select

    redone = done | {"footer": done["footer"] | {"inspectors": "张三、李四（更正）"}}
    again = read_one(make_return(tmp_path / "again", "annex1_gas", inspections=[redone, changed]))
    again.rel = "again.xlsx"
    again.received = dt.datetime(2099, 1, 1)
    sel = _select([ret, again])
    (kept,) = sel.checklists.values()
    assert sorted((r.rel, i.sheet) for r, i in kept) == [
        ("again.xlsx", "附件1"),
        ("again.xlsx", "附件1 (2)"),
    ]
    assert sel.superseded == {ret.rel: "again.xlsx"}


def test_checklist_with_nothing_filled_in(tmp_path: Path) -> None:
    ret = checklist(tmp_path, "annex3_confined_space", {"answers": {}, "details": {}, "footer": {}})
    assert [(i.rule, i.sheet) for i in ret.errors] == [("checklist-empty", "附件3")]


def test_ledger_credit_code_stored_as_a_number(tmp_path: Path) -> None:
    ret = ledger(tmp_path, {"credit_code": 913501001234567890})
    assert errors(ret) == [("ledger-credit-code-invalid", _ledger_cell(0, "credit_code"))]
    assert "存成了数字" in first(ret, "ledger-credit-code-invalid").message


def test_a_batch_gives_each_return_the_issues_it_gets_alone(tmp_path: Path) -> None:
    """Returns are validated a form at a time in one frame (vectorised checks over every row
    of the batch): each return gets exactly the issues, in the same order, as when validated on
    its own, and a 隐患编号 is a duplicate only within its own return."""
    from pipeline.validate import validate_returns

    inbox = tmp_path / "inbox"
    rows = good_ledger_rows()
    code = valid_credit_code()
    bad_rows = [
        rows[0] | {"responsible": None, "funds": "1.23456", "credit_code": code[:-1] + "0"},
        rows[1] | {"hazard_id": "GL-2023-001", "found_date": dt.date(2023, 7, 1)},
        rows[2] | {"supervised": "否", "closed_date": dt.date(2023, 5, 1)},
        rows[0]
        | {"hazard_id": "ＧＬ－２０２３－００１", "domain": "燃 气", "status": "已验收销号"},
    ]
    paths = [
        make_return(inbox, "ledger", "l1.xlsx", ledger_rows=bad_rows),
        make_return(inbox, "ledger", "l2.xlsx", unit="台江区", ledger_rows=bad_rows[::-1]),
        make_return(inbox, "ledger", "l3.xlsx", unit="仓山区"),
        make_return(inbox, "annex4_progress", "p1.xlsx", progress=good_progress() | {"A2": 99}),
        make_return(
            inbox,
            "annex4_progress",
            "p2.xlsx",
            unit="台江区",
            progress=good_progress() | {"B3": -2},
        ),
        make_return(inbox, "annex1_gas", "c1.xlsx"),
    ]
    together = [read_one(p, validate=False) for p in paths]
    alone = [read_one(p, validate=False) for p in paths]
    validate_returns(together)
    for ret in alone:
        validate_returns([ret])
    assert [(r.status, r.issues) for r in together] == [(r.status, r.issues) for r in alone]
    assert {"ledger-duplicate-id", "value-too-many-decimals", "ledger-credit-code-invalid"} <= {
        i.rule for i in together[0].issues
    }
    assert together[2].status == "accepted"


def test_validation_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    import gc

    from pipeline.validate import validate_returns

    ret = read_one(make_return(tmp_path / "inbox", "ledger"), validate=False)
    try:
        gc.disable()
        validate_returns([ret])
        assert not gc.isenabled()
        gc.enable()
        validate_returns([read_one(make_return(tmp_path / "inbox2", "ledger"), validate=False)])
        assert gc.isenabled()
    finally:
        gc.enable()


def test_the_frames_keep_their_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pandera lists a failing row of a frame-wide check once per column of the frame and then
    sorts all failure cases with an unstable sort: the number of columns decides the order in
    which issues are found, and so which of a return's sheets is listed first. The frames keep
    the columns they have always had."""
    import pipeline.validate as validate

    seen: dict[str, list[str]] = {}

    def capture(batch: Any, schema: Any, frame: Any, locate: Any, *_operands: Any) -> None:
        seen[schema.name] = list(frame.columns)

    monkeypatch.setattr(validate, "_run", capture)
    inbox = tmp_path / "inbox"
    returns = [
        read_one(make_return(inbox, form_id), validate=False)
        for form_id in ("ledger", "annex4_progress", "annex2_construction")
    ]
    validate.validate_returns(returns)
    assert seen["ledger"] == [*(c.key for c in LEDGER.columns), "_sheet", "_row", "_end", "_ret"]
    assert seen["annex4_progress"] == [*progress_form().value_codes, "_ret"]
    assert seen["annex2_construction"] == [
        "sheet", "no", "answer", "hazard", "n_ticks", "ticks", "tick_error", "description",
        "requirement", "deadline", "deadline_error", "n_major", "major_error", "cells", "_ret",
    ]  # fmt: skip
    assert seen["annex2_construction-footer"] == ["sheet", "label", "value", "cell", "end", "_ret"]
