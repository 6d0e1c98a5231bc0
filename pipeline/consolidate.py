"""Consolidation stage: validated returns in, the city's month-end model and anomaly flags out.

`consolidate(returns, period)` is pure (no I/O). It keeps the latest accepted return per unit,
period and form (receipt time, then file name) and lists the others as superseded; builds tidy
pandas frames checked by the pandera schemas below (the contracts with pipeline.output); sums
each unit's cumulative 附件4 figures at month end into the city figures, carrying a silent unit's
last accepted figures forward; and raises the anomaly flags of DESIGN §8. Amounts stay Decimal.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import median
from typing import Any, cast

import pandas as pd
import pandera.pandas as pa

from pipeline.filenames import claims
from pipeline.forms import (
    TICKS,
    Calendar,
    ChecklistForm,
    ChecklistItem,
    ProgressForm,
    Unit,
    checklist_forms,
    ledger_form,
    load_calendar,
    load_forms,
    load_units,
    period_end,
    period_label,
    period_range,
    progress_form,
    shift_period,
)
from pipeline.layout import LedgerLayout, col_letter
from pipeline.messages import CATALOGUE, make_issue
from pipeline.model import Inspection, Return, Severity, received_source_name
from pipeline.normalize import fold

ZERO = Decimal(0)
PROGRESS_ID = "annex4_progress"
LEDGER_ID = "ledger"
RECTIFIED = ("已整改待验收", "已验收销号")
STATUS_RANK = {"整改中": 0, "已整改待验收": 1, "已验收销号": 2}
FOUND_SELF = "企业自查"
FOUND_DEPT = "部门检查"
# the note's ending of a submission once rejected, then replaced by the unit's correction
WAS_REJECTED = "（本文件曾被退回修改）"
SUBMISSION_STATUSES = ("accepted", "rejected", "missing", "superseded")
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

# Robust outlier test for monthly increments (Iglewicz & Hoaglin's modified z-score).
OUTLIER_Z = 3.5
OUTLIER_MAD_FLOOR = Decimal(2)  # in the item's own unit (个, 家, 万元 …): a jump ≤ 10 never flags
OUTLIER_MIN_HISTORY = 2  # earlier increments of the same unit needed to judge by its history
OUTLIER_MIN_PEERS = 5  # other units' increments this month needed to judge by peers

# How 附件4 A1–A6 are counted from a unit's ledger (used in code, messages and the README).
LEDGER_DEFINITIONS = {
    "A1": "台账中发现方式为“企业自查”的隐患条数（举报发现的不计入）",
    "A2": "台账中发现方式为“企业自查”且整改状态为“已整改待验收”或“已验收销号”的隐患条数"
    "（举报发现的不计入）",
    "A3": "台账中发现方式为“部门检查”的隐患条数（举报发现的不计入）",
    "A4": "台账中发现方式为“部门检查”且整改状态为“已整改待验收”或“已验收销号”的隐患条数"
    "（举报发现的不计入）",
    "A5": "台账中是否挂牌督办为“是”的隐患条数（不论发现方式）",
    "A6": "台账中挂牌督办且整改状态为“已整改待验收”或“已验收销号”的隐患条数",
}


class NothingToConsolidate(Exception):
    """No accepted 附件4 return at or before the period: there is nothing to add up."""


# --- records ---------------------------------------------------------------------------------

Value = Decimal | str | None


@dataclass(frozen=True)
class Anomaly:
    """One anomaly flag: like an Issue, plus the unit, the item and both values compared."""

    rule: str
    severity: Severity
    unit: str
    item: str
    previous: Value
    current: Value
    message: str
    file: str = ""
    sheet: str = ""
    cell: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "unit": self.unit,
            "item": self.item,
            "previous": json_value(self.previous),
            "current": json_value(self.current),
            "message": self.message,
            "file": self.file,
            "sheet": self.sheet,
            "cell": self.cell,
        }


def json_value(value: Value) -> int | float | str | None:
    """A Decimal as a JSON number (int when integral); strings and None unchanged."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def fmt_decimal(value: Decimal) -> str:
    """Plain notation without trailing zeros: Decimal('10') -> '10', Decimal('0.7001') -> '0.7001'."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass
class Consolidation:
    """The consolidated model for one period; every frame has passed its pandera schema."""

    period: str
    periods: tuple[str, ...]  # first period with data … period, for trends and increments
    units: tuple[Unit, ...]  # in report order
    calendar: Calendar
    progress: pd.DataFrame  # PROGRESS_SCHEMA: accepted 附件4 values, unit × period × code
    figures: pd.DataFrame  # FIGURES_SCHEMA: month-end figures as they enter the city total
    city: dict[str, Decimal]  # city figure per value code for `period`
    city_trend: pd.DataFrame  # CITY_SCHEMA: city figure per period and code
    ledger: pd.DataFrame  # LEDGER_SCHEMA: each unit's ledger as of the period end
    checklist: pd.DataFrame  # CHECKLIST_SCHEMA: one row per inspection and item, period only
    submissions: pd.DataFrame  # SUBMISSIONS_SCHEMA: unit × form × file for the period
    anomalies: list[Anomaly] = field(default_factory=list)
    # rejected files of no readable unit -> the unit (and form) their path names, for the
    # workbook's 报送进度 sheet to show as `status` does (status.owners_by_path); by Return.rel
    path_owners: dict[str, Any] = field(default_factory=dict)

    @property
    def due_date(self) -> dt.date:
        return self.calendar.due_date(self.period)

    def unit_figures(self, period: str | None = None) -> pd.DataFrame:
        """The figures rows of one period (default: the consolidated period)."""
        f = self.figures
        return f[f["period"] == (period or self.period)]

    def carried_units(self) -> list[str]:
        """Units without an accepted 附件4 for the period (carried forward or never reported)."""
        rows = self.unit_figures()
        return sorted(set(rows.loc[rows["carried"], "unit"]), key=self.unit_order)

    def carried_sources(self) -> dict[str, str]:
        """Each of carried_units -> the period its figures come from, "" when it never
        reported (it enters the total as zeros); in report order."""
        rows = self.unit_figures()
        rows = rows[rows["carried"]]
        sources = dict(zip(rows["unit"], rows["source_period"], strict=True))
        return {unit: sources[unit] for unit in sorted(sources, key=self.unit_order)}

    def superseded_files(self) -> dict[str, str]:
        """The files of the period replaced by a later return (accepted ones, and rejected ones
        the unit has since corrected) -> the file that replaced each."""
        subs = self.submissions
        gone = subs[subs["status"] == "superseded"]
        return dict(zip(gone["file"], gone["superseded_by"], strict=True))

    def unit_order(self, name: str) -> int:
        for i, u in enumerate(self.units):
            if u.name == name:
                return i
        return len(self.units)


# --- pandera schemas: the contracts between this stage and the writers ------------------------


def _decimal_check(*, non_negative: bool) -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        ok = [
            isinstance(v, Decimal) and v.is_finite() and (v >= 0 or not non_negative)
            for v in series.tolist()
        ]
        return pd.Series(ok, index=series.index, dtype=bool)

    name = "decimal-non-negative" if non_negative else "decimal"
    return pa.Check(check, name=name, error=f"value must be a {name} Decimal")


def _optional_date_check() -> pa.Check:
    def check(series: pd.Series) -> pd.Series:
        ok = [v is None or isinstance(v, dt.date) for v in series.tolist()]
        return pd.Series(ok, index=series.index, dtype=bool)

    return pa.Check(
        check,
        name="date-or-none",
        error="value must be a datetime.date or None",
    )


_PERIOD_RE = r"^\d{4}-(0[1-9]|1[0-2])$"


def _progress_schema(form: ProgressForm) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "unit": pa.Column(str),
            "unit_code": pa.Column(str),
            "period": pa.Column(str, pa.Check.str_matches(_PERIOD_RE)),
            "code": pa.Column(str, pa.Check.isin(form.value_codes)),
            "value": pa.Column(object, _decimal_check(non_negative=True)),
            "file": pa.Column(str),
            "sheet": pa.Column(str),
            "cell": pa.Column(str),
            "sha256": pa.Column(str),
        },
        strict=True,
        unique=["unit", "period", "code"],
        name="progress",
    )


def _figures_schema(form: ProgressForm) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "period": pa.Column(str, pa.Check.str_matches(_PERIOD_RE)),
            "unit": pa.Column(str),
            "unit_code": pa.Column(str),
            "code": pa.Column(str, pa.Check.isin(form.value_codes)),
            "value": pa.Column(object, _decimal_check(non_negative=True)),
            "previous": pa.Column(object, _decimal_check(non_negative=True)),
            "increment": pa.Column(object, _decimal_check(non_negative=False)),
            "reported": pa.Column(bool),
            "carried": pa.Column(bool),
            "source_period": pa.Column(str),
            "file": pa.Column(str),
            "sheet": pa.Column(str),
            "cell": pa.Column(str),
            "sha256": pa.Column(str),
        },
        checks=[
            pa.Check(
                lambda df: (df["value"] - df["previous"]) == df["increment"],
                name="increment-is-difference",
                error="increment must equal value - previous",
            ),
            pa.Check(
                lambda df: df["reported"] != df["carried"],
                name="reported-xor-carried",
                error="a figure is either reported this period or carried forward",
            ),
        ],
        strict=True,
        unique=["period", "unit", "code"],
        name="figures",
    )


def _city_schema(form: ProgressForm) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "period": pa.Column(str, pa.Check.str_matches(_PERIOD_RE)),
            "code": pa.Column(str, pa.Check.isin(form.value_codes)),
            "value": pa.Column(object, _decimal_check(non_negative=True)),
        },
        strict=True,
        unique=["period", "code"],
        name="city",
    )


LEDGER_META = ("unit", "unit_code", "ledger_period", "carried", "file", "sha256", "_sheet", "_row")


def _ledger_schema() -> pa.DataFrameSchema:
    form = ledger_form()
    columns: dict[str, pa.Column] = {
        "unit": pa.Column(str),
        "unit_code": pa.Column(str),
        "ledger_period": pa.Column(str, pa.Check.str_matches(_PERIOD_RE)),
        "carried": pa.Column(bool),
        "file": pa.Column(str),
        "sha256": pa.Column(str),
        "_sheet": pa.Column(str),
        "_row": pa.Column(int, pa.Check.ge(1)),
        "overdue": pa.Column(bool),
    }
    for col in form.columns:
        checks: list[pa.Check] = []
        if col.type == "date":
            checks.append(_optional_date_check())
        elif col.choices:
            checks.append(pa.Check.isin(col.choices))
        columns[col.key] = pa.Column(object, checks, nullable=col.key != "hazard_id")
    return pa.DataFrameSchema(
        columns, strict=True, unique=["unit", "hazard_id"], name="ledger", coerce=False
    )


def _checklist_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "unit": pa.Column(str),
            "unit_code": pa.Column(str),
            "period": pa.Column(str, pa.Check.str_matches(_PERIOD_RE)),
            "form": pa.Column(str, pa.Check.isin([f.id for f in checklist_forms()])),
            "file": pa.Column(str),
            "sheet": pa.Column(str),
            "subject": pa.Column(str),
            "inspection_date": pa.Column(object, _optional_date_check(), nullable=True),
            "item": pa.Column(int, pa.Check.ge(1)),
            "answer": pa.Column(str, pa.Check.isin(TICKS)),
            "hazard": pa.Column(bool),
            "major": pa.Column(bool),  # a major hazard: see checklist_major_definition()
            "cell": pa.Column(str),
        },
        strict=True,
        unique=["file", "sheet", "item"],
        name="checklist",
    )


def _submissions_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "unit": pa.Column(str),
            "unit_code": pa.Column(str),
            "form": pa.Column(str, pa.Check.isin(["", *load_forms()])),
            "period": pa.Column(str),
            "status": pa.Column(str, pa.Check.isin(SUBMISSION_STATUSES)),
            "late": pa.Column(bool),
            "file": pa.Column(str),
            "received": pa.Column(str),
            "received_source": pa.Column(str),
            "mtime": pa.Column(str),
            "sha256": pa.Column(str),
            "issues": pa.Column(int, pa.Check.ge(0)),
            "superseded_by": pa.Column(str),
            "note": pa.Column(str),
        },
        checks=[
            pa.Check(
                lambda df: (df["status"] != "missing") | (df["file"] == ""),
                name="missing-has-no-file",
                error="a missing submission names no file",
            ),
            pa.Check(
                lambda df: (df["status"] == "superseded") == (df["superseded_by"] != ""),
                name="superseded-names-winner",
                error="exactly the superseded rows name the file that replaced them",
            ),
        ],
        strict=True,
        name="submissions",
    )


# --- helpers ---------------------------------------------------------------------------------


def _naive(t: dt.datetime | None) -> dt.datetime | None:
    """Aware times become local naive times, so receipt times always compare."""
    if t is None or t.tzinfo is None:
        return t
    return t.astimezone().replace(tzinfo=None)


def receipt_time(ret: Return) -> dt.datetime | None:
    """When the city received the file: the receipt log's time, else the file's mtime."""
    return _naive(ret.received or ret.mtime)


def _receipt_key(ret: Return) -> tuple[dt.datetime, str]:
    return (receipt_time(ret) or dt.datetime.min, ret.rel)


def is_late(ret: Return, calendar: Calendar) -> bool:
    """Received after the end of the due day of the return's period (the due day is on time)."""
    t = receipt_time(ret)
    if t is None or ret.period is None:
        return False
    return t.date() > calendar.due_date(ret.period)


