"""Vectorised twins of the per-cell predicates that pipeline.validate runs on whole columns.

validate.py checks a tidy frame per form and batch (a province's ledger frame is 200,000 rows), so
a predicate called once per cell in Python costs seconds. Each function here takes a column (a
pandas Series or a 1-D object array) and returns one numpy bool per element: exactly the verdict
of the element-wise predicate its docstring names, for *every* value, not only the typed ones
pipeline.read produces. Values of the exact types read produces (str, Decimal, datetime.date,
None) are decided with numpy and C-level builtins; any other value (a float, a subclass, whatever
a bug upstream put there) goes through the element-wise predicate itself, which raises where it
raised. tests/test_validate_vec.py compares every function with its predicate over many values.

A pass over 200,000 values costs milliseconds, most of it fetching each object from memory, so
the facts about a column are gathered in as few passes as can be and kept in a Column.
`column_memo()` scopes a memo of them: one validation asks about the same column many times (a
ledger's 整改完成日期 is read by seven rules). The memo is keyed by the column's data buffer and
holds the array, so the buffer stays alive and cannot be reused by another column while the memo
lives; frames must not be modified inside the scope.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipeline.normalize import (
    CREDIT_ALPHABET,
    CREDIT_WEIGHTS,
    credit_code_problem,
    decimal_places,
    fold,
)

Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]
Indices = npt.NDArray[np.intp]
Values = pd.Series | Iterable[Any]

NoneType = type(None)
# exact types whose `v == None` is False without calling anything odd (numpy compares a whole
# column with None in C faster than it can ask each value its type)
_NONE_SAFE = frozenset({str, dt.date, Decimal, int, bool, float})


def is_na(value: Any) -> bool:
    """A blank cell: None or a float NaN (nothing else: not pd.NA, NaT or Decimal NaN)."""
    return value is None or (isinstance(value, float) and bool(pd.isna(value)))


def objects(values: Values) -> Objects:
    """The values as a 1-D object array, as Series.map would see them (no copy when possible)."""
    if isinstance(values, pd.Series):
        return np.asarray(values.to_numpy(dtype=object, copy=False), dtype=object)
    if isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1:
        return values
    items = list(values)
    return np.fromiter(items, dtype=object, count=len(items))  # a tuple stays one element


class Column:
    """What the checks ask of a column, each worked out once: its values as a list, the types of
    the values and the positions of each, the blank cells."""

    __slots__ = ("_codes", "_items", "_kinds", "_na", "_where", "derived", "values")

    def __init__(self, values: Objects) -> None:
        self.values = values
        self._items: list[Any] | None = None
        self._kinds: list[type] | None = None
        self._codes: Indices | None = None
        self._where: dict[type, Indices] = {}
        self._na: Bools | None = None
        self.derived: dict[tuple[Any, ...], Bools] = {}  # see compared()

    def __len__(self) -> int:
        return len(self.values)

    @property
    def items(self) -> list[Any]:
        if self._items is None:
            self._items = self.values.tolist()
        return self._items

    def kinds(self) -> list[type]:
        """The distinct types of the values, in a fixed order."""
        if self._kinds is None:
            found = set(map(type, self.items))
            self._kinds = sorted(found, key=lambda t: (t.__module__, t.__qualname__, id(t)))
        return self._kinds

    def where(self, kind: type) -> Indices:
        """Positions of the values whose type is exactly `kind`."""
        if kind not in self._where:
            kinds = self.kinds()
            if kinds == [kind]:
                self._where[kind] = np.arange(len(self))
            elif kind not in kinds:
                self._where[kind] = np.zeros(0, dtype=np.intp)
            elif len(kinds) == 2 and NoneType in kinds and set(kinds) - {NoneType} <= _NONE_SAFE:
                blank = np.asarray(self.values == None, dtype=bool)  # noqa: E711 (elementwise)
                other = kinds[0] if kinds[1] is NoneType else kinds[1]
                self._where[NoneType] = np.flatnonzero(blank)
                self._where[other] = np.flatnonzero(~blank)
            else:
                if self._codes is None:  # the number of each value's type in kinds
                    number = {k: n for n, k in enumerate(kinds)}
                    types = map(type, self.items)
                    self._codes = np.fromiter(map(number.__getitem__, types), np.intp, len(self))
                self._where[kind] = np.flatnonzero(self._codes == kinds.index(kind))
        return self._where[kind]

    def part(self, kind: type) -> tuple[Indices, Objects, list[Any]]:
        """(positions, values, values as a list) of the values of type `kind`."""
        where = self.where(kind)
        if len(where) == len(self):
            return where, self.values, self.items
        sub = self.values[where]
        return where, sub, sub.tolist()

    @property
    def na(self) -> Bools:
        """is_na of every value: the Nones, and the floats that are NaN."""
        if self._na is None:
            na = np.zeros(len(self), dtype=bool)
            for kind in self.kinds():
                if kind is NoneType:
                    na[self.where(kind)] = True
                elif issubclass(kind, float):
                    where, _sub, items = self.part(kind)
                    na[where] = [is_na(v) for v in items]
            self._na = na
        return self._na


_MEMO: contextvars.ContextVar[dict[tuple[int, int, int], Column] | None] = contextvars.ContextVar(
    "pipeline_checks_vec_memo", default=None
)


@contextlib.contextmanager
def column_memo() -> Iterator[None]:
    """Remember each column's Column facts until the block ends (see the module docstring)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def column(values: Values | Column) -> Column:
    """The Column facts of `values`, from the memo when one is active and knows them."""
    if isinstance(values, Column):
        return values
    memo = _MEMO.get()
    if memo is None or not (isinstance(values, pd.Series) and values.dtype == object):
        return Column(objects(values))
    arr = objects(values)
    key = (int(arr.__array_interface__["data"][0]), len(arr), int(arr.strides[0]))
    found = memo.get(key)
    if found is None:
        found = memo[key] = Column(arr)  # holds arr: the buffer cannot be freed and reused
    return found


