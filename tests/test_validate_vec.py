"""The vectorised checks of pipeline.checks_vec give exactly the verdicts of the per-cell
predicates validate.py used to run (restated here as the reference), for every kind of value:
the typed values pipeline.read produces, and odd ones a bug upstream could leave (floats, NaN,
subclasses, pd.NA, datetimes, lists). A predicate that raises on a value makes the mask raise."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import operator
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.checks_vec import (
    Column,
    column,
    column_memo,
    compare_mask,
    credit_code_mask,
    credit_codes_valid,
    date_not_after_mask,
    date_not_before_mask,
    dates_in_order_mask,
    filled_mask,
    first_of_pairs,
    id_codes,
    is_na,
    member_mask,
    na_mask,
    places_mask,
    whole_mask,
)
from pipeline.normalize import (
    CREDIT_ALPHABET,
    credit_code_check_char,
    credit_code_problem,
    decimal_places,
    fold,
)

# --- the per-cell predicates the masks replace (as validate.py had them) ---------------------


def ref_na(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def ref_filled(v: Any) -> bool:
    return not ref_na(v) and not (isinstance(v, str) and not v.strip())


class Text(str):
    """A str subclass: not the exact str the fast paths take."""


class Number(float):
    pass


class Day(dt.date):
    pass


class Anything:
    """Equal to everything, None included."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


START = dt.date(2023, 5, 1)

POOL: list[Any] = [
    None, float("nan"), np.float64("nan"), Number("nan"), 0.0, 1.5, -2.0, math.inf, 0, 1, 7, -4,
    True, False, np.int64(3),
    Decimal("0"), Decimal("-0"), Decimal("1.5"), Decimal("1.50000"), Decimal("-3"),
    Decimal("1E+30"), Decimal("1.23456"), Decimal("1.2345"), Decimal("100000"),
    Decimal("100000.0001"), Decimal("99999.99995"), Decimal("0E-40"), Decimal("1E-30"),
    Decimal("1.00000000000000000000000000001"), Decimal("12345678901234567890123.45"),
    Decimal("NaN"), Decimal("-NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN"),
    "", " ", "  ", "\u3000", "\xa0", "\t\n", "\u200b", "x", " x ", "是", "否", "有", "无",
    "整改中", "已验收销号", "1.5", "abc", "是 ", "ＧＬ－００１", "GL-001", " GL-001", "gl-001",
    Text("是"), Text(" "), Text(""),
    dt.date(2023, 4, 30), dt.date(2023, 5, 1), dt.date(2023, 6, 30), dt.date(1923, 5, 1),
    Day(2023, 5, 2), dt.datetime(2023, 5, 1, 10), pd.Timestamp("2023-05-03"), dt.time(10),
    pd.NaT, pd.NA, np.datetime64("NaT"), [1], ("a",), {"k": 1}, b"x", Anything(),
]  # fmt: skip


def outcome(predicate: Callable[[Any], Any], value: Any) -> bool | type[BaseException]:
    try:
        return bool(predicate(value))
    except Exception as exc:
        return type(exc)


def columns_of(values: Sequence[Any], seed: int) -> list[list[Any]]:
    """The values as columns of several shapes: all mixed, shuffled with repeats, one type per
    column, one type with blanks (each takes another path in checks_vec)."""
    rng = random.Random(seed)
    mixed = list(values)
    shuffled = [rng.choice(mixed) for _ in range(5 * len(mixed))]
    by_type: dict[type, list[Any]] = {}
    for v in mixed:
        by_type.setdefault(type(v), []).append(v)
    out = [mixed, shuffled]
    for same in by_type.values():
        out.append(same * 3)
        out.append([*same, None, *same, None])
    return out


def assert_like(
    mask: Callable[[pd.Series], np.ndarray], predicate: Callable[[Any], Any], pool: list[Any]
) -> None:
    """On every column built from `pool`: the mask equals the predicate cell by cell when no
    cell makes the predicate raise, and raises the predicate's error when one does."""
    for seed, values in enumerate(columns_of(pool, 1)):
        outcomes = [outcome(predicate, v) for v in values]
        errors = {o for o in outcomes if not isinstance(o, bool)}
        series = pd.Series(values, dtype=object)
        if errors:
            with pytest.raises(tuple(errors)):  # type: ignore[arg-type]
                mask(series)
            continue
        got = mask(series)
        assert got.dtype == bool and len(got) == len(values), seed
        assert got.tolist() == outcomes, [
            (v, o) for v, o, g in zip(values, outcomes, got, strict=True) if o != g
        ]