def _stamp(t: dt.datetime | None) -> str:
    return "" if t is None else _naive(t).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[union-attr]


def _clean(value: Any) -> Any:
    """Ledger cells as plain Python values: NaN/NA -> None, Timestamps -> dates."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _text(value: Any) -> str:
    value = _clean(value)
    return "" if value is None else str(value).strip()


def _inspection_keys(ret: Return) -> list[tuple[str, ...]]:
    """Which inspection each checklist sheet of `ret` records, in sheet order: a resubmission
    repeats subject and date (Inspection.identity); a sheet without them is one of its own.
    Sheets of one file with the same subject and date but other content (a sheet copied for
    another inspection, its date left unchanged: the reader warns) are told apart by their
    order among those, so that a file sent again replaces them sheet for sheet; a sheet copied
    and left as it was is the same inspection as its first (counted once; the reader warns)."""
    contents: dict[tuple[str, str], list[tuple[Any, ...]]] = {}  # distinct sheets per identity
    keys: list[tuple[str, ...]] = []
    for insp in ret.inspections:
        identity = insp.identity()
        if identity is None:
            keys.append(("file", ret.rel, insp.sheet))
            continue
        seen = contents.setdefault(identity, [])
        content = insp.content()
        if content not in seen:
            seen.append(content)
        nth = seen.index(content)
        keys.append(("inspection", *identity) if nth == 0 else ("inspection", *identity, str(nth)))
    return keys


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], df.to_dict("records"))


def _empty(columns: Sequence[str], dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=dtypes.get(c, "object")) for c in columns})


def _frame(
    rows: list[dict[str, Any]], columns: Sequence[str], dtypes: dict[str, str]
) -> pd.DataFrame:
    if not rows:
        return _empty(columns, dtypes)
    # object first, so None stays None in the columns left as object (pandas would infer str)
    df = pd.DataFrame(rows, columns=list(columns), dtype=object)
    return df.astype({c: t for c, t in dtypes.items() if c in df.columns})


def _str_cols(*names: str) -> dict[str, str]:
    return dict.fromkeys(names, "str")


# --- selection -------------------------------------------------------------------------------


@dataclass
class _Selection:
    """Which accepted returns count, and which returns (accepted, or rejected and then
    corrected) were superseded by which."""

    winners: dict[tuple[str, str, str], Return]  # (unit, period, form) -> return (附件4, ledger)
    checklists: dict[tuple[str, str, str], list[tuple[Return, Inspection]]]
    superseded: dict[str, str]  # rel -> rel of the return that replaced it
    # rel of a winner (附件4, ledger) -> the rejected returns received no earlier: perhaps a
    # correction sent back, so the winner's figures still count
    rejected_later: dict[str, list[str]] = field(default_factory=dict)
    # rel of a winner (附件4, ledger) -> the accepted returns received at the very same time,
    # which only the file names' order put behind it
    ties: dict[str, list[str]] = field(default_factory=dict)
    # rel -> rel of the earliest received file with the very same bytes: a copy (saved twice,
    # extracted beside its .zip, sent again unchanged) is not a return of its own
    copies: dict[str, str] = field(default_factory=dict)


def _select(accepted: Iterable[Return], rejected: Iterable[Return] = ()) -> _Selection:
    """The latest accepted return of each unit, period and form counts (for checklists: of each
    inspection). A rejected return received before it is superseded by it (the unit sent a
    corrected one); one received at the same time or after is remembered in `rejected_later`."""
    groups: dict[tuple[str, str, str], list[Return]] = {}
    for ret in accepted:
        assert ret.unit_name and ret.period and ret.form_id
        groups.setdefault((ret.unit_name, ret.period, ret.form_id), []).append(ret)
    winners: dict[tuple[str, str, str], Return] = {}
    checklists: dict[tuple[str, str, str], list[tuple[Return, Inspection]]] = {}
    superseded: dict[str, str] = {}
    ties: dict[str, list[str]] = {}
    # checklists: (unit, period, form) -> inspection -> the return whose sheet counts for it
    inspections: dict[tuple[str, str, str], dict[tuple[str, ...], Return]] = {}
    copies: dict[str, str] = {}
    # a return's place in the order "the latest received wins": its own receipt, or that of
    # the latest copy of it (the unit sent it again: "please use this one")
    rank: dict[str, tuple[dt.datetime, str]] = {}
    for key, rets in sorted(groups.items()):
        rets.sort(key=_receipt_key)
        first_of: dict[str, Return] = {}
        for ret in rets:
            original = first_of.setdefault(ret.sha256, ret) if ret.sha256 else ret
            if original is not ret:
                copies[ret.rel] = superseded[ret.rel] = original.rel
            rank[original.rel] = (_receipt_key(ret)[0], original.rel)
        rets = [r for r in rets if r.rel not in copies]
        rets.sort(key=lambda r: rank[r.rel])
        if key[2] in (PROGRESS_ID, LEDGER_ID):
            winners[key] = rets[-1]
            for old in rets[:-1]:
                superseded[old.rel] = rets[-1].rel
            last = rank[rets[-1].rel][0]
            tied = [r.rel for r in rets[:-1] if rank[r.rel][0] == last != dt.datetime.min]
            if tied:
                ties[rets[-1].rel] = tied
            continue
        # checklists: one file holds inspections; a later file repeating an inspection
        # (same subject and date) replaces it; a file left with none is superseded
        latest: dict[tuple[str, ...], tuple[Return, Inspection]] = {}
        for ret in rets:
            for insp, key_of in zip(ret.inspections, _inspection_keys(ret), strict=True):
                if key_of in latest and latest[key_of][0] is ret:
                    continue  # a sheet copied within the file: its first sheet stands
                latest[key_of] = (ret, insp)
        kept = sorted(latest.values(), key=lambda ri: (ri[0].rel, ri[1].sheet))
        checklists[key] = kept
        inspections[key] = {k: r for k, (r, _insp) in latest.items()}
        alive = {r.rel for r, _ in kept}
        for ret in rets:
            if ret.rel not in alive and ret.inspections:
                replaced_by = [
                    latest[k][0].rel for k in _inspection_keys(ret) if latest[k][0].rel != ret.rel
                ]
                superseded[ret.rel] = max(replaced_by)
    rejected_later: dict[str, list[str]] = {}
    for ret in sorted(rejected, key=lambda r: r.rel):
        if not (ret.unit_name and ret.period and ret.form_id):
            continue
        key = (ret.unit_name, ret.period, ret.form_id)
        if key[2] in (PROGRESS_ID, LEDGER_ID):
            winner = winners.get(key)
            if winner is None:
                continue
            # received strictly before the accepted one: corrected since. At the same time
            # (or after) it may be the correction itself: it stays outstanding, and flagged
            sent, won = receipt_time(ret), rank[winner.rel][0]
            if sent is not None and won != dt.datetime.min and sent < won:
                superseded[ret.rel] = winner.rel
            else:
                rejected_later.setdefault(winner.rel, []).append(ret.rel)
            continue
        # a rejected checklist file is superseded once every inspection it records counts
        # from a file received after it: the same inspection (subject and date), or, where
        # the rejected sheet has no usable date (often why it was rejected), the same subject.
        # A sheet with a date is matched by it: another inspection of the same site on
        # another day is not its correction
        counted = inspections.get(key, {})
        by_subject: dict[str, Return] = {}
        for k, r in counted.items():
            if k[0] == "inspection":
                by_subject.setdefault(k[1], r)
        later: list[Return | None] = []
        for insp, key_of in zip(ret.inspections, _inspection_keys(ret), strict=True):
            match = counted.get(key_of)
            subject = insp.subject_key()
            if match is None and key_of[0] == "file" and subject:  # no usable date: by subject
                match = by_subject.get(subject)
            later.append(match)
        when = receipt_time(ret)
        if (
            later
            and when is not None
            and all(r is not None and rank[r.rel][0] > when for r in later)
        ):
            superseded[ret.rel] = max(r.rel for r in later if r is not None)
    return _Selection(winners, checklists, superseded, rejected_later, ties, copies)


# --- the stage -------------------------------------------------------------------------------


def consolidate(
    returns: Sequence[Return],
    period: str | None = None,
    *,
    units: Sequence[Unit] | None = None,
    calendar: Calendar | None = None,
) -> Consolidation:
    """Merge validated returns into the model for `period` (default: the latest accepted 附件4).

    Raises NothingToConsolidate when no accepted 附件4 return exists at or before the period.
    """
    cal = calendar or load_calendar()
    form = progress_form()
    accepted = [
        r for r in returns if r.status == "accepted" and r.form_id and r.unit_name and r.period
    ]
    a4_periods = sorted({r.period for r in accepted if r.form_id == PROGRESS_ID and r.period})
    if period is None:
        if not a4_periods:
            raise NothingToConsolidate("no accepted 附件4 return")
        period = a4_periods[-1]
    usable = [p for p in a4_periods if p <= period]
    if not usable:
        raise NothingToConsolidate(f"no accepted 附件4 return at or before {period}")
    accepted = [r for r in accepted if r.period and r.period <= period]
    unit_list = _unit_list(units, accepted)
    periods = period_range(usable[0], period)

    sel = _select(accepted, _known(returns, "rejected", period))
    codes = {u.name: u.code for u in unit_list}
    progress = _progress_frame(sel, codes, form)
    figures = _figures_frame(sel, unit_list, periods, form)
    city_trend = _city_frame(figures, periods, form)
    now = city_trend[city_trend["period"] == period]
    city: dict[str, Decimal] = dict(zip(now["code"].map(str), now["value"], strict=True))
    ledger = _ledger_frame(sel, unit_list, period)
    checklist = _checklist_frame(sel, codes, period)
    submissions = _submissions_frame(returns, sel, unit_list, period, cal)

    result = Consolidation(
        period=period,
        periods=periods,
        units=tuple(unit_list),
        calendar=cal,
        progress=_progress_schema(form).validate(progress, lazy=True),
        figures=_figures_schema(form).validate(figures, lazy=True),
        city=city,
        city_trend=_city_schema(form).validate(city_trend, lazy=True),
        ledger=_ledger_schema().validate(ledger, lazy=True),
        checklist=_checklist_schema().validate(checklist, lazy=True),
        submissions=_submissions_schema().validate(submissions, lazy=True),
    )
    result.anomalies = find_anomalies(result, sel, returns)
    from pipeline.status import owners_by_path  # status builds on this module

    result.path_owners = dict(owners_by_path(returns, period))
    return result


def submissions_table(
    returns: Sequence[Return],
    period: str,
    *,
    units: Sequence[Unit] | None = None,
    calendar: Calendar | None = None,
) -> pd.DataFrame:
    """The submissions frame of `period` alone (SUBMISSIONS schema), also when no accepted
    附件4 exists yet: the same winner/superseded/late decisions as `consolidate`."""
    accepted = _known(returns, "accepted", period)
    sel = _select(accepted, _known(returns, "rejected", period))
    table = _submissions_frame(
        returns, sel, _unit_list(units, accepted), period, calendar or load_calendar()
    )
    return _submissions_schema().validate(table, lazy=True)


def replaced_rejections(returns: Sequence[Return]) -> dict[str, str]:
    """The rejected returns, of any period, that the unit has since replaced by an accepted
    correction (as consolidate decides it) -> the return that replaced each. For `validate`,
    which writes 退回修改 copies without consolidating: none for these, as consolidate does."""
    rejected = _known(returns, "rejected")
    if not rejected:
        return {}
    sel = _select(_known(returns, "accepted"), rejected)
    return {r.rel: sel.superseded[r.rel] for r in rejected if r.rel in sel.superseded}


def _known(returns: Sequence[Return], status: str, period: str | None = None) -> list[Return]:
    """The returns of `status` whose form, unit and period are known (of `period` or before)."""
    return [
        r
        for r in returns
        if r.status == status
        and r.form_id
        and r.unit_name
        and r.period
        and (period is None or r.period <= period)
    ]


def _unit_list(units: Sequence[Unit] | None, accepted: Sequence[Return]) -> list[Unit]:
    """The configured units in order, plus any unit an accepted return names that is not listed."""
    out = list(units if units is not None else load_units())
    known = {u.name for u in out}
    extra = {
        r.unit_name: (r.unit_code or "")
        for r in accepted
        if r.unit_name and r.unit_name not in known
    }
    out += [Unit(code=code, name=name) for code, name in sorted((c, n) for n, c in extra.items())]
    return out


def _progress_frame(sel: _Selection, codes: dict[str, str], form: ProgressForm) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for (unit, per, fid), ret in sorted(sel.winners.items()):
        if fid != PROGRESS_ID:
            continue
        for code in form.value_codes:
            sheet, cell = ret.progress_cells.get(code, ("", ""))
            rows.append(
                {
                    "unit": unit,
                    "unit_code": codes.get(unit, ret.unit_code or ""),
                    "period": per,
                    "code": code,
                    "value": ret.progress.get(code, ZERO),
                    "file": ret.rel,
                    "sheet": sheet,
                    "cell": cell,
                    "sha256": ret.sha256,
                }
            )
    cols = ["unit", "unit_code", "period", "code", "value", "file", "sheet", "cell", "sha256"]
    return _frame(
        rows,
        cols,
        _str_cols("unit", "unit_code", "period", "code", "file", "sheet", "cell", "sha256"),
    )


def _last_return(sel: _Selection, unit: str, form_id: str, at_or_before: str) -> Return | None:
    """The winning return of the latest period ≤ `at_or_before` for the unit and form."""
    best: Return | None = None
    for (u, per, fid), ret in sel.winners.items():
        if (
            u == unit
            and fid == form_id
            and per <= at_or_before
            and (best is None or per > (best.period or ""))
        ):
            best = ret
    return best


FIGURE_COLUMNS = [
    "period",
    "unit",
    "unit_code",
    "code",
    "value",
    "previous",
    "increment",
    "reported",
    "carried",
    "source_period",
    "file",
    "sheet",
    "cell",
    "sha256",
]


def _figures_frame(
    sel: _Selection, units: Sequence[Unit], periods: Sequence[str], form: ProgressForm
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for unit in units:
        previous: dict[str, Decimal] = dict.fromkeys(form.value_codes, ZERO)
        for per in periods:
            ret = _last_return(sel, unit.name, PROGRESS_ID, per)
            reported = ret is not None and ret.period == per
            for code in form.value_codes:
                value = ret.progress.get(code, ZERO) if ret is not None else ZERO
                sheet, cell = ret.progress_cells.get(code, ("", "")) if ret else ("", "")
                rows.append(
                    {
                        "period": per,
                        "unit": unit.name,
                        "unit_code": unit.code,
                        "code": code,
                        "value": value,
                        "previous": previous[code],
                        "increment": value - previous[code],
                        "reported": reported,
                        "carried": not reported,
                        "source_period": (ret.period or "") if ret is not None else "",
                        "file": ret.rel if ret is not None else "",
                        "sheet": sheet,
                        "cell": cell,
                        "sha256": ret.sha256 if ret is not None else "",
                    }
                )
                previous[code] = value
    dtypes = _str_cols(
        "period", "unit", "unit_code", "code", "source_period", "file", "sheet", "cell", "sha256"
    )
    dtypes.update(reported="bool", carried="bool")
    return _frame(rows, FIGURE_COLUMNS, dtypes)


def _city_frame(figures: pd.DataFrame, periods: Sequence[str], form: ProgressForm) -> pd.DataFrame:
    totals: dict[tuple[str, str], Decimal] = {
        (p, c): ZERO for p in periods for c in form.value_codes
    }
    for per, code, value in zip(figures["period"], figures["code"], figures["value"], strict=True):
        totals[(per, code)] += value
    rows = [{"period": p, "code": c, "value": v} for (p, c), v in totals.items()]
    return _frame(rows, ["period", "code", "value"], _str_cols("period", "code"))


def _plain_values(series: pd.Series) -> list[Any]:
    """A ledger column as plain Python values: None for blanks, dates for timestamps."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return [None if pd.isna(v) else v.date() for v in series]
    return cast(list[Any], series.tolist())


