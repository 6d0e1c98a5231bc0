"""Consolidation: hand-computed totals, carry-forward, 本月新增, selection and every anomaly rule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pandera.errors
import pytest
from fixtures_consolidate import (
    CITY_2023_06_A1,
    CITY_2023_07,
    CS,
    GL,
    INCREMENTS_2023_07,
    MW,
    PLANTED,
    TJ,
    annex3_inspection,
    build_returns,
    checklist_return,
    fixture_units,
    hazard,
    ledger_return,
    progress_return,
)

from pipeline.consolidate import (
    Consolidation,
    NothingToConsolidate,
    _figures_schema,
    _ledger_columns,
    _ledger_records,
    _ledger_table,
    consolidate,
    ledger_counts,
    submissions_table,
)
from pipeline.forms import ledger_form, load_units, progress_form
from pipeline.layout import LedgerLayout
from pipeline.model import Issue, Return
from pipeline.output import period_rejections


@pytest.fixture(scope="module")
def result() -> Consolidation:
    return consolidate(build_returns(), "2023-07", units=fixture_units())


def _figure(result: Consolidation, unit: str, code: str, period: str | None = None) -> pd.Series:
    f = result.unit_figures(period)
    row = f[(f["unit"] == unit) & (f["code"] == code)]
    assert len(row) == 1
    return row.iloc[0]


def test_city_totals_equal_the_hand_computed_ones(result: Consolidation) -> None:
    expected = {c: CITY_2023_07.get(c, Decimal(0)) for c in progress_form().value_codes}
    assert result.city == expected
    assert all(isinstance(v, Decimal) for v in result.city.values())


def test_money_sums_are_exact_where_float_is_not(result: Consolidation) -> None:
    parts = ["0.7001", "0.2", "0.7", "0.0001"]  # C3b of 鼓楼, 台江 (carried), 仓山, 马尾
    floating = 0.0
    for p in parts:
        floating += float(p)
    assert floating != 1.6002  # what a float pipeline would report
    assert result.city["C3b"] == Decimal("1.6002")


def test_default_period_is_the_latest_accepted_annex4() -> None:
    assert consolidate(build_returns(), units=fixture_units()).period == "2023-07"
    # a rejected return for a later period does not move the default
    later = progress_return(GL, "2023-08", {}, status="rejected")
    assert consolidate([*build_returns(), later], units=fixture_units()).period == "2023-07"


def test_silent_unit_is_carried_forward_and_flagged(result: Consolidation) -> None:
    row = _figure(result, TJ, "A1")
    assert bool(row["carried"]) and not bool(row["reported"])
    assert row["source_period"] == "2023-06"
    assert row["file"] == "2023-06/台江区_附件4.xlsx"
    assert row["value"] == Decimal(2)
    assert result.carried_units() == [TJ]


def test_monthly_increment_per_unit_and_city(result: Consolidation) -> None:
    for unit, codes in INCREMENTS_2023_07.items():
        for code, inc in codes.items():
            assert _figure(result, unit, code)["increment"] == inc, (unit, code)
    trend = result.city_trend
    june = trend[(trend["period"] == "2023-06") & (trend["code"] == "A1")]["value"].iloc[0]
    assert june == CITY_2023_06_A1
    assert result.city["A1"] - june == Decimal(2)
    assert result.periods == ("2023-05", "2023-06", "2023-07")


def test_first_period_increment_counts_from_campaign_start(result: Consolidation) -> None:
    row = _figure(result, GL, "B1", "2023-05")
    assert row["previous"] == Decimal(0) and row["increment"] == Decimal(10)


def test_latest_return_wins_and_the_other_is_listed_superseded(result: Consolidation) -> None:
    assert _figure(result, GL, "A1")["value"] == Decimal(3)  # not the draft's 9
    subs = result.submissions
    gl = subs[(subs["unit"] == GL) & (subs["form"] == "annex4_progress")]
    assert sorted(zip(gl["file"], gl["status"], strict=True)) == [
        ("2023-07/鼓楼区_附件4_修改.xlsx", "accepted"),
        ("2023-07/鼓楼区_附件4_初稿.xlsx", "superseded"),
    ]
    draft = gl[gl["status"] == "superseded"].iloc[0]
    assert draft["superseded_by"] == "2023-07/鼓楼区_附件4_修改.xlsx"


def test_same_receipt_time_falls_back_to_file_name() -> None:
    t = dt.datetime(2023, 7, 31, 12, 0)
    a = progress_return(GL, "2023-07", {"A1": "1"}, rel="a.xlsx", received=t)
    b = progress_return(GL, "2023-07", {"A1": "2"}, rel="b.xlsx", received=t)
    res = consolidate([b, a], units=fixture_units()[:1])
    assert res.city["A1"] == Decimal(2)
    assert set(res.submissions.loc[res.submissions["status"] == "superseded", "file"]) == {"a.xlsx"}
    # only the names' order decided: the city is asked which one is final
    (tie,) = [f for f in res.anomalies if f.rule == "return-receipt-tie"]
    assert (tie.unit, tie.file, tie.severity) == (GL, "b.xlsx", "warning")
    assert "2023-07-31 12:00:00" in tie.message and "未采用“a.xlsx”" in tie.message
    c = progress_return(GL, "2023-07", {"A1": "3"}, rel="c.xlsx", received=t.replace(minute=1))
    later = consolidate([a, b, c], units=fixture_units()[:1])
    assert not [f for f in later.anomalies if f.rule == "return-receipt-tie"]


def test_a_copy_of_a_return_is_not_a_return_of_its_own() -> None:
    """The same bytes twice (saved twice, extracted beside the .zip they came in, sent again
    unchanged): the earliest received counts, on time; the copy is listed as one, not late,
    and no tie between them is flagged."""
    units = fixture_units()[:1]
    on_time = dt.datetime(2023, 7, 31, 12, 0)
    a = progress_return(GL, "2023-07", {"A1": "1"}, rel="a.xlsx", received=on_time)
    copy = progress_return(GL, "2023-07", {"A1": "1"}, rel="0_copy.xlsx", received=on_time)
    copy.sha256 = a.sha256
    copy.received = copy.mtime = dt.datetime(2023, 8, 9, 9, 0)  # copied after the deadline
    res = consolidate([copy, a], units=units)
    subs = res.submissions.set_index("file")
    assert (subs.loc["a.xlsx", "status"], subs.loc["a.xlsx", "late"]) == ("accepted", False)
    assert subs.loc["0_copy.xlsx", "status"] == "superseded"
    assert subs.loc["0_copy.xlsx", "superseded_by"] == "a.xlsx"
    assert not subs.loc["0_copy.xlsx", "late"]
    assert "内容完全相同" in subs.loc["0_copy.xlsx", "note"]
    assert not [f for f in res.anomalies if f.rule in ("return-late", "return-receipt-tie")]
    # the same time: still one return and a copy, no tie
    copy.received = copy.mtime = on_time
    res = consolidate([copy, a], units=units)
    assert set(res.submissions.loc[res.submissions["status"] == "superseded", "file"]) == {"a.xlsx"}
    assert not [f for f in res.anomalies if f.rule == "return-receipt-tie"]
    # A, then B, then A again ("please use the first one"): the latest received wins (DESIGN
    # §6), and that is A; it counts as the file first received, on time
    b = progress_return(GL, "2023-07", {"A1": "2"}, rel="b.xlsx", received=on_time.replace(hour=15))
    copy.received = copy.mtime = on_time.replace(hour=18)
    res = consolidate([a, b, copy], units=units)
    assert res.city["A1"] == Decimal(1)
    subs = res.submissions.set_index("file")
    assert subs.loc["b.xlsx", "superseded_by"] == "a.xlsx"
    accepted = subs[subs["status"] == "accepted"]
    assert list(accepted.index) == ["a.xlsx"] and not accepted.loc["a.xlsx", "late"]
    # without the copy, B (later) wins as before
    res = consolidate([a, b], units=units)
    assert res.city["A1"] == Decimal(2)


def _rejected(ret: Return) -> Return:
    ret.status = "rejected"
    ret.issues = [Issue("a4-a2-gt-a1", "error", "A2 大于 A1", file=ret.rel, sheet="调度表")]
    return ret


def test_a_rejected_return_corrected_later_is_superseded_not_outstanding() -> None:
    # the unit's first 附件4 was sent back, the corrected one passed: nothing is outstanding
    bad = _rejected(
        progress_return(GL, "2023-07", {}, rel="bad.xlsx", received=dt.datetime(2023, 7, 30, 9))
    )
    good = progress_return(
        GL, "2023-07", {"A1": "3"}, rel="good.xlsx", received=dt.datetime(2023, 7, 31, 9)
    )
    res = consolidate([bad, good], units=fixture_units()[:1])
    subs = res.submissions.set_index("file")
    assert (subs.at["bad.xlsx", "status"], subs.at["bad.xlsx", "superseded_by"]) == (
        "superseded",
        "good.xlsx",
    )
    assert "曾被退回修改" in subs.at["bad.xlsx", "note"]
    assert subs.at["good.xlsx", "status"] == "accepted"
    assert period_rejections(res, [bad, good]) == []
    assert not [a for a in res.anomalies if a.rule == "return-correction-rejected"]


def test_a_later_correction_that_was_rejected_leaves_the_older_return_flagged() -> None:
    good = progress_return(
        GL, "2023-07", {"A1": "3"}, rel="good.xlsx", received=dt.datetime(2023, 7, 31, 9)
    )
    bad = _rejected(
        progress_return(GL, "2023-07", {}, rel="fix.xlsx", received=dt.datetime(2023, 7, 31, 15))
    )
    res = consolidate([good, bad], units=fixture_units()[:1])
    assert res.city["A1"] == Decimal(3)
    subs = res.submissions.set_index("file")
    assert subs.at["fix.xlsx", "status"] == "rejected"
    assert subs.at["good.xlsx", "status"] == "accepted"
    assert period_rejections(res, [good, bad]) == [bad]
    (flag,) = [a for a in res.anomalies if a.rule == "return-correction-rejected"]
    assert (flag.unit, flag.severity, flag.file) == (GL, "warning", "good.xlsx")
    assert "“fix.xlsx”" in flag.message and "“good.xlsx”" in flag.message


def test_a_rejected_return_received_with_the_accepted_one_stays_outstanding() -> None:
    # the same minute: the rejected one may be the correction itself, whatever the names' order
    t = dt.datetime(2023, 7, 31, 17, 20)
    for name in ("a(更正).xlsx", "z_更正.xlsx"):
        good = progress_return(GL, "2023-07", {"A1": "3"}, rel="m.xlsx", received=t)
        bad = _rejected(progress_return(GL, "2023-07", {}, rel=name, received=t))
        res = consolidate([good, bad], units=fixture_units()[:1])
        subs = res.submissions.set_index("file")
        assert subs.at[name, "status"] == "rejected", name
        assert period_rejections(res, [good, bad]) == [bad]
        (flag,) = [a for a in res.anomalies if a.rule == "return-correction-rejected"]
        assert "收到时间不早于“m.xlsx”" in flag.message


def _cs_checklist(
    name: str,
    day: int,
    *,
    subject: str = "某污水处理厂",
    date: str = "2023-07-09",
    hazards: frozenset[int] = frozenset({2}),
) -> Return:
    """仓山区's July 附件3 `name`: one inspection, received on July `day` at 9:00."""
    return checklist_return(
        CS, "2023-07", "annex3_confined_space", name,
        [annex3_inspection("附件3", subject, date, set(hazards))],
        received=dt.datetime(2023, 7, day, 9),
    )  # fmt: skip


