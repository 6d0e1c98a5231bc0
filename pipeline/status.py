"""Reporting status for one period: who has reported each form, what is late, rejected or missing.

The submissions themselves (which return wins, which is superseded, which is late) are decided
by `pipeline.consolidate`; this module only arranges its submissions table per unit and form,
adds the days left to the period's deadline and the campaign's coming deadlines, and renders the
result on screen (rich), as JSON, as a tidy frame and as a sheet of the output workbook.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from pipeline import forms as forms_mod
from pipeline.filenames import claims, forms_named, periods_in_path
from pipeline.forms import (
    Calendar,
    Form,
    Unit,
    load_calendar,
    load_forms,
    load_units,
    period_label,
)

if TYPE_CHECKING:
    from rich.console import Console
    from xlsxwriter.workbook import Workbook
    from xlsxwriter.worksheet import Worksheet

    from pipeline.model import Return

SubmissionStatus = Literal["accepted", "rejected", "missing", "superseded"]
CellStatus = Literal["accepted", "rejected", "missing", "none"]

STATUS_LABELS: dict[str, str] = {
    "accepted": "已接收",
    "rejected": "退回修改",
    "missing": "未报送",
    "superseded": "已被替代",
    "none": "无",
}
SHEET_NAME = "报送进度"
# Forms every unit owes every period (附件4 "每月…上报", the ledger "每月…报告"). Checklists are
# filed per inspection: none in a month is a fact to show, not a form to chase.
MONTHLY_KINDS = ("progress", "ledger")
# Rejections the city, not the unit, has to act on (an archive to extract, a file it cannot
# open): such a file is not put down to a unit by its path, nor sent back to one
CITY_SIDE_RULES = frozenset(
    {
        "archive-unsupported",
        "archive-unreadable",
        "archive-member-encrypted",
        "archive-member-unsupported",
        "archive-nested",
        "file-unreadable-os",
    }
)


def _schemas_dir(schemas_dir: Path | None) -> Path:
    # resolved at call time so a test (or a deployment) can point forms.SCHEMAS_DIR elsewhere
    return schemas_dir if schemas_dir is not None else forms_mod.SCHEMAS_DIR


def form_heading(form: Form) -> str:
    """Column heading of a form: '附件1 燃气检查清单', '重大事故隐患台账'."""
    return f"{form.annex} {form.short_name}" if form.annex.startswith("附件") else form.short_name


# --- the submissions table, as consolidate documents it --------------------------------------


@dataclass(frozen=True)
class Submission:
    """One row of consolidate's submissions table (DESIGN §10 `submissions`)."""

    unit: str  # unit name, as in units.csv
    form: str  # form id
    status: SubmissionStatus
    late: bool = False
    file: str = ""
    received: dt.datetime | None = None
    issues: int = 0
    # a rejected return whose unit could not be read, put down to the unit its path names (see
    # owners_by_path): that unit, the form its file name names ("" for none or several, or when
    # `form` is known) and where the path names the unit ("文件名", "所在文件夹“鼓楼区”")
    path_unit: str = ""
    path_form: str = ""
    path_where: str = ""

    @property
    def owner(self) -> str:
        """The unit the return is counted for: as identified, else as its path names it."""
        return self.unit or self.path_unit

    @property
    def owner_form(self) -> str:
        return self.form or self.path_form


