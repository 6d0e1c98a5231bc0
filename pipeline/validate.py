"""Validate read returns with pandera schemas built from the form definitions (the validating stage).

`validate_returns` groups the Returns from pipeline.read by form and turns each group into tidy
DataFrames: 附件4 one row per return (a column per value code), checklists one row per item of
each inspection and one per footer field, the ledger one row per hazard. Each frame is validated
once, lazily, against a schema generated from the form data (so thousands of returns cost a
handful of pandera calls), and every failure case becomes one Issue on its return with sheet, A1
cell, rule code, value and the Chinese message of pipeline.messages. Each Check is named
"<rule code>" or "<rule code>:<column key>" (the column whose cell is reported). A cell gets at
most one issue (an error before a warning), and one that already has a reading error is not
reported again. A rule between cells (A2 ≤ A1, dates in order …) is not reported for a row where
one of the cells it compares already failed a check of its own: the clerk fixes that one cell.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from pipeline.checks_vec import (
    column_memo,
    compare_mask,
    compared,
    credit_code_mask,
    date_not_after_mask,
    date_not_before_mask,
    dates_in_order_mask,
    filled_mask,
    first_of_pairs,
    id_codes,
    is_na,
    member_mask,
    na_mask,
    objects,
    places_mask,
    whole_mask,
)
from pipeline.forms import (
    ChecklistForm,
    Form,
    LedgerForm,
    ProgressForm,
    load_calendar,
    load_forms,
    period_end,
)
from pipeline.layout import LedgerLayout, a1
from pipeline.messages import CATALOGUE, make_issue
from pipeline.model import Issue, Return
from pipeline.normalize import credit_code_problem, display
from pipeline.read import OnFile, collector_paused, progress_label, read_inbox

MAX_COUNT = Decimal(100_000)  # a county's cumulative count above this is a typing error
MAX_MONEY = Decimal(100_000)  # 万元, i.e. 10 亿元
MONEY_DECIMALS = 4
ZERO = Decimal(0)

# Ledger vocabulary (DESIGN §7): the status values and the columns the closure rules talk about.
OPEN, RECTIFIED, CLOSED = "整改中", "已整改待验收", "已验收销号"
YES, NO = "是", "否"
EVENT_DATES = ("found_date", "rectified_date", "closed_date")  # things that already happened
RET = "_ret"  # the column holding each row's position in the batch of returns


def validate_returns(returns: list[Return]) -> None:
    """Add validation issues to every read return and settle its status (in place)."""
    forms = load_forms()
    groups: dict[str, list[Return]] = {}
    for ret in returns:
        if ret.status != "ignored" and ret.form_id in forms and not _unreadable(ret):
            groups.setdefault(str(ret.form_id), []).append(ret)
    for form_id, batch in groups.items():
        try:
            with collector_paused():
                _validate_batch(forms[form_id], batch)
        except Exception:
            # a bug must not stop the run: find the return that trips it and say so on it
            for ret in batch:
                before = len(ret.issues)
                try:
                    _validate_batch(forms[form_id], [ret])
                except Exception as exc:
                    del ret.issues[before:]
                    detail = f"{type(exc).__name__}: {exc}"[:300]
                    ret.add(make_issue("file-read-failed", detail=detail))
    for ret in returns:
        if ret.status != "ignored":
            _sort_issues(ret)
        ret.settle()


def validate_return(ret: Return) -> None:
    """Add the validation issues of one read return (does not settle it)."""
    if ret.form_id is not None and not _unreadable(ret):
        _validate_batch(load_forms()[ret.form_id], [ret])


def validate_inbox(inbox: Path, *, on_file: OnFile | None = None, jobs: int = 1) -> list[Return]:
    """read_inbox + validate_returns.

    `on_file` sees each return as soon as it is read (for a progress bar); the returns are
    validated together afterwards, so its status there is the reading stage's.
    """
    returns = read_inbox(inbox, on_file=on_file, jobs=jobs)
    validate_returns(returns)
    return returns


def _unreadable(ret: Return) -> bool:
    """Nothing to validate when the file could not be opened or its sheet not found."""
    return any(
        (i.rule.startswith("file-") and i.severity == "error") or i.rule == "sheet-missing"
        for i in ret.issues
    )


def _validate_batch(form: Form, batch: list[Return]) -> None:
    if isinstance(form, ProgressForm):
        _validate_progress(batch, form)
    elif isinstance(form, ChecklistForm):
        _validate_checklists(batch, form)
    elif isinstance(form, LedgerForm):
        _validate_ledger(batch, form)


def _sort_issues(ret: Return) -> None:
    """File-level issues first, then by sheet (in order of first mention), row and column."""
    sheets: dict[str, int] = {}
    for issue in ret.issues:
        sheets.setdefault(issue.sheet, len(sheets))

    def key(pair: tuple[int, Issue]) -> tuple[int, int, int, int, int]:
        index, issue = pair
        match = re.fullmatch(r"([A-Z]+)(\d+)(?::[A-Z]+\d+)?", issue.cell)
        if not match:
            return (0, sheets[issue.sheet], 0, 0, index)
        col = 0
        for ch in match.group(1):
            col = col * 26 + ord(ch) - 64
        return (1, sheets[issue.sheet], int(match.group(2)), col, index)

    ret.issues = [issue for _, issue in sorted(enumerate(ret.issues), key=key)]


# --- the pandera runner ----------------------------------------------------------------------

# (check name, failing column or None for a row-wide check, row position) -> issue or None
Locator = Callable[[str, str | None, int], Issue | None]
# a rule between cells: its check's name -> the frame columns it compares
Operands = Mapping[str, frozenset[str]]


def _operands(pairs: Iterable[tuple[str, Iterable[str]]]) -> dict[str, frozenset[str]]:
    """Check name -> the columns it compares (a name given twice: the union)."""
    out: dict[str, frozenset[str]] = {}
    for name, columns in pairs:
        out[name] = out.get(name, frozenset()) | frozenset(columns)
    return out


def _run(
    batch: Sequence[Return],
    schema: pa.DataFrameSchema,
    frame: pd.DataFrame,
    locate: Locator,
    operands: Operands | None = None,
) -> None:
    """Validate lazily; each failure (check, column, row) becomes one issue on the row's return.

    `operands` names the checks that compare cells and the columns each compares: such a
    check's failure in a row is dropped when one of its columns failed an error check of its
    own in that row (a column check, or a row-wide check named after that one column), since
    the comparison then only echoes that error ("A2 > A1" for an A1 of -1).
    """
    operands = operands or {}
    if frame.empty:
        return
    try:
        # inplace: the frame is ours and nothing is coerced, so pandera need not copy it
        with column_memo():
            schema.validate(frame, lazy=True, inplace=True)
        return
    except SchemaErrors as exc:
        # a cell gets one issue: a column's own check (type, choice) before a cross-column
        # rule, each kind in the order the schema declares it. Sorted here, stably, on every
        # key: pandera lists the failures sorted by context with an unstable sort, so which
        # check won a cell (and the issues' order) depended on how many failures there were.
        cases = exc.failure_cases
        by_column = (cases["schema_context"] == "Column").to_numpy()
        positions = {name: i for i, name in enumerate(frame.columns)}
        order = pd.DataFrame(
            {
                "context": ~by_column,
                # a row-wide check's failures name every column of the row: not a key there
                "column": [
                    positions.get(c, -1) if own else -1
                    for c, own in zip(cases["column"], by_column, strict=True)
                ],
                "check": pd.to_numeric(cases["check_number"], errors="coerce")
                .fillna(-1)
                .to_numpy(),
                "row": pd.to_numeric(cases["index"], errors="coerce").fillna(-1).to_numpy(),
            }
        )
        keys = ["context", "column", "check", "row"]
        cases = cases.iloc[order.sort_values(keys, kind="stable").index.to_numpy()]
    failures: list[tuple[str, str | None, int]] = []
    for case in cases.itertuples(index=False):
        check = str(case.check)
        if case.index is None or (isinstance(case.index, float) and pd.isna(case.index)):
            # a check that itself failed: a bug, which validate_returns pins on a return
            raise RuntimeError(f"校验规则 {check} 运行出错：{case.failure_case}")
        column = None if case.schema_context == "DataFrameSchema" else str(case.column)
        failures.append((check, column, int(case.index)))
    # (row, column) whose cell failed an error check of its own: rules comparing it are moot
    wrong: set[tuple[int, str]] = set()
    for check, column, row in failures:
        code, key = _split(check)
        rule = CATALOGUE.get(code)
        own = check not in operands and (column or key)
        if own and (rule is None or rule.severity == "error"):
            wrong.add((row, column or key))
    owners = frame[RET].tolist()
    # per return, the cells holding an issue: True for an error (of this run or the reading
    # stage), else this run's warning, which an error for the same cell replaces
    placed: dict[int, dict[tuple[str, str], Issue | bool]] = {}
    seen: set[tuple[str, str | None, int]] = set()
    for check, column, row in failures:
        if (check, column, row) in seen:
            continue  # a row-wide check lists every column of a failing row
        seen.add((check, column, row))
        if any((row, c) in wrong for c in operands.get(check, ())):
            continue
        owner = int(owners[row])
        ret = batch[owner]
        if owner not in placed:
            placed[owner] = {(i.sheet, i.cell): True for i in ret.issues if i.severity == "error"}
        issue = locate(check, column, row)
        if issue is None:
            continue
        where = (issue.sheet, issue.cell)
        held = placed[owner].get(where)
        if held is True or (held is not None and issue.severity != "error"):
            continue
        if isinstance(held, Issue):  # a warning of this run gives way to the error
            ret.issues = [i for i in ret.issues if i is not held]
        placed[owner][where] = True if issue.severity == "error" else issue
        ret.add(issue)


def _check(name: str, fn: Callable[[pd.DataFrame], Any]) -> pa.Check:
    """A row-wise check over the whole frame: `fn` gives one bool per row."""

    def series(df: pd.DataFrame) -> pd.Series:
        out = fn(df)
        if isinstance(out, pd.Series):
            return out.astype(bool)
        if isinstance(out, np.ndarray) and out.dtype == bool:
            return pd.Series(out, index=df.index)
        return pd.Series(list(out), index=df.index).astype(bool)

    return pa.Check(series, name=name, error=name, ignore_na=False)


def _col_check(name: str, fn: Callable[[pd.Series], np.ndarray]) -> pa.Check:
    """A column check: `fn` gives one bool per value of the column, all at once (pipeline.
    checks_vec); blanks pass every check but _present (they are someone else's rule)."""

    def series(s: pd.Series) -> pd.Series:
        return pd.Series(np.asarray(fn(s), dtype=bool), index=s.index)

    return pa.Check(series, name=name, error=name, ignore_na=False)


_na = is_na  # a blank cell: None or a float NaN


def _number_checks(is_money: bool) -> list[pa.Check]:
    """Sign, decimals and size of a count or a 万元 amount (blanks pass)."""
    checks = [_col_check("value-negative", lambda s: compare_mask(s, operator.ge, ZERO))]
    if is_money:
        return [
            *checks,
            _col_check("value-too-many-decimals", lambda s: places_mask(s, MONEY_DECIMALS)),
            _col_check("value-too-large", lambda s: compare_mask(s, operator.le, MAX_MONEY)),
        ]
    return [
        *checks,
        _col_check("value-not-integer", whole_mask),
        _col_check("value-too-large", lambda s: compare_mask(s, operator.le, MAX_COUNT)),
    ]


def _split(check: str) -> tuple[str, str]:
    """(rule code, column) of a check named "code:column", or "code:column#variant" when one
    rule has two checks on a column (each with its own operands)."""
    code, _, key = check.partition(":")
    return code, key.partition("#")[0]


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Object columns (None stays None), the batch position as int."""
    data = {c: pd.Series([r.get(c) for r in rows], dtype=object) for c in columns}
    data[RET] = pd.Series([r[RET] for r in rows], dtype="int64")
    return pd.DataFrame(data)


def _period_ends() -> Callable[[str], dt.date]:
    """period_end, worked out once per period (a batch has thousands of returns, few periods)."""
    ends: dict[str, dt.date] = {}

    def end_of(period: str) -> dt.date:
        if period not in ends:
            ends[period] = period_end(period)
        return ends[period]

    return end_of


def _object_series(values: Sequence[Any] | np.ndarray) -> pd.Series:
    """Each value an element as it is (a list stays one element, a str is not inferred)."""
    return pd.Series(objects(values), dtype=object)


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return "" if _na(value) else display(value)


# --- 附件4 -------------------------------------------------------------------------------------


def progress_schema(form: ProgressForm) -> pa.DataFrameSchema:
    """One row per return, one column per value code: presence, type and range checks from each
    value's unit, then the form's [[rules]], each reported at its left-hand item."""
    columns: dict[str, pa.Column] = {}
    for value in form.values:
        checks = [_present("progress-missing"), *_number_checks(value.is_money)]
        columns[value.code] = pa.Column(None, checks=checks, nullable=True, required=True)
    rule_checks = [
        _check(f"{rule.code}:{left}", _rule_fn(rule.kind, left, rule.right))
        for rule in form.rules
        for left in rule.left
    ]
    return pa.DataFrameSchema(columns=columns, checks=rule_checks, name=form.id)


def progress_operands(form: ProgressForm) -> dict[str, frozenset[str]]:
    """Each [[rules]] check of progress_schema -> the two items it compares."""
    return _operands(
        (f"{rule.code}:{left}", (left, rule.right)) for rule in form.rules for left in rule.left
    )


def _rule_fn(kind: str, left: str, right: str) -> Callable[[pd.DataFrame], list[bool]]:
    def ok(lv: Any, rv: Any) -> bool:
        if _na(lv) or _na(rv):
            return True  # a missing value is its own issue
        lv, rv = Decimal(lv), Decimal(rv)
        return bool(lv <= rv) if kind == "le" else not (lv > 0 and rv <= 0)

    return lambda df: [ok(lv, rv) for lv, rv in zip(df[left], df[right], strict=True)]


def _validate_progress(batch: list[Return], form: ProgressForm) -> None:
    codes = list(form.value_codes)
    frame = _frame([{**r.progress, RET: i} for i, r in enumerate(batch)], codes)
    rules = {r.code: r for r in form.rules}

    def locate(check: str, column: str | None, row: int) -> Issue | None:
        ret = batch[row]
        rule_code, left = _split(check)
        code = column or left
        sheet, cell = ret.progress_cells.get(code, ("", ""))
        number = ret.progress.get(code)
        label = progress_label(form, code)
        rule = rules.get(rule_code)
        if rule is not None:
            return make_issue(
                rule.code,
                sheet=sheet,
                cell=cell,
                value=_show(number),
                left_label=label,
                right_label=progress_label(form, rule.right, beside=code),
                right_value=_show(ret.progress.get(rule.right)),
            )
        limit = MAX_MONEY if form.value(code).is_money else MAX_COUNT
        return make_issue(
            rule_code, sheet=sheet, cell=cell, value=_show(number), label=label, limit=limit
        )

    _run(batch, progress_schema(form), frame, locate, progress_operands(form))


# --- 附件1–3 -----------------------------------------------------------------------------------


def checklist_items_schema(form: ChecklistForm) -> pa.DataFrameSchema:
    """One row per checklist item of each inspection: ticks and the hazard details."""

    def hazard(df: pd.DataFrame) -> pd.Series:
        return df["hazard"].astype(bool)

    def present(df: pd.DataFrame, key: str) -> np.ndarray:
        return ~na_mask(df[key])

    def flag(df: pd.DataFrame, key: str) -> pd.Series:
        return df[key].astype(bool)

    checks = [
        # the two tick rules name the row's tick cells (E8:G8), so all of them get marked
        _check("checklist-no-tick:ticks", lambda df: (df["n_ticks"] > 0) | flag(df, "tick_error")),
        _check("checklist-multiple-ticks:ticks", lambda df: df["n_ticks"] <= 1),
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
            lambda df: ~hazard(df) | present(df, "deadline") | flag(df, "deadline_error"),
        ),
    ]
    if form.has_major_column:
        checks += [
            _check(
                "checklist-major-missing:majors",
                lambda df: ~hazard(df) | (df["n_major"] > 0) | flag(df, "major_error"),
            ),
            _check("checklist-major-multiple:majors", lambda df: df["n_major"] <= 1),
        ]
    return pa.DataFrameSchema(columns={"no": pa.Column(None)}, checks=checks, name=form.id)


# The columns of a checklist frame. Keep them as they are: pandera lists a failing row of a
# frame-wide check once per column and then sorts its failure cases with an unstable sort, so
# the number of columns decides the order issues are found in, and with it which of a
# return's sheets comes first in its list of issues.
_ITEM_COLUMNS = (
    "sheet", "no", "answer", "hazard", "n_ticks", "ticks", "tick_error", "description",
    "requirement", "deadline", "deadline_error", "n_major", "major_error", "cells",
)  # fmt: skip
_DETAIL_COLUMNS = (
    "ticks", "tick_error", "description", "requirement", "deadline", "deadline_error",
    "major_error", "cells",
)  # fmt: skip


def _validate_checklists(batch: list[Return], form: ChecklistForm) -> None:
    # column by column, the loops in C: a province's checklists have 150,000 item rows
    nos = [item.no for item in form.items]
    hazard_answers = [item.hazard_answer for item in form.items]
    owner: list[int] = []
    sheets: list[str] = []
    numbers: list[Any] = []
    answers: list[Any] = []
    hazards: list[bool] = []
    found: list[dict[str, Any]] = []  # each row's details as read
    for i, ret in enumerate(batch):
        for inspection in ret.inspections:
            looked_up = list(map(inspection.details.get, nos))
            details = [d for d in looked_up if d is not None]
            row_nos, row_hazard_answers = nos, hazard_answers
            if len(details) < len(nos):  # items reported while reading (checklist-item-missing)
                keep = [k for k, d in enumerate(looked_up) if d is not None]
                row_nos = [nos[k] for k in keep]
                row_hazard_answers = [hazard_answers[k] for k in keep]
            row_answers = list(map(inspection.answers.get, row_nos))
            found += details
            numbers += row_nos
            answers += row_answers
            hazards += map(operator.eq, row_answers, row_hazard_answers)
            owner += [i] * len(details)
            sheets += [inspection.sheet] * len(details)
    count = len(found)

    def counted(key: str) -> pd.Series:
        return pd.Series(
            np.fromiter(map(len, map(operator.itemgetter(key), found)), np.int64, count)
        )

    data: dict[str, pd.Series] = {
        "sheet": _object_series(sheets),
        "no": _object_series(numbers),
        "answer": _object_series(answers),
        "hazard": _object_series(hazards),
        "n_ticks": counted("ticks"),
        "n_major": counted("major_ticks"),
    }
    for key in _DETAIL_COLUMNS:  # one pass over the details per key, in C
        data[key] = _object_series(np.fromiter(map(operator.itemgetter(key), found), object, count))
    items = pd.DataFrame(
        {c: data[c] for c in _ITEM_COLUMNS} | {RET: pd.Series(owner, dtype="int64")}
    )

    def locate(check: str, _column: str | None, row: int) -> Issue | None:
        details = found[row]
        code, key = _split(check)
        spans, ticks = details["spans"], details["ticks"]
        if key in spans:
            row_, first_col, last_col = spans[key]
            cell = f"{a1(row_, first_col)}:{a1(row_, last_col)}"
        else:
            cell = details["cells"][key]
        return make_issue(
            code,
            sheet=sheets[row],
            cell=cell,
            value="、".join(ticks) if code == "checklist-multiple-ticks" else "",
            no=numbers[row],
            answer=answers[row] or "",
            ticks="、".join(f"“{t}”" for t in ticks),
            what=form.description_label,
        )

    _run(batch, checklist_items_schema(form), items, locate)
    _validate_footers(batch, form)


def _validate_footers(batch: list[Return], form: ChecklistForm) -> None:
    start = load_calendar().start_date
    end_of = _period_ends()
    fields = ("sheet", "label", "value", "cell", "end")
    rows: list[tuple[Any, ...]] = []  # RET, then the fields
    for i, ret in enumerate(batch):
        end = end_of(ret.period) if ret.period else None
        for inspection in ret.inspections:
            for f in form.footer:
                if f.key not in inspection.footer_cells:
                    continue  # its label was not found: reported while reading
                value, cell = inspection.footer.get(f.key), inspection.footer_cells[f.key]
                rows.append((i, inspection.sheet, f.label, value, cell, end))
    columns = list(zip(*rows, strict=True)) if rows else [()] * (len(fields) + 1)
    frame = pd.DataFrame(
        {c: _object_series(v) for c, v in zip(fields, columns[1:], strict=True)}
        | {RET: pd.Series(columns[0], dtype="int64")}
    )

    schema = pa.DataFrameSchema(
        columns={"value": pa.Column(None, nullable=True)},
        checks=[
            _check("checklist-footer-missing", lambda df: ~na_mask(df["value"])),
            _check(
                "checklist-date-before-campaign",
                lambda df: date_not_before_mask(df["value"], start),
            ),
            _check(
                "checklist-date-after-period",
                lambda df: date_not_after_mask(df["value"], df["end"]),
            ),
        ],
        name=f"{form.id}-footer",
    )

    def locate(check: str, _column: str | None, row: int) -> Issue | None:
        _owner, sheet, label, value, cell, end = rows[row]
        return make_issue(
            check,
            sheet=sheet,
            cell=cell,
            value=_show(value),
            label=label,
            start=start.isoformat(),
            end=end.isoformat() if end else "",
        )

    _run(batch, schema, frame, locate)


# --- 台账 ----------------------------------------------------------------------------------------


def ledger_schema(form: LedgerForm) -> pa.DataFrameSchema:
    """Column checks from each column's definition, then the closure rules across columns.

    The frame holds the ledger rows of a batch of returns: column RET tells whose row it is
    (隐患编号 must be unique within a return) and "_end" is that return's period end.
    """
    columns: dict[str, pa.Column] = {}
    for column in form.columns:
        checks: list[pa.Check] = []
        if column.required:
            checks.append(_present("ledger-required-missing"))
        if column.type in ("choice", "bool"):
            checks.append(
                _col_check("ledger-choice-invalid", _member_of(column.choices or ("是", "否")))
            )
        if column.type == "credit_code":
            checks.append(_col_check("ledger-credit-code-invalid", credit_code_mask))
        if column.type == "money":
            checks += _number_checks(is_money=True)
        columns[column.key] = pa.Column(None, checks=checks, nullable=True, required=True)
    checks, _operands_of = _ledger_row_checks(form)
    return pa.DataFrameSchema(columns=columns, checks=checks, name=form.id)


def ledger_operands(form: LedgerForm) -> dict[str, frozenset[str]]:
    """Each closure rule of ledger_schema that compares cells -> the columns it compares."""
    return _ledger_row_checks(form)[1]


def _member_of(allowed: tuple[str, ...]) -> Callable[[pd.Series], np.ndarray]:
    return lambda s: member_mask(s, allowed)


def _present(name: str) -> pa.Check:
    """A column check that fails on blank cells and strings of spaces (every other check lets
    blanks pass)."""
    return _col_check(name, filled_mask)


def _open_needs(key: str, value: str = "") -> Callable[[pd.DataFrame], np.ndarray]:
    """An open hazard (整改中) needs `key` filled (and equal to `value` when given)."""

    def fn(df: pd.DataFrame) -> np.ndarray:
        is_open = compared(df["status"], "==", OPEN)
        filled = ~na_mask(df[key])
        if value:
            return ~is_open | ~filled | compared(df[key], "==", value)
        return ~is_open | filled

    return fn


def _ledger_row_checks(form: LedgerForm) -> tuple[list[pa.Check], dict[str, frozenset[str]]]:
    """The row-wide checks, and for those comparing cells the columns each compares."""
    keys = {c.key for c in form.columns}
    start = load_calendar().start_date
    checks: list[pa.Check] = []
    pairs: list[tuple[str, tuple[str, ...]]] = []

    def across(name: str, fn: Callable[[pd.DataFrame], Any], *others: str) -> None:
        """A check reported at the column its name ends in that also reads `others`."""
        checks.append(_check(name, fn))
        pairs.append((name, (_split(name)[1], *others)))

    def has(df: pd.DataFrame, key: str) -> np.ndarray:
        return ~na_mask(df[key])

    def before(df: pd.DataFrame, early: str, late: str) -> np.ndarray:
        """Both dates there and `early` after `late` fails."""
        return dates_in_order_mask(df[early], df[late])

    def not_after_end(key: str) -> Callable[[pd.DataFrame], np.ndarray]:
        return lambda df: date_not_after_mask(df[key], df["_end"])

    def not_before_start(key: str) -> Callable[[pd.DataFrame], np.ndarray]:
        return lambda df: date_not_before_mask(df[key], start)

    def unique_ids(df: pd.DataFrame) -> np.ndarray:
        """Unique within a return, spaces and width ignored (the first one passes)."""
        first = first_of_pairs(df[RET], id_codes(df["hazard_id"]))
        return first == np.arange(len(first))

    if "hazard_id" in keys:
        checks.append(_check("ledger-duplicate-id:hazard_id", unique_ids))
    for key in EVENT_DATES:
        if key in keys:
            checks.append(_check(f"ledger-date-after-period:{key}", not_after_end(key)))
            # a warning, not an error: a hazard found before the campaign may still be open;
            # a year typed wrong (1923) is what this usually catches
            checks.append(_check(f"ledger-date-before-campaign:{key}", not_before_start(key)))
    if {"found_date", "rectified_date", "closed_date"} <= keys:
        across(
            "ledger-date-order:rectified_date",
            lambda df: before(df, "found_date", "rectified_date"),
            "found_date",
        )
        across(
            "ledger-date-order:closed_date",
            lambda df: before(df, "rectified_date", "closed_date"),
            "rectified_date",
        )
        across(  # without a 整改完成日期: 销号日期 against 发现日期 (a name of its own, so that a
            # wrong 发现日期 does not also hide the check above)
            "ledger-date-order:closed_date#unrectified",
            lambda df: ~na_mask(df["rectified_date"]) | before(df, "found_date", "closed_date"),
            "found_date",
            "rectified_date",
        )
    if "status" in keys:
        for column in form.columns:
            if column.open_required:
                across(f"ledger-open-incomplete:{column.key}", _open_needs(column.key), "status")
                if column.open_required_value:
                    across(
                        f"ledger-open-no-plan:{column.key}",
                        _open_needs(column.key, column.open_required_value),
                        "status",
                    )
        if "rectified_date" in keys:
            across(
                "ledger-status-needs-date:rectified_date",
                lambda df: (
                    ~compared(df["status"], "isin", (RECTIFIED, CLOSED)) | has(df, "rectified_date")
                ),
                "status",
            )
        if "accepted_by" in keys:
            across(
                "ledger-closed-needs-acceptor:accepted_by",
                lambda df: compared(df["status"], "!=", CLOSED) | has(df, "accepted_by"),
                "status",
            )
        if "closed_date" in keys:
            across(
                "ledger-closed-needs-date:closed_date",
                lambda df: compared(df["status"], "!=", CLOSED) | has(df, "closed_date"),
                "status",
            )
    if {"supervised", "supervision_level"} <= keys:
        across(
            "ledger-supervision-level-missing:supervision_level",
            lambda df: compared(df["supervised"], "!=", YES) | has(df, "supervision_level"),
            "supervised",
        )
        # an error, not a warning: 挂牌督办 decides whether the hazard counts in 附件4 A5/A6,
        # and which of the two cells is right cannot be guessed
        across(
            "ledger-supervision-level-unexpected:supervision_level",
            lambda df: compared(df["supervised"], "!=", NO) | ~has(df, "supervision_level"),
            "supervised",
        )
    if {"found_date", "deadline"} <= keys:
        across(
            "ledger-deadline-before-found:deadline",
            lambda df: before(df, "found_date", "deadline"),
            "found_date",
        )
    if "status" in keys:
        # a date of a step the status says has not happened yet
        for key, earlier in (("rectified_date", (OPEN,)), ("closed_date", (OPEN, RECTIFIED))):
            if key in keys:
                across(f"ledger-status-date-conflict:{key}", _no_date(key, earlier), "status")
    return checks, _operands(pairs)


def _no_date(key: str, statuses: tuple[str, ...]) -> Callable[[pd.DataFrame], np.ndarray]:
    """A hazard in one of `statuses` has `key` blank."""
    return lambda df: ~compared(df["status"], "isin", statuses) | na_mask(df[key])


def _validate_ledger(batch: list[Return], form: LedgerForm) -> None:
    keys = [c.key for c in form.columns]
    names = [*keys, "_sheet", "_row"]
    # one block of objects, a row per column, that the frame is a view of (a province's ledgers
    # are 200,000 rows: no dict per row until one fails)
    end_of = _period_ends()
    tables: list[np.ndarray] = []
    counts: list[int] = []
    ends: list[dt.date | None] = []
    where: list[dict[str, int]] = []
    # per return, the columns its header lacks: no rule reads their (never read) cells, the
    # reading stage's ledger-column-missing is the one issue about them
    absent: list[frozenset[str]] = []
    for ret in batch:
        ledger = ret.ledger
        found = ledger.attrs.get("columns") if ledger is not None else None
        where.append(dict(found or {}))
        absent.append(frozenset(keys).difference(found) if found is not None else frozenset())
        rows = 0 if ledger is None or ledger.empty else len(ledger)
        counts.append(rows)
        if ledger is None or not rows:
            ends.append(None)
            continue
        ends.append(end_of(ret.period) if ret.period else None)
        # the whole table at once: ledger[c] would deep-copy the frame's attrs for each column
        table = ledger.to_numpy(dtype=object)
        if list(ledger.columns) != names:
            position = {c: j for j, c in enumerate(ledger.columns)}
            table = np.stack(
                [
                    table[:, position[c]] if c in position else np.full(rows, None, dtype=object)
                    for c in names
                ],
                axis=1,
            )
        tables.append(table)
    block = np.empty((len(names) + 1, sum(counts)), dtype=object)
    if tables:
        np.concatenate(tables, axis=0, out=block[: len(names)].T)
    block[len(names)] = np.repeat(objects(ends), counts)  # "_end"
    owners = np.repeat(np.arange(len(batch), dtype=np.int64), counts)
    frame = pd.DataFrame(block.T, columns=[*names, "_end"], dtype=object, copy=False)
    frame[RET] = owners
    cols: dict[str, np.ndarray] = {c: block[k] for k, c in enumerate([*names, "_end"])}
    cols[RET] = owners
    lay = LedgerLayout(form=form)
    labels = {c.key: c for c in form.columns}
    firsts: list[np.ndarray] = []

    def first_row(row: int) -> int:
        """The Excel row of the return's first hazard with the 隐患编号 of `row`."""
        if not firsts:  # worked out once, when a duplicate is found
            firsts.append(first_of_pairs(cols[RET], id_codes(cols["hazard_id"])))
        return int(cols["_row"][firsts[0][row]])

    operands = ledger_operands(form)

    def locate(check: str, column: str | None, row: int) -> Issue | None:
        code, key = _split(check)
        key = column or key
        missing = absent[int(cols[RET][row])]
        if missing and (key in missing or not missing.isdisjoint(operands.get(check, ()))):
            return None
        record: dict[str, Any] = {c: values[row] for c, values in cols.items()}
        record[RET] = int(record[RET])
        col = where[record[RET]].get(key, lay.col(key) if key in labels else 0)
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
            extra = {"other_label": labels[other].label, "other": _show(record.get(other))}
        elif code == "ledger-deadline-before-found":
            extra = {"other": _show(record.get("found_date"))}
        elif code == "ledger-status-date-conflict":
            closing = key == "closed_date"
            extra = {
                "should": CLOSED if closing else RECTIFIED,
                "done": "验收销号" if closing else "整改完成",
            }
        elif code == "ledger-credit-code-invalid":
            extra = {"reason": credit_code_problem(str(value)) or ""}
        elif code == "ledger-duplicate-id":
            extra = {"first_row": first_row(row)}
        hid = record.get("hazard_id")
        end = record["_end"]
        choices = definition.choices if definition and definition.choices else ("是", "否")
        label = definition.label if definition else key
        if code.startswith("value-"):  # the catalogue's generic value messages: name the row
            label = f"第 {excel_row} 行{label}"
        return make_issue(
            code,
            sheet=str(record["_sheet"]),
            cell=a1(excel_row - 1, col),
            value=_show(value),
            row=excel_row,
            label=label,
            choices="、".join(f"“{c}”" for c in choices),
            hazard_id=display(hid) if not _na(hid) else f"（第 {excel_row} 行）",
            status=_show(record.get("status")),
            end=end.isoformat() if end else "",
            start=load_calendar().start_date.isoformat(),
            limit=MAX_MONEY,
            **extra,
        )

    _run(batch, ledger_schema(form), frame, locate, operands)