def _none_for_missing(values: list[Any]) -> pd.Series:
    """An object column with None where pandas sees a missing value (NaN, NaT, pd.NA)."""
    series = pd.Series(values, dtype=object)
    missing = series.isna()
    if missing.any():  # the reader's columns hold None already: nothing to convert
        series = series.astype(object).where(~missing, None)
    return series


def _ledger_columns(rets: Sequence[Return]) -> dict[str, list[Any]]:
    """The rows of these ledger returns, one after another, as plain column lists: every
    ledger column (None for blanks), _sheet and _row. Column-wise, so a province's 200,000
    rows cost one pass per column rather than per return and column."""
    keys = [c.key for c in ledger_form().columns]
    columns: dict[str, list[Any]] = {key: [] for key in [*keys, "_sheet", "_row"]}
    for ret in rets:
        if ret.ledger is None or ret.ledger.empty:
            continue
        # without the reader's attrs (its cell map), which pandas deep-copies on every access
        src = pd.DataFrame(ret.ledger, copy=False)
        src.attrs = {}
        n = len(src)
        for key in keys:
            columns[key] += _plain_values(src[key]) if key in src.columns else [None] * n
        columns["_sheet"] += _plain_values(src["_sheet"]) if "_sheet" in src.columns else [""] * n
        if "_row" in src.columns:
            rows = pd.to_numeric(src["_row"], errors="coerce").fillna(0).astype("int64")
            columns["_row"] += rows.tolist()
        else:
            columns["_row"] += [0] * n
    sheets = _none_for_missing(columns["_sheet"]).tolist()
    columns["_sheet"] = ["" if v is None else str(v) for v in sheets]
    return columns


