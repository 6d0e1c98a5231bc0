"""Pure functions that turn what a county clerk typed into typed values, or say why they can't.

Every function takes a raw cell value as python-calamine returns it (str, float, int, bool,
dt.date, dt.datetime, dt.time, or None/"" for an empty cell) and returns the typed value, None
for an empty cell, or raises NormalizeError with a rule code from pipeline.messages and a short
Chinese reason. Nothing is guessed: a value that could mean two things is an error.

Decisions a clerk would expect (documented here, tested in tests/test_normalize.py):
- Numbers: full-width digits and punctuation are folded (NFKC), surrounding spaces and spaces
  before a unit dropped, digits apart ("1 2") ambiguous unless in thousands groups ("1 234"),
  thousands separators accepted only in the exact "1,234,567" shape, and a counting unit
  typed after the number is dropped ("12个", "5家", "3次"; "3.5万元" or "3.5万" only in a 万元 cell). The
  reader warns when that unit is not the item's own nor a synonym of it (`unit_mismatch`: "12家"
  in an item counted in 个 may be another item's figure).
  Chinese numerals, approximations (约5, 5左右, 5多), ranges (3-4), question marks, percentages,
  "元" in a 万元 cell and "万" in a count cell are ambiguous. Floats from a spreadsheet are read
  through 15 significant digits (what Excel itself stores), so 0.1+0.2 reads as 0.3 exactly.
- Dates: spreadsheet dates, Excel serial numbers between 2000 and 2099, 20230605, and
  2023-6-5 / 2023/06/05 / 2023.6.5 / 2023年6月5日 (an optional time after it is dropped).
  Day-first or month-first forms (5/6/2023), two-digit years and dates without a year or a
  day are rejected, as is any date outside the years 2000–2099 (1923 typed for 2023).
- Ticks: √ ✓ ✔ ☑ ✅ v V 1 是 (and TRUE from a checkbox) mark a column. Blank, 0 FALSE, "/" "-"
  "—" and 空 mean "not marked". A cross (x X × ✗ ✘ ╳) is ambiguous: a clerk may cross out the
  columns not chosen, or mark the chosen one with it; it raises "tick-cross" and the reader
  decides from the rest of the row. Anything else is unrecognised, never read as either.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

COUNT_UNITS = ("人次", "个次", "家次", "个", "家", "次", "人", "份", "项", "起", "处", "件", "例")
MONEY_UNITS = ("万元", "万")  # "3.5万" in a 万元 cell is 3.5万元: nothing to rescale
_UNITS_LONGEST_FIRST = {
    money: tuple(sorted(MONEY_UNITS if money else COUNT_UNITS, key=len, reverse=True))
    for money in (False, True)
}
# Counting words a clerk may use for an item's unit and mean the same thing: hazards come in
# 处/项/起/件, cases in 起/例, penalties in 起.
UNIT_SYNONYMS: dict[str, frozenset[str]] = {
    "个": frozenset({"项", "处", "起", "件", "例"}),
    "次": frozenset({"起"}),
}
# Serial numbers of 2000-01-01 and 2099-12-31 in Excel's 1900 date system.
SERIAL_MIN, SERIAL_MAX = 36526, 73050
EXCEL_EPOCH = dt.date(1899, 12, 30)
# "2023年06月05日 12:30:00" is 21 characters: a longer text is not a date (and the date pattern's
# optional spaces would make matching thousands of them quadratic)
MAX_DATE_CHARS = 64

TICK_MARKS = frozenset({"√", "✓", "✔", "☑", "✅", "v", "V", "1", "是"})
NOT_TICKED = frozenset({"", "0", "/", "-", "—", "空"})
CROSS_MARKS = frozenset({"x", "X", "×", "✗", "✘", "╳", "✕", "❌"})
TICK_HELP = "√ ✓ ✔ v V 1 是"  # the marks named to a clerk (☑ ✅ TRUE count too)

# Characters that carry no content but survive str.strip(): zero-width spaces, BOM, variation
# selectors (✔️ is ✔ + U+FE0F).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\ufe0e\ufe0f"))
# str.translate looks every character up in the dict: search for one first (5x faster on CJK)
_INVISIBLE_RE = re.compile("[" + "".join(map(chr, _INVISIBLE)) + "]")
_SPACES = re.compile(r"\s+")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_GROUPED_NUMBER = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
# digits with spaces between them (any width of space, before NFKC too), and the one shape
# where that is a number: thousands groups "1 234 567"
_DIGIT_SPACE_DIGIT = re.compile(r"[0-9０-９][.．]?\s+[.．]?[0-9０-９]")
_NUMBER_LEAD = re.compile(r"[+-]?[\d\s.,]+")
_SPACE_GROUPED = re.compile(r"[+-]?\d{1,3}(?:\s\d{3})+(?:\.\d+)?")
_CHINESE_NUMERALS = re.compile(r"[零〇一二三四五六七八九十百千两壹贰叁肆伍陆柒捌玖拾佰仟]")
_APPROX = re.compile(r"约|大约|左右|多|余|以上|以下|不到|近|超过|若干|至少|~$")
_RANGE = re.compile(r"\d\s*[-~～至到、/]\s*\d")
_DATE_YMD = re.compile(
    r"(\d{4})\s*(?:([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})|年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?)"
    r"(?:\s*[T ]?\s*\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
)
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_PERIOD = re.compile(r"(\d{4})\s*(?:年\s*(\d{1,2})\s*月份?|[-/.]\s*(\d{1,2}))")
_PERIOD_COMPACT = re.compile(r"(\d{4})(\d{2})")


class NormalizeError(ValueError):
    """A value that cannot be read without guessing. `code` is a rule code of pipeline.messages."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def strip_invisible(text: str) -> str:
    """Drop zero-width characters and surrounding whitespace (incl. full-width and no-break)."""
    if _INVISIBLE_RE.search(text) is not None:
        text = text.translate(_INVISIBLE)
    return text.strip()