def _cs_submissions(returns: list[Return]) -> pd.DataFrame:
    res = consolidate([*returns, progress_return(CS, "2023-07", {})], units=fixture_units()[2:3])
    return res.submissions.set_index("file")


def test_a_rejected_checklist_without_a_good_date_is_superseded_by_its_subject() -> None:
    # rejected for its 检查时间 (missing): the resent sheet of the same subject replaces it
    bad = _rejected(_cs_checklist("c1.xlsx", 20))
    bad.inspections[0].footer["inspection_date"] = None
    subs = _cs_submissions([bad, _cs_checklist("c2.xlsx", 25)])
    assert subs.at["2023-07/c1.xlsx", "status"] == "superseded"


def test_a_rejected_checklist_is_superseded_by_a_copy_of_the_good_one_sent_after_it() -> None:
    # A accepted, then R (a rejected try at the same inspection), then A sent again unchanged:
    # A is the unit's last word, as for 附件4 (the copy ranks A by its own receipt)
    good, again = _cs_checklist("a.xlsx", 15), _cs_checklist("a（重发）.xlsx", 25)
    again.sha256 = good.sha256
    subs = _cs_submissions([good, _rejected(_cs_checklist("r.xlsx", 20)), again])
    assert subs.at["2023-07/r.xlsx", "status"] == "superseded"
    assert subs.at["2023-07/a.xlsx", "status"] == "accepted"