def _ledger_table(columns: dict[str, list[Any]]) -> pd.DataFrame:
    data: dict[str, pd.Series] = {
        key: _none_for_missing(values) for key, values in columns.items() if key not in LEDGER_META
    }
    data["_sheet"] = pd.Series(columns["_sheet"], dtype="str")
    data["_row"] = pd.Series(columns["_row"], dtype="int64")
    return pd.DataFrame(data)


def _ledger_records(ret: Return) -> list[dict[str, Any]]:
    """One ledger return's rows as dicts: every ledger column (None for blanks), _sheet and
    _row; the rows _ledger_table would hold, without building a frame (a city's month-on-month
    comparison reads two ledgers per unit and period)."""
    columns = _ledger_columns([ret])
    for key, values in columns.items():
        if key not in LEDGER_META:
            columns[key] = _none_for_missing(values).tolist()
    keys = list(columns)
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _ledger_frame(sel: _Selection, units: Sequence[Unit], period: str) -> pd.DataFrame:
    keys = [c.key for c in ledger_form().columns]
    end = period_end(period)
    cols = [*LEDGER_META, "overdue", *keys]
    rets: list[Return] = []
    meta: dict[str, list[Any]] = {key: [] for key in LEDGER_META if key not in ("_sheet", "_row")}
    for unit in units:
        ret = _last_return(sel, unit.name, LEDGER_ID, period)
        if ret is None or ret.ledger is None or ret.ledger.empty:
            continue
        rets.append(ret)
        n = len(ret.ledger)
        meta["unit"] += [unit.name] * n
        meta["unit_code"] += [unit.code] * n
        meta["ledger_period"] += [ret.period or ""] * n
        meta["carried"] += [ret.period != period] * n
        meta["file"] += [ret.rel] * n
        meta["sha256"] += [ret.sha256] * n
    if not rets:
        dtypes = _str_cols("unit", "unit_code", "ledger_period", "file", "sha256", "_sheet")
        dtypes.update(carried="bool", overdue="bool", _row="int64")
        return _empty(cols, dtypes)
    columns = _ledger_columns(rets)
    overdue = [
        status == "整改中" and isinstance(deadline, dt.date) and deadline < end
        for status, deadline in zip(columns["status"], columns["deadline"], strict=True)
    ]
    table = _ledger_table(columns)
    for key, values in meta.items():
        table[key] = pd.Series(values, dtype="bool" if key == "carried" else "str")
    table["overdue"] = pd.Series(overdue, dtype="bool")
    return table[cols]