def fold(text: str) -> str:
    """NFKC-fold and drop every space: for numbers, dates, codes and choices, never free text."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", strip_invisible(text)))


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return strip_invisible(value) == ""
    return isinstance(value, float) and math.isnan(value)


def float_text(value: float) -> str:
    """A float as Excel shows it: 15 significant digits, no binary artefacts, no exponent noise."""
    text = format(value, ".15g")
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def display(value: Any) -> str:
    """How a cell value is shown back to the clerk in a message."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return float_text(value) if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def clean_text(value: Any) -> str | None:
    """Free text as typed (only surrounding spaces removed); numbers and dates as shown."""
    if type(value) is str:  # the common case, read once: strip_invisible, "" when blank
        if _INVISIBLE_RE.search(value) is not None:
            value = value.translate(_INVISIBLE)
        return value.strip() or None
    if is_blank(value):
        return None
    if isinstance(value, str):
        return strip_invisible(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    return display(value)


def to_number(value: Any, *, money: bool = False) -> Decimal | None:
    """A count or a 万元 amount as an exact Decimal (range and decimals are checked later)."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise NormalizeError("value-not-number", "填写的是逻辑值，不是数字")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NormalizeError("value-not-number", "不是有效数字")
        return Decimal(float_text(value))
    if isinstance(value, dt.date | dt.time):
        raise NormalizeError("value-not-number", "填写的是日期或时间，不是数字")
    text, _unit = _split_unit(fold(str(value)), money)
    if _DIGIT_SPACE_DIGIT.search(str(value)):
        _spaced_digits(str(value))
    if _PLAIN_NUMBER.fullmatch(text):
        return Decimal(text)
    if _GROUPED_NUMBER.fullmatch(text):
        return Decimal(text.replace(",", ""))
    raise _why_not_number(text, money)


def _spaced_digits(raw: str) -> None:
    """Digits apart ("1 2"): accepted only as thousands groups ("1 234 567"); raises else. Read
    as 12 the cell would add a figure the clerk may never have meant."""
    text = unicodedata.normalize("NFKC", strip_invisible(raw))
    lead = _NUMBER_LEAD.match(text)
    if lead and _SPACE_GROUPED.fullmatch(lead.group().strip()):
        return
    raise NormalizeError(
        "value-ambiguous", "中间有空格，无法确定是一个数还是几个数，请只填一个数字"
    )


def _split_unit(text: str, money: bool) -> tuple[str, str | None]:
    """("12", "个") from "12个"; the unit is one that to_number drops, else None."""
    for unit in _UNITS_LONGEST_FIRST[money]:
        if text.endswith(unit) and len(text) > len(unit):
            return text[: -len(unit)], unit
    return text, None


def unit_mismatch(value: Any, unit: str) -> str | None:
    """The counting unit typed after a number in `value` when it is neither `unit` (the item's)
    nor one of its UNIT_SYNONYMS; None when no unit was typed or it fits."""
    if not isinstance(value, str) or unit in MONEY_UNITS:
        return None
    _text, typed = _split_unit(fold(value), False)
    if typed is None or typed == unit or typed in UNIT_SYNONYMS.get(unit, ()):
        return None
    return typed


def _why_not_number(text: str, money: bool) -> NormalizeError:
    has_digit = any(ch.isdigit() for ch in text)
    if _CHINESE_NUMERALS.search(text):
        return NormalizeError("value-ambiguous", "含中文数字，请改用阿拉伯数字")
    if _APPROX.search(text):
        return NormalizeError("value-ambiguous", "是约数，请填写确切数字")
    if "?" in text:
        return NormalizeError("value-ambiguous", "带有问号，请核实后填写确切数字")
    if has_digit and _RANGE.search(text):
        return NormalizeError("value-ambiguous", "是一个范围，请填写确切数字")
    if "%" in text:
        return NormalizeError("value-ambiguous", "是百分比，请填写数量")
    if has_digit and money and (text.endswith("元") or "万" in text):
        return NormalizeError("value-ambiguous", "金额单位应为万元，请换算成万元后只填数字")
    if has_digit and not money and ("万" in text or text.endswith("元")):
        return NormalizeError("value-ambiguous", "本栏是数量，不是金额，请只填数字")
    if has_digit and "," in text:
        return NormalizeError("value-ambiguous", "千分位逗号位置不对，请只填数字")
    if has_digit:
        return NormalizeError("value-ambiguous", "除数字外还有其他文字，请只填数字")
    return NormalizeError("value-not-number", "不是数字；没有发生的请填 0")


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def excel_serial_date(serial: float) -> dt.date:
    """An Excel serial day number (1900 date system) as a date; the time fraction is dropped."""
    return EXCEL_EPOCH + dt.timedelta(days=int(serial))


def _ymd(year: int, month: int, day: int, shown: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise NormalizeError("date-invalid", f"{shown} 不是存在的日期") from None


DATE_YEARS = (2000, 2099)  # a year outside is a typo (1923 for 2023), in a cell or in text


def to_date(value: Any) -> dt.date | None:
    """A date from a date cell, an Excel serial number or one of the written forms above, in
    the years DATE_YEARS."""
    date = _to_date(value)
    if date is not None and not DATE_YEARS[0] <= date.year <= DATE_YEARS[1]:
        raise NormalizeError(
            "date-invalid",
            f"年份 {date.year} 不合理，请核对年份（应为 {DATE_YEARS[0]}—{DATE_YEARS[1]} 年）",
        )
    return date


def _to_date(value: Any) -> dt.date | None:
    if is_blank(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (bool, dt.time)):
        raise NormalizeError("date-invalid", "不是日期")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise NormalizeError("date-invalid", "不是日期")
        if float(value).is_integer() and 19000101 <= value <= 21001231:
            return _compact_date(str(int(value)), display(value))
        if SERIAL_MIN <= value <= SERIAL_MAX:
            return excel_serial_date(value)
        raise NormalizeError("date-invalid", "是一个数字，不是日期")
    text = unicodedata.normalize("NFKC", strip_invisible(str(value)))
    if len(text) > MAX_DATE_CHARS:  # no date is this long; matching it would take seconds
        raise NormalizeError("date-invalid", "不是日期，请写成 2023-06-05")
    m = _DATE_YMD.fullmatch(text)
    if m:
        year = int(m.group(1))
        month = int(m.group(3) or m.group(5))
        day = int(m.group(4) or m.group(6))
        return _ymd(year, month, day, text)
    compact = _SPACES.sub("", text)
    if _DATE_COMPACT.fullmatch(compact):
        return _compact_date(compact, text)
    if re.fullmatch(r"\d{1,2}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{4}", text):
        raise NormalizeError("date-invalid", "日、月顺序不明确，请写成 2023-06-05")
    if re.fullmatch(r"\d{2}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?", text):
        raise NormalizeError("date-invalid", "年份只有两位，请写四位年份，如 2023-06-05")
    if re.fullmatch(r"\d{1,2}\s*月\s*\d{1,2}\s*[日号]?", text):
        raise NormalizeError("date-invalid", "缺少年份，请写成 2023-06-05")
    if _PERIOD.fullmatch(text):
        raise NormalizeError("date-invalid", "缺少日，请写完整日期，如 2023-06-05")
    raise NormalizeError("date-invalid", "不是日期，请写成 2023-06-05")


def _compact_date(digits: str, shown: str) -> dt.date:
    return _ymd(int(digits[:4]), int(digits[4:6]), int(digits[6:8]), shown)


def to_period(value: Any) -> str | None:
    """A reporting month "YYYY-MM" from 2023年6月, 2023-06, 2023.6, 202306 or a date in it."""
    if is_blank(value):
        return None
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer() and 190001 <= value <= 210012:
            text = str(int(value))
        else:
            try:
                day = to_date(value)
            except NormalizeError:
                raise NormalizeError("period-invalid", "不是报送月份") from None
            assert day is not None
            return f"{day.year:04d}-{day.month:02d}"
    else:
        text = unicodedata.normalize("NFKC", strip_invisible(str(value)))
    m = _PERIOD.fullmatch(text)
    digits = _SPACES.sub("", text)
    if m:
        year, month = int(m.group(1)), int(m.group(2) or m.group(3))
    elif _PERIOD_COMPACT.fullmatch(digits):
        year, month = int(digits[:4]), int(digits[4:])
    else:
        try:
            day = to_date(text)
        except NormalizeError:
            raise NormalizeError("period-invalid", "请写成 2023年6月 或 2023-06") from None
        assert day is not None
        return f"{day.year:04d}-{day.month:02d}"
    if not 1 <= month <= 12:
        raise NormalizeError("period-invalid", "月份不在 1–12 之间")
    return f"{year:04d}-{month:02d}"


def to_tick(value: Any) -> bool:
    """True when the cell is marked, False when it is empty or holds a "not marked" sign;
    NormalizeError "tick-cross" for a cross, "tick-unrecognized" for anything else."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if value == 1:
            return True
        if value == 0:
            return False
        raise NormalizeError("tick-unrecognized", "打勾栏只能填“√”")
    if isinstance(value, dt.date | dt.time):
        raise NormalizeError("tick-unrecognized", "打勾栏只能填“√”")
    text = strip_invisible(str(value))
    if text in TICK_MARKS or fold(text) in TICK_MARKS:
        return True
    if text in NOT_TICKED or fold(text) in NOT_TICKED:
        return False
    if text in CROSS_MARKS or fold(text) in CROSS_MARKS:
        raise NormalizeError("tick-cross", "叉号不算勾选")
    raise NormalizeError("tick-unrecognized", "打勾栏只能填“√”")


def to_choice(value: Any, choices: tuple[str, ...]) -> str | None:
    """One of `choices` when the typed text is one of them (ignoring spaces, width and a 级
    suffix); otherwise the text as typed, for the validator to report."""
    text = clean_text(value)
    if text is None:
        return None
    folded = fold(text)
    by_fold = _folded_choices(choices)
    if folded in by_fold:
        return by_fold[folded]
    if folded.endswith("级") and folded[:-1] in by_fold:
        return by_fold[folded[:-1]]
    return text


@functools.lru_cache(maxsize=256)
def _folded_choices(choices: tuple[str, ...]) -> dict[str, str]:
    """Each choice by its folded form (the same few lists, looked up for every ledger cell)."""
    return {fold(c): c for c in choices}


# Value types whose equal values convert alike (a float 0.0 does not: -0.0 is shown "-0"; an
# aware datetime does not either: equal instants in two zones are shown differently; nor does
# a naive one with fold=1, the same time as with fold=0)
_SAME_WHEN_EQUAL = frozenset({str, int, dt.date, type(None)})
# Types no value of which equals a value of another of them (1 == 1.0 == True, so int and
# float may not meet, nor bool join)
_DISTINCT_KINDS = (
    frozenset({str, int, dt.date, type(None)}),
    frozenset({str, float, dt.date, type(None)}),
)


def convert_column(
    convert: Callable[[Any], Any], values: Sequence[Any]
) -> tuple[list[Any], dict[int, NormalizeError]]:
    """[convert(v) for v in values], with each NormalizeError raised kept by position instead
    (that position's result is then None). The same as calling `convert` on every value, for a
    pure `convert`: equal values of a type in _SAME_WHEN_EQUAL, non-zero floats and naive
    datetimes (fold 0) are converted once (a ledger column repeats its choices, dates and names), and
    equal results are then one object."""
    kinds = set(map(type, values))
    if any(kinds <= group for group in _DISTINCT_KINDS) and (
        float not in kinds or 0 not in values  # no 0.0 or -0.0
    ):
        # equal values are of one type and convert alike: convert each distinct value once
        results: dict[Any, Any] = {}
        failed: dict[Any, NormalizeError] = {}
        for value in dict.fromkeys(values):
            try:
                results[value] = convert(value)
            except NormalizeError as exc:
                results[value] = None
                failed[value] = exc.with_traceback(None)  # kept: no cycle through this frame
        out = list(map(results.__getitem__, values))
        if not failed:
            return out, {}
        return out, {i: failed[v] for i, v in enumerate(values) if v in failed}
    return _convert_each(convert, values)


def _convert_each(
    convert: Callable[[Any], Any], values: Sequence[Any]
) -> tuple[list[Any], dict[int, NormalizeError]]:
    cache: dict[Any, Any] = {}
    out: list[Any] = []
    errors: dict[int, NormalizeError] = {}
    for i, value in enumerate(values):
        kind = type(value)
        if (
            kind in _SAME_WHEN_EQUAL
            or (kind is float and value != 0)
            or (kind is dt.datetime and value.tzinfo is None and not value.fold)
        ):
            key: Any = (kind, value)
        else:
            key = None
        hit = cache.get(key, _MISSING) if key is not None else _MISSING
        if hit is _MISSING:
            try:
                hit = convert(value)
            except NormalizeError as exc:
                hit = _Failed(exc.with_traceback(None))
            if key is not None:
                cache[key] = hit
        if type(hit) is _Failed:
            errors[i] = hit.error
            out.append(None)
        else:
            out.append(hit)
    return out, errors


class _Failed:
    """A conversion that raised, as kept by convert_column."""

    __slots__ = ("error",)

    def __init__(self, error: NormalizeError) -> None:
        self.error = error


_MISSING = object()


def match_name(
    text: str, names: list[str], suffixes: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()
) -> str | None:
    """The one name in `names` that `text` denotes, ignoring spaces, width, any `suffixes`
    typed after it (鼓楼区建设局 -> 鼓楼区) and any `prefixes` before it (福州市鼓楼区 ->
    鼓楼区); None when there is no single match. What is left must equal a name: 鼓楼区 in
    福州市鼓楼区 is found, 长乐 in 长乐路 is not."""
    folded = fold(text)
    for suffix in sorted(suffixes, key=len, reverse=True):
        if folded.endswith(suffix) and len(folded) > len(suffix):
            folded = folded[: -len(suffix)]
            break
    candidates = [folded]
    for prefix in sorted(prefixes, key=len, reverse=True):
        if folded.startswith(prefix) and len(folded) > len(prefix):
            candidates.append(folded[len(prefix) :])
            break
    # the text as typed first: a name may itself begin with a prefix (福州高新区)
    for candidate in candidates:
        hits = [n for n in names if _fold_name(n) == candidate]
        if hits:
            return hits[0] if len(hits) == 1 else None
    return None


@functools.lru_cache(maxsize=1024)
def _fold_name(name: str) -> str:
    """fold of a name from a table (the same names, looked up for every file)."""
    return fold(name)


# --- GB 32100-2015 统一社会信用代码 -----------------------------------------------------------

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, Z, S, V
CREDIT_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1 3 9 27 19 26 16 17 20 29 25 13 8 …


def credit_code_check_char(first17: str) -> str:
    """The 18th (check) character for the first 17 characters of a credit code."""
    if len(first17) != 17 or any(ch not in CREDIT_ALPHABET for ch in first17):
        raise ValueError("need 17 characters of the GB 32100 alphabet")
    total = sum(
        CREDIT_ALPHABET.index(ch) * w for ch, w in zip(first17, CREDIT_WEIGHTS, strict=True)
    )
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """None when `code` is a well-formed 18-character code with a correct check character,
    else the reason in Chinese."""
    if len(code) != 18:
        return f"应为18位，实际为{len(code)}位"
    bad = sorted({ch for ch in code if ch not in CREDIT_ALPHABET})
    if bad:
        return f"含有不允许的字符 {''.join(bad)}（代码中不使用 I、O、Z、S、V）"
    if credit_code_check_char(code[:17]) != code[17]:
        return "校验位不正确，请核对是否抄错"
    return None


def to_credit_code(value: Any) -> str | None:
    text = clean_text(value)
    return None if text is None else fold(text).upper()
