"""The sample inbox: the seeded scenario is clean except where planted, the committed files match
the manifest and the generator, and the pipeline finds exactly what was planted."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.forms import (
    TICKS,
    checklist_forms,
    load_calendar,
    period_end,
    progress_form,
    shift_period,
)
from pipeline.samples import (
    DEFAULT_SEED,
    PLANT_KINDS,
    README_NAME,
    RECEIPT_COLUMNS,
    RECEIPT_LOG,
    Scenario,
    ScenarioParams,
    build_scenario,
    credit_check_char,
    derive_a_items,
    lock_file_bytes,
    manifest_data,
    org_check_char,
    sheet_values,
    write_inbox,
)

ROOT = Path(__file__).resolve().parent.parent
INBOX = ROOT / "sample_inputs"
MANIFEST = Path(__file__).resolve().parent / "data" / "sample_planted.json"
CAL = load_calendar()


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build_scenario(ScenarioParams.city(), DEFAULT_SEED)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def _planted(scenario: Scenario, kind: str) -> list[Any]:
    return [p for p in scenario.plants if p.kind == kind]


# --- the scenario as data ------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["91110000710925462X", "91330100716105852F", "9144030071526726XG"])
def test_check_digits_agree_with_published_credit_codes(code: str) -> None:
    assert credit_check_char(code[:17]) == code[17]
    assert org_check_char(code[8:16]) == code[16]


def test_scenario_is_deterministic_and_depends_on_the_seed(scenario: Scenario) -> None:
    again = build_scenario(ScenarioParams.city(), DEFAULT_SEED)
    assert manifest_data(again) == manifest_data(scenario)
    other = build_scenario(ScenarioParams.city(), DEFAULT_SEED + 1)
    assert manifest_data(other)["expected"] != manifest_data(scenario)["expected"]


def test_committed_manifest_is_what_the_generator_plans(
    scenario: Scenario, manifest: dict[str, Any]
) -> None:
    assert manifest == json.loads(json.dumps(manifest_data(scenario), ensure_ascii=False))


def test_every_kind_of_mess_is_planted_once_in_distinct_units(scenario: Scenario) -> None:
    kinds = Counter(p.kind for p in scenario.plants)
    assert set(kinds) == set(PLANT_KINDS)
    # the resubmission is two files (first and corrected) of one unit, period and form
    assert {k: n for k, n in kinds.items() if n != 1} == {"resubmission": 2}
    first, second = _planted(scenario, "resubmission")
    assert (first.unit, first.period, first.form) == (second.unit, second.period, second.form)
    units = {p.kind: p.unit for p in scenario.plants if p.kind != "lock-file"}
    assert len(set(units.values())) == len(units)
    last = scenario.periods[-1]
    anomaly_kinds = ("late-return", "unit-missing", "cumulative-decrease", "ledger-mismatch")
    assert all(_planted(scenario, k)[0].period == last for k in anomaly_kinds)


def test_three_periods_every_unit_every_form(scenario: Scenario) -> None:
    assert scenario.periods == CAL.periods[:3]
    missing = _planted(scenario, "unit-missing")[0]
    forms = ["annex4_progress", "ledger", *(f.id for f in checklist_forms())]
    sent = {(f.unit.name, f.period, f.form_id) for f in scenario.files}
    for period in scenario.periods:
        for unit in scenario.params.units:
            gone = (unit.name, period) == (missing.unit, missing.period)
            for form_id in forms:
                assert ((unit.name, period, form_id) in sent) != gone, (unit.name, period, form_id)


def _progress_files(scenario: Scenario) -> list[Any]:
    return [f for f in scenario.files if f.form_id == "annex4_progress" and f.fmt != "lock"]


def test_every_progress_return_keeps_the_rules_of_the_form(scenario: Scenario) -> None:
    form = progress_form()
    for f in _progress_files(scenario):
        values = f.progress
        assert set(values) == set(form.value_codes)
        for rule in form.rules:
            right = values[rule.right]
            for left in rule.left:
                if rule.kind == "le":
                    assert values[left] <= right, (f.rel, rule.code)
                else:
                    assert values[left] == 0 or right > 0, (f.rel, rule.code)
        for v in form.values:
            value = values[v.code]
            assert value >= 0
            places = -value.as_tuple().exponent  # type: ignore[operator]
            assert places <= (4 if v.is_money else 0), (f.rel, v.code, value)


def test_cumulatives_grow_except_the_planted_fall(scenario: Scenario) -> None:
    fall = _planted(scenario, "cumulative-decrease")[0]
    expected = scenario.expected_units
    falls = []
    for prev, period in zip(scenario.periods, scenario.periods[1:], strict=False):
        for unit, figures in expected[period].items():
            before = expected[prev][unit]
            falls += [(unit, period, c) for c in figures if figures[c] < before[c]]
            # a return identical to last month's would be flagged
            assert figures != before or unit == _planted(scenario, "unit-missing")[0].unit
    assert falls == [(fall.unit, fall.period, fall.item)]


def test_a1_to_a6_agree_with_the_ledger_except_where_planted(scenario: Scenario) -> None:
    mismatch = _planted(scenario, "ledger-mismatch")[0]
    ledgers = {
        (f.unit.name, f.period): f.ledger_rows for f in scenario.files if f.form_id == "ledger"
    }
    disagree = []
    for f in _progress_files(scenario):
        derived = derive_a_items(ledgers[(f.unit.name, f.period)])
        wrong = {c: (f.progress[c], v) for c, v in derived.items() if f.progress[c] != v}
        if wrong:
            disagree.append((f.unit.name, f.period, f.submission, sorted(wrong)))
    assert sorted(disagree) == sorted(
        [
            (mismatch.unit, mismatch.period, "accepted", [mismatch.item]),
            # the first of the resubmitted pair, superseded by its correction
            (
                _planted(scenario, "resubmission")[0].unit,
                scenario.periods[-1],
                "superseded",
                ["A3"],
            ),
        ]
    )


def test_ledger_rows_are_clean_except_the_overdue_hazard(scenario: Scenario) -> None:
    overdue = _planted(scenario, "overdue-hazard")[0]
    late_found = []
    history: dict[tuple[str, str], list[str]] = {}
    order = {"整改中": 0, "已整改待验收": 1, "已验收销号": 2}
    for f in sorted((f for f in scenario.files if f.form_id == "ledger"), key=lambda f: f.period):
        end = period_end(f.period)
        ids = [r["hazard_id"] for r in f.ledger_rows]
        assert len(ids) == len(set(ids)), f.rel
        previous = [k for (u, k) in history if u == f.unit.name]
        assert set(previous) <= set(ids), f"rows vanished in {f.rel}"
        for r in f.ledger_rows:
            assert r["found_date"] <= end and r["found_date"] >= CAL.start_date
            if r["credit_code"]:
                assert credit_check_char(r["credit_code"][:17]) == r["credit_code"][17]
            for key in ("measures", "responsible", "funds", "deadline"):
                assert r[key], (f.rel, r["hazard_id"], key)
            assert r["emergency_plan"] == "有"
            assert r["deadline"] >= r["found_date"]
            assert (r["supervision_level"] is not None) == (r["supervised"] == "是")
            if r["status"] != "整改中":
                assert r["found_date"] <= r["rectified_date"] <= end
            if r["status"] == "已验收销号":
                assert r["rectified_date"] <= r["closed_date"] <= end and r["accepted_by"]
            if r["status"] == "整改中" and r["deadline"] < end:
                late_found.append((f.unit.name, f.period, r["hazard_id"]))
            trail = history.setdefault((f.unit.name, r["hazard_id"]), [])
            assert not trail or order[trail[-1]] <= order[r["status"]]
            trail.append(r["status"])
    assert late_found == [(overdue.unit, overdue.period, overdue.item)]


def test_checklists_have_one_tick_and_details_where_a_hazard_is_found(
    scenario: Scenario,
) -> None:
    forms = {f.id: f for f in checklist_forms()}
    for f in scenario.files:
        if f.form_id not in forms:
            continue
        form = forms[f.form_id]
        assert 1 <= len(f.inspections) <= 2
        for insp in f.inspections:
            assert sorted(insp.answers) == [it.no for it in form.items]
            assert set(insp.answers.values()) <= set(TICKS)
            hazards = {it.no for it in form.items if insp.answers[it.no] == it.hazard_answer}
            assert set(insp.details) == hazards
            for d in insp.details.values():
                assert d["description"] and d["requirement"] and d["deadline"]
                assert (d["major"] in ("是", "否")) == form.has_major_column
            assert all(insp.footer[fld.key] for fld in form.footer)
            date = insp.footer["inspection_date"]
            assert shift_period(f.period, 0) == f"{date:%Y-%m}"
            assert f.received is not None and f.received.date() > date


def test_major_checklist_hazards_are_all_in_the_ledger(scenario: Scenario) -> None:
    ledgers = {
        (f.unit.name, f.period): f.ledger_rows for f in scenario.files if f.form_id == "ledger"
    }
    for f in scenario.files:
        for insp in f.inspections:
            rows = ledgers[(f.unit.name, f.period)]
            for d in insp.details.values():
                if d["major"] == "否":
                    continue
                match = [
                    r
                    for r in rows
                    if r["description"] == d["description"] and r["found_by"] == "部门检查"
                ]
                assert any(r["deadline"] == d["deadline"] for r in match), (f.rel, d)


def test_receipt_times_are_on_time_except_the_planted_late_return(scenario: Scenario) -> None:
    late = [f.rel for f in scenario.files if f.late]
    assert late == [_planted(scenario, "late-return")[0].file]
    for f in scenario.files:
        if f.received is not None and not f.late:
            assert period_end(f.period) - dt.timedelta(days=31) < f.received.date()
            assert f.received.date() <= CAL.due_date(f.period)
    first, second = _planted(scenario, "resubmission")
    times = {f.rel: f.received for f in scenario.files}
    assert times[first.file] < times[second.file]


def test_lock_file_looks_like_excels() -> None:
    data = lock_file_bytes("Administrator")
    assert len(data) == 165 and data[0] == len("Administrator")
    assert data[1:14] == b"Administrator"


def test_params_scale_for_the_benchmark() -> None:
    cal = load_calendar()
    params = ScenarioParams(
        units=ScenarioParams.city().units[:2],
        periods=cal.periods[:1],
        ledger_rows_per_month=60,
        checklist_workbooks=(6, 6),
        plants=False,
    )
    sc = build_scenario(params, 7)
    assert not sc.plants
    assert all(len(rows) >= 60 for rows in (f.ledger_rows for f in sc.files if f.ledger_rows))
    per_unit = Counter(f.unit.name for f in sc.files if f.inspections)
    assert set(per_unit.values()) == {6}


# --- the committed inbox -------------------------------------------------------------------------


def test_committed_inbox_holds_exactly_the_manifest_files(manifest: dict[str, Any]) -> None:
    on_disk = {p.relative_to(INBOX).as_posix() for p in INBOX.rglob("*") if p.is_file()}
    listed = {f["file"] for f in manifest["files"]}
    assert on_disk == listed | set(manifest["support_files"])


def test_receipt_log_lists_every_received_file(manifest: dict[str, Any]) -> None:
    with (INBOX / RECEIPT_LOG).open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == RECEIPT_COLUMNS
    logged = {name: when for name, when in rows[1:]}
    expected = {f["file"]: f["received"] for f in manifest["files"] if f["received"]}
    assert logged == expected
    assert (INBOX / README_NAME).read_text(encoding="utf-8").startswith("# 样例报表说明")


@pytest.mark.libreoffice
def test_regenerating_gives_the_same_values(tmp_path: Path, manifest: dict[str, Any]) -> None:
    from pipeline.samples import find_soffice

    if find_soffice() is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    out = tmp_path / "sample_inputs"
    write_inbox(
        build_scenario(ScenarioParams.city(), manifest["seed"]), out, manifest=tmp_path / "m.json"
    )
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == manifest
    for f in manifest["files"]:
        new, old = out / f["file"], INBOX / f["file"]
        if f["format"] == "lock":
            assert new.read_bytes() == old.read_bytes()
        else:
            # values, not bytes: LibreOffice's .xls/.ods differ in bytes from run to run
            assert sheet_values(new) == sheet_values(old), f["file"]
    for name in manifest["support_files"]:
        assert (out / name).read_bytes() == (INBOX / name).read_bytes()


# --- what the pipeline makes of it ------------------------------------------------------------


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


needs_validate = pytest.mark.skipif(
    not _have("pipeline.validate"), reason="pipeline.validate not yet built"
)
needs_consolidate = pytest.mark.skipif(
    not (_have("pipeline.validate") and _have("pipeline.consolidate")),
    reason="pipeline.validate / pipeline.consolidate not yet built",
)


@pytest.fixture(scope="module")
def returns() -> list[Any]:
    from pipeline.validate import validate_inbox

    return list(validate_inbox(INBOX))


@needs_validate
def test_pipeline_validate_accepts_all_but_the_planted(
    returns: list[Any], manifest: dict[str, Any]
) -> None:
    got = {r.rel: r.status for r in returns}
    want = {f["file"]: f["validate"] for f in manifest["files"]}
    for name in manifest["support_files"]:
        got.pop(name, None)
    problems = {
        rel: (want.get(rel), got.get(rel), [i.rule for i in r.issues if i.severity == "error"])
        for r in returns
        if (rel := r.rel) in want or rel in got
        if want.get(rel) != got.get(rel)
    }
    assert problems == {}
    rejected = next(p for p in manifest["plants"] if p["kind"] == "rejected-return")
    ret = next(r for r in returns if r.rel == rejected["file"])
    assert {i.rule for i in ret.errors} == set(rejected["rules"])


@needs_consolidate
@pytest.mark.parametrize("period", ["2023-05", "2023-06", "2023-07"])
def test_pipeline_consolidate_totals_equal_the_scenario(
    returns: list[Any], manifest: dict[str, Any], period: str
) -> None:
    from pipeline.consolidate import consolidate

    result = consolidate(returns, period)
    expected = manifest["expected"][period]["city"]
    assert {c: Decimal(v) for c, v in result.city.items()} == {
        c: Decimal(str(v)) for c, v in expected.items()
    }
    figures = result.unit_figures()
    units = manifest["expected"][period]["units"]
    got = {(r["unit"], r["code"]): Decimal(r["value"]) for r in figures.to_dict("records")}
    assert got == {(u, c): Decimal(str(v)) for u, vs in units.items() for c, v in vs.items()}


@needs_consolidate
@pytest.mark.parametrize("period", ["2023-05", "2023-06", "2023-07"])
def test_pipeline_consolidate_flags_the_planted_anomalies_and_nothing_else(
    returns: list[Any], manifest: dict[str, Any], period: str
) -> None:
    """Which part failed: `missed` = planted but not flagged, `extra` = flagged but not planted."""
    from pipeline.consolidate import consolidate
    from pipeline.messages import CATALOGUE

    result = consolidate(returns, period)
    flagged = {(a.rule, a.unit) for a in result.anomalies if a.severity in ("warning", "error")}
    # rules of returns that validation rejects or ignores are not anomalies
    planted = {
        (rule, p["unit"])
        for p in manifest["plants"]
        if p["period"] == period and p["expect"] not in ("rejected", "ignored")
        for rule in p["rules"]
        if rule in CATALOGUE and CATALOGUE[rule].severity in ("warning", "error")
    }
    assert {"missed": planted - flagged, "extra": flagged - planted} == {
        "missed": set(),
        "extra": set(),
    }
    every = {(a.rule, a.unit) for a in result.anomalies}
    for p in manifest["plants"]:
        if p["period"] == period and p["expect"] not in ("rejected", "ignored"):
            for rule in p["rules"]:
                assert (rule, p["unit"]) in every, (p["kind"], rule)