CHECKLIST_COLUMNS = [
    "unit",
    "unit_code",
    "period",
    "form",
    "file",
    "sheet",
    "subject",
    "inspection_date",
    "item",
    "answer",
    "hazard",
    "major",
    "cell",
]


def _checklist_frame(sel: _Selection, codes: dict[str, str], period: str) -> pd.DataFrame:
    forms = {f.id: f for f in checklist_forms()}
    # built column by column: a province has some 150,000 answered items
    cols: dict[str, list[Any]] = {c: [] for c in CHECKLIST_COLUMNS}
    for (unit, per, fid), kept in sorted(sel.checklists.items()):
        if per != period or fid not in forms:
            continue
        cform: ChecklistForm = forms[fid]
        items: dict[int, ChecklistItem] = {}
        for item in cform.items:
            items.setdefault(item.no, item)  # as ChecklistForm.item: the first of a number
        code = codes.get(unit, "")
        for ret, insp in kept:
            date = insp.footer.get("inspection_date")
            date = date if isinstance(date, dt.date) else None
            subject = insp.subject()
            numbers = [no for no in sorted(insp.answers) if no in items]
            n = len(numbers)
            for no in numbers:
                answer = insp.answers[no]
                hazard = answer == items[no].hazard_answer
                details = insp.details.get(no) or {}
                # a form without 是否重大隐患 records hazards under 重大隐患描述: every one is major
                major = details.get("major") == "是" if cform.has_major_column else True
                cols["item"].append(no)
                cols["answer"].append(answer)
                cols["hazard"].append(hazard)
                cols["major"].append(bool(hazard and major))
                cols["cell"].append(insp.item_cells.get(no, ""))
            cols["unit"] += [unit] * n
            cols["unit_code"] += [code] * n
            cols["period"] += [per] * n
            cols["form"] += [fid] * n
            cols["file"] += [ret.rel] * n
            cols["sheet"] += [insp.sheet] * n
            cols["subject"] += [subject] * n
            cols["inspection_date"] += [date] * n
    dtypes = _str_cols(
        "unit", "unit_code", "period", "form", "file", "sheet", "subject", "answer", "cell"
    )
    dtypes.update(item="int64", hazard="bool", major="bool")
    if not cols["item"]:
        return _empty(CHECKLIST_COLUMNS, dtypes)
    df = pd.DataFrame({c: pd.Series(cols[c], dtype=object) for c in CHECKLIST_COLUMNS})
    return df.astype(dtypes)


SUBMISSION_COLUMNS = [
    "unit",
    "unit_code",
    "form",
    "period",
    "status",
    "late",
    "file",
    "received",
    "received_source",
    "mtime",
    "sha256",
    "issues",
    "superseded_by",
    "note",
]


def _submissions_frame(
    returns: Sequence[Return],
    sel: _Selection,
    units: Sequence[Unit],
    period: str,
    cal: Calendar,
) -> pd.DataFrame:
    """One row per file of the period (accepted, rejected, superseded), one per missing form."""
    order = {u.name: i for i, u in enumerate(units)}
    form_ids = list(load_forms())
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    by_rel = {r.rel: r for r in returns}
    for ret in returns:
        if ret.status == "ignored":
            continue
        if ret.period not in (period, None):
            continue
        if ret.status == "accepted" and not (ret.form_id and ret.unit_name and ret.period):
            continue
        unit_name = ret.unit_name or ""
        fid = ret.form_id or ""
        status: str = ret.status
        superseded_by = sel.superseded.get(ret.rel, "")
        if superseded_by:
            status = "superseded"
        late = is_late(ret, cal)
        if status == "rejected":
            first = ret.errors[0].message if ret.errors else ""
            note = first
        elif ret.rel in sel.copies:
            note = f"与 {superseded_by} 内容完全相同（重复的一份），只计一次"
            late = is_late(by_rel[superseded_by], cal)  # the bytes were in hand since then
        elif superseded_by and ret.status == "rejected":
            note = f"已被 {superseded_by} 替代{WAS_REJECTED}"
        elif superseded_by:
            note = f"已被 {superseded_by} 替代"
        else:
            note = ""
        rows.append(
            {
                "unit": unit_name,
                "unit_code": ret.unit_code or "",
                "form": fid if fid in form_ids else "",
                "period": ret.period or "",
                "status": status,
                "late": late,
                "file": ret.rel,
                "received": _stamp(receipt_time(ret)),
                "received_source": ret.received_source or "",
                "mtime": _stamp(ret.mtime),
                "sha256": ret.sha256,
                "issues": len(ret.issues),
                "superseded_by": superseded_by,
                "note": note,
            }
        )
        seen.add((unit_name, fid))
    for unit in units:
        for fid in form_ids:
            if (unit.name, fid) not in seen:
                rows.append(
                    {
                        "unit": unit.name,
                        "unit_code": unit.code,
                        "form": fid,
                        "period": period,
                        "status": "missing",
                        "late": False,
                        "file": "",
                        "received": "",
                        "received_source": "",
                        "mtime": "",
                        "sha256": "",
                        "issues": 0,
                        "superseded_by": "",
                        "note": "",
                    }
                )
    status_rank = {s: i for i, s in enumerate(SUBMISSION_STATUSES)}
    rows.sort(
        key=lambda r: (
            order.get(r["unit"], len(order)),
            r["unit"],
            form_ids.index(r["form"]) if r["form"] in form_ids else len(form_ids),
            status_rank[r["status"]],
            r["file"],
        )
    )
    dtypes = _str_cols(*(c for c in SUBMISSION_COLUMNS if c not in ("late", "issues")))
    dtypes.update(late="bool", issues="int64")
    return _frame(rows, SUBMISSION_COLUMNS, dtypes)


# --- anomalies -------------------------------------------------------------------------------