# --- blanks and presence -----------------------------------------------------------------------


def test_is_na_is_the_old_definition() -> None:
    for value in POOL:
        assert is_na(value) == ref_na(value), value


def test_na_mask() -> None:
    assert_like(na_mask, ref_na, POOL)


def test_filled_mask() -> None:
    assert_like(filled_mask, ref_filled, POOL)


def test_filled_mask_on_every_kind_of_space() -> None:
    spaces = [chr(c) for c in range(0x3100) if chr(c).isspace() or not chr(c).strip()]
    pool = [*spaces, *(s * 2 for s in spaces), *(f"{s}x{s}" for s in spaces), "x", None]
    assert_like(filled_mask, ref_filled, pool)


@pytest.mark.parametrize(
    "allowed",
    [
        ("是", "否"),
        ("整改中", "已整改待验收", "已验收销号"),
        (1, "是"),
        (Text("是"),),
        (Anything(),),
    ],
)
def test_member_mask(allowed: tuple[Any, ...]) -> None:
    pool = [v for v in POOL if not isinstance(v, list | dict)]  # unhashable: not in a tuple check
    assert_like(lambda s: member_mask(s, allowed), lambda v: ref_na(v) or v in allowed, pool)
    unhashable = [[1], {"k": 1}, "是", None]
    assert_like(lambda s: member_mask(s, allowed), lambda v: ref_na(v) or v in allowed, unhashable)


# --- numbers -------------------------------------------------------------------------------------


def random_decimals(seed: int, count: int) -> list[Decimal]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
        if rng.random() < 0.3:
            digits = digits.rstrip("0") + "0" * rng.randint(0, 8)  # trailing zeros
        exponent = rng.choice([0, -1, -2, -3, -4, -5, -6, rng.randint(-45, 30)])
        sign = rng.choice(["", "-"])
        out.append(Decimal(f"{sign}{digits or '0'}E{exponent}"))
    return out


NUMBERS = [v for v in POOL if not isinstance(v, str)] + ["12", "abc", Text("3")]


@pytest.mark.parametrize(
    ("op", "bound"),
    [(operator.ge, Decimal(0)), (operator.le, Decimal(100_000)), (operator.le, Decimal(5))],
)
def test_compare_mask(op: Callable[[Any, Any], Any], bound: Decimal) -> None:
    pool = NUMBERS + random_decimals(1, 300)
    assert_like(
        lambda s: compare_mask(s, op, bound), lambda v: ref_na(v) or op(Decimal(v), bound), pool
    )


def test_whole_mask() -> None:
    pool = NUMBERS + random_decimals(2, 300)
    assert_like(
        whole_mask, lambda v: ref_na(v) or Decimal(v) == Decimal(v).to_integral_value(), pool
    )


@pytest.mark.parametrize("places", [0, 2, 4])
def test_places_mask(places: int) -> None:
    pool = NUMBERS + random_decimals(3, 2000)
    assert_like(
        lambda s: places_mask(s, places),
        lambda v: ref_na(v) or decimal_places(Decimal(v)) <= places,
        pool,
    )


@pytest.mark.parametrize(
    "context",
    [
        decimal.Context(prec=10),
        decimal.Context(prec=40),
        decimal.Context(prec=28, Emax=50, Emin=-50),
        decimal.Context(prec=28, traps=[decimal.Rounded, decimal.InvalidOperation]),
    ],
)
def test_places_mask_follows_the_decimal_context(context: decimal.Context) -> None:
    """decimal_places rounds (normalize) in the current context: the quick test must agree with
    it whatever the precision, exponent limits or traps."""
    pool = [d for d in random_decimals(4, 1500) if d.adjusted() < 40]
    pool += [Decimal("1." + "0" * 40), Decimal("5" + "0" * 35), Decimal("1." + "0" * 38 + "1")]
    with decimal.localcontext(context):
        checked = []
        for d in pool:
            error = outcome(decimal_places, d)
            if isinstance(error, bool):
                checked.append(d)
            else:  # normalize() raises in this context (a trapped Rounded): so must the mask
                with pytest.raises(error):
                    places_mask(pd.Series([d, Decimal(1)], dtype=object), 4)
        assert_like(
            lambda s: places_mask(s, 4),
            lambda v: ref_na(v) or decimal_places(Decimal(v)) <= 4,
            checked,
        )