def test_a_rejected_inspection_with_a_date_is_not_replaced_by_another_days() -> None:
    # the 07-20 re-inspection was rejected; the 07-09 inspection of the same site, sent
    # later, is another inspection, not its correction
    bad = _rejected(_cs_checklist("c1.xlsx", 21, date="2023-07-20"))
    other = _cs_checklist("c2.xlsx", 25, hazards=frozenset())
    assert _cs_submissions([bad, other]).at["2023-07/c1.xlsx", "status"] == "rejected"


def test_a_rejected_checklist_is_superseded_once_its_inspection_is_resent() -> None:
    bad = _rejected(_cs_checklist("c1.xlsx", 20))
    bad_other = _rejected(_cs_checklist("c2.xlsx", 20, subject="另一家单位", date="2023-07-10"))
    fixed = _cs_checklist("c3.xlsx", 25, hazards=frozenset())
    subs = _cs_submissions([bad, bad_other, fixed])
    assert subs.at["2023-07/c1.xlsx", "status"] == "superseded"
    assert subs.at["2023-07/c1.xlsx", "superseded_by"] == "2023-07/c3.xlsx"
    assert subs.at["2023-07/c2.xlsx", "status"] == "rejected"  # its inspection never came back


def test_a_decrease_after_a_skipped_month_names_the_month_compared_with() -> None:
    returns = [
        progress_return(TJ, "2023-06", {"A1": "5"}),
        progress_return(TJ, "2023-08", {"A1": "4"}),
    ]
    res = consolidate(returns, "2023-08", units=fixture_units()[1:2])
    (flag,) = [a for a in res.anomalies if a.rule == "cumulative-decreased"]
    assert "比此前最近一次报送（2023年6月，2023年7月未报送）的 5 还少" in flag.message
    assert "上月" not in flag.message


