"""Normalisation tables: what a clerk types, what the pipeline reads, and what it refuses to guess."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pipeline.normalize import (
    CREDIT_WEIGHTS,
    NormalizeError,
    clean_text,
    credit_code_check_char,
    credit_code_problem,
    decimal_places,
    float_text,
    match_name,
    to_choice,
    to_credit_code,
    to_date,
    to_number,
    to_period,
    to_tick,
    unit_mismatch,
)


@pytest.mark.parametrize(
    ("raw", "money", "expected"),
    [
        (12, False, Decimal(12)),
        (12.0, False, Decimal(12)),
        ("12", False, Decimal(12)),
        ("１２", False, Decimal(12)),  # full-width digits
        (" 12 ", False, Decimal(12)),
        ("\u300012\u3000", False, Decimal(12)),  # full-width spaces
        ("1,234", False, Decimal(1234)),
        ("1，234", False, Decimal(1234)),  # full-width comma
        ("1,234,567", False, Decimal(1234567)),
        ("1 234", False, Decimal(1234)),  # thousands in groups of spaces
        ("12 345 678.5", True, Decimal("12345678.5")),
        ("12 个", False, Decimal(12)),  # a space before the unit
        ("3.5 万元", True, Decimal("3.5")),
        ("12个", False, Decimal(12)),
        ("5家", False, Decimal(5)),
        ("3次", False, Decimal(3)),
        ("7人次", False, Decimal(7)),
        ("3.5万元", True, Decimal("3.5")),
        ("3.5万", True, Decimal("3.5")),  # in a 万元 cell 万 is 万元, nothing to rescale
        ("３．５", True, Decimal("3.5")),
        (3.5, True, Decimal("3.5")),
        (12.3456, True, Decimal("12.3456")),
        (0.1 + 0.2, True, Decimal("0.3")),  # no float artefacts
        (1.1 * 3, True, Decimal("3.3")),
        ("0.30", True, Decimal("0.30")),
        ("1.5", False, Decimal("1.5")),  # read exactly; the validator says "not an integer"
        ("-3", False, Decimal(-3)),  # read; the validator says "negative"
        (None, False, None),
        ("", False, None),
        ("   ", False, None),
    ],
)
def test_numbers_read(raw: object, money: bool, expected: Decimal | None) -> None:
    assert to_number(raw, money=money) == expected


@pytest.mark.parametrize(
    ("raw", "money", "code"),
    [
        ("十二", False, "value-ambiguous"),
        ("约5", False, "value-ambiguous"),
        ("5左右", False, "value-ambiguous"),
        ("10多", False, "value-ambiguous"),
        ("3-4", False, "value-ambiguous"),
        ("3～4", False, "value-ambiguous"),
        ("5?", False, "value-ambiguous"),
        ("5？", False, "value-ambiguous"),
        ("50%", False, "value-ambiguous"),
        ("1,23", False, "value-ambiguous"),
        ("1 2", False, "value-ambiguous"),  # 12, or 1 and 2? never joined silently
        ("１ ２", False, "value-ambiguous"),
        ("12 3", False, "value-ambiguous"),
        ("1\u30002", False, "value-ambiguous"),
        ("1 2345", False, "value-ambiguous"),
        ("12. 5", True, "value-ambiguous"),  # 12.5, or 12 and 5?
        ("12 .5", True, "value-ambiguous"),
        ("35000元", True, "value-ambiguous"),  # 元 in a 万元 cell: never rescale silently
        ("3万元", False, "value-ambiguous"),  # money in a count cell
        ("无", False, "value-not-number"),
        ("/", False, "value-not-number"),
        (True, False, "value-not-number"),
        (dt.date(2023, 6, 5), False, "value-not-number"),
        (float("nan"), False, None),
    ],
)
def test_numbers_refused(raw: object, money: bool, code: str | None) -> None:
    if code is None:
        assert to_number(raw, money=money) is None
        return
    with pytest.raises(NormalizeError) as info:
        to_number(raw, money=money)
    assert info.value.code == code
    assert info.value.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (dt.date(2023, 6, 5), dt.date(2023, 6, 5)),
        (dt.datetime(2023, 6, 5, 9, 30), dt.date(2023, 6, 5)),
        (45082, dt.date(2023, 6, 5)),  # Excel serial
        (45082.75, dt.date(2023, 6, 5)),
        (20230605, dt.date(2023, 6, 5)),
        ("2023-6-5", dt.date(2023, 6, 5)),
        ("2023/06/05", dt.date(2023, 6, 5)),
        ("2023.6.5", dt.date(2023, 6, 5)),
        ("2023年6月5日", dt.date(2023, 6, 5)),
        ("2023 年 6 月 5 日", dt.date(2023, 6, 5)),
        ("２０２３－０６－０５", dt.date(2023, 6, 5)),
        ("2023-06-05 10:00:00", dt.date(2023, 6, 5)),
        ("2023-06-05T10:00", dt.date(2023, 6, 5)),
        ("20230605", dt.date(2023, 6, 5)),
        ("", None),
        (None, None),
    ],
)
def test_dates_read(raw: object, expected: dt.date | None) -> None:
    assert to_date(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "5/6/2023",
        "23.6.5",
        "6月5日",
        "2023年6月",
        "2023-02-30",
        "下周",
        2023,
        12.5,
        True,
        dt.time(9),
    ],
)
def test_dates_refused(raw: object) -> None:
    with pytest.raises(NormalizeError) as info:
        to_date(raw)
    assert info.value.code == "date-invalid"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2023年6月", "2023-06"),
        ("2023年06月份", "2023-06"),
        ("2023-06", "2023-06"),
        ("2023-6", "2023-06"),
        ("2023.6", "2023-06"),
        ("2023/06", "2023-06"),
        ("202306", "2023-06"),
        (202306, "2023-06"),
        ("2023-06-30", "2023-06"),
        (dt.date(2023, 6, 30), "2023-06"),
        (dt.datetime(2023, 6, 1), "2023-06"),
        ("", None),
    ],
)
def test_periods(raw: object, expected: str | None) -> None:
    assert to_period(raw) == expected


@pytest.mark.parametrize("raw", ["六月", "2023年13月", "6月", "上月"])
def test_periods_refused(raw: str) -> None:
    with pytest.raises(NormalizeError) as info:
        to_period(raw)
    assert info.value.code == "period-invalid"


@pytest.mark.parametrize("raw", ["√", "✓", "✔", "✔️", "☑", "v", "V", "1", 1, 1.0, "是", " √ ", True])
def test_ticks_marked(raw: object) -> None:
    assert to_tick(raw) is True


@pytest.mark.parametrize("raw", [None, "", " ", "0", 0, "/", "-", "—", "空", False])
def test_ticks_not_marked(raw: object) -> None:
    assert to_tick(raw) is False


@pytest.mark.parametrize("raw", ["x", "X", " x ", "×", "✗", "✘", "╳", "ｘ"])
def test_ticks_a_cross_is_neither_marked_nor_blank(raw: object) -> None:
    # a clerk may cross out the columns not chosen, or mark the chosen one with a cross
    with pytest.raises(NormalizeError) as info:
        to_tick(raw)
    assert info.value.code == "tick-cross"


@pytest.mark.parametrize("raw", ["?", "有", "否", "√√", 2, "ü", dt.date(2023, 6, 5)])
def test_ticks_unrecognised(raw: object) -> None:
    with pytest.raises(NormalizeError) as info:
        to_tick(raw)
    assert info.value.code == "tick-unrecognized"


@pytest.mark.parametrize(
    ("raw", "unit", "typed"),
    [
        ("12个", "个", None),
        ("12", "个", None),
        (12, "家", None),
        ("5处", "个", None),
        ("4 起", "次", None),
        ("15家次", "家次", None),
        ("12家", "个", "家"),
        ("15家", "家次", "家"),
        ("3人", "人次", "人"),
        ("3.5万元", "万元", None),
    ],
)
def test_unit_mismatch(raw: object, unit: str, typed: str | None) -> None:
    assert unit_mismatch(raw, unit) == typed


def test_text_keeps_what_was_typed_but_trims() -> None:
    assert clean_text("  张三（组长） ") == "张三（组长）"  # no NFKC on free text
    assert clean_text("\u200b") is None
    assert clean_text(2023001.0) == "2023001"
    assert clean_text(dt.datetime(2023, 6, 5)) == "2023-06-05"


def test_choices_tolerate_spacing_width_and_level_suffix() -> None:
    assert to_choice(" 整改 中 ", ("整改中", "已整改待验收")) == "整改中"
    assert to_choice("市级", ("省", "市", "县")) == "市"
    assert to_choice("没有", ("有", "无")) == "没有"  # left for the validator to report
    assert to_choice(None, ("有", "无")) is None


def test_unit_names_match_with_suffixes() -> None:
    names = ["鼓楼区", "台江区", "福州高新区"]
    assert match_name("鼓楼区建设局", names, ("建设局", "住建局")) == "鼓楼区"
    assert match_name(" 鼓 楼 区 ", names) == "鼓楼区"
    assert match_name("鼓楼", names) is None


def test_unit_names_match_after_a_prefix_but_not_inside_other_words() -> None:
    names = ["鼓楼区", "长乐区", "福州高新区", "高新区"]
    prefixes = ("福建省福州市", "福州市", "福州")
    assert match_name("福州市鼓楼区建设局", names, ("建设局",), prefixes) == "鼓楼区"
    assert match_name("福建省福州市长乐区", names, (), prefixes) == "长乐区"
    # as typed first: 福州高新区 is a name, though 福州 is a prefix and 高新区 a name too
    assert match_name("福州高新区", names, (), prefixes) == "福州高新区"
    assert match_name("福州市高新区", names, (), prefixes) == "高新区"
    for text in ("长乐路", "福州市长乐", "福州市", "高新技术企业"):
        assert match_name(text, names, (), prefixes) is None, text


def test_float_text_uses_fifteen_significant_digits() -> None:
    assert float_text(0.1 + 0.2) == "0.3"
    assert float_text(12.0) == "12"
    assert float_text(1e20) == "100000000000000000000"
    assert decimal_places(Decimal("12.34560")) == 4
    assert decimal_places(Decimal("12")) == 0


def test_credit_code_weights_and_alphabet() -> None:
    assert CREDIT_WEIGHTS[:6] == (1, 3, 9, 27, 19, 26)
    assert CREDIT_WEIGHTS[-1] == 28


def test_credit_code_check_character_by_hand() -> None:
    # 91350100M000100Y4? : sum of value*weight over the 17 characters, then 31 - sum % 31
    first17 = "91350100M000100Y4"
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    total = sum(alphabet.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    expected = alphabet[(31 - total % 31) % 31]
    assert credit_code_check_char(first17) == expected
    code = first17 + expected
    assert credit_code_problem(code) is None
    wrong = alphabet[(alphabet.index(expected) + 1) % 31]
    assert credit_code_problem(first17 + wrong) == "校验位不正确，请核对是否抄错"


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("9135010215814341", "18位"),
        ("91350100I58143418J", "不允许的字符"),
        ("91350100O5814341SJ", "不允许"),
    ],
)
def test_credit_code_problems(code: str, fragment: str) -> None:
    problem = credit_code_problem(code)
    assert problem is not None and fragment in problem


def test_credit_code_is_folded_and_uppercased() -> None:
    assert to_credit_code(" ９１３５０１００ｍａ２ ") == "91350100MA2"


# --- fast paths agree with the plain definitions ------------------------------------------------

# Cell values of every kind python-calamine returns, and the awkward ones: invisible and odd
# whitespace characters, numbers that compare equal across types (1, 1.0, True; 0.0, -0.0,
# False), NaN, naive and aware datetimes that are equal instants.
_CST = dt.timezone(dt.timedelta(hours=8))
AWKWARD_VALUES: list[object] = [
    None,
    "",
    " ",
    "\u3000",
    "\xa0",
    "\t\n",
    "\u200b",
    "\ufeff",
    "\u200b \u200c",
    "\x1c",
    "\x85",
    "a",
    " a ",
    "\u200ba\u200b",
    "a\u200bb",
    "张三",
    " 张三（组长） ",
    "\u3000张三\u3000",
    "✔️",
    "ｘ",
    "整改中",
    " 整改 中 ",
    "市级",
    "有",
    "是",
    "否",
    "没有",
    "2023-06-05",
    "２０２３－０６－０５",
    "2023年6月5日",
    "6月5日",
    "12.5",
    "１２",
    "12万元",
    "约5",
    "91350100MA2YQ9R94L",
    " ９１３５０１００ｍａ２ ",
    "=1+1",
    "\t=1+1",
    0,
    1,
    2,
    -3,
    20230605,
    45082,
    0.0,
    -0.0,
    1.0,
    12.5,
    0.1 + 0.2,
    45082.75,
    -1.5,
    float("nan"),
    float("inf"),
    True,
    False,
    dt.date(2023, 6, 5),
    dt.date(1923, 6, 5),
    dt.datetime(2023, 6, 5),
    dt.datetime(2023, 6, 5, 9, 30),
    dt.datetime(2023, 6, 5, 9, 30, fold=1),
    dt.datetime(2023, 6, 5, 8, 0, tzinfo=_CST),
    dt.datetime(2023, 6, 5, 0, 0, tzinfo=dt.UTC),
    dt.time(9, 30),
]


def _clean_text_by_definition(value: object) -> str | None:
    """clean_text as first written: is_blank, then strip_invisible or display."""
    from pipeline.normalize import display, is_blank, strip_invisible

    if is_blank(value):
        return None
    if isinstance(value, str):
        return strip_invisible(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    return display(value)


@pytest.mark.parametrize("value", AWKWARD_VALUES, ids=repr)
def test_clean_text_fast_path_agrees_with_its_definition(value: object) -> None:
    assert clean_text(value) == _clean_text_by_definition(value)


def test_clean_text_fast_path_agrees_on_every_character() -> None:
    # each character alone, between letters and around spaces: whitespace, invisible or not
    for code in [*range(0x0, 0x3000), *range(0x3000, 0x3100), *range(0xFE00, 0xFF00)]:
        ch = chr(code)
        for text in (ch, f"a{ch}b", f" {ch} ", f"{ch}x{ch}"):
            assert clean_text(text) == _clean_text_by_definition(text), repr(text)


def _outcome(convert: object, value: object) -> tuple[str, object]:
    """("ok", result) or ("error", (code, reason)) of convert(value), comparing exactly: a
    Decimal by its text, so Decimal("-0") and Decimal("0") differ."""
    assert callable(convert)
    try:
        result = convert(value)
    except NormalizeError as exc:
        return "error", (exc.code, exc.reason)
    return "ok", (type(result), str(result) if isinstance(result, Decimal) else result)


CONVERTERS = {
    "clean_text": clean_text,
    "to_date": to_date,
    "to_number": lambda v: to_number(v, money=True),
    "to_choice": lambda v: to_choice(v, ("整改中", "已整改待验收", "有", "市")),
    "to_credit_code": to_credit_code,
    "repr": repr,  # tells every value apart: no two values may share a conversion
}


@pytest.mark.parametrize("name", sorted(CONVERTERS))
def test_convert_column_agrees_with_converting_each_value(name: str) -> None:
    from pipeline.normalize import convert_column

    convert = CONVERTERS[name]
    # the values repeated, shuffled, in whole columns of one kind and in mixed columns
    import random

    rng = random.Random(6)
    mixed = AWKWARD_VALUES * 3
    rng.shuffle(mixed)
    columns = [
        mixed,
        [v for v in AWKWARD_VALUES if isinstance(v, str) or v is None] * 2,
        [v for v in AWKWARD_VALUES if type(v) in (int, str, dt.date) or v is None] * 2,
        [v for v in AWKWARD_VALUES if type(v) in (float, str, dt.date) or v is None] * 2,
        [1.0, 2.5, 12.5, 2.5, None, ""],  # floats without a zero: converted once each
        [0.0, -0.0, 0.0, 1.0],
        [1, 1.0, True, 1],
        [dt.datetime(2023, 6, 5, 8, 0, tzinfo=_CST), dt.datetime(2023, 6, 5, 0, 0, tzinfo=dt.UTC)],
        [],
    ]
    for values in columns:
        results, errors = convert_column(convert, values)
        assert len(results) == len(values)
        for i, value in enumerate(values):
            expected = _outcome(convert, value)
            if i in errors:
                exc = errors[i]
                assert ("error", (exc.code, exc.reason)) == expected, (name, value)
                assert results[i] is None
            else:
                got = results[i]
                shown = str(got) if isinstance(got, Decimal) else got
                assert ("ok", (type(got), shown)) == expected, (name, value)