Fast = Callable[[Objects, list[Any]], Bools]  # (values of one type, the same as a list) -> bools


def _by_kind(
    col: Column,
    fast: dict[type, Fast],
    slow: Callable[[Any], Any],
    *,
    blank: bool | None = None,
    by_type: Callable[[type], bool | None] = lambda _kind: None,
) -> Bools:
    """One bool per value: `fast[type]` on all the values of each type it knows at once,
    `by_type(type)` for a type whose values all get the same verdict (None when they do not),
    bool(slow(v)) one by one on the others; when `blank` is not None, blanks (is_na) give it
    without a call, as `is_na(v) or slow(v)` would."""
    out = np.zeros(len(col), dtype=bool)
    for kind in col.kinds():
        if blank is not None and kind is NoneType:
            out[col.where(kind)] = blank
            continue
        same = by_type(kind)
        if same is not None:
            out[col.where(kind)] = same
            continue
        where, sub, items = col.part(kind)
        verdict = fast.get(kind)
        if verdict is not None:
            out[where] = verdict(sub, items)
        elif blank is None:
            out[where] = [bool(slow(v)) for v in items]
        else:
            out[where] = [blank if is_na(v) else bool(slow(v)) for v in items]
    return out


def compared(values: pd.Series, op: str, other: Any) -> Bools:
    """`values == other`, `values != other` or `values.isin(other)` (op "==", "!=", "isin"), as
    pandas works it out (blanks are unequal to everything), once per column within a memo."""
    col = column(values)
    key = (op, other)
    if key not in col.derived:
        if op == "==":
            result = values == other
        elif op == "!=":
            result = values != other
        else:
            result = values.isin(list(other))
        col.derived[key] = np.asarray(result, dtype=bool)
    return col.derived[key].copy()


# --- presence ----------------------------------------------------------------------------------


def filled(value: Any) -> bool:
    """A cell with something in it: not blank, and not a string of spaces."""
    return not is_na(value) and not (isinstance(value, str) and not value.strip())


def _filled_str(_sub: Objects, items: list[Any]) -> Bools:
    return np.fromiter(map(bool, map(str.strip, items)), dtype=bool, count=len(items))


def _not_text(kind: type) -> bool | None:
    """Every value of this type is filled (a date, a number), or None: ask each."""
    return None if issubclass(kind, str | float) else True


def filled_mask(values: Values | Column) -> Bools:
    """filled() of every value."""
    return _by_kind(column(values), {str: _filled_str}, filled, blank=False, by_type=_not_text)


def na_mask(values: Values | Column) -> Bools:
    """is_na() of every value."""
    return column(values).na.copy()


# --- choices -------------------------------------------------------------------------------------


def member_mask(values: Values | Column, allowed: tuple[Any, ...]) -> Bools:
    """`is_na(v) or v in allowed` for every value (blanks are another rule's business)."""
    fast: dict[type, Fast] = {}
    if all(type(a) is str for a in allowed):  # str equality is set membership
        choices = frozenset(allowed)

        def among(_sub: Objects, items: list[Any]) -> Bools:
            return np.fromiter(map(choices.__contains__, items), dtype=bool, count=len(items))

        fast[str] = among
    return _by_kind(column(values), fast, lambda v: v in allowed, blank=True)