def test_ledger_flags_follow_the_files_columns_and_its_hazard_numbers_width() -> None:
    june = [
        hazard("T-1", "部门检查", "整改中", found="2023-06-05", deadline="2023-09-10"),
        hazard("T-2", "部门检查", "已验收销号", found="2023-06-05", deadline="2023-06-20"),
    ]
    july = [
        hazard("Ｔ－１", "部门检查", "整改中", found="2023-06-05", deadline="2023-07-10"),
        hazard("T-2", "部门检查", "整改中", found="2023-06-05", deadline="2023-09-20"),
    ]
    later = ledger_return(TJ, "2023-07", july)
    # the clerk inserted a column before 判定依据: every column after it moved right by one
    lay = LedgerLayout(ledger_form())
    later.ledger.attrs["columns"] = {
        c.key: lay.col(c.key) + (lay.col(c.key) >= lay.col("basis")) for c in ledger_form().columns
    }
    returns = [
        progress_return(TJ, "2023-06", {"A3": "2"}),
        progress_return(TJ, "2023-07", {"A3": "2"}),
        ledger_return(TJ, "2023-06", june),
        later,
    ]
    res = consolidate(returns, "2023-07", units=fixture_units()[1:2])
    by = {(a.rule, a.item): a for a in res.anomalies if a.rule.startswith("ledger-")}
    # "Ｔ－１" is T-1 typed full-width: still there, not vanished
    assert ("ledger-row-vanished", "T-1") not in by
    assert by[("ledger-overdue", "Ｔ－１")].cell == "N4"  # 整改期限: M in the template
    assert by[("ledger-status-regressed", "T-2")].cell == "R5"  # 整改状态: Q in the template


def test_ledger_mismatch_states_the_rule_of_its_own_item() -> None:
    rows = [hazard("C-1", "举报", "整改中", found="2023-07-05", deadline="2023-09-10",
                   supervised="是")]  # fmt: skip
    returns = [
        progress_return(CS, "2023-07", {"A1": "1", "A5": "2"}),
        ledger_return(CS, "2023-07", rows),
    ]
    res = consolidate(returns, "2023-07", units=fixture_units()[2:3])
    by = {a.item: a.message for a in res.anomalies if a.rule == "ledger-mismatch"}
    assert "举报发现的不计入" in by["A1"]
    # a 举报 hazard does count for 挂牌督办: the A5 rule must not say otherwise
    assert "举报" not in by["A5"] and "不论发现方式" in by["A5"]


def test_receipt_time_falls_back_to_mtime() -> None:
    old = progress_return(GL, "2023-07", {"A1": "5"}, rel="z_old.xlsx")
    new = progress_return(GL, "2023-07", {"A1": "6"}, rel="a_new.xlsx")
    old.received, old.mtime = None, dt.datetime(2023, 7, 20)
    new.received, new.mtime = None, dt.datetime(2023, 7, 25)
    res = consolidate([old, new], units=fixture_units()[:1])
    assert res.city["A1"] == Decimal(6)


def test_submissions_cover_every_unit_and_form(result: Consolidation) -> None:
    subs = result.submissions
    pairs = set(zip(subs["unit"], subs["form"], strict=True))
    units = [u.name for u in fixture_units()]
    forms = [
        "annex1_gas",
        "annex2_construction",
        "annex3_confined_space",
        "annex4_progress",
        "ledger",
    ]
    assert pairs == {(u, f) for u in units for f in forms}
    tj = subs[(subs["unit"] == TJ) & (subs["form"] == "annex4_progress")].iloc[0]
    assert (tj["status"], tj["issues"]) == ("rejected", 2)
    late = subs[subs["late"]]
    assert list(late["file"]) == ["2023-07/仓山区_附件4.xlsx"]
    assert "~$x.xlsx" not in set(subs["file"])
    missing = subs[(subs["unit"] == MW) & (subs["form"] == "ledger")].iloc[0]
    assert (missing["status"], missing["file"]) == ("missing", "")


def test_last_second_of_the_due_day_is_on_time(result: Consolidation) -> None:
    subs = result.submissions
    row = subs[subs["file"] == "2023-07/鼓楼区_附件4_修改.xlsx"].iloc[0]
    assert row["received"] == "2023-08-01 23:59:59" and not row["late"]


def test_checklist_resubmission_replaces_the_same_inspection(result: Consolidation) -> None:
    chk = result.checklist
    cs3 = chk[(chk["unit"] == CS) & (chk["form"] == "annex3_confined_space")]
    assert set(cs3["file"]) == {"2023-07/仓山区_附件3_更正.xlsx"}
    assert sorted(cs3.loc[cs3["hazard"], "item"]) == [2]  # item 5 was corrected
    subs = result.submissions
    draft = subs[subs["file"] == "2023-07/仓山区_附件3_初稿.xlsx"].iloc[0]
    assert draft["status"] == "superseded"