def _get(row: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(row, Mapping):
            if name in row and not _is_na(row[name]):
                return row[name]
        elif hasattr(row, name) and not _is_na(getattr(row, name)):
            return getattr(row, name)
    return default


def _is_na(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or _is_na(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def submissions_from(table: Any) -> list[Submission]:
    """consolidate's submissions table (a DataFrame, or records) -> Submission objects."""
    if isinstance(table, pd.DataFrame):
        rows: Iterable[Any] = table.to_dict("records")
    else:
        rows = table or ()
    out = []
    for row in rows:
        status = str(_get(row, "status", default="missing"))
        issues = _get(row, "issues", "n_issues", "issue_count", default=0)
        if isinstance(issues, list | tuple):
            issues = len(issues)
        out.append(
            Submission(
                unit=str(_get(row, "unit", "unit_name", default="")),
                form=str(_get(row, "form", "form_id", default="")),
                status=status,  # type: ignore[arg-type]
                late=bool(_get(row, "late", default=False)),
                file=str(_get(row, "file", "rel", default="") or ""),
                received=_as_datetime(_get(row, "received", "received_at")),
                issues=int(issues or 0),
            )
        )
    return out


# --- rejected files of no identified unit, put down to a unit by their path ------------------


@dataclass(frozen=True)
class PathOwner:
    """The unit (and form) a rejected return's path names."""

    unit: str
    form: str  # form id; "" when the file name names no form, or several
    where: str  # "文件名" or "所在文件夹“鼓楼区”"


def owners_by_path(
    returns: Iterable[Return], period: str, *, schemas_dir: Path | None = None
) -> dict[str, PathOwner]:
    """For each rejected return of `period` (or of no known period) whose unit could not be
    read — a PDF or a photo saved as .xlsx, an empty file, a unit name typed wrong — the unit
    its path names (pipeline.filenames.claims: the file name, else the nearest folder naming
    one), keyed by Return.rel. Only where the path names exactly one known unit, and, when the
    return's own period is unknown, the path names `period` (the file name, else the nearest
    folder naming one); and not an export (file-not-workbook) of a form the unit has had
    accepted. The form is the return's own, else the one its file name
    names. A rejection the city has to act on (CITY_SIDE_RULES) is put down to nobody."""
    sd = _schemas_dir(schemas_dir)
    names = load_units(sd)  # with their aliases
    words = tuple(
        (f.id, (f.annex, f.title, f.short_name, f.sheet_name)) for f in load_forms(sd).values()
    )
    year = int(period[:4])
    returns = list(returns)
    accepted = {
        (r.unit_name, r.form_id) for r in returns if r.status == "accepted" and r.period == period
    }
    found: dict[str, PathOwner] = {}
    for ret in returns:
        if ret.status != "rejected" or ret.unit_name or ret.period not in (None, period):
            continue
        if any(i.rule in CITY_SIDE_RULES for i in ret.errors):
            continue
        _periods, units, where = claims(ret.rel, names, year)
        if len(units) != 1:
            continue
        # a file of no known period counts for this one only when its path says so: else it
        # would be chased in every period's reminders
        if ret.period is None and period not in periods_in_path(ret.rel, year):
            continue
        form = ret.form_id or ""
        if not form:
            named = forms_named(PurePosixPath(ret.rel).stem, words)
            form = next(iter(named)) if len(named) == 1 else ""
        unit = next(iter(units))
        exported = any(i.rule == "file-not-workbook" for i in ret.errors)
        if exported and (unit, form) in accepted:
            continue  # an export (a CSV beside the workbook): the workbook has been accepted
        found[ret.rel] = PathOwner(unit, form, where)
    return found


def _place_by_path(
    submissions: Sequence[Submission], by_path: Mapping[str, PathOwner], forms: Mapping[str, Form]
) -> list[Submission]:
    """The submissions with each rejected file of no unit put down to the unit its path names.
    As consolidate does for a return it identified, one received before the accepted return of
    the same unit and monthly form counts as superseded: the unit has sent a good one since."""
    placed = []
    for sub in submissions:
        owner = by_path.get(sub.file) if sub.status == "rejected" and not sub.unit else None
        if owner is not None:
            sub = replace(
                sub,
                path_unit=owner.unit,
                path_form="" if sub.form else owner.form,
                path_where=owner.where,
            )
        placed.append(sub)
    accepted: dict[tuple[str, str], list[dt.datetime | None]] = {}
    for sub in placed:
        if sub.status == "accepted":
            accepted.setdefault((sub.unit, sub.form), []).append(sub.received)
    out = []
    for sub in placed:
        form = forms.get(sub.owner_form)
        if sub.path_unit and sub.received is not None and form and form.kind in MONTHLY_KINDS:
            later = [t for t in accepted.get((sub.owner, form.id), []) if t is not None]
            if later and max(later) > sub.received:
                sub = replace(sub, status="superseded")
        out.append(sub)
    return out


# --- the status of one period ----------------------------------------------------------------


@dataclass(frozen=True)
class UnitFormStatus:
    """One unit × form: the current (non-superseded) returns and what they amount to."""

    unit: Unit
    form: Form
    status: CellStatus
    accepted: int = 0
    rejected: int = 0
    superseded: int = 0
    late: bool = False
    files: tuple[str, ...] = ()
    required: bool = False  # owed every period (MONTHLY_KINDS): missing it is chased


@dataclass(frozen=True)
class UpcomingDeadline:
    date: dt.date
    what: str
    days_left: int


@dataclass
class StatusReport:
    """Reporting status of `period` as seen on `today`."""

    period: str
    today: dt.date
    due: dt.date
    units: tuple[Unit, ...]
    forms: tuple[Form, ...]
    cells: dict[tuple[str, str], UnitFormStatus]  # (unit code, form id) -> status
    submissions: list[Submission] = field(default_factory=list)
    deadlines: list[UpcomingDeadline] = field(default_factory=list)
    unknown_units: tuple[str, ...] = ()  # unit names in the table that units.csv lacks

    def by_path(self, unit: Unit | None = None) -> list[Submission]:
        """The rejected files of no identified unit put down (to `unit`) by their path."""
        return [
            s
            for s in self.submissions
            if s.status == "rejected" and s.path_unit and (unit is None or s.path_unit == unit.name)
        ]

    def unplaced(self, unit: Unit) -> list[Submission]:
        """The unit's rejected files (by their path) of no known form: in no cell of the board."""
        return [s for s in self.by_path(unit) if not s.owner_form]

    @property
    def days_left(self) -> int:
        """Days to the deadline, inclusive: 0 on the due day itself, negative once overdue."""
        return (self.due - self.today).days

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    def cell(self, unit: Unit, form_id: str) -> UnitFormStatus:
        return self.cells[(unit.code, form_id)]

    def unit_complete(self, unit: Unit) -> bool:
        """Every monthly form accepted and nothing rejected."""
        cells = [self.cells[(unit.code, f.id)] for f in self.forms]
        return all(
            c.status != "rejected" and (c.status == "accepted" or not c.required) for c in cells
        )

    def count(self, status: CellStatus) -> int:
        """Unit × form cells in `status`; missing counts only the monthly forms."""
        return sum(
            1
            for c in self.cells.values()
            if c.status == status and (c.required or status != "missing")
        )

    def late_count(self) -> int:
        return sum(1 for c in self.cells.values() if c.late)


def days_left(due: dt.date, today: dt.date) -> int:
    """(due - today) in days: the due day itself is 0 (on time), the day after is -1."""
    return (due - today).days


def upcoming_deadlines(calendar: Calendar, today: dt.date) -> list[UpcomingDeadline]:
    """The campaign's dated deadlines (calendar.toml) from `today` on, soonest first."""
    return [
        UpcomingDeadline(d.date, d.what, days_left(d.date, today))
        for d in sorted(calendar.deadlines, key=lambda d: d.date)
        if d.date >= today
    ]


def status_from_submissions(
    submissions: Sequence[Submission],
    period: str,
    *,
    today: dt.date,
    schemas_dir: Path | None = None,
    by_path: Mapping[str, PathOwner] | None = None,
) -> StatusReport:
    """Arrange a submissions table per unit (units.csv order) and form (FORM_IDS order).
    `by_path` (owners_by_path): rejected files of no identified unit, counted for the unit
    (and form) their path names."""
    sd = _schemas_dir(schemas_dir)
    calendar = load_calendar(sd)
    units = load_units(sd)
    forms = tuple(load_forms(sd).values())
    if by_path:
        submissions = _place_by_path(submissions, by_path, {f.id: f for f in forms})
    by_name = {u.name: u for u in units}
    grouped: dict[tuple[str, str], list[Submission]] = {}
    unknown: list[str] = []
    for sub in submissions:
        unit = by_name.get(sub.owner)
        if unit is None:
            if sub.unit and sub.unit not in unknown:
                unknown.append(sub.unit)
            continue
        grouped.setdefault((unit.code, sub.owner_form), []).append(sub)
    cells: dict[tuple[str, str], UnitFormStatus] = {}
    for unit in units:
        for form in forms:
            subs = grouped.get((unit.code, form.id), [])
            current = [s for s in subs if s.status in ("accepted", "rejected")]
            n_acc = sum(1 for s in current if s.status == "accepted")
            n_rej = sum(1 for s in current if s.status == "rejected")
            missing = any(s.status == "missing" for s in subs)
            status: CellStatus
            if n_rej:
                status = "rejected"
            elif n_acc:
                status = "accepted"
            elif missing:
                status = "missing"
            else:
                status = "none"
            cells[(unit.code, form.id)] = UnitFormStatus(
                unit=unit,
                form=form,
                status=status,
                accepted=n_acc,
                rejected=n_rej,
                superseded=sum(1 for s in subs if s.status == "superseded"),
                late=any(s.late for s in current),
                files=tuple(s.file for s in current if s.file),
                required=form.kind in MONTHLY_KINDS,
            )
    due = calendar.due_date(period)
    return StatusReport(
        period=period,
        today=today,
        due=due,
        units=units,
        forms=forms,
        cells=cells,
        submissions=list(submissions),
        deadlines=upcoming_deadlines(calendar, today),
        unknown_units=tuple(unknown),
    )


def status_from_consolidation(
    result: Any, *, today: dt.date, period: str | None = None, schemas_dir: Path | None = None
) -> StatusReport:
    """The status of a consolidate() result (its `submissions` table and `period`), rejected
    files of no readable unit counted for the unit their path names, as `status` does."""
    period = period or str(result.period)
    return status_from_submissions(
        submissions_from(result.submissions),
        period,
        today=today,
        schemas_dir=schemas_dir,
        by_path=getattr(result, "path_owners", None) if period == result.period else None,
    )


# --- loading: inbox -> returns -> consolidation ----------------------------------------------


@dataclass
class Cycle:
    """One period's inputs as the monthly-cycle commands need them.

    `result` is consolidate()'s model of `period`, or None when no accepted 附件4 exists yet at
    or before the period (nothing to add up, but the status still matters); `submissions` is
    its submissions table either way.
    """

    period: str
    returns: list[Return]
    result: Any  # pipeline.consolidate.Consolidation | None
    submissions: Any  # consolidate's submissions table (DataFrame)


def latest_period(returns: Sequence[Return], calendar: Calendar) -> str:
    """The latest campaign period any identified return is for, else the calendar's default."""
    found = sorted({r.period for r in returns if r.period and r.period in calendar.periods})
    return found[-1] if found else calendar.default_period


def cycle_from_returns(returns: list[Return], period: str) -> Cycle:
    """Consolidate `period` from validated returns; no accepted 附件4 yet is not an error here:
    the status still matters, so consolidate's submissions table alone is used then."""
    from pipeline import consolidate as cons

    try:
        result = cons.consolidate(returns, period)
    except cons.NothingToConsolidate:
        return Cycle(period, returns, None, cons.submissions_table(returns, period))
    return Cycle(period, returns, result, result.submissions)


def load_cycle(
    inbox: Path,
    period: str | None = None,
    *,
    on_file: Any = None,
    jobs: int = 1,
    schemas_dir: Path | None = None,
) -> Cycle:
    """Read and validate the inbox, then consolidate `period` (default: the latest found)."""
    from pipeline.validate import validate_inbox

    returns = validate_inbox(inbox, on_file=on_file, jobs=jobs)
    period = period or latest_period(returns, load_calendar(_schemas_dir(schemas_dir)))
    return cycle_from_returns(returns, period)


def status_of_cycle(
    cycle: Cycle, *, today: dt.date, schemas_dir: Path | None = None
) -> StatusReport:
    """The status report of a loaded cycle, rejected files of no identified unit counted for
    the unit their path names (owners_by_path)."""
    return status_from_submissions(
        submissions_from(cycle.submissions),
        cycle.period,
        today=today,
        schemas_dir=schemas_dir,
        by_path=owners_by_path(cycle.returns, cycle.period, schemas_dir=schemas_dir),
    )


# --- renderings ------------------------------------------------------------------------------


def cell_text(cell: UnitFormStatus, report: StatusReport) -> str:
    """Short Chinese text of one unit × form: '已接收', '已接收（迟报）', '逾期未报', '本期无' …"""
    checklist = cell.form.kind == "checklist"
    if cell.status == "accepted":
        text = f"已接收 {cell.accepted} 份" if checklist else "已接收"
    elif cell.status == "rejected":
        text = "退回修改"
        if checklist and cell.accepted:
            text += f" {cell.rejected} 份（已接收 {cell.accepted} 份）"
    elif cell.status == "missing" and not cell.required:
        return "本期无"  # checklists are filed per inspection; none this month is no debt
    elif cell.status == "missing":
        text = "逾期未报" if report.overdue else "未报送"
    else:
        return "无"
    if cell.late:
        text += "（迟报）"
    return text


def status_frame(report: StatusReport) -> pd.DataFrame:
    """One row per unit × form, tidy, with English column names (for CSV, JSON and the sheet)."""
    rows = []
    for unit in report.units:
        for form in report.forms:
            c = report.cell(unit, form.id)
            rows.append(
                {
                    "period": report.period,
                    "unit_code": unit.code,
                    "unit": unit.name,
                    "form": form.id,
                    "form_name": form_heading(form),
                    "status": c.status,
                    "status_label": STATUS_LABELS[c.status],
                    "text": cell_text(c, report),
                    "accepted": c.accepted,
                    "rejected": c.rejected,
                    "superseded": c.superseded,
                    "late": c.late,
                    "required": c.required,
                    "files": "；".join(c.files),
                    "due_date": report.due,
                    "days_left": report.days_left,
                    "contact_email": unit.contact_email,
                }
            )
    return pd.DataFrame(rows)


def status_json(report: StatusReport) -> dict[str, Any]:
    """The --json document of `status`."""
    units = {}
    for unit in report.units:
        units[unit.name] = {
            "code": unit.code,
            "complete": report.unit_complete(unit),
            "contact_email": unit.contact_email,
            "forms": {
                form.id: {
                    "status": report.cell(unit, form.id).status,
                    "accepted": report.cell(unit, form.id).accepted,
                    "rejected": report.cell(unit, form.id).rejected,
                    "superseded": report.cell(unit, form.id).superseded,
                    "late": report.cell(unit, form.id).late,
                    "files": list(report.cell(unit, form.id).files),
                }
                for form in report.forms
            },
        }
    return {
        "period": report.period,
        "today": report.today.isoformat(),
        "due_date": report.due.isoformat(),
        "days_left": report.days_left,
        "summary": {
            "accepted": report.count("accepted"),
            "rejected": report.count("rejected"),
            "missing": report.count("missing"),
            "late": report.late_count(),
            "units_complete": sum(1 for u in report.units if report.unit_complete(u)),
            "units": len(report.units),
        },
        "units": units,
        "submissions": [
            {
                "unit": s.unit,
                "form": s.form,
                "status": s.status,
                "late": s.late,
                "file": s.file,
                "received": s.received.isoformat(timespec="minutes") if s.received else None,
                "issues": s.issues,
                "path_unit": s.path_unit,
                "path_form": s.path_form,
            }
            for s in report.submissions
        ],
        "deadlines": [
            {"date": d.date.isoformat(), "what": d.what, "days_left": d.days_left}
            for d in report.deadlines
        ],
        "unknown_units": list(report.unknown_units),
    }


def headline(report: StatusReport) -> str:
    """'2023年7月 报送情况｜截止 2023年8月1日｜今天 2023年7月28日｜还剩 4 天'."""
    from pipeline.mail import date_label, days_left_text

    return (
        f"{period_label(report.period)} 报送情况｜截止 {date_label(report.due)}"
        f"｜今天 {date_label(report.today)}｜{days_left_text(report.days_left)}"
    )


_STYLES = {"accepted": "green", "rejected": "bold red", "missing": "yellow", "none": "dim"}


def unidentified_rejected(report: StatusReport) -> list[str]:
    """The rejected files of no known unit, neither read nor named by their path (unreadable,
    or an archive not read): returns may be in them that the board cannot show."""
    known = {u.name for u in report.units}
    return sorted(
        s.file for s in report.submissions if s.status == "rejected" and s.owner not in known
    )


def by_path_lines(report: StatusReport) -> list[str]:
    """One line per rejected file put down to a unit by its path: '文件 → 鼓楼区 附件4 …'."""
    forms = {f.id: f for f in report.forms}
    lines = []
    for s in sorted(report.by_path(), key=lambda s: s.file):
        form = forms.get(s.owner_form)
        what = form_heading(form) if form else "（看不出是哪张表，未计入上表）"
        lines.append(f"{s.file}（按{s.path_where}）→ {s.path_unit} {what}")
    return lines


def render_status(report: StatusReport, console: Console) -> None:
    """The status board on screen: a unit × form table, a summary line, coming deadlines."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=headline(report), show_lines=False, header_style="bold")
    table.add_column("单位", no_wrap=True, min_width=6)
    for form in report.forms:
        heading = (
            f"{form.annex}\n{form.short_name}" if form.annex.startswith("附件") else form.short_name
        )
        table.add_column(heading, overflow="fold")
    table.add_column("联系邮箱", overflow="fold", min_width=8)
    for unit in report.units:
        cells = []
        for form in report.forms:
            c = report.cell(unit, form.id)
            style = _STYLES[c.status]
            if c.status == "missing" and not c.required:
                style = "dim"
            elif c.status == "missing" and report.overdue:
                style = "bold red"
            text = cell_text(c, report)
            cells.append(f"[{style}]{text}[/]" if style else text)
        email = escape(unit.contact_email) if unit.contact_email else "[yellow]未登记[/]"
        table.add_row(escape(unit.name), *cells, email)
    console.print(table)
    complete = sum(1 for u in report.units if report.unit_complete(u))
    console.print(
        f"已报齐 {complete}/{len(report.units)} 个单位；"
        f"未报送 {report.count('missing')} 项，退回修改 {report.count('rejected')} 项，"
        f"迟报 {report.late_count()} 项。"
    )
    placed = by_path_lines(report)
    if placed:
        console.print(
            f"[yellow]以下 {len(placed)} 个被退回的文件中读不出填报单位，"
            "已按文件名或所在文件夹归入相应单位（运行 make validate 查看原因）：[/]"
        )
        for line in placed:
            console.print(f"[yellow]  {escape(line)}[/]")
    nameless = unidentified_rejected(report)
    if nameless:
        console.print(
            f"[yellow]另有 {len(nameless)} 个文件无法读取或无法确定填报单位，其中的报表没有计入上表"
            f"（运行 make validate 查看原因）：{escape('、'.join(nameless))}[/]"
        )
    if report.unknown_units:
        console.print(
            f"[yellow]注意：报送情况中有 units.csv 未登记的单位："
            f"{escape('、'.join(report.unknown_units))}[/]"
        )
    if report.deadlines:
        dl = Table(title="专项行动后续时间节点", header_style="bold")
        dl.add_column("日期")
        dl.add_column("事项")
        dl.add_column("剩余天数", justify="right")
        for d in report.deadlines:
            dl.add_row(
                d.date.isoformat(),
                escape(d.what),
                "今天" if d.days_left == 0 else f"{d.days_left} 天",
            )
        console.print(dl)


def write_status_sheet(
    workbook: Workbook, report: StatusReport, *, name: str = SHEET_NAME, dated: bool = True
) -> Worksheet:
    """Add the status board as a sheet of an xlsxwriter workbook; returns the worksheet.

    Layout: title (row 1), deadline line (row 2), a unit × form table with a header on row 4,
    then the campaign's coming deadlines. Cells carry text only (no formulas). `dated`: the
    board is of report.today (the days left are counted from it); otherwise (the consolidated
    workbook, whose bytes must not depend on the day it is made) it is of the files received,
    and says so, without counting days.
    """
    from pipeline.mail import date_label, days_left_text

    ws = workbook.add_worksheet(name)
    title = workbook.add_format({"bold": True, "font_size": 14, "align": "center"})
    note = workbook.add_format({"font_size": 10})
    head = workbook.add_format(
        {
            "bold": True,
            "border": 1,
            "bg_color": "#D9E1F2",
            "align": "center",
            "valign": "vcenter",
            "text_wrap": True,
        }
    )
    plain = workbook.add_format({"border": 1})
    fmts = {
        "accepted": workbook.add_format({"border": 1, "bg_color": "#E2EFDA"}),
        "rejected": workbook.add_format({"border": 1, "bg_color": "#F8CBAD", "bold": True}),
        "missing": workbook.add_format({"border": 1, "bg_color": "#FFF2CC"}),
        "overdue": workbook.add_format({"border": 1, "bg_color": "#FF9999", "bold": True}),
        "none": workbook.add_format({"border": 1, "font_color": "#808080"}),
    }
    headers = ["单位编码", "单位", *[form_heading(f) for f in report.forms], "是否报齐", "联系邮箱"]
    last_col = len(headers) - 1
    ws.merge_range(0, 0, 0, last_col, f"{period_label(report.period)} 报送进度", title)
    ws.merge_range(
        1,
        0,
        1,
        last_col,
        (
            f"报送截止：{date_label(report.due)}　统计日期：{date_label(report.today)}　"
            f"{days_left_text(report.days_left)}"
            if dated
            else f"报送截止：{date_label(report.due)}（当天报送仍算按时）　"
            "按汇总时收件箱中的文件及其收到时间统计，晚于截止日收到的标为迟报"
        ),
        note,
    )
    header_row = 3
    ws.write_row(header_row, 0, headers, head)
    ws.set_row(header_row, 30)
    ws.set_column(0, 0, 10)
    ws.set_column(1, 1, 12)
    ws.set_column(2, 1 + len(report.forms), 16)
    ws.set_column(2 + len(report.forms), 2 + len(report.forms), 10)
    ws.set_column(last_col, last_col, 26)
    row = header_row + 1
    for unit in report.units:
        ws.write_string(row, 0, unit.code, plain)
        ws.write_string(row, 1, unit.name, plain)
        for k, form in enumerate(report.forms):
            c = report.cell(unit, form.id)
            key: str = c.status
            if c.status == "missing":
                key = "none" if not c.required else "overdue" if report.overdue else "missing"
            ws.write_string(row, 2 + k, cell_text(c, report), fmts[key])
        complete = report.unit_complete(unit)
        ws.write_string(row, 2 + len(report.forms), "是" if complete else "否", plain)
        ws.write_string(row, last_col, unit.contact_email or "（未登记）", plain)
        row += 1
    ws.freeze_panes(header_row + 1, 2)
    row += 1
    summary = (
        f"已报齐 {sum(1 for u in report.units if report.unit_complete(u))}/{len(report.units)} 个单位；"
        f"未报送 {report.count('missing')} 项，退回修改 {report.count('rejected')} 项，"
        f"迟报 {report.late_count()} 项。"
    )
    ws.write_string(row, 0, summary, note)
    row += 2
    if report.deadlines:
        ws.write_string(row, 0, "日期", head)
        ws.merge_range(row, 1, row, 2, "专项行动后续时间节点", head)
        if dated:
            ws.write_string(row, 3, "剩余天数", head)
        row += 1
        for d in report.deadlines:
            ws.write_string(row, 0, d.date.isoformat(), plain)
            ws.merge_range(row, 1, row, 2, d.what, plain)
            if dated:
                ws.write_number(row, 3, d.days_left, plain)
            row += 1
    # printed like the output workbook's other sheets: A4 landscape, one page wide, the header
    # row on every page, page numbers below. The unit columns are repeated too, for a viewer
    # that ignores fit-to-width and splits the columns over two pages.
    ws.set_paper(9)  # A4
    ws.set_landscape()
    ws.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    ws.center_horizontally()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(header_row, header_row)
    ws.repeat_columns(0, 1)
    ws.set_footer("&C&9第 &P 页 共 &N 页")
    return ws