def _flag(
    code: str,
    unit: str,
    item: str = "",
    previous: Value = None,
    current: Value = None,
    *,
    file: str = "",
    sheet: str = "",
    cell: str = "",
    **fields: Any,
) -> Anomaly:
    shown_previous = fmt_decimal(previous) if isinstance(previous, Decimal) else previous
    shown_current = fmt_decimal(current) if isinstance(current, Decimal) else current
    issue = make_issue(
        code,
        file=file,
        sheet=sheet,
        cell=cell,
        value=shown_current,
        unit=unit,
        item=item,
        previous=shown_previous,
        current=shown_current,
        **fields,
    )
    return Anomaly(
        rule=code,
        severity=issue.severity,
        unit=unit,
        item=item,
        previous=previous,
        current=current,
        message=issue.message,
        file=file,
        sheet=sheet,
        cell=cell,
    )


def _modified_z(x: Decimal, sample: Sequence[Decimal]) -> tuple[float, Decimal, Decimal]:
    """(z, median, MAD): 0.6745·(x − median)/max(MAD, floor); robust to the outliers it seeks."""
    med = Decimal(median(sample))
    mad = Decimal(median([abs(s - med) for s in sample]))
    scale = max(mad, OUTLIER_MAD_FLOOR)
    return 0.6745 * float(x - med) / float(scale), med, mad


def find_anomalies(
    result: Consolidation, sel: _Selection, returns: Sequence[Return]
) -> list[Anomaly]:
    """Every anomaly flag of DESIGN §8 for the period, in a stable order."""
    form = progress_form()
    period = result.period
    label = period_label(period)
    prev_period = shift_period(period, -1)
    flags: list[Anomaly] = []
    labels = {v.code: form.item_of(v.code).label for v in form.values}
    fig = result.figures
    # period -> unit -> code -> row (value, increment, reported, file, sheet, cell)
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for rec in fig.to_dict("records"):
        by.setdefault(rec["period"], {}).setdefault(rec["unit"], {})[rec["code"]] = rec

    peer_increments = _peer_increments(result, by)
    rejected_files: dict[tuple[str, str], list[str]] = {}
    for ret in returns:
        if ret.status == "rejected" and ret.unit_name and ret.period == period and ret.form_id:
            rejected_files.setdefault((ret.unit_name, ret.form_id), []).append(ret.rel)

    def reason(unit: str, fid: str) -> str:
        files = sorted(rejected_files.get((unit, fid), []))
        return f"（报送的 {'、'.join(files)} 未通过校验，已退回）" if files else ""

    for unit in result.units:
        rows = by[period][unit.name]
        first = next(iter(rows.values()))
        # a unit without an accepted 附件4 for the period: carried forward
        if first["carried"] and first["source_period"]:
            flags.append(
                _flag(
                    "unit-not-reported",
                    unit.name,
                    previous=None,
                    current=None,
                    file=first["file"],
                    period_label=label,
                    reason=reason(unit.name, PROGRESS_ID),
                    source=f"{period_label(first['source_period'])}的累计数（{first['file']}）",
                )
            )
        elif first["carried"]:  # nothing to carry: the unit enters the city total as zeros
            flags.append(
                _flag(
                    "unit-never-reported",
                    unit.name,
                    period_label=label,
                    reason=reason(unit.name, PROGRESS_ID),
                )
            )
        ledger_ret = _last_return(sel, unit.name, LEDGER_ID, period)
        if ledger_ret is None or ledger_ret.period != period:
            source = (
                f"汇总沿用其{period_label(ledger_ret.period or '')}的台账（{ledger_ret.rel}）"
                if ledger_ret is not None
                else "此前也从未报送台账"
            )
            flags.append(
                _flag(
                    "ledger-not-reported",
                    unit.name,
                    file=ledger_ret.rel if ledger_ret is not None else "",
                    period_label=label,
                    reason=reason(unit.name, LEDGER_ID),
                    source=source,
                )
            )
        if first["carried"]:
            continue
        ret = sel.winners[(unit.name, period, PROGRESS_ID)]
        prev_ret = _last_return(sel, unit.name, PROGRESS_ID, prev_period)
        if prev_ret is not None:
            prev_label = period_label(prev_ret.period or "")
            # the month before, or the unit's last report before a month it skipped
            before_label = (
                f"上月（{prev_label}）"
                if prev_ret.period == prev_period
                else f"此前最近一次报送（{prev_label}，{period_label(prev_period)}未报送）"
            )
            for code in form.value_codes:
                rec = rows[code]
                if rec["value"] < rec["previous"]:
                    flags.append(
                        _flag(
                            "cumulative-decreased",
                            unit.name,
                            code,
                            rec["previous"],
                            rec["value"],
                            file=rec["file"],
                            sheet=rec["sheet"],
                            cell=rec["cell"],
                            label=labels[code],
                            before=before_label,
                        )
                    )
            values = [rows[c]["value"] for c in form.value_codes]
            before = [rows[c]["previous"] for c in form.value_codes]
            if values == before and any(v != 0 for v in values):
                sheet = next((s for s, _ in ret.progress_cells.values()), "")
                flags.append(
                    _flag(
                        "return-identical",
                        unit.name,
                        file=ret.rel,
                        sheet=sheet,
                        period_label=label,
                        prev_period_label=prev_label,
                        count=len(values),
                    )
                )
        flags += _outlier_flags(result, by, unit.name, labels, peer_increments)
        flags += _ledger_mismatch_flags(sel, unit.name, rows, ledger_ret, period, labels)
    flags += _ledger_flags(result, sel, reason)
    flags += _late_flags(result, sel)
    flags += _correction_rejected_flags(result, sel)
    flags += _receipt_tie_flags(result, sel)
    flags += _misfiled_flags(result, sel, returns)
    flags += _checklist_major_flags(result)
    return _sorted_flags(flags, result)


def _monthly_increments(
    by: dict[str, dict[str, dict[str, Any]]], periods: Sequence[str], unit: str, code: str
) -> dict[str, Decimal]:
    """The unit's increments for months it reported, where the month before was reported too
    (or was the campaign start), so a catch-up after a silent month does not count as one."""
    out: dict[str, Decimal] = {}
    for i, per in enumerate(periods):
        rec = by[per][unit][code]
        if not rec["reported"]:
            continue
        if i > 0 and not by[periods[i - 1]][unit][code]["reported"]:
            continue
        out[per] = rec["increment"]
    return out


def _peer_increments(
    result: Consolidation, by: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, dict[str, Decimal]]:
    """code -> unit -> this month's increment, for units that reported this and last month."""
    out: dict[str, dict[str, Decimal]] = {}
    for code in progress_form().value_codes:
        out[code] = {}
        for unit in result.units:
            incs = _monthly_increments(by, result.periods[-2:], unit.name, code)
            if result.period in incs:
                out[code][unit.name] = incs[result.period]
    return out


def _outlier_flags(
    result: Consolidation,
    by: dict[str, dict[str, dict[str, Any]]],
    unit: str,
    labels: dict[str, str],
    peer_increments: dict[str, dict[str, Decimal]],
) -> list[Anomaly]:
    period = result.period
    flags = []
    for code in progress_form().value_codes:
        own = _monthly_increments(by, result.periods, unit, code)
        if period not in own:
            continue
        x = own.pop(period)
        if x <= 0:
            continue
        history = [own[p] for p in sorted(own)]
        peers = [inc for other, inc in peer_increments[code].items() if other != unit]
        bases = []
        zs = []
        if len(history) >= OUTLIER_MIN_HISTORY:
            z, med, mad = _modified_z(x, history)
            zs.append(z)
            bases.append(
                f"本单位以往各月新增为 {'、'.join(fmt_decimal(h) for h in history)}"
                f"（中位数 {fmt_decimal(med)}，MAD {fmt_decimal(mad)}，z = {z:.1f}）"
            )
        if len(peers) >= OUTLIER_MIN_PEERS:
            z, med, mad = _modified_z(x, peers)
            zs.append(z)
            bases.append(
                f"同月其他 {len(peers)} 个单位新增的中位数为 {fmt_decimal(med)}"
                f"（MAD {fmt_decimal(mad)}，z = {z:.1f}）"
            )
        if zs and all(z > OUTLIER_Z for z in zs):
            rec = by[period][unit][code]
            # previous/current are last month's and this month's cumulative figures, as for
            # every flag on a 附件4 item (the cell holds the cumulative); the increment is
            # their difference, named in the message
            flags.append(
                _flag(
                    "increment-outlier",
                    unit,
                    code,
                    rec["previous"],
                    rec["value"],
                    file=rec["file"],
                    sheet=rec["sheet"],
                    cell=rec["cell"],
                    label=labels[code],
                    increment=fmt_decimal(x),
                    basis="；".join(bases),
                    floor=fmt_decimal(OUTLIER_MAD_FLOOR),
                    threshold=OUTLIER_Z,
                )
            )
    return flags