def test_checklist_hazard_follows_each_items_hazard_answer(result: Consolidation) -> None:
    chk = result.checklist
    gl = chk[(chk["unit"] == GL) & (chk["form"] == "annex2_construction")]
    assert sorted(gl.loc[gl["hazard"], "item"]) == [5, 33]  # 42 answered 是 is no hazard
    assert sorted(gl.loc[gl["major"], "item"]) == [5, 33]
    assert set(chk["period"]) == {"2023-07"}  # the June checklist does not belong here
    # 仓山区's 附件2 hazard was judged 否; its 附件3 hazard is major by the form (重大隐患描述)
    cs = chk[(chk["unit"] == CS) & chk["hazard"]]
    assert sorted(zip(cs["form"], cs["item"], cs["major"], strict=True)) == [
        ("annex2_construction", 10, False),
        ("annex3_confined_space", 2, True),
    ]


def test_ledger_is_as_of_period_end_with_units_and_overdue(result: Consolidation) -> None:
    led = result.ledger
    assert list(zip(led["unit"], led["hazard_id"], strict=True)) == [
        (GL, "G-001"), (GL, "G-002"), (GL, "G-003"), (GL, "G-004"), (GL, "G-005"), (GL, "G-006"),
        (CS, "C-001"), (CS, "C-002"), (CS, "C-003"),
    ]  # fmt: skip
    assert list(led.loc[led["overdue"], "hazard_id"]) == ["G-003"]
    assert not led["carried"].any()


def test_ledger_counts_follow_the_stated_definition() -> None:
    rows = [
        hazard("1", "企业自查", "整改中", found="2023-07-01", deadline="2023-08-01"),
        hazard("2", "企业自查", "已整改待验收", found="2023-07-01", deadline="2023-08-01"),
        hazard("3", "部门检查", "已验收销号", found="2023-07-01", deadline="2023-08-01", supervised="是"),
        hazard("4", "举报", "已验收销号", found="2023-07-01", deadline="2023-08-01", supervised="是"),
        hazard("5", "举报", "整改中", found="2023-07-01", deadline="2023-08-01"),
    ]  # fmt: skip
    counts = ledger_counts(ledger_return(GL, "2023-07", rows).ledger)
    assert counts == {
        "A1": 2, "A2": 1, "A3": 1, "A4": 1,  # 举报 is neither A1 nor A3
        "A5": 2, "A6": 2,  # 挂牌督办 whatever the way it was found
    }  # fmt: skip


def test_ledger_records_are_the_rows_of_the_ledger_table() -> None:
    # the month-on-month flags read a ledger's rows as dicts without building its frame: the
    # same rows, with None (not NaN) wherever pandas sees a blank
    rows = [
        hazard("1", "企业自查", "整改中", found="2023-07-01", deadline="2023-08-01"),
        hazard("2", "企业自查", "已验收销号", found="2023-07-02", deadline="2023-08-01"),
    ]
    ret = ledger_return(GL, "2023-07", rows)
    assert ret.ledger is not None and ret.ledger["remarks"].isna().all()
    records = _ledger_records(ret)
    table = _ledger_table(_ledger_columns([ret])).to_dict("records")
    assert records == table
    assert [r["remarks"] for r in records] == [None, None]
    assert [r["accepted_by"] for r in records] == [None, "李四"]
    assert [(r["_sheet"], r["_row"]) for r in records] == [("隐患台账", 4), ("隐患台账", 5)]


def test_every_planted_anomaly_fires_and_nothing_else(result: Consolidation) -> None:
    found = {(a.rule, a.unit, a.item) for a in result.anomalies}
    assert found == PLANTED
    assert len(result.anomalies) == len(PLANTED)


def test_anomalies_carry_values_and_locations(result: Consolidation) -> None:
    by = {(a.rule, a.unit, a.item): a for a in result.anomalies}
    down = by[("cumulative-decreased", CS, "B1")]
    assert (down.previous, down.current) == (Decimal(6), Decimal(5))
    assert (down.file, down.sheet, down.cell) == ("2023-07/仓山区_附件4.xlsx", "调度表", "D12")
    mismatch = by[("ledger-mismatch", CS, "A1")]
    assert (mismatch.previous, mismatch.current) == (Decimal(3), Decimal(4))
    overdue = by[("ledger-overdue", GL, "G-003")]
    assert (overdue.file, overdue.sheet, overdue.cell) == (
        "2023-07/鼓楼区_台账.xlsx",
        "隐患台账",
        "M6",
    )
    vanished = by[("ledger-row-vanished", GL, "G-007")]
    assert (vanished.file, vanished.cell) == ("2023-06/鼓楼区_台账.xlsx", "A7")
    regressed = by[("ledger-status-regressed", GL, "G-002")]
    assert (regressed.previous, regressed.current, regressed.cell) == (
        "已验收销号",
        "已整改待验收",
        "Q5",
    )
    # like cumulative-decreased: last month's and this month's cumulative figures (20 -> 520),
    # never a cumulative beside an increment; the increment (+500) is in the message
    outlier = by[("increment-outlier", GL, "D3")]
    assert (outlier.previous, outlier.current) == (Decimal(20), Decimal(520))
    assert (outlier.file, outlier.cell) == ("2023-07/鼓楼区_附件4_修改.xlsx", "D32")
    major = by[("checklist-major-exceeds-ledger", GL, "")]
    assert (major.previous, major.current) == (Decimal(1), Decimal(2))
    major3 = by[("checklist-major-exceeds-ledger", CS, "")]
    assert (major3.previous, major3.current) == (Decimal(0), Decimal(1))
    assert (major3.file, major3.cell) == ("2023-07/仓山区_附件3_更正.xlsx", "D7")
    carried = by[("unit-not-reported", TJ, "")]
    assert carried.file == "2023-06/台江区_附件4.xlsx"
    assert {a.severity for a in result.anomalies} == {"warning", "info"}


