"""Next month's templates prefilled from each unit's last accepted returns.

The 附件4 template for the next period shows the unit's last accepted cumulative figures as locked
captions beside the empty inputs, naming the month they come from ("上月 12" when that is the
month just before the template's, "2023年6月 12" for a unit that was silent or rejected since);
the ledger template carries the unit's last accepted ledger rows, still editable, so the clerk
updates statuses and adds new hazards. Each template's 填表说明 says where its data come from. Which
return counts is consolidate's decision: its month-end figures and ledger (carried forward for a
silent unit) are read from its model and handed to `templates.write_template`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import forms as forms_mod
from pipeline.forms import (
    Form,
    LedgerForm,
    ProgressForm,
    Unit,
    load_calendar,
    load_forms,
    load_units,
    shift_period,
)
from pipeline.status import Cycle


class PrefillError(Exception):
    """Prefilling cannot go on (e.g. no next period in the campaign); message in Chinese."""


@dataclass
class UnitPrefill:
    """What one unit's templates for `period` are prefilled with, and where it came from."""

    unit: Unit
    period: str  # the period the templates are for
    reference: dict[str, Decimal] = field(default_factory=dict)
    reference_period: str | None = None
    reference_file: str = ""
    ledger_rows: list[dict[str, Any]] = field(default_factory=list)
    ledger_period: str | None = None
    ledger_file: str = ""


# --- the unit's last accepted data, as consolidate carries it ----------------------------------


def _plain(value: Any) -> Any:
    """A ledger cell as write_template takes it: None for blanks, date for timestamps."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def unit_prefill(result: Any, unit: Unit, period: str, *, ledger: LedgerForm) -> UnitPrefill:
    """What `unit`'s templates for `period` carry, from consolidate's model `result`.

    `result` is the consolidation of the period before `period` (for next month's templates) or
    of `period` itself when the unit has not reported the form yet (for a 催报 reminder): either
    way its month-end figures and ledger are the unit's last accepted ones, carried forward by
    consolidate where the unit was silent. None (nothing consolidated yet) prefills nothing.
    """
    out = UnitPrefill(unit=unit, period=period)
    if result is None:
        return out
    figures = result.figures
    mine = figures[
        (figures["period"] == result.period)
        & (figures["unit"] == unit.name)
        & (figures["file"] != "")
    ]
    if not mine.empty:
        out.reference = {
            str(code): Decimal(value)
            for code, value in zip(mine["code"], mine["value"], strict=True)
        }
        out.reference_period = str(mine["source_period"].iloc[0])
        out.reference_file = str(mine["file"].iloc[0])
    rows = result.ledger[result.ledger["unit"] == unit.name]
    if not rows.empty:
        rows = rows.sort_values(["_sheet", "_row"], kind="stable")
        keys = [c.key for c in ledger.columns]
        out.ledger_rows = [{k: _plain(rec.get(k)) for k in keys} for rec in rows.to_dict("records")]
        out.ledger_period = str(rows["ledger_period"].iloc[0])
        out.ledger_file = str(rows["file"].iloc[0])
    return out


def write_unit_template(
    form: Form, path: Path, data: UnitPrefill, *, schemas_dir: Path | None = None
) -> Path:
    """One template of `data.unit` for `data.period`, prefilled where the form allows."""
    from pipeline.templates import write_template

    sd = schemas_dir if schemas_dir is not None else forms_mod.SCHEMAS_DIR
    progress, ledger = isinstance(form, ProgressForm), isinstance(form, LedgerForm)
    write_template(
        form,
        path,
        unit=data.unit,
        period=data.period,
        # the months the data come from, so the template names them (never "上月" for older)
        reference=data.reference if progress and data.reference else None,
        reference_period=(data.reference_period or None) if progress else None,
        ledger_rows=data.ledger_rows if ledger and data.ledger_rows else None,
        ledger_period=(data.ledger_period or None) if ledger else None,
        schemas_dir=sd,
    )
    return path


# --- the whole set for the next period -------------------------------------------------------


@dataclass
class PrefillResult:
    period: str  # the period the templates are for (P+1)
    units: list[UnitPrefill]
    paths: dict[str, list[Path]]  # unit code -> written files


def next_period(period: str, *, schemas_dir: Path | None = None) -> str:
    """P+1, or PrefillError when P is the campaign's last period (or outside it)."""
    calendar = load_calendar(schemas_dir if schemas_dir is not None else forms_mod.SCHEMAS_DIR)
    nxt = shift_period(period, 1)
    if nxt not in calendar.periods:
        raise PrefillError(
            f"{period} 之后没有专项行动的报送期间（最后一期为 {calendar.last_period}），"
            "无需生成下月模板。"
        )
    return nxt


def prefill_next_period(
    cycle: Cycle,
    out_dir: Path,
    *,
    units: Sequence[Unit] | None = None,
    schemas_dir: Path | None = None,
) -> PrefillResult:
    """Write every form's template for each unit for the period after `cycle.period`.

    Layout as `make templates`: out_dir/<P+1>/<unit name>/<template file name>. 附件4 and the
    ledger are prefilled from the unit's last accepted returns up to `cycle.period`; the
    checklists are fresh (each inspection is new).
    """
    from pipeline.templates import template_filename

    sd = schemas_dir if schemas_dir is not None else forms_mod.SCHEMAS_DIR
    target = next_period(cycle.period, schemas_dir=sd)
    all_forms = load_forms(sd)
    ledger = all_forms["ledger"]
    assert isinstance(ledger, LedgerForm)
    chosen = tuple(load_units(sd) if units is None else units)
    result = PrefillResult(period=target, units=[], paths={})
    for unit in chosen:
        data = unit_prefill(cycle.result, unit, target, ledger=ledger)
        result.units.append(data)
        written = []
        for form in all_forms.values():
            path = out_dir / target / unit.name / template_filename(form, unit, target)
            written.append(write_unit_template(form, path, data, schemas_dir=sd))
        result.paths[unit.code] = written
    return result


def prefill_json(result: PrefillResult) -> dict[str, Any]:
    """The --json document of `prefill`."""
    return {
        "period": result.period,
        "units": [
            {
                "unit": u.unit.name,
                "code": u.unit.code,
                "reference_period": u.reference_period,
                "reference_file": u.reference_file,
                "reference": {k: _json_number(v) for k, v in u.reference.items()},
                "ledger_period": u.ledger_period,
                "ledger_file": u.ledger_file,
                "ledger_rows": len(u.ledger_rows),
                "files": [str(p) for p in result.paths.get(u.unit.code, [])],
            }
            for u in result.units
        ],
    }


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