# --- dates ---------------------------------------------------------------------------------------

DATES = [v for v in POOL if not isinstance(v, list | dict)] + [dt.date(2023, 5, d) for d in (1, 9)]


def pairs(seed: int, count: int) -> tuple[list[Any], list[Any]]:
    rng = random.Random(seed)
    left = [rng.choice(DATES) for _ in range(count)]
    right = [rng.choice(DATES) for _ in range(count)]
    return left, right


def assert_pairs_like(
    mask: Callable[[pd.Series, pd.Series], np.ndarray],
    predicate: Callable[[Any, Any], Any],
    candidates: list[Any],
) -> None:
    rng = random.Random(5)
    fine = []
    for a in candidates:
        for b in candidates:
            result = outcome(lambda pair: predicate(*pair), (a, b))
            if isinstance(result, bool):
                fine.append((a, b))
            else:  # alone with fine pairs, a raising pair makes the mask raise that error
                left = pd.Series([dt.date(2023, 5, 1), a], dtype=object)
                right = pd.Series([dt.date(2023, 5, 2), b], dtype=object)
                with pytest.raises(result):
                    mask(left, right)
    rng.shuffle(fine)
    for chunk in (fine, fine[:7], [p for p in fine if p[0] is None or p[1] is None]):
        left = pd.Series([a for a, _ in chunk], dtype=object)
        right = pd.Series([b for _, b in chunk], dtype=object)
        expected = [bool(predicate(a, b)) for a, b in chunk]
        assert mask(left, right).tolist() == expected


def test_dates_in_order_mask() -> None:
    assert_pairs_like(
        dates_in_order_mask,
        lambda a, b: not (isinstance(a, dt.date) and isinstance(b, dt.date)) or a <= b,
        DATES,
    )


def test_date_not_after_mask() -> None:
    ends = [None, dt.date(2023, 5, 31), dt.date(2023, 4, 30), dt.datetime(2023, 5, 31), "x"]
    assert_pairs_like(
        date_not_after_mask,
        lambda v, e: not isinstance(v, dt.date) or e is None or v <= e,
        [*DATES, *ends],
    )


def test_date_not_before_mask() -> None:
    pool = [v for v in POOL if not isinstance(v, list | dict)]
    for start in (START, dt.date(2023, 5, 2)):
        assert_like(
            lambda s, start=start: date_not_before_mask(s, start),
            lambda v, start=start: not isinstance(v, dt.date) or v >= start,
            pool,
        )


# --- 隐患编号 --------------------------------------------------------------------------------------


def ref_unique(owners: list[int], values: list[Any]) -> list[bool]:
    """The old check: (return, folded id) seen before in the frame fails; blanks pass."""
    ids = pd.Series(values, dtype=object).map(lambda v: None if ref_na(v) else fold(str(v)))
    dup = pd.Series(list(zip(owners, ids, strict=True))).duplicated(keep="first")
    return (~dup | ids.isna()).tolist()


def ref_first_rows(owners: list[int], values: list[Any]) -> list[int]:
    first: dict[tuple[int, str], int] = {}
    out = []
    for i, (owner, v) in enumerate(zip(owners, values, strict=True)):
        out.append(i if ref_na(v) else first.setdefault((owner, fold(str(v))), i))
    return out


