"""Form definitions, reporting units and the campaign calendar, loaded from the data in schemas/."""

from __future__ import annotations

import csv
import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

# The bureau edits the data in schemas/; FZ_SCHEMAS_DIR points the whole pipeline at another copy
# (a province-scale unit list for the benchmark, a trial edit of a checklist).
SCHEMAS_DIR = Path(
    os.environ.get("FZ_SCHEMAS_DIR") or Path(__file__).resolve().parent.parent / "schemas"
)
FORM_IDS = (
    "annex1_gas",
    "annex2_construction",
    "annex3_confined_space",
    "annex4_progress",
    "ledger",
)
CHECKLIST_IDS = ("annex1_gas", "annex2_construction", "annex3_confined_space")
TICKS = ("是", "否", "不涉及")


class DefinitionError(Exception):
    """A file under schemas/ is malformed; the message says which file and what."""


@dataclass(frozen=True)
class FooterField:
    key: str
    label: str
    type: Literal["text", "date"]


@dataclass(frozen=True)
class ChecklistItem:
    no: int
    category: str
    matter: str
    hazard_answer: Literal["是", "否"]
    content: str = ""
    source: str = ""
    reconstructed: bool = False


@dataclass(frozen=True)
class ChecklistForm:
    id: str
    version: str
    annex: str
    title: str
    short_name: str
    sheet_name: str
    domain: str
    description_label: str
    has_content_column: bool
    has_major_column: bool
    footer: tuple[FooterField, ...]
    items: tuple[ChecklistItem, ...]
    notes: tuple[str, ...] = ()
    edition: str = ""
    reconstructed_note: str = ""
    kind: Literal["checklist"] = "checklist"

    def item(self, no: int) -> ChecklistItem:
        for it in self.items:
            if it.no == no:
                return it
        raise KeyError(no)


@dataclass(frozen=True)
class ProgressValue:
    """One number of 附件4: an item code such as "A1" or "C3b"."""

    code: str
    unit: str
    sub_label: str = ""

    @property
    def is_money(self) -> bool:
        return self.unit == "万元"


@dataclass(frozen=True)
class ProgressItem:
    code: str
    no: int
    label: str
    values: tuple[ProgressValue, ...]


@dataclass(frozen=True)
class ProgressSection:
    code: str
    label: str
    items: tuple[ProgressItem, ...]


@dataclass(frozen=True)
class ProgressRule:
    code: str
    kind: Literal["le", "requires"]
    left: tuple[str, ...]
    right: str


@dataclass(frozen=True)
class ProgressForm:
    id: str
    version: str
    annex: str
    title: str
    short_name: str
    sheet_name: str
    unit_label: str
    date_label: str
    date_placeholder: str
    footnotes: tuple[str, ...]
    sections: tuple[ProgressSection, ...]
    rules: tuple[ProgressRule, ...]
    kind: Literal["progress"] = "progress"

    @property
    def values(self) -> tuple[ProgressValue, ...]:
        """Every number of the form in table order (A1 … D8)."""
        return tuple(v for s in self.sections for it in s.items for v in it.values)

    @property
    def value_codes(self) -> tuple[str, ...]:
        return tuple(v.code for v in self.values)

    def value(self, code: str) -> ProgressValue:
        for v in self.values:
            if v.code == code:
                return v
        raise KeyError(code)

    def item_of(self, code: str) -> ProgressItem:
        for s in self.sections:
            for it in s.items:
                if any(v.code == code for v in it.values):
                    return it
        raise KeyError(code)


@dataclass(frozen=True)
class LedgerColumn:
    key: str
    label: str
    type: Literal["text", "choice", "date", "money", "credit_code", "bool"]
    required: bool = False
    choices: tuple[str, ...] = ()
    open_required: bool = False
    open_required_value: str = ""
    width: float = 12
    hint: str = ""


@dataclass(frozen=True)
class LedgerForm:
    id: str
    version: str
    title: str
    short_name: str
    sheet_name: str
    unit_label: str
    rows: int
    columns: tuple[LedgerColumn, ...]
    notes: tuple[str, ...] = ()
    kind: Literal["ledger"] = "ledger"

    def column(self, key: str) -> LedgerColumn:
        for c in self.columns:
            if c.key == key:
                return c
        raise KeyError(key)

    @property
    def annex(self) -> str:
        return "台账"


Form = ChecklistForm | ProgressForm | LedgerForm


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: str = ""
    contact_name: str = ""
    contact_email: str = ""
    # other names a clerk writes for the unit (units.csv `aliases`, separated by 、): 高新区
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deadline:
    date: dt.date
    what: str


@dataclass(frozen=True)
class Calendar:
    campaign: str
    document: str
    city_unit: str
    city_email: str
    start_date: dt.date
    first_period: str
    last_period: str
    default_period: str
    due_day: int
    deadlines: tuple[Deadline, ...] = field(default_factory=tuple)

    @property
    def periods(self) -> tuple[str, ...]:
        return period_range(self.first_period, self.last_period)

    def due_date(self, period: str) -> dt.date:
        """Last day (inclusive) on which the return for `period` is on time."""
        return next_period_start(period).replace(day=self.due_day)