# --- numbers -------------------------------------------------------------------------------------


def compare_mask(values: Values | Column, op: Callable[[Any, Any], Any], bound: Decimal) -> Bools:
    """`is_na(v) or op(Decimal(v), bound)` for every value (op: operator.ge, operator.le …)."""

    def exact(sub: Objects, _items: list[Any]) -> Bools:  # Decimal(d) == d: compare d itself
        return np.asarray(op(sub, bound), dtype=bool)

    return _by_kind(column(values), {Decimal: exact}, lambda v: op(Decimal(v), bound), blank=True)


def whole_mask(values: Values | Column) -> Bools:
    """`is_na(v) or Decimal(v) == Decimal(v).to_integral_value()` for every value."""

    def exact(sub: Objects, items: list[Any]) -> Bools:
        integral = np.fromiter(map(Decimal.to_integral_value, items), dtype=object, count=len(sub))
        return np.asarray(sub == integral, dtype=bool)

    def slow(v: Any) -> bool:
        return bool(Decimal(v) == Decimal(v).to_integral_value())

    return _by_kind(column(values), {Decimal: exact}, slow, blank=True)


_DEFAULT_TRAPS = frozenset({decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow})


def _few_places_quick(items: list[Decimal], places: int) -> Bools:
    """True where `decimal_places(d) <= places` is sure, False where it must be worked out.

    d == d.quantize(10**-places) says d has no digit below 10**-places, and that quantize did not
    fail (it fails quietly here, giving NaN, for a special value or a result longer than the
    precision P) says d is below 10**(P - places). Then normalize() only strips zeros: its
    rounding to P digits falls below 10**-places, where d has none, so decimal_places(d) is at
    most `places`. Any other d (too many places, or more than P digits) is left to the caller.
    """
    context = decimal.getcontext().copy()
    if {t for t, on in context.traps.items() if on} - _DEFAULT_TRAPS:
        return np.zeros(len(items), dtype=bool)  # normalize() might raise on rounding: ask it
    context.traps = dict.fromkeys(context.traps, False)
    quantum = Decimal(1).scaleb(-places)
    rounded = map(context.quantize, items, repeat(quantum))
    return np.fromiter(map(Decimal.__eq__, items, rounded), dtype=bool, count=len(items))


def places_mask(values: Values | Column, places: int) -> Bools:
    """`is_na(v) or decimal_places(Decimal(v)) <= places` for every value."""

    def exact(sub: Objects, items: list[Any]) -> Bools:
        ok = _few_places_quick(items, places)
        for i in np.flatnonzero(~ok):
            ok[i] = decimal_places(items[i]) <= places
        return ok

    def slow(v: Any) -> bool:
        return decimal_places(Decimal(v)) <= places

    return _by_kind(column(values), {Decimal: exact}, slow, blank=True)


# --- dates ---------------------------------------------------------------------------------------


def _at(col: Column, where: Indices) -> Objects:
    """The values at `where` (the column itself when that is all of it)."""
    return col.values if len(where) == len(col) else col.values[where]


def _date_like(col: Column) -> tuple[Bools, Bools]:
    """(exactly a datetime.date, another kind of datetime.date such as a datetime) per value."""
    exact = np.zeros(len(col), dtype=bool)
    other = np.zeros(len(col), dtype=bool)
    for kind in col.kinds():
        if kind is dt.date:
            exact[col.where(kind)] = True
        elif issubclass(kind, dt.date):
            other[col.where(kind)] = True
    return exact, other


def dates_in_order_mask(early: Values | Column, late: Values | Column) -> Bools:
    """`not (isinstance(a, date) and isinstance(b, date)) or a <= b` for each pair (a, b)."""
    a, b = column(early), column(late)
    a_exact, a_other = _date_like(a)
    b_exact, b_other = _date_like(b)
    out = np.ones(len(a), dtype=bool)
    both = np.flatnonzero(a_exact & b_exact)
    if both.size:
        out[both] = np.asarray(_at(a, both) <= _at(b, both), dtype=bool)
    odd = np.flatnonzero((a_exact | a_other) & (b_exact | b_other) & (a_other | b_other))
    for i in odd:  # a datetime among them: compare as the predicate does (it may raise)
        out[i] = bool(a.values[i] <= b.values[i])
    return out