def ledger_counts(ledger: pd.DataFrame | None) -> dict[str, Decimal]:
    """附件4 A1–A6 as counted from one unit's ledger (see LEDGER_DEFINITIONS)."""
    if ledger is None or ledger.empty:
        return dict.fromkeys(LEDGER_DEFINITIONS, ZERO)
    ledger = pd.DataFrame(ledger, copy=False)
    ledger.attrs = {}  # the reader's cell map: pandas would deep-copy it for every comparison
    found = ledger["found_by"]
    rectified = ledger["status"].isin(RECTIFIED)
    supervised = ledger["supervised"] == "是"
    counts = {
        "A1": found == FOUND_SELF,
        "A2": (found == FOUND_SELF) & rectified,
        "A3": found == FOUND_DEPT,
        "A4": (found == FOUND_DEPT) & rectified,
        "A5": supervised,
        "A6": supervised & rectified,
    }
    return {code: Decimal(int(mask.sum())) for code, mask in counts.items()}


def _ledger_mismatch_flags(
    sel: _Selection,
    unit: str,
    rows: dict[str, dict[str, Any]],
    ledger_ret: Return | None,
    period: str,
    labels: dict[str, str],
) -> list[Anomaly]:
    """Compared only when both the 附件4 and the ledger of the period were reported."""
    if ledger_ret is None or ledger_ret.period != period:
        return []
    derived = ledger_counts(ledger_ret.ledger)
    flags = []
    for code, expected in derived.items():
        rec = rows[code]
        if rec["value"] != expected:
            flags.append(
                _flag(
                    "ledger-mismatch",
                    unit,
                    code,
                    expected,
                    rec["value"],
                    file=rec["file"],
                    sheet=rec["sheet"],
                    cell=rec["cell"],
                    label=labels[code],
                    ledger_file=ledger_ret.rel,
                    definition=LEDGER_DEFINITIONS[code],
                )
            )
    return flags


def _ledger_cell(key: str, row: int, ret: Return | None = None) -> str:
    """The A1 cell of a ledger column in a row of `ret`'s sheet: where the reader found the
    column (a clerk may have inserted one before it), else where the template has it."""
    if not row:
        return ""
    found = (
        ret.ledger.attrs.get("columns", {}) if ret is not None and ret.ledger is not None else {}
    )
    col = found.get(key)
    return f"{col_letter(col if col is not None else LedgerLayout(ledger_form()).col(key))}{row}"


def _ledger_flags(
    result: Consolidation, sel: _Selection, reason: Callable[[str, str], str]
) -> list[Anomaly]:
    """Overdue hazards in the merged ledger; rows vanished or gone backwards since last month.

    A hazard is overdue as a fact only in a ledger of the period itself. Where a unit sent no
    ledger this period, its carried-forward ledger only shows last month's status: deadlines
    passed since are folded into one info flag per unit, asking the city to check them.
    """
    period = result.period
    end = period_end(period)
    flags = []
    overdue = result.ledger[result.ledger["overdue"]]
    carried = overdue[overdue["carried"]]
    for rec in overdue[~overdue["carried"]].to_dict("records"):
        deadline: dt.date = rec["deadline"]
        ret = sel.winners.get((rec["unit"], period, LEDGER_ID))
        flags.append(
            _flag(
                "ledger-overdue",
                rec["unit"],
                str(rec["hazard_id"]),
                deadline.isoformat(),
                rec["status"],
                file=rec["file"],
                sheet=rec["_sheet"],
                cell=_ledger_cell("deadline", rec["_row"], ret),
                hazard_id=rec["hazard_id"],
                enterprise=rec.get("enterprise") or "",
                deadline=deadline.isoformat(),
                period_end=end.isoformat(),
                status=rec["status"],
                days=(end - deadline).days,
            )
        )
    flags += _unconfirmed_overdue_flags(carried, sel, period, reason)
    for unit in result.units:
        current = sel.winners.get((unit.name, period, LEDGER_ID))
        if current is None:
            continue
        before = _last_return(sel, unit.name, LEDGER_ID, shift_period(period, -1))
        if before is None:
            continue
        # the same hazard whatever the width or spacing its number is typed in this month (as
        # the duplicate check within a ledger compares them)
        now_rows = {
            fold(str(r["hazard_id"])): r for r in _ledger_records(current) if r["hazard_id"]
        }
        labels = {
            "period_label": period_label(period),
            "prev_period_label": period_label(before.period or ""),
        }
        for old in _ledger_records(before):
            hid = str(old["hazard_id"] or "")
            if not hid:
                continue
            new = now_rows.get(fold(hid))
            if new is None:
                flags.append(
                    _flag(
                        "ledger-row-vanished",
                        unit.name,
                        hid,
                        old.get("status"),
                        None,
                        file=before.rel,
                        sheet=old["_sheet"],
                        cell=_ledger_cell("hazard_id", old["_row"], before),
                        hazard_id=hid,
                        enterprise=old.get("enterprise") or "",
                        **labels,
                    )
                )
                continue
            was, now = old.get("status"), new.get("status")
            if STATUS_RANK.get(now or "", 99) < STATUS_RANK.get(was or "", -1):
                flags.append(
                    _flag(
                        "ledger-status-regressed",
                        unit.name,
                        hid,
                        was,
                        now,
                        file=current.rel,
                        sheet=new["_sheet"],
                        cell=_ledger_cell("status", new["_row"], current),
                        hazard_id=hid,
                        enterprise=new.get("enterprise") or "",
                        **labels,
                    )
                )
    return flags


UNCONFIRMED_SHOWN = 5  # hazards named in one ledger-overdue-unconfirmed message


def _unconfirmed_overdue_flags(
    carried: pd.DataFrame, sel: _Selection, period: str, reason: Callable[[str, str], str]
) -> list[Anomaly]:
    """One flag per unit whose carried-forward ledger has deadlines passed by the period end."""
    end = period_end(period)
    flags = []
    for unit, rows in carried.groupby("unit", sort=False):
        recs = sorted(_records(rows), key=lambda r: (r["deadline"], int(r["_row"])))
        shown = "、".join(
            f"{r['hazard_id']}（{r.get('enterprise') or '企业名称未填'}，期限 "
            f"{r['deadline'].isoformat()}）"
            for r in recs[:UNCONFIRMED_SHOWN]
        )
        if len(recs) > UNCONFIRMED_SHOWN:
            shown += "等"
        first = recs[0]
        flags.append(
            _flag(
                "ledger-overdue-unconfirmed",
                str(unit),
                previous=None,
                current=Decimal(len(recs)),
                file=first["file"],
                sheet=first["_sheet"],
                cell=_ledger_cell(
                    "deadline", first["_row"], _last_return(sel, str(unit), LEDGER_ID, period)
                ),
                ledger_period_label=period_label(first["ledger_period"]),
                period_label=period_label(period),
                reason=reason(str(unit), LEDGER_ID),
                ledger_file=first["file"],
                count=len(recs),
                period_end=end.isoformat(),
                hazards=shown,
            )
        )
    return flags