# --- periods ---------------------------------------------------------------------------------


def parse_period(text: str) -> tuple[int, int]:
    """'2023-06' -> (2023, 6); raises ValueError on anything else."""
    year_s, _, month_s = text.partition("-")
    if len(year_s) != 4 or not year_s.isdigit() or not month_s.isdigit() or len(month_s) != 2:
        raise ValueError(f"period must be YYYY-MM: {text!r}")
    year, month = int(year_s), int(month_s)
    if not 1 <= month <= 12:
        raise ValueError(f"period must be YYYY-MM: {text!r}")
    return year, month


def period_end(period: str) -> dt.date:
    """The last day of the period's month."""
    return next_period_start(period) - dt.timedelta(days=1)


def next_period_start(period: str) -> dt.date:
    year, month = parse_period(period)
    return dt.date(year + month // 12, month % 12 + 1, 1)


def shift_period(period: str, months: int) -> str:
    year, month = parse_period(period)
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def period_range(first: str, last: str) -> tuple[str, ...]:
    out = [first]
    while out[-1] < last:
        out.append(shift_period(out[-1], 1))
    return tuple(out)


def period_label(period: str) -> str:
    """'2023-06' -> '2023年6月' (how a clerk writes it)."""
    year, month = parse_period(period)
    return f"{year}年{month}月"


# --- loading ---------------------------------------------------------------------------------


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DefinitionError(f"{path}: {exc}") from exc


def _need(data: dict[str, Any], key: str, path: Path) -> Any:
    if key not in data:
        raise DefinitionError(f"{path}: missing key {key!r}")
    return data[key]


def _checklist(data: dict[str, Any], path: Path) -> ChecklistForm:
    items = []
    seen: set[int] = set()
    for raw in _need(data, "items", path):
        no = int(_need(raw, "no", path))
        if no in seen:
            raise DefinitionError(f"{path}: item number {no} appears twice")
        seen.add(no)
        answer = raw.get("hazard_answer", "是")
        if answer not in ("是", "否"):
            raise DefinitionError(f"{path}: item {no}: hazard_answer must be 是 or 否")
        items.append(
            ChecklistItem(
                no=no,
                category=str(_need(raw, "category", path)),
                matter=str(_need(raw, "matter", path)),
                hazard_answer=answer,
                content=str(raw.get("content", "")),
                source=str(raw.get("source", "")),
                reconstructed=bool(raw.get("reconstructed", False)),
            )
        )
    footer = tuple(
        FooterField(key=f["key"], label=f["label"], type=f.get("type", "text"))
        for f in _need(data, "footer", path)
    )
    return ChecklistForm(
        id=data["id"],
        version=str(_need(data, "version", path)),
        annex=_need(data, "annex", path),
        title=_need(data, "title", path),
        short_name=data.get("short_name", data["title"]),
        sheet_name=data.get("sheet_name", data["annex"]),
        domain=data.get("domain", ""),
        description_label=data.get("description_label", "隐患描述"),
        has_content_column=bool(data.get("has_content_column", False)),
        has_major_column=bool(data.get("has_major_column", False)),
        footer=footer,
        items=tuple(sorted(items, key=lambda it: it.no)),
        notes=tuple(data.get("notes", ())),
        edition=data.get("edition", ""),
        reconstructed_note=data.get("reconstructed_note", ""),
    )


def _progress(data: dict[str, Any], path: Path) -> ProgressForm:
    sections = []
    codes: set[str] = set()
    for s in _need(data, "sections", path):
        items = []
        for it in _need(s, "items", path):
            values = []
            for v in _need(it, "values", path):
                if v["code"] in codes:
                    raise DefinitionError(f"{path}: value code {v['code']} appears twice")
                codes.add(v["code"])
                values.append(ProgressValue(v["code"], v["unit"], v.get("sub_label", "")))
            items.append(ProgressItem(it["code"], int(it["no"]), it["label"], tuple(values)))
        sections.append(ProgressSection(s["code"], s["label"], tuple(items)))
    rules = []
    for r in data.get("rules", ()):
        left = r["left"] if isinstance(r["left"], list) else [r["left"]]
        for code in [*left, r["right"]]:
            if code not in codes:
                raise DefinitionError(f"{path}: rule {r['code']} names unknown item {code}")
        rules.append(ProgressRule(r["code"], r["kind"], tuple(left), r["right"]))
    return ProgressForm(
        id=data["id"],
        version=str(_need(data, "version", path)),
        annex=data["annex"],
        title=data["title"],
        short_name=data.get("short_name", data["title"]),
        sheet_name=data.get("sheet_name", data["annex"]),
        unit_label=data.get("unit_label", "填报单位："),
        date_label=data.get("date_label", "时间："),
        date_placeholder=data.get("date_placeholder", ""),
        footnotes=tuple(data.get("footnotes", ())),
        sections=tuple(sections),
        rules=tuple(rules),
    )


def _ledger(data: dict[str, Any], path: Path) -> LedgerForm:
    columns = tuple(
        LedgerColumn(
            key=c["key"],
            label=c["label"],
            type=c["type"],
            required=bool(c.get("required", False)),
            choices=tuple(c.get("choices", ())),
            open_required=bool(c.get("open_required", False)),
            open_required_value=c.get("open_required_value", ""),
            width=float(c.get("width", 12)),
            hint=c.get("hint", ""),
        )
        for c in _need(data, "columns", path)
    )
    return LedgerForm(
        id=data["id"],
        version=str(_need(data, "version", path)),
        title=data["title"],
        short_name=data.get("short_name", data["title"]),
        sheet_name=data.get("sheet_name", data["title"]),
        unit_label=data.get("unit_label", "填报单位："),
        rows=int(data.get("rows", 500)),
        columns=columns,
        notes=tuple(data.get("notes", ())),
    )


def load_form(path: Path) -> Form:
    data = _load_toml(path)
    kind = _need(data, "kind", path)
    _need(data, "id", path)
    if kind == "checklist":
        return _checklist(data, path)
    if kind == "progress":
        return _progress(data, path)
    if kind == "ledger":
        return _ledger(data, path)
    raise DefinitionError(f"{path}: unknown kind {kind!r}")


@cache
def load_forms(schemas_dir: Path = SCHEMAS_DIR) -> dict[str, Form]:
    """Every form definition under schemas/forms, keyed by form id, in FORM_IDS order."""
    forms: dict[str, Form] = {}
    for path in sorted((schemas_dir / "forms").glob("*.toml")):
        form = load_form(path)
        forms[form.id] = form
    ordered = {fid: forms[fid] for fid in FORM_IDS if fid in forms}
    ordered.update({k: v for k, v in forms.items() if k not in ordered})
    return ordered


def progress_form(schemas_dir: Path = SCHEMAS_DIR) -> ProgressForm:
    form = load_forms(schemas_dir)["annex4_progress"]
    assert isinstance(form, ProgressForm)
    return form


def ledger_form(schemas_dir: Path = SCHEMAS_DIR) -> LedgerForm:
    form = load_forms(schemas_dir)["ledger"]
    assert isinstance(form, LedgerForm)
    return form


def checklist_forms(schemas_dir: Path = SCHEMAS_DIR) -> list[ChecklistForm]:
    return [f for f in load_forms(schemas_dir).values() if isinstance(f, ChecklistForm)]


@cache
def load_units(schemas_dir: Path = SCHEMAS_DIR) -> tuple[Unit, ...]:
    path = schemas_dir / "units.csv"
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise DefinitionError(f"{path}: {exc}") from exc
    units = tuple(
        Unit(
            code=r["code"].strip(),
            name=r["name"].strip(),
            kind=(r.get("kind") or "").strip(),
            contact_name=(r.get("contact_name") or "").strip(),
            contact_email=(r.get("contact_email") or "").strip(),
            aliases=_aliases(r.get("aliases")),
        )
        for r in rows
        if (r.get("code") or "").strip()
    )
    names = [u.name for u in units]
    codes = [u.code for u in units]
    if len(set(names)) != len(names) or len(set(codes)) != len(codes):
        raise DefinitionError(f"{path}: unit codes and names must be unique")
    # a name or alias must denote one unit, or a clerk's 高新区 could mean two
    spellings = [n for u in units for n in (u.name, *u.aliases)]
    if len(set(spellings)) != len(spellings):
        raise DefinitionError(f"{path}: a unit alias repeats a unit name or another alias")
    return units


def _aliases(text: str | None) -> tuple[str, ...]:
    """The `aliases` cell of units.csv: names separated by 、 (or ; ；)."""
    parts = (text or "").replace("；", "、").replace(";", "、").split("、")
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


def unit_by_name(name: str, schemas_dir: Path = SCHEMAS_DIR) -> Unit | None:
    for u in load_units(schemas_dir):
        if u.name == name:
            return u
    return None


def unit_by_code(code: str, schemas_dir: Path = SCHEMAS_DIR) -> Unit | None:
    for u in load_units(schemas_dir):
        if u.code == code:
            return u
    return None


@cache
def load_calendar(schemas_dir: Path = SCHEMAS_DIR) -> Calendar:
    path = schemas_dir / "calendar.toml"
    data = _load_toml(path)
    deadlines = tuple(Deadline(date=d["date"], what=d["what"]) for d in data.get("deadlines", ()))
    cal = Calendar(
        campaign=data["campaign"],
        document=data["document"],
        city_unit=data["city_unit"],
        city_email=data.get("city_email", ""),
        start_date=data["start_date"],
        first_period=data["first_period"],
        last_period=data["last_period"],
        default_period=data["default_period"],
        due_day=int(data.get("due_day", 1)),
        deadlines=deadlines,
    )
    for p in (cal.first_period, cal.last_period, cal.default_period):
        try:
            parse_period(p)
        except ValueError as exc:
            raise DefinitionError(f"{path}: {exc}") from exc
    return cal
