"""The objects that pass between stages: one issue model, and one parsed return per file."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pandas as pd

Severity = Literal["error", "warning", "info"]
Status = Literal["accepted", "rejected", "ignored"]


@dataclass
class Issue:
    """One finding, located as a clerk sees it: file, sheet, A1 cell.

    Validation issues (severity "error") make a return unusable; "warning" and "info" do not.
    `rule` is a stable kebab-case code from pipeline.messages; `message` is the Chinese text.
    """

    rule: str
    severity: Severity
    message: str
    file: str = ""
    sheet: str = ""
    cell: str = ""
    value: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "cell": self.cell,
            "rule": self.rule,
            "severity": self.severity,
            "value": self.value,
            "message": self.message,
        }


_CONTENT_KEYS = ("ticks", "major_ticks", "description", "requirement", "deadline")


@dataclass
class Inspection:
    """One filled checklist sheet (one inspection)."""

    sheet: str
    # item no -> "是" | "否" | "不涉及" (missing or ambiguous items are absent and have an issue)
    answers: dict[int, str] = field(default_factory=dict)
    # item no -> {"description", "requirement", "deadline" (date|None), "major" ("是"|"否"|None)}
    details: dict[int, dict[str, Any]] = field(default_factory=dict)
    # footer key -> value (str, or dt.date for date fields)
    footer: dict[str, Any] = field(default_factory=dict)
    # item no -> A1 address of the row's first tick cell, for tracing
    item_cells: dict[int, str] = field(default_factory=dict)
    # footer key -> A1 address of the value cell as found (labels may have moved)
    footer_cells: dict[str, str] = field(default_factory=dict)

    def subject(self) -> str:
        """What was inspected, as written: the project (附件2) or the inspected unit."""
        for key in ("project", "inspected_unit"):
            value = self.footer.get(key)
            if value:
                return str(value).strip()
        return ""

    def content(self) -> tuple[Any, ...]:
        """What the sheet records, wherever its rows or columns were moved: each item's ticks
        and details, and the footer. Equal for a sheet copied and left as it was."""
        items = tuple(
            (no, tuple(d.get(k) for k in _CONTENT_KEYS)) for no, d in sorted(self.details.items())
        )
        return items, tuple(sorted(self.footer.items()))

    def subject_key(self) -> str:
        """The subject as inspections are matched by it: without any spaces."""
        return "".join(self.subject().split())

    def identity(self) -> tuple[str, str] | None:
        """Which inspection this is: (subject_key, date), None without either. A resubmission
        of an inspection repeats both."""
        subject = self.subject_key()
        date = self.footer.get("inspection_date")
        if not subject or date is None:
            return None
        return subject, str(date)


@dataclass
class Return:
    """Everything read from one file of the inbox. Reading never modifies the file."""

    path: Path
    rel: str  # path relative to the inbox, POSIX separators; how the file is named everywhere
    # a file read from inside the .zip at `path`: its index in the archive (rel then names the
    # archive and the file's name in it, "2023年7月/鼓楼区.zip/附件4.xlsx"); see pipeline.archive
    member: int | None = None
    member_name: str = ""  # its name in the archive, checked again when it is read
    size: int = 0
    sha256: str = ""
    mtime: dt.datetime | None = None
    received: dt.datetime | None = None
    received_source: Literal["log", "mtime", ""] = ""
    fmt: str = ""  # xlsx | xlsm | xls | ods
    form_id: str | None = None
    form_version: str = ""
    unit_code: str | None = None
    unit_name: str | None = None
    period: str | None = None
    identified_by: Literal["metadata", "labels", ""] = ""
    status: Status = "accepted"
    ignore_reason: str = ""
    issues: list[Issue] = field(default_factory=list)
    # 附件4: value code -> Decimal (counts are integral Decimals); only for annex4_progress
    progress: dict[str, Decimal] = field(default_factory=dict)
    # value code -> (sheet, A1 cell) it was read from
    progress_cells: dict[str, tuple[str, str]] = field(default_factory=dict)
    # 台账: one row per hazard; columns = ledger column keys plus "_sheet" and "_row"
    # (the 1-based Excel row). Dates are dt.date, money is Decimal, other cells str or None.
    ledger: pd.DataFrame | None = None
    # checklists: one Inspection per filled checklist sheet
    inspections: list[Inspection] = field(default_factory=list)
    # the date the clerk wrote in 时间： (附件4) — informational
    report_date: dt.date | None = None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def add(self, issue: Issue) -> None:
        if not issue.file:
            issue.file = self.rel
        self.issues.append(issue)

    def settle(self) -> None:
        """Set status from the issues found: any error rejects the return."""
        if self.status != "ignored":
            self.status = "rejected" if self.errors else "accepted"


# Where a receipt time came from, as the outputs name it: the city's receipt log (收文登记.csv,
# or .xlsx/.xls/.ods) or the file's modification time
RECEIVED_SOURCES = {"log": "收文登记", "mtime": "文件修改时间"}


def received_source_name(source: str, *, unknown: str = "文件修改时间") -> str:
    """The Chinese name of a Return.received_source ("log", "mtime"); `unknown` for "" etc."""
    return RECEIVED_SOURCES.get(source, unknown)


def mtime_shown(source: str, status: str = "") -> bool:
    """Whether a file's modification time is shown in the outputs: only where it stands for its
    receipt time (no receipt log entry, not an ignored file). Anywhere else it says nothing,
    and copying or cloning the inbox would change the outputs' bytes."""
    return source != "log" and status != "ignored"