def test_flag_messages_are_rendered_from_the_catalogue(result: Consolidation) -> None:
    by = {(a.rule, a.unit, a.item): a for a in result.anomalies}
    assert by[("cumulative-decreased", CS, "B1")].message == (
        "仓山区“辖区部门抽查检查的企业总数（家）”（B1）本月累计 5，比上月（2023年6月）的 6 还少。"
        "调度表填的是自专项行动开始的累计数，只增不减；请核实是否填错，或此前的数据需更正。"
    )
    outlier = by[("increment-outlier", GL, "D3")].message
    # the message explains the measure: median, MAD, the floor and the threshold
    for part in ("本月新增 500", "10、10", "中位数 10", "MAD", "0.6745", "小于 2 时按 2 计", "3.5"):
        assert part in outlier, part
    # and names both cumulative figures the flag's 上月值/本期值 columns hold
    assert "本月新增 500（本月累计 520，上月累计 20）" in outlier
    mismatch = by[("ledger-mismatch", CS, "A1")].message
    assert "企业自查" in mismatch and "举报" in mismatch


def _peer_returns(spike: str) -> list:
    """Seven units, two months; this month one unit's B1 increment is `spike`, peers ≈ 5."""
    units = load_units()[:7]
    rets = []
    for i, u in enumerate(units):
        rets.append(progress_return(u.name, "2023-06", {"B1": str(10 + i)}))
        inc = spike if i == 0 else str(4 + i % 3)
        rets.append(progress_return(u.name, "2023-07", {"B1": str(10 + i + int(inc))}))
    return rets


def test_increment_far_outside_its_peers_is_flagged() -> None:
    units = load_units()[:7]
    res = consolidate(_peer_returns("200"), units=units)
    flags = [(a.rule, a.unit, a.item) for a in res.anomalies if a.rule == "increment-outlier"]
    assert flags == [("increment-outlier", units[0].name, "B1")]
    assert "同月其他 6 个单位" in res.anomalies[0].message


def test_small_increments_never_flag_as_outliers() -> None:
    res = consolidate(_peer_returns("12"), units=load_units()[:7])
    assert not [a for a in res.anomalies if a.rule == "increment-outlier"]


def test_outlier_needs_every_available_reference() -> None:
    """A big unit whose big increments are its normal is not flagged against small peers."""
    units = load_units()[:7]
    rets = []
    for i, u in enumerate(units):
        step = 100 if i == 0 else 5
        for k, per in enumerate(("2023-05", "2023-06", "2023-07")):
            rets.append(progress_return(u.name, per, {"B1": str(step * (k + 1))}))
    res = consolidate(rets, units=units)
    assert not [a for a in res.anomalies if a.rule == "increment-outlier"]


def test_unit_that_never_reported_enters_as_zero_and_is_flagged() -> None:
    units = fixture_units()[:2]
    res = consolidate([progress_return(GL, "2023-07", {"A1": "3"})], units=units)
    row = res.unit_figures()
    tj = row[(row["unit"] == TJ) & (row["code"] == "A1")].iloc[0]
    assert tj["value"] == 0 and tj["source_period"] == "" and tj["file"] == ""
    flagged = [a for a in res.anomalies if a.rule in ("unit-not-reported", "unit-never-reported")]
    assert [(a.rule, a.unit, a.severity) for a in flagged] == [
        ("unit-never-reported", TJ, "warning")
    ]
    assert flagged[0].message == (
        "台江区2023年7月的进展情况调度表未报送，此前各期也没有已接收的调度表，"
        "汇总时该单位各项均按 0 计入；请督促补报。"
    )


def test_never_reported_names_the_rejected_file() -> None:
    units = fixture_units()[:2]
    rejected = progress_return(TJ, "2023-07", {}, status="rejected")
    res = consolidate([progress_return(GL, "2023-07", {"A1": "3"}), rejected], units=units)
    (flag,) = [a for a in res.anomalies if a.rule == "unit-never-reported"]
    assert flag.message.startswith(
        "台江区2023年7月的进展情况调度表未报送（报送的 2023-07/台江区_附件4.xlsx 未通过校验，已退回），"
        "此前各期也没有已接收的调度表"
    )


def test_nothing_accepted_is_nothing_to_consolidate() -> None:
    with pytest.raises(NothingToConsolidate):
        consolidate([progress_return(GL, "2023-07", {}, status="rejected")], units=fixture_units())
    with pytest.raises(NothingToConsolidate):
        consolidate(build_returns(), "2023-04", units=fixture_units())