def test_unique_ids_and_first_rows() -> None:
    rng = random.Random(6)
    ids = [
        "GL-001", "ＧＬ－００１", " GL-001 ", "GL-\u200b001", "gl-001", "GL 001", "1", 1, 1.0, True,
        "1.0", Text("GL-001"), None, float("nan"), "", " ", Decimal("1"), dt.date(2023, 5, 1),
    ]  # fmt: skip
    for count in (1, 5, 60, 400):
        owners = [rng.randrange(3) for _ in range(count)]
        values = [rng.choice(ids) for _ in range(count)]
        codes = id_codes(pd.Series(values, dtype=object))
        first = first_of_pairs(pd.Series(owners, dtype="int64"), codes)
        assert (first == np.arange(count)).tolist() == ref_unique(owners, values)
        assert first.tolist() == ref_first_rows(owners, values)
        # the codes are equal exactly where the folded ids are
        folded = [None if ref_na(v) else fold(str(v)) for v in values]
        for i in range(count):
            for j in range(count):
                same = folded[i] is not None and folded[i] == folded[j]
                assert (codes[i] == codes[j] and codes[i] >= 0) == same


# --- 统一社会信用代码 --------------------------------------------------------------------------


def random_codes(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        body = "".join(rng.choice(CREDIT_ALPHABET) for _ in range(17))
        good = body + credit_code_check_char(body)
        at = rng.randrange(18)
        out += [
            good,
            good.lower(),
            good[:at] + rng.choice("OIZSVoizsv") + good[at + 1 :],
            good[:-1] + rng.choice(CREDIT_ALPHABET),  # mostly a wrong check character
            good[: rng.randint(0, 17)],
            good + rng.choice(CREDIT_ALPHABET),
            good[:at] + chr(ord(good[at]) + 0xFEE0) + good[at + 1 :],  # full width
            good[:at] + " " + good[at + 1 :],
            good[:at]
            + rng.choice(["\u3000", "\x7f", "\x00", "é", "😀", "\ud800", "\u0130"])
            + good[at + 1 :],
            " " + good[1:],
        ]
    return out


def test_credit_code_verdicts_are_normalize_s() -> None:
    odd = ["", "x", "9" * 18, "0" * 18, "Y" * 18, "😀" * 18, "\ud800" * 18]
    codes = [*random_codes(7, 800), *odd]
    assert credit_codes_valid(codes).tolist() == [credit_code_problem(c) is None for c in codes]


def test_credit_code_mask() -> None:
    pool = [*random_codes(8, 60), *POOL]
    assert_like(credit_code_mask, lambda v: ref_na(v) or credit_code_problem(v) is None, pool)


def test_a_valid_code_stays_valid_among_others() -> None:
    """Rows of the code-point matrix do not leak into each other (lengths differ per code)."""
    valid = [c for c in random_codes(9, 50) if credit_code_problem(c) is None]
    mixed = [c for pair in zip(valid, random_codes(10, 50), strict=False) for c in pair]
    assert credit_codes_valid(mixed).tolist() == [credit_code_problem(c) is None for c in mixed]


# --- the memo ------------------------------------------------------------------------------------


def test_the_memo_knows_a_frame_column_and_only_within_its_block() -> None:
    frame = pd.DataFrame(
        {
            "a": pd.Series(["x", None, "y"], dtype=object),
            "b": pd.Series([None, "z", None], dtype=object),
        }
    )
    with column_memo():
        first = column(frame["a"])
        assert column(frame["a"]) is first  # a new Series, the same data
        assert column(frame["b"]) is not first
        assert na_mask(frame["b"]).tolist() == [True, False, True]
        assert filled_mask(frame["a"]).tolist() == [True, False, True]
    assert column(frame["a"]) is not first
    assert isinstance(column(frame["a"]), Column)


def test_the_memo_does_not_mix_up_frames() -> None:
    """Many short-lived frames in one block: a column's facts are never another's."""
    rng = random.Random(11)
    with column_memo():
        for _ in range(200):
            values = [rng.choice([None, "x", " ", "是"]) for _ in range(rng.randint(1, 6))]
            frame = pd.DataFrame({"v": pd.Series(values, dtype=object)})
            assert filled_mask(frame["v"]).tolist() == [ref_filled(v) for v in values]
            assert member_mask(frame["v"], ("是",)).tolist() == [
                ref_na(v) or v in ("是",) for v in values
            ]