def _late_flags(result: Consolidation, sel: _Selection) -> list[Anomaly]:
    """Every return of the period that counts (not superseded) and arrived after the due day."""
    cal = result.calendar
    period = result.period
    forms = load_forms()
    counted: list[Return] = [r for (_, p, _), r in sel.winners.items() if p == period]
    for (_, p, _), kept in sel.checklists.items():
        if p == period:
            counted += list({r.rel: r for r, _ in kept}.values())
    flags = []
    for ret in sorted(counted, key=lambda r: r.rel):
        if not is_late(ret, cal):
            continue
        received = receipt_time(ret)
        flags.append(
            _flag(
                "return-late",
                ret.unit_name or "",
                previous=cal.due_date(period).isoformat(),
                current=_stamp(received),
                file=ret.rel,
                form_name=forms[ret.form_id or ""].short_name if ret.form_id in forms else "",
                period_label=period_label(period),
                due=cal.due_date(period).isoformat(),
                received=_stamp(received),
                received_source=received_source_name(ret.received_source),
            )
        )
    return flags


def _winner_flags(
    result: Consolidation,
    sel: _Selection,
    others_of: dict[str, list[str]],
    code: str,
    fields: Callable[[Return, list[str]], dict[str, Any]],
) -> list[Anomaly]:
    """A `code` flag for each 附件4 and ledger return of the period that counts and that
    `others_of` (rel -> other returns' rels) pairs with other returns; `fields` gives the
    message's own fields from the return and the others."""
    forms = load_forms()
    flags = []
    for (unit, per, fid), ret in sorted(sel.winners.items()):
        others = others_of.get(ret.rel)
        if per != result.period or not others:
            continue
        sheet = next((s for s, _ in ret.progress_cells.values()), "") if fid == PROGRESS_ID else ""
        flags.append(
            _flag(
                code,
                unit,
                file=ret.rel,
                sheet=sheet,
                form_name=forms[fid].short_name,
                period_label=period_label(per),
                **fields(ret, sorted(others)),
            )
        )
    return flags


def _correction_rejected_flags(result: Consolidation, sel: _Selection) -> list[Anomaly]:
    """附件4 and ledger returns of the period that count although one of the same unit and form
    received no earlier was rejected: the unit's correction was sent back, these figures stay."""
    return _winner_flags(
        result,
        sel,
        sel.rejected_later,
        "return-correction-rejected",
        lambda _ret, later: {"rejected": "”“".join(later)},
    )


def _receipt_tie_flags(result: Consolidation, sel: _Selection) -> list[Anomaly]:
    """附件4 and ledger returns of the period chosen over others received at the same time:
    only the order of the file names decided which counts."""
    return _winner_flags(
        result,
        sel,
        sel.ties,
        "return-receipt-tie",
        lambda ret, tied: {
            "count": len(tied) + 1,
            "received": _stamp(receipt_time(ret)),
            "received_source": received_source_name(ret.received_source),
            "others": "”“".join(tied),
        },
    )


def _misfiled_flags(
    result: Consolidation, sel: _Selection, returns: Sequence[Return]
) -> list[Anomaly]:
    """附件4 and ledger returns whose file name (or folder) names another period or unit than
    their template: in the report of the period they were filed under, and (for a period) in
    that of the period their name says, where the unit shows as not reported."""
    period = result.period
    forms = load_forms()
    unit_names = load_units()  # with their aliases
    replaced: dict[str, list[str]] = {}
    for old, new in sel.superseded.items():
        replaced.setdefault(new, []).append(old)
    flags = []
    for ret in sorted(returns, key=lambda r: r.rel):
        if (
            ret.status != "accepted"
            or ret.rel in sel.superseded  # replaced by a later return: it counts for nothing
            or ret.form_id not in (PROGRESS_ID, LEDGER_ID)
            or not ret.period
            or not ret.unit_name
        ):
            continue
        named_periods, named_units, where = claims(ret.rel, unit_names, int(ret.period[:4]))
        olds = sorted(replaced.get(ret.rel, []))
        fields = {
            "file": ret.rel,
            "form_name": forms[ret.form_id].short_name,
            "period_label": period_label(ret.period),
            "replaced": f"，并替代了先收到的“{'”“'.join(olds)}”" if olds else "",
        }
        wrong_period = bool(named_periods) and ret.period not in named_periods
        if wrong_period and (period == ret.period or period in named_periods):
            named = "、".join(period_label(p) for p in sorted(named_periods))
            actual = period_label(ret.period)
            flags.append(
                _flag(
                    "return-name-period-mismatch",
                    ret.unit_name,
                    previous=named,
                    current=actual,
                    named=named,
                    actual=actual,
                    **fields,
                )
            )
        if named_units and ret.unit_name not in named_units and period == ret.period:
            order = [u.name for u in unit_names]
            named = "、".join(sorted(named_units, key=order.index))
            flags.append(
                _flag(
                    "return-name-unit-mismatch",
                    ret.unit_name,
                    previous=named,
                    current=ret.unit_name,
                    named=named,
                    where=where,
                    **fields,
                )
            )
    return flags


def checklist_major_definition() -> str:
    """How major hazards are counted on each checklist form, from the form definitions."""
    with_column = [f.annex for f in checklist_forms() if f.has_major_column]
    by_label: dict[str, list[str]] = {}
    for f in checklist_forms():
        if not f.has_major_column:
            by_label.setdefault(f.description_label, []).append(f.annex)
    parts = []
    if with_column:
        parts.append(f"{'、'.join(with_column)}计“是否重大隐患”勾选“是”的隐患")
    for label, annexes in by_label.items():
        parts.append(
            f"{'、'.join(annexes)}没有“是否重大隐患”栏，其隐患栏为“{label}”，所记隐患均计为重大隐患"
        )
    return "；".join(parts)


def _checklist_major_flags(result: Consolidation) -> list[Anomaly]:
    """Department checklists with more major hazards than the month's 部门检查 ledger rows.

    Major hazards are counted per form as checklist_major_definition() says: 附件2 by its
    是否重大隐患 column, 附件1 and 附件3 (no such column; their hazards are recorded as
    重大隐患描述) every hazard.
    """
    period = result.period
    start = period_end(shift_period(period, -1)) + dt.timedelta(days=1)
    end = period_end(period)
    chk = result.checklist
    majors = chk[chk["major"]]
    if majors.empty:
        return []
    annex = {f.id: f.annex for f in checklist_forms()}
    form_order = list(annex)
    led = result.ledger
    in_month = led["found_date"].map(lambda d: isinstance(d, dt.date) and start <= d <= end)
    dept = led[(led["found_by"] == FOUND_DEPT) & in_month.astype(bool)]
    dept_rows = dept.groupby("unit").size().to_dict()
    by_unit = dict(tuple(majors.groupby("unit", sort=False)))
    definition = checklist_major_definition()
    flags = []
    for unit in result.units:
        mine = by_unit.get(unit.name)
        if mine is None:
            continue
        count = int(dept_rows.get(unit.name, 0))
        if len(mine) > count:
            files = sorted(set(mine["file"]))
            shown = "、".join(files[:3]) + (f" 等 {len(files)} 个文件" if len(files) > 3 else "")
            per_form = mine["form"].value_counts().to_dict()
            breakdown = "、".join(
                f"{annex[f]} {per_form[f]} 项" for f in form_order if per_form.get(f)
            )
            flags.append(
                _flag(
                    "checklist-major-exceeds-ledger",
                    unit.name,
                    previous=Decimal(count),
                    current=Decimal(len(mine)),
                    file=files[0],
                    sheet=str(mine["sheet"].iloc[0]),
                    cell=str(mine["cell"].iloc[0]),
                    period_label=period_label(period),
                    files=shown,
                    breakdown=breakdown,
                    definition=definition,
                )
            )
    return flags


def _sorted_flags(flags: list[Anomaly], result: Consolidation) -> list[Anomaly]:
    rule_order = {code: i for i, code in enumerate(CATALOGUE)}
    codes = progress_form().value_codes
    return sorted(
        flags,
        key=lambda a: (
            SEVERITY_ORDER[a.severity],
            rule_order.get(a.rule, len(rule_order)),
            result.unit_order(a.unit),
            a.unit,
            codes.index(a.item) if a.item in codes else len(codes),
            a.item,
            a.file,
            a.cell,
        ),
    )