def test_a_later_period_ignores_returns_after_it() -> None:
    res = consolidate(build_returns(), "2023-06", units=fixture_units())
    assert res.city["A1"] == CITY_2023_06_A1
    assert res.periods == ("2023-05", "2023-06")


def test_a_unit_outside_the_list_is_not_dropped() -> None:
    res = consolidate(build_returns(), units=fixture_units()[:1])
    assert [u.name for u in res.units] == [GL, TJ, CS, MW]  # extra units by code
    assert res.city == {c: CITY_2023_07.get(c, Decimal(0)) for c in progress_form().value_codes}


def test_submissions_table_alone_matches_the_model(result: Consolidation) -> None:
    table = submissions_table(build_returns(), "2023-07", units=fixture_units())
    pd.testing.assert_frame_equal(table, result.submissions)


def test_figures_schema_is_a_real_contract(result: Consolidation) -> None:
    bad = result.figures.copy()
    bad.loc[0, "value"] = 1.5  # a float sneaking in where exact Decimals are the contract
    with pytest.raises(pandera.errors.SchemaErrors):
        _figures_schema(progress_form()).validate(bad, lazy=True)


def test_overdue_in_a_carried_ledger_is_one_info_flag_per_unit_not_a_fact() -> None:
    """台江区 sent no August ledger: its July status says nothing about August's deadlines."""
    units = fixture_units()[:2]
    july = [
        hazard("T-001", "企业自查", "整改中", found="2023-07-03", deadline="2023-08-05"),
        hazard("T-002", "企业自查", "整改中", found="2023-07-04", deadline="2023-08-20"),
        hazard("T-003", "企业自查", "整改中", found="2023-07-05", deadline="2023-09-30"),
        hazard("T-004", "企业自查", "已验收销号", found="2023-07-06", deadline="2023-07-20"),
    ]  # fmt: skip
    august_gl = [hazard("G-001", "企业自查", "整改中", found="2023-08-01", deadline="2023-08-10")]
    rets = [
        progress_return(GL, "2023-08", {"A1": "1"}),
        ledger_return(GL, "2023-08", august_gl),
        progress_return(TJ, "2023-07", {"A1": "4", "A2": "1"}),
        ledger_return(TJ, "2023-07", july),
    ]
    res = consolidate(rets, "2023-08", units=units)
    overdue = [(a.rule, a.unit, a.item, a.severity) for a in res.anomalies if "overdue" in a.rule]
    assert overdue == [
        ("ledger-overdue", GL, "G-001", "warning"),  # this month's ledger: a fact
        ("ledger-overdue-unconfirmed", TJ, "", "info"),  # July's ledger: to be checked
    ]
    flag = next(a for a in res.anomalies if a.rule == "ledger-overdue-unconfirmed")
    assert flag.current == Decimal(2)
    assert (flag.file, flag.cell) == ("2023-07/台江区_台账.xlsx", "M4")  # T-001's 整改期限
    assert flag.message.startswith(
        "据2023年7月台账（本月未报送台账，沿用 2023-07/台江区_台账.xlsx）"
    )
    assert "T-001" in flag.message and "T-002" in flag.message and "T-003" not in flag.message
    assert "暂不认定逾期" in flag.message
    # the real flag comes first: warnings sort before every info flag
    assert res.anomalies[0].severity == "warning"
    assert [a.rule for a in res.anomalies].index("ledger-overdue") < [
        a.rule for a in res.anomalies
    ].index("ledger-overdue-unconfirmed")


def test_unconfirmed_overdue_names_a_few_hazards_and_counts_all() -> None:
    units = fixture_units()[:2]
    july = [
        hazard(f"T-{i:03d}", "企业自查", "整改中", found="2023-07-03", deadline=f"2023-08-{i:02d}")
        for i in range(1, 9)
    ]
    rets = [
        progress_return(GL, "2023-08", {}),
        progress_return(TJ, "2023-07", {"A1": "8"}),
        ledger_return(TJ, "2023-07", july),
    ]
    res = consolidate(rets, "2023-08", units=units)
    (flag,) = [a for a in res.anomalies if a.rule == "ledger-overdue-unconfirmed"]
    assert flag.current == Decimal(8) and "有 8 条隐患" in flag.message
    assert "T-005" in flag.message and "T-006" not in flag.message and "）等。" in flag.message
    assert not [a for a in res.anomalies if a.rule == "ledger-overdue"]


def test_checklist_major_flag_states_how_each_form_counts(result: Consolidation) -> None:
    by = {(a.rule, a.unit, a.item): a for a in result.anomalies}
    assert by[("checklist-major-exceeds-ledger", CS, "")].message == (
        "仓山区2023年7月部门检查清单中的重大隐患共 1 项（附件3 1 项；2023-07/仓山区_附件3_更正.xlsx），"
        "但台账中发现方式为“部门检查”、发现日期在本月的隐患只有 0 条。"
        "计数口径：附件2计“是否重大隐患”勾选“是”的隐患；附件1、附件3没有“是否重大隐患”栏，"
        "其隐患栏为“重大隐患描述”，所记隐患均计为重大隐患。"
        "检查发现的重大隐患应100%列入台账；请补录台账。"
    )
    assert "（附件2 2 项；" in by[("checklist-major-exceeds-ledger", GL, "")].message


