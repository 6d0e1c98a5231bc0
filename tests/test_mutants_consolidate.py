"""Consolidation cases that hand-made mutants of pipeline/consolidate.py showed untested.

Each test names the mutant it kills (a one-line change a real bug would look like); the inputs
are model.Return objects built with the fixture helpers, one small scenario per test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fixtures_consolidate import (
    GL,
    annex2_inspection,
    build_returns,
    checklist_return,
    fixture_units,
    hazard,
    ledger_return,
    progress_return,
)

from pipeline.consolidate import Anomaly, Consolidation, consolidate
from pipeline.model import Issue, Return
from pipeline.output import period_rejections

ONE_UNIT = fixture_units()[:1]  # 鼓楼区 alone: no peers to compare increments with


def _flags(result: Consolidation, rule: str) -> list[Anomaly]:
    return [a for a in result.anomalies if a.rule == rule]


def test_a_department_hazard_found_on_the_first_of_the_month_counts_for_that_month() -> None:
    # mutant: the month's window for checklist-major-exceeds-ledger starts after its 1st
    # (`start < d` for `start <= d`); one major hazard on the checklist, one 部门检查 ledger
    # row found on 2023-07-01: the ledger holds it, nothing to flag
    rets = [
        progress_return(GL, "2023-07", {"A3": "1"}),
        ledger_return(
            GL,
            "2023-07",
            [hazard("G-101", "部门检查", "整改中", found="2023-07-01", deadline="2023-09-30")],
        ),
        checklist_return(
            GL,
            "2023-07",
            "annex2_construction",
            "鼓楼区_附件2.xlsx",
            [annex2_inspection("附件2", "某项目", "2023-07-01", {5: ("是", "是")})],
        ),
    ]
    result = consolidate(rets, "2023-07", units=ONE_UNIT)
    assert not _flags(result, "checklist-major-exceeds-ledger")
    # the last day of the month counts too, and a hazard of June's last day does not
    june_30 = hazard("G-101", "部门检查", "整改中", found="2023-06-30", deadline="2023-09-30")
    rets[1] = ledger_return(GL, "2023-07", [june_30])
    (flag,) = _flags(consolidate(rets, "2023-07", units=ONE_UNIT), "checklist-major-exceeds-ledger")
    assert (flag.previous, flag.current) == (Decimal(0), Decimal(1))


def test_ledger_mismatch_is_not_judged_against_a_carried_forward_ledger() -> None:
    # mutant: _ledger_mismatch_flags compares July's 附件4 with June's ledger when no July
    # ledger came (dropping `ledger_ret.period != period`). The carried ledger is last
    # month's: its counts say nothing about July's cumulative figures.
    rets = [
        progress_return(GL, "2023-06", {"A1": "1"}),
        ledger_return(
            GL,
            "2023-06",
            [hazard("G-001", "企业自查", "整改中", found="2023-06-02", deadline="2023-08-15")],
        ),
        progress_return(GL, "2023-07", {"A1": "4"}),  # three more found in July
    ]
    result = consolidate(rets, "2023-07", units=ONE_UNIT)
    assert not _flags(result, "ledger-mismatch")
    assert [(a.unit, a.file) for a in _flags(result, "ledger-not-reported")] == [
        (GL, "2023-06/鼓楼区_台账.xlsx")
    ]
    # in June, both sent: the same figures agree with the ledger, and a wrong one is flagged
    june = consolidate(rets, "2023-06", units=ONE_UNIT)
    assert not _flags(june, "ledger-mismatch")
    rets[0] = progress_return(GL, "2023-06", {"A1": "2"})
    (flag,) = _flags(consolidate(rets, "2023-06", units=ONE_UNIT), "ledger-mismatch")
    assert (flag.item, flag.previous, flag.current) == ("A1", Decimal(1), Decimal(2))


def test_one_month_of_history_is_too_little_to_call_an_increment_an_outlier() -> None:
    # mutant: OUTLIER_MIN_HISTORY = 1. The unit's first report (June, +10 from the campaign
    # start) is its only earlier increment; July's +500 has no history to be judged by and
    # no peers: no flag. With a second month of history it is flagged.
    rets = [
        progress_return(GL, "2023-06", {"D3": "10"}),
        progress_return(GL, "2023-07", {"D3": "510"}),
    ]
    result = consolidate(rets, "2023-07", units=ONE_UNIT)
    assert result.periods == ("2023-06", "2023-07")
    assert not _flags(result, "increment-outlier")
    rets.insert(0, progress_return(GL, "2023-05", {"D3": "5"}))  # June is then +5, May +5
    (flag,) = _flags(consolidate(rets, "2023-07", units=ONE_UNIT), "increment-outlier")
    assert (flag.unit, flag.item, flag.previous, flag.current) == (
        GL,
        "D3",
        Decimal(10),
        Decimal(510),
    )


def test_a_catch_up_after_a_silent_month_is_not_an_increment() -> None:
    # mutant: _monthly_increments keeps a month that follows a month the unit did not report.
    # +12, +12, silent in July, then August's 24 is two months' worth: no outlier (as a
    # one-month increment against +12, +12 it would be z = 0.6745 * 12 / 2 = 4.05)
    rets = [
        progress_return(GL, "2023-05", {"D3": "12"}),
        progress_return(GL, "2023-06", {"D3": "24"}),
        progress_return(GL, "2023-08", {"D3": "48"}),
    ]
    result = consolidate(rets, "2023-08", units=ONE_UNIT)
    assert [(a.unit, a.item) for a in _flags(result, "increment-outlier")] == []
    # the same 24 in a month that follows a reported one is flagged
    rets.insert(2, progress_return(GL, "2023-07", {"D3": "24"}))
    (flag,) = _flags(consolidate(rets, "2023-08", units=ONE_UNIT), "increment-outlier")
    assert (flag.item, flag.previous, flag.current) == ("D3", Decimal(24), Decimal(48))


def test_an_all_zero_return_repeated_is_not_flagged_identical() -> None:
    # mutant: return-identical without `any(v != 0 ...)`. A unit with nothing to report
    # sends zeros every month: that is not a copied return.
    rets = [progress_return(GL, "2023-06", {}), progress_return(GL, "2023-07", {})]
    result = consolidate(rets, "2023-07", units=ONE_UNIT)
    assert not _flags(result, "return-identical")
    rets = [progress_return(GL, p, {"B1": "3"}) for p in ("2023-06", "2023-07")]
    (flag,) = _flags(consolidate(rets, "2023-07", units=ONE_UNIT), "return-identical")
    assert flag.unit == GL


def test_a_hazard_number_retyped_in_full_width_has_not_vanished() -> None:
    # mutant: ledger-row-vanished looks last month's 隐患编号 up as typed (no fold), so a
    # "Ｇ－００１" of June that July's clerk retyped "G-001" is reported gone
    # (either way round: last month's number typed oddly, or this month's)
    june = [
        hazard("Ｇ－００１", "企业自查", "整改中", found="2023-06-02", deadline="2023-08-15"),
        hazard("G-002", "企业自查", "已验收销号", found="2023-06-05", deadline="2023-06-20"),
    ]
    july = [
        hazard("G-001", "企业自查", "已整改待验收", found="2023-06-02", deadline="2023-08-15"),
        hazard("G- 002", "企业自查", "已整改待验收", found="2023-06-05", deadline="2023-06-20"),
    ]
    rets = [
        progress_return(GL, "2023-06", {"A1": "2", "A2": "1"}),
        progress_return(GL, "2023-07", {"A1": "2", "A2": "2"}),
        ledger_return(GL, "2023-06", june),
        ledger_return(GL, "2023-07", july),
    ]
    result = consolidate(rets, "2023-07", units=ONE_UNIT)
    assert not _flags(result, "ledger-row-vanished")
    # the folded match still compares the statuses: G-002 went back from 已验收销号
    assert [(a.item, a.previous, a.current) for a in _flags(result, "ledger-status-regressed")] == [
        ("G-002", "已验收销号", "已整改待验收")
    ]


def test_strict_counts_a_rejected_file_whose_period_is_unknown() -> None:
    # mutant: period_rejections keeps only `r.period == result.period`. A file rejected before
    # its period could be read (no metadata, no name to go by) may well be this month's
    # return: --strict must not pass over it (the output's docstring: "or unidentified")
    unknown = Return(
        path=build_returns()[0].path.with_name("扫描件.xlsx"),
        rel="扫描件.xlsx",
        fmt="xlsx",
        status="rejected",
        mtime=dt.datetime(2023, 7, 31, 9, 0),
        issues=[Issue("file-form-unknown", "error", "无法识别", file="扫描件.xlsx")],
    )
    returns = [*build_returns(), unknown]
    result = consolidate(returns, "2023-07", units=fixture_units())
    assert "扫描件.xlsx" in [r.rel for r in period_rejections(result, returns)]
    # a rejected file of another period is not this period's business
    june = progress_return(GL, "2023-06", {}, rel="2023-06/鼓楼区_附件4_又一份.xlsx")
    june.status = "rejected"
    assert june.rel not in [r.rel for r in period_rejections(result, [*returns, june])]