def date_not_after_mask(values: Values | Column, ends: Values | Column) -> Bools:
    """`not isinstance(v, date) or e is None or v <= e` for each pair (v, e)."""
    v, e = column(values), column(ends)
    v_exact, v_other = _date_like(v)
    e_exact, _ = _date_like(e)
    out = np.ones(len(v), dtype=bool)
    fast = np.flatnonzero(v_exact & e_exact)
    if fast.size:
        out[fast] = np.asarray(_at(v, fast) <= _at(e, fast), dtype=bool)
    for i in np.flatnonzero((v_exact | v_other) & ~(v_exact & e_exact)):
        end = e.values[i]
        out[i] = end is None or bool(v.values[i] <= end)
    return out


def date_not_before_mask(values: Values | Column, start: dt.date) -> Bools:
    """`not isinstance(v, date) or v >= start` for every value."""
    v = column(values)
    exact, other = _date_like(v)
    out = np.ones(len(v), dtype=bool)
    fast = np.flatnonzero(exact)
    if fast.size:
        out[fast] = np.asarray(_at(v, fast) >= start, dtype=bool)
    for i in np.flatnonzero(other):
        out[i] = bool(v.values[i] >= start)
    return out


# --- 隐患编号 --------------------------------------------------------------------------------------


def id_codes(values: Values | Column) -> Indices:
    """One integer per value, equal where `fold(str(v))` is equal, -1 for a blank (is_na);
    fold runs once per distinct string."""
    col = column(values)
    out = np.full(len(col), -1, dtype=np.intp)
    code_of: dict[str, int] = {}
    for kind in col.kinds():
        if kind is NoneType:
            continue
        where, sub, items = col.part(kind)
        if kind is str:
            raw, uniques = pd.factorize(sub)
            folded: list[str | None] = [fold(u) for u in uniques.tolist()]
        else:
            raw = np.arange(len(items))
            folded = [None if is_na(v) else fold(str(v)) for v in items]
        codes = [-1 if f is None else code_of.setdefault(f, len(code_of)) for f in folded]
        out[where] = np.asarray(codes, dtype=np.intp)[raw]
    return out


def first_of_pairs(owners: Values, codes: Indices) -> Indices:
    """For each row, the position of the first row with the same owner and code; a row whose
    code is -1 is its own first."""
    out = np.arange(len(codes), dtype=np.intp)
    present = np.flatnonzero(codes >= 0)
    if present.size:
        if not isinstance(owners, pd.Series | np.ndarray):
            owners = objects(owners)
        owner_codes, _ = pd.factorize(owners)
        pair = owner_codes[present].astype(np.int64) * (int(codes.max()) + 1) + codes[present]
        dense, _uniques = pd.factorize(pair)  # numbered in order of first appearance
        seen = np.maximum.accumulate(dense)
        new = np.ones(len(dense), dtype=bool)
        new[1:] = seen[1:] > seen[:-1]
        first = present[new]  # first[k]: where pair number k first appears
        out[present] = first[dense]
    return out


# --- GB 32100-2015 统一社会信用代码 -----------------------------------------------------------

_NOT_ALLOWED = 255
_CREDIT_INDEX = np.full(128, _NOT_ALLOWED, dtype=np.uint8)  # ASCII code point -> value
for _value, _char in enumerate(CREDIT_ALPHABET):
    _CREDIT_INDEX[ord(_char)] = _value
_CREDIT_WEIGHTS = np.array(CREDIT_WEIGHTS, dtype=np.int64)


def credit_codes_valid(codes: list[str]) -> Bools:
    """`credit_code_problem(c) is None` for a list of str (exactly str): 18 characters of the
    GB 32100 alphabet whose last is the check character of the first 17."""
    n = len(codes)
    ok = np.zeros(n, dtype=bool)
    lengths = np.fromiter(map(len, codes), dtype=np.intp, count=n)
    right = np.flatnonzero(lengths == 18)
    if right.size:
        text = "".join([codes[i] for i in right] if right.size < n else codes)
        # one 32-bit code point per character (a lone surrogate too), 18 to a row
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        # 127 (DEL) is not allowed either, so every character past ASCII can look it up
        values = np.take(_CREDIT_INDEX, np.minimum(points, 127)).reshape(-1, 18)
        allowed = values.max(axis=1) < _NOT_ALLOWED
        total = values[:, :17].astype(np.int64) @ _CREDIT_WEIGHTS
        ok[right] = allowed & ((31 - total % 31) % 31 == values[:, 17])
    return ok


def credit_code_mask(values: Values | Column) -> Bools:
    """`is_na(v) or credit_code_problem(v) is None` for every value."""

    def exact(_sub: Objects, items: list[Any]) -> Bools:
        return credit_codes_valid(items)

    return _by_kind(
        column(values), {str: exact}, lambda v: credit_code_problem(v) is None, blank=True
    )