def test_gas_and_confined_space_hazards_listed_in_the_ledger_raise_no_flag() -> None:
    """附件1/附件3 hazards count as major; a 部门检查 ledger row for each one satisfies the check."""
    units = fixture_units()[:1]
    insp = annex3_inspection("附件3", "某污水处理厂", "2023-07-09", {2, 5})
    chk = checklist_return(GL, "2023-07", "annex3_confined_space", "鼓楼区_附件3.xlsx", [insp])
    rows = [
        hazard(f"G-00{i}", "部门检查", "整改中", found="2023-07-09", deadline="2023-08-10")
        for i in (1, 2)
    ]
    base = [progress_return(GL, "2023-07", {"A3": "2"}), chk]
    res = consolidate([*base, ledger_return(GL, "2023-07", rows)], units=units)
    assert not [a for a in res.anomalies if a.rule == "checklist-major-exceeds-ledger"]
    res = consolidate([*base, ledger_return(GL, "2023-07", rows[:1])], units=units)
    (flag,) = [a for a in res.anomalies if a.rule == "checklist-major-exceeds-ledger"]
    assert (flag.previous, flag.current) == (Decimal(1), Decimal(2))


def _name_flags(res: Consolidation) -> list[tuple[str, str, object, object, str]]:
    return [
        (a.rule, a.unit, a.previous, a.current, a.file)
        for a in res.anomalies
        if a.rule.startswith("return-name-")
    ]


def test_a_file_named_for_another_month_is_flagged_in_both_months() -> None:
    # 鼓楼区's July figures typed into June's template, saved as a July file: the metadata
    # files it under June, where it replaces the real June return
    june = progress_return(GL, "2023-06", {"A1": "3"}, rel="6月/鼓楼区_附件4_2023年6月.xlsx")
    misfiled = progress_return(
        GL,
        "2023-06",
        {"A1": "5"},
        rel="7月/鼓楼区_附件4_2023年7月.xlsx",
        received=dt.datetime(2023, 7, 31, 9, 0),
    )
    tj = [progress_return(TJ, p, {"A1": "1"}) for p in ("2023-06", "2023-07")]
    units = fixture_units()[:2]
    expected = ("return-name-period-mismatch", GL, "2023年7月", "2023年6月", misfiled.rel)
    res_june = consolidate([june, misfiled, *tj], "2023-06", units=units)
    assert _name_flags(res_june) == [expected]
    flag = next(a for a in res_june.anomalies if a.rule == expected[0])
    assert flag.severity == "warning"
    assert "用的是鼓楼区2023年6月的模板" in flag.message
    assert f"替代了先收到的“{june.rel}”" in flag.message
    assert "用2023年7月的模板重新填报" in flag.message
    # in July's report 鼓楼区 shows as not reported: the flag says where its file went
    res_july = consolidate([june, misfiled, *tj], "2023-07", units=units)
    assert _name_flags(res_july) == [expected]
    assert "替代" in next(a for a in res_july.anomalies if a.rule == expected[0]).message
    # neither in another month's report, nor for a file whose name agrees
    assert _name_flags(consolidate([june, *tj], "2023-06", units=units)) == []
    # nor once a later return has replaced the misnamed one: it counts for nothing
    later = progress_return(
        GL, "2023-06", {"A1": "4"}, rel="鼓楼区_附件4_更正.xlsx", received=dt.datetime(2023, 8, 2)
    )
    assert _name_flags(consolidate([june, misfiled, later, *tj], "2023-06", units=units)) == []
    assert _name_flags(consolidate([june, misfiled, later, *tj], "2023-07", units=units)) == []


def test_a_file_named_or_filed_for_another_unit_is_flagged() -> None:
    named = progress_return(GL, "2023-07", {"A1": "2"}, rel="台江区_附件4_2023年7月.xlsx")
    ledger = ledger_return(GL, "2023-07", [])
    ledger.rel = "2023年7月/台江区/台账.xlsx"  # the name says nothing: the folder does
    rejected = progress_return(GL, "2023-07", {}, rel="台江区_附件4_初稿.xlsx", status="rejected")
    res = consolidate([named, ledger, rejected], "2023-07", units=fixture_units()[:2])
    assert _name_flags(res) == [
        ("return-name-unit-mismatch", GL, TJ, GL, ledger.rel),
        ("return-name-unit-mismatch", GL, TJ, GL, named.rel),
    ]
    by_file = {a.file: a.message for a in res.anomalies if a.rule == "return-name-unit-mismatch"}
    assert "所在文件夹“台江区”写的是台江区" in by_file[ledger.rel]
    assert "文件名写的是台江区" in by_file[named.rel]
    assert "下发给鼓楼区的模板" in by_file[named.rel]
