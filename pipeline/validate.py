"""Validate read returns with pandera schemas built from the form definitions (the validating stage).

`validate_returns` takes the Returns from pipeline.read, turns each into tidy DataFrames (one row
per 附件4 value, per checklist item, per footer field, per ledger row), validates them lazily
against schemas generated from the form data, and maps every pandera failure case to one Issue
with file, sheet, A1 cell, rule code, value and the Chinese message of pipeline.messages. Each
Check is named "<rule code>" or "<rule code>:<column key>" (the column whose cell is reported).
A cell that already has a reading error is not reported again. Finally Return.settle().
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipeline.forms import (
    ChecklistForm,
    LedgerForm,
    ProgressForm,
    load_calendar,
    load_forms,
    period_end,
)
from pipeline.layout import LedgerLayout, a1
from pipeline.messages import make_issue
from pipeline.model import Issue, Return
from pipeline.normalize import credit_code_problem, decimal_places, display, fold
from pipeline.read import OnFile, read_inbox

MAX_COUNT = Decimal(100_000)  # a county's cumulative count above this is a typing error
MAX_MONEY = Decimal(100_000)  # 万元, i.e. 10 亿元
MONEY_DECIMALS = 4

# Ledger vocabulary (DESIGN §7): the status values and the columns the closure rules talk about.
OPEN, RECTIFIED, CLOSED = "整改中", "已整改待验收", "已验收销号"
YES = "是"
EVENT_DATES = ("found_date", "rectified_date", "closed_date")  # things that already happened


def validate_returns(returns: list[Return]) -> None:
    """Add validation issues to every read return and settle its status (in place)."""
    forms = load_forms()
    for ret in returns:
        if ret.status != "ignored" and ret.form_id in forms and not _unreadable(ret):
            try:
                validate_return(ret)
            except Exception as exc:  # a bug must not stop the run: report it on this file
                detail = f"{type(exc).__name__}: {exc}"[:300]
                ret.add(make_issue("file-read-failed", detail=detail))
            _sort_issues(ret)
        ret.settle()


def _sort_issues(ret: Return) -> None:
    """File-level issues first, then by sheet (in order of first mention), row and column."""
    sheets: dict[str, int] = {}
    for issue in ret.issues:
        sheets.setdefault(issue.sheet, len(sheets))

    def key(pair: tuple[int, Issue]) -> tuple[int, int, int, int, int]:
        index, issue = pair
        match = re.fullmatch(r"([A-Z]+)(\d+)", issue.cell)
        if not match:
            return (0, sheets[issue.sheet], 0, 0, index)
        col = 0
        for ch in match.group(1):
            col = col * 26 + ord(ch) - 64
        return (1, sheets[issue.sheet], int(match.group(2)), col, index)

    ret.issues = [issue for _, issue in sorted(enumerate(ret.issues), key=key)]


def validate_return(ret: Return) -> None:
    """Add the validation issues of one read return (does not settle it)."""
    form = load_forms()[str(ret.form_id)]
    if isinstance(form, ProgressForm):
        _validate_progress(ret, form)
    elif isinstance(form, ChecklistForm):
        _validate_checklists(ret, form)
    elif isinstance(form, LedgerForm):
        _validate_ledger(ret, form)


def validate_inbox(inbox: Path, *, on_file: OnFile | None = None, jobs: int = 1) -> list[Return]:
    """read_inbox + validate_returns. `on_file` sees each return once it is validated."""
    returns = read_inbox(inbox, jobs=jobs)
    validate_returns(returns)
    if on_file is not None:
        for ret in returns:
            on_file(ret)
    return returns


def _unreadable(ret: Return) -> bool:
    """Nothing to validate when the file could not be opened or its sheet not found."""
    return any(
        (i.rule.startswith("file-") and i.severity == "error") or i.rule == "sheet-missing"
        for i in ret.issues
    )


# --- the pandera runner ----------------------------------------------------------------------

Locator = Callable[[str, str | None, int], Issue | None]


def _run(ret: Return, schema: pa.DataFrameSchema, frame: pd.DataFrame, locate: Locator) -> None:
    """Validate lazily and turn each failure (check, column, row) into one issue on `ret`."""
    if frame.empty:
        return
    try:
        schema.validate(frame, lazy=True)
        return
    except SchemaErrors as exc:
        # a cell gets one issue: a column's own check (type, choice) before a cross-column rule
        cases = exc.failure_cases.sort_values(
            "schema_context", key=lambda s: s != "Column", kind="stable"
        )
    flagged = {(i.sheet, i.cell) for i in ret.issues if i.severity == "error"}
    seen: set[tuple[str, str | None, int]] = set()
    for case in cases.itertuples(index=False):
        check = str(case.check)
        if case.index is None or (isinstance(case.index, float) and pd.isna(case.index)):
            # a check that itself failed (a bug): say so on this file, keep the run going
            detail = f"校验规则 {check} 运行出错：{case.failure_case}"
            ret.add(make_issue("file-read-failed", detail=detail[:300]))
            continue
        row = int(case.index)
        column = None if case.schema_context == "DataFrameSchema" else str(case.column)
        if (check, column, row) in seen:
            continue  # a dataframe-wide check lists every column of a failing row
        seen.add((check, column, row))
        issue = locate(check, column, row)
        if issue is None or (issue.sheet, issue.cell) in flagged:
            continue
        flagged.add((issue.sheet, issue.cell))
        ret.add(issue)


def _check(name: str, fn: Callable[[pd.DataFrame], Any]) -> pa.Check:
    """A row-wise check over the whole frame: `fn` gives one bool per row."""

    def series(df: pd.DataFrame) -> pd.Series:
        out = fn(df)
        if not isinstance(out, pd.Series):
            out = pd.Series(list(out), index=df.index)
        return out.astype(bool)

    return pa.Check(series, name=name, error=name, ignore_na=False)


def _col_check(name: str, fn: Callable[[Any], bool], *, ignore_na: bool = True) -> pa.Check:
    """An element-wise column check; with ignore_na blanks pass (they are someone else's rule)."""

    def series(s: pd.Series) -> pd.Series:
        return s.map(lambda v: (ignore_na and _na(v)) or bool(fn(v))).astype(bool)

    return pa.Check(series, name=name, error=name, ignore_na=False)


def _na(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _split(check: str) -> tuple[str, str]:
    code, _, key = check.partition(":")
    return code, key


def _dec(value: Any) -> Decimal | None:
    return None if _na(value) else Decimal(value)


# --- 附件4 -------------------------------------------------------------------------------------


def _validate_progress(ret: Return, form: ProgressForm) -> None:
    values = form.values
    frame = pd.DataFrame(
        {
            "code": [v.code for v in values],
            "value": pd.Series([ret.progress.get(v.code) for v in values], dtype=object),
            "money": [v.is_money for v in values],
        }
    )
    schema = progress_schema(form)
    by_code = {v.code: i for i, v in enumerate(values)}

    def locate(check: str, _column: str | None, row: int) -> Issue | None:
        code = values[row].code
        sheet, cell = ret.progress_cells.get(code, ("", ""))
        number = ret.progress.get(code)
        label = _progress_label(form, code)
        rule_code, _ = _split(check)
        rule = next((r for r in form.rules if r.code == rule_code), None)
        if rule is not None:
            right = ret.progress.get(rule.right)
            return make_issue(
                rule.code,
                sheet=sheet,
                cell=cell,
                value=_show(number),
                left_label=label,
                right_label=_progress_label(form, rule.right),
                right_value=_show(right),
            )
        limit = MAX_MONEY if values[row].is_money else MAX_COUNT
        return make_issue(
            rule_code, sheet=sheet, cell=cell, value=_show(number), label=label, limit=limit
        )

    del by_code
    _run(ret, schema, frame, locate)


def progress_schema(form: ProgressForm) -> pa.DataFrameSchema:
    """One row per value code (in form order): presence, type and range checks, then the
    form's [[rules]], each reported at its left-hand item."""
    codes = list(form.value_codes)

    def values(df: pd.DataFrame) -> pd.Series:
        return df["value"].map(_dec)

    checks = [
        _check("progress-missing", lambda df: df["value"].map(lambda v: not _na(v))),
        _check(
            "value-not-integer",
            lambda df: [
                m or v is None or v == v.to_integral_value()
                for v, m in zip(values(df), df["money"], strict=True)
            ],
        ),
        _check("value-negative", lambda df: values(df).map(lambda v: v is None or v >= 0)),
        _check(
            "value-too-many-decimals",
            lambda df: [
                not m or v is None or decimal_places(v) <= MONEY_DECIMALS
                for v, m in zip(values(df), df["money"], strict=True)
            ],
        ),
        _check(
            "value-too-large",
            lambda df: [
                v is None or v <= (MAX_MONEY if m else MAX_COUNT)
                for v, m in zip(values(df), df["money"], strict=True)
            ],
        ),
    ]
    for rule in form.rules:
        for left in rule.left:
            checks.append(
                _check(f"{rule.code}:{left}", _rule_fn(codes, rule.kind, left, rule.right))
            )
    return pa.DataFrameSchema(
        columns={"code": pa.Column(str), "value": pa.Column(None, nullable=True)},
        checks=checks,
        name=form.id,
    )


def _rule_fn(
    codes: list[str], kind: str, left: str, right: str
) -> Callable[[pd.DataFrame], pd.Series]:
    li, ri = codes.index(left), codes.index(right)

    def fn(df: pd.DataFrame) -> pd.Series:
        lv, rv = _dec(df["value"].iloc[li]), _dec(df["value"].iloc[ri])
        ok = True
        if lv is not None and rv is not None:
            ok = lv <= rv if kind == "le" else not (lv > 0 and rv <= 0)
        out = pd.Series(True, index=df.index)
        out.iloc[li] = ok
        return out

    return fn


def _progress_label(form: ProgressForm, code: str) -> str:
    item = form.item_of(code)
    value = form.value(code)
    name = f"{item.code[0]}{item.no}“{item.label}”"
    return f"{name}的“{value.sub_label}”" if len(item.values) > 1 else name


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return display(value)


# --- 附件1–3 -----------------------------------------------------------------------------------


def _validate_checklists(ret: Return, form: ChecklistForm) -> None:
    rows: list[dict[str, Any]] = []
    for inspection in ret.inspections:
        for item in form.items:
            details = inspection.details.get(item.no)
            if details is None:
                continue  # reported while reading (checklist-item-missing)
            answer = inspection.answers.get(item.no)
            rows.append(
                {
                    "sheet": inspection.sheet,
                    "no": item.no,
                    "answer": answer,
                    "hazard": answer == item.hazard_answer,
                    "n_ticks": len(details["ticks"]),
                    "ticks": details["ticks"],
                    "tick_error": details["tick_error"],
                    "description": details["description"],
                    "requirement": details["requirement"],
                    "deadline": details["deadline"],
                    "deadline_error": details["deadline_error"],
                    "n_major": len(details["major_ticks"]),
                    "major_error": details["major_error"],
                    "cells": details["cells"],
                }
            )
    items = pd.DataFrame(rows)

    def locate_item(check: str, _column: str | None, row: int) -> Issue | None:
        r = items.iloc[row]
        code, key = _split(check)
        cell = r["cells"][key]
        value = {"description": r["description"], "requirement": r["requirement"]}.get(key, "")
        return make_issue(
            code,
            sheet=r["sheet"],
            cell=cell,
            value=value if code == "checklist-multiple-ticks" else "",
            no=r["no"],
            answer=r["answer"] or "",
            ticks="、".join(f"“{t}”" for t in r["ticks"]),
            what=form.description_label,
        )

    _run(ret, checklist_items_schema(form), items, locate_item)
    _validate_footers(ret, form)


def checklist_items_schema(form: ChecklistForm) -> pa.DataFrameSchema:
    """One row per checklist item of each inspection: ticks and the hazard details."""

    def hazard(df: pd.DataFrame) -> pd.Series:
        return df["hazard"].astype(bool)

    def present(df: pd.DataFrame, key: str) -> pd.Series:
        return df[key].map(lambda v: not _na(v))

    checks = [
        _check("checklist-no-tick:tick", lambda df: (df["n_ticks"] > 0) | df["tick_error"]),
        _check("checklist-multiple-ticks:tick", lambda df: df["n_ticks"] <= 1),
        _check(
            "checklist-hazard-description-missing:description",
            lambda df: ~hazard(df) | present(df, "description"),
        ),
        _check(
            "checklist-hazard-requirement-missing:requirement",
            lambda df: ~hazard(df) | present(df, "requirement"),
        ),
        _check(
            "checklist-hazard-deadline-missing:deadline",
            lambda df: ~hazard(df) | present(df, "deadline") | df["deadline_error"],
        ),
    ]
    if form.has_major_column:
        checks += [
            _check(
                "checklist-major-missing:major",
                lambda df: ~hazard(df) | (df["n_major"] > 0) | df["major_error"],
            ),
            _check("checklist-major-multiple:major", lambda df: df["n_major"] <= 1),
        ]
    return pa.DataFrameSchema(
        columns={"no": pa.Column(int), "n_ticks": pa.Column(int)}, checks=checks, name=form.id
    )


def _validate_footers(ret: Return, form: ChecklistForm) -> None:
    calendar = load_calendar()
    end = period_end(ret.period) if ret.period else None
    rows: list[dict[str, Any]] = []
    for inspection in ret.inspections:
        for f in form.footer:
            if f.key not in inspection.footer_cells:
                continue  # its label was not found: reported while reading
            rows.append(
                {
                    "sheet": inspection.sheet,
                    "label": f.label,
                    "type": f.type,
                    "value": inspection.footer.get(f.key),
                    "cell": inspection.footer_cells[f.key],
                }
            )
    frame = pd.DataFrame(rows)

    def is_date(df: pd.DataFrame) -> pd.Series:
        return df["value"].map(lambda v: isinstance(v, dt.date))

    checks = [
        _check("checklist-footer-missing", lambda df: df["value"].map(lambda v: not _na(v))),
        _check(
            "checklist-date-before-campaign",
            lambda df: (
                ~is_date(df)
                | df["value"].map(lambda v: not isinstance(v, dt.date) or v >= calendar.start_date)
            ),
        ),
    ]
    if end is not None:
        checks.append(
            _check(
                "checklist-date-after-period",
                lambda df: (
                    ~is_date(df) | df["value"].map(lambda v: not isinstance(v, dt.date) or v <= end)
                ),
            )
        )
    schema = pa.DataFrameSchema(columns={"value": pa.Column(None, nullable=True)}, checks=checks)

    def locate(check: str, _column: str | None, row: int) -> Issue | None:
        r = frame.iloc[row]
        return make_issue(
            check,
            sheet=r["sheet"],
            cell=r["cell"],
            value=display(r["value"]),
            label=r["label"],
            start=calendar.start_date.isoformat(),
            end=end.isoformat() if end else "",
        )

    _run(ret, schema, frame, locate)


# --- 台账 ----------------------------------------------------------------------------------------


def ledger_schema(form: LedgerForm, period: str | None) -> pa.DataFrameSchema:
    """Column checks from each column's definition, then the closure rules across columns."""
    columns: dict[str, pa.Column] = {}
    end = period_end(period) if period else None
    for column in form.columns:
        checks: list[pa.Check] = []
        if column.required:
            checks.append(_required())
        if column.type in ("choice", "bool"):
            allowed = column.choices or ("是", "否")
            checks.append(_col_check("ledger-choice-invalid", _member_of(allowed)))
        if column.type == "credit_code":
            checks.append(
                _col_check("ledger-credit-code-invalid", lambda v: credit_code_problem(v) is None)
            )
        if column.type == "money":
            checks += [
                _col_check("value-negative", lambda v: Decimal(v) >= 0),
                _col_check(
                    "value-too-many-decimals",
                    lambda v: decimal_places(Decimal(v)) <= MONEY_DECIMALS,
                ),
                _col_check("value-too-large", lambda v: Decimal(v) <= MAX_MONEY),
            ]
        if column.type == "date" and end is not None and column.key in EVENT_DATES:
            checks.append(_col_check("ledger-date-after-period", lambda v: v <= end))
        columns[column.key] = pa.Column(None, checks=checks, nullable=True, required=True)
    if "hazard_id" in columns:
        columns["hazard_id"].checks.append(
            pa.Check(
                lambda s: (
                    ~s.map(lambda v: None if _na(v) else fold(str(v))).duplicated(keep="first")
                    | s.map(_na)
                ),
                name="ledger-duplicate-id",
                error="ledger-duplicate-id",
                ignore_na=False,
            )
        )
    return pa.DataFrameSchema(columns=columns, checks=_ledger_row_checks(form), name=form.id)


def _member_of(allowed: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in allowed


def _open_needs(key: str, value: str = "") -> Callable[[pd.DataFrame], pd.Series]:
    """An open hazard (整改中) needs `key` filled (and equal to `value` when given)."""

    def fn(df: pd.DataFrame) -> pd.Series:
        is_open = df["status"] == OPEN
        filled = df[key].map(lambda v: not _na(v))
        if value:
            return ~is_open | ~filled | (df[key] == value)
        return ~is_open | filled

    return fn


def _required() -> pa.Check:
    def series(s: pd.Series) -> pd.Series:
        return s.map(lambda v: not _na(v) and not (isinstance(v, str) and not v.strip()))

    return pa.Check(
        series, name="ledger-required-missing", error="ledger-required-missing", ignore_na=False
    )


def _ledger_row_checks(form: LedgerForm) -> list[pa.Check]:
    keys = {c.key for c in form.columns}

    def has(df: pd.DataFrame, key: str) -> pd.Series:
        return df[key].map(lambda v: not _na(v))

    def before(df: pd.DataFrame, early: str, late: str) -> pd.Series:
        return pd.Series(
            [
                not (isinstance(a, dt.date) and isinstance(b, dt.date)) or a <= b
                for a, b in zip(df[early], df[late], strict=True)
            ],
            index=df.index,
        )

    checks: list[pa.Check] = []
    if {"found_date", "rectified_date", "closed_date"} <= keys:
        checks += [
            _check(
                "ledger-date-order:rectified_date",
                lambda df: before(df, "found_date", "rectified_date"),
            ),
            _check(
                "ledger-date-order:closed_date",
                lambda df: before(df, "rectified_date", "closed_date"),
            ),
            _check(
                "ledger-date-order:closed_date",
                lambda df: ~df["rectified_date"].map(_na) | before(df, "found_date", "closed_date"),
            ),
        ]
    if "status" in keys:
        for column in form.columns:
            if not column.open_required:
                continue
            key = column.key
            checks.append(_check(f"ledger-open-incomplete:{key}", _open_needs(key)))
            if column.open_required_value:
                checks.append(
                    _check(
                        f"ledger-open-no-plan:{key}", _open_needs(key, column.open_required_value)
                    )
                )
        if "rectified_date" in keys:
            checks.append(
                _check(
                    "ledger-status-needs-date:rectified_date",
                    lambda df: ~df["status"].isin([RECTIFIED, CLOSED]) | has(df, "rectified_date"),
                )
            )
        if "accepted_by" in keys:
            checks.append(
                _check(
                    "ledger-closed-needs-acceptor:accepted_by",
                    lambda df: (df["status"] != CLOSED) | has(df, "accepted_by"),
                )
            )
        if "closed_date" in keys:
            checks.append(
                _check(
                    "ledger-closed-needs-date:closed_date",
                    lambda df: (df["status"] != CLOSED) | has(df, "closed_date"),
                )
            )
    if {"supervised", "supervision_level"} <= keys:
        checks.append(
            _check(
                "ledger-supervision-level-missing:supervision_level",
                lambda df: (df["supervised"] != YES) | has(df, "supervision_level"),
            )
        )
    return checks


def _validate_ledger(ret: Return, form: LedgerForm) -> None:
    frame = ret.ledger
    if frame is None or frame.empty:
        return
    frame = frame.reset_index(drop=True)
    lay = LedgerLayout(form=form)
    where: dict[str, int] = dict(frame.attrs.get("columns", {}))
    labels = {c.key: c for c in form.columns}
    end = period_end(ret.period) if ret.period else None
    first_row: dict[str, int] = {}
    for hid, row in zip(frame["hazard_id"], frame["_row"], strict=True):
        if not _na(hid):
            first_row.setdefault(fold(str(hid)), int(row))

    def locate(check: str, column: str | None, index: int) -> Issue | None:
        code, key = _split(check)
        key = column or key
        record = frame.iloc[index]
        col = where.get(key, lay.col(key) if key in labels else 0)
        excel_row = int(record["_row"])
        value = record.get(key)
        definition = labels.get(key)
        extra: dict[str, Any] = {}
        if code == "ledger-date-order":
            other = (
                "found_date"
                if key == "rectified_date" or _na(record.get("rectified_date"))
                else "rectified_date"
            )
            extra = {"other_label": labels[other].label, "other": display(record.get(other))}
        if code == "ledger-credit-code-invalid":
            extra = {"reason": credit_code_problem(str(value)) or ""}
        if code == "ledger-duplicate-id":
            extra = {"first_row": first_row.get(fold(str(value)), excel_row)}
        hid = record.get("hazard_id")
        return make_issue(
            code,
            sheet=str(record["_sheet"]),
            cell=a1(excel_row - 1, col),
            value=_show(value),
            row=excel_row,
            label=definition.label if definition else key,
            choices="、".join(f"“{c}”" for c in (definition.choices if definition else ()))
            or "“是”、“否”",
            hazard_id=display(hid) if not _na(hid) else f"（第 {excel_row} 行）",
            status=display(record.get("status")),
            end=end.isoformat() if end else "",
            limit=MAX_MONEY,
            **extra,
        )

    _run(ret, ledger_schema(form, ret.period), frame, locate)
