"""What a returned file's name, and the folders it sits in, say about its unit and period.

The template's hidden metadata decides which unit and period a return belongs to (a clerk
renames files at will). But when the name says otherwise — 鼓楼区's July figures typed into
June's template and saved as "…_2023年7月.xlsx", or 台江区's file in 鼓楼区's template — the
return is still filed under the template's unit and period, where it may replace the real
one. consolidate flags such a file (it does not reject it); this module reads the names.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, TypeAlias

from pipeline.normalize import fold, strip_invisible

if TYPE_CHECKING:
    from pipeline.forms import Unit

# A year and month (2023年7月, 2023-07, 2023.7, 202307) or a month alone (7月), each possibly
# ending a range or a list (2023年5-6月, 1—6月, 6、7月). A day after it (2023年7月1日, 7月1日前,
# 2023-07-01) makes it a date, which names no period (a deadline or the day it was sent); a
# number after a dash (2023年7月-2) is a copy's number, not a day.
_DAY = r"\s*\d{1,2}\s*[日号]"
_NUMERIC_DAY = r"\s*[-./]\s*\d{1,2}(?!\d)"
_RANGE_SEPARATORS = "-~—–至到"
_LEAD = rf"((?:\d{{1,2}}\s*[{_RANGE_SEPARATORS}、,，和及]\s*)*)"
_PERIOD = re.compile(
    r"(?<!\d)(?:"
    rf"(20\d\d)\s*年\s*{_LEAD}(\d{{1,2}})\s*月(?!{_DAY})"  # 2023年7月, 2023年5-6月
    rf"|(20\d\d)\s*[-.]\s*(\d{{1,2}})(?![\d.]|{_NUMERIC_DAY}|{_DAY})"  # 2023-07, 2023.7
    r"|(20\d\d)(0[1-9]|1[0-2])(?!\d)"  # 202307 (not 20230705)
    rf"|{_LEAD}(\d{{1,2}})\s*月(?!{_DAY})"  # 7月, 1-6月, 6、7月: in the return's own year
    r")"
)
_LEAD_ITEM = re.compile(rf"(\d{{1,2}})\s*([{_RANGE_SEPARATORS}、,，和及])")
# 附件4, 附件 4: the annex number is no month ("附件4月报", "附件4 7月")
_ANNEX = re.compile(r"附件\s*\d")


def _months(lead: str | None, last: str) -> set[int]:
    """The months of "5-", "1、3-" … before the last month; empty when one is no month."""
    items = _LEAD_ITEM.findall(lead or "")
    numbers = [int(n) for n, _ in items] + [int(last)]
    months = {numbers[0]}
    for k, (_, sep) in enumerate(items):
        low, high = numbers[k], numbers[k + 1]
        if sep in _RANGE_SEPARATORS:
            if low > high:
                return set()
            months.update(range(low, high + 1))
        else:
            months.add(high)
    return months if all(1 <= m <= 12 for m in months) else set()


def periods_named(name: str, year: int) -> frozenset[str]:
    """The periods (YYYY-MM) a file or folder name mentions: a year and month, or a month
    without its year (taken in `year`); every month of a range (5-6月) or list (6、7月). A date
    (with its day) names no period. Spaces are kept: they part numbers ("附件4 2023 7月")."""
    text = _ANNEX.sub(" ", unicodedata.normalize("NFKC", strip_invisible(name)))
    found: set[str] = set()
    for m in _PERIOD.finditer(text):
        y1, lead1, last1, y2, m2, y3, m3, lead4, last4 = m.groups()
        if y1:
            y, lead, last = int(y1), lead1, last1
        elif y2:
            y, lead, last = int(y2), None, m2
        elif y3:
            y, lead, last = int(y3), None, m3
        else:
            y, lead, last = year, lead4, last4
        found.update(f"{y}-{month:02d}" for month in _months(lead, last))
    return frozenset(found)


# after a unit's short name: not more Chinese (长乐路), unless its bureau (鼓楼住建局, 台江建设局)
_SHORT_END = r"(?:(?![\u4e00-\u9fff])|(?=住建|建设|城建|住房))"


UnitNames: TypeAlias = "Iterable[str | Unit]"


def _spellings(units: UnitNames) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(name, aliases) of each unit, given as a name or as a forms.Unit (with its aliases)."""
    return tuple((u, ()) if isinstance(u, str) else (u.name, tuple(u.aliases)) for u in units)


@functools.cache
def _unit_patterns(
    names: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Per unit, one pattern over NFKC text for its full name (鼓楼区, 福州高新区, 高新区), its
    aliases (units.csv) and its short form (鼓楼), the short form only standing alone: not
    inside a longer run of Chinese (长乐路, 高新技术企业), though 福州鼓楼, 福州市台江, 鼓楼7月
    and 鼓楼住建局 count."""
    out = []
    for name, aliases in names:
        full = unicodedata.normalize("NFKC", name)
        fulls = {full, *(unicodedata.normalize("NFKC", a) for a in aliases)}
        if full.startswith("福州") and len(full) > 4:
            fulls.add(full[2:])
        shorts = {f[:-1] for f in fulls if f[-1] in "区县市" and len(f) >= 3 and f[:-1] != "高新"}
        alternatives = [re.escape(f) for f in sorted(fulls, key=len, reverse=True)]
        alternatives += [
            rf"(?<![\u4e00-\u9fff](?<!福州)(?<!福州市)){re.escape(f)}{_SHORT_END}"
            for f in sorted(shorts, key=len, reverse=True)
        ]
        out.append((name, re.compile("|".join(alternatives))))
    return tuple(out)


def units_named(name: str, unit_names: UnitNames) -> frozenset[str]:
    """The units (by their names in the unit table) a file or folder name mentions; units
    given as forms.Unit are also found by their aliases."""
    text = unicodedata.normalize("NFKC", name)  # spaces kept: "鼓楼 附件4" names 鼓楼区
    return frozenset(
        unit for unit, pattern in _unit_patterns(_spellings(unit_names)) if pattern.search(text)
    )


def claims(
    rel: str, unit_names: UnitNames, year: int
) -> tuple[frozenset[str], frozenset[str], str]:
    """(periods, units, where) a return's path says it is: the periods its file name mentions,
    and the units its file name mentions or else those of the nearest folder that mentions
    any; `where` is "文件名" or the folder's name as shown to the clerk."""
    path = PurePosixPath(rel)
    names = tuple(unit_names)
    periods = periods_named(path.stem, year)
    units = units_named(path.stem, names)
    where = "文件名"
    if not units:
        for folder in reversed(path.parent.parts):
            units = units_named(folder, names)
            if units:
                where = f"所在文件夹“{folder}”"
                break
    return periods, units, where


def periods_in_path(rel: str, year: int) -> frozenset[str]:
    """The periods a return's file name mentions, else those of the nearest folder that
    mentions any. Only for a file nothing else identifies (see pipeline.status): folders are
    often by the month received, so claims() reads the file name alone."""
    path = PurePosixPath(rel)
    for name in (path.stem, *reversed(path.parent.parts)):
        periods = periods_named(name, year)
        if periods:
            return periods
    return frozenset()


@functools.cache
def _form_patterns(
    forms: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Per form, one pattern over NFKC text without spaces for its words: an annex number
    (附件4, not 附件41) or a name (台账, 调度表, 燃气检查清单, the title)."""
    out = []
    for form_id, words in forms:
        squeezed = {fold(w) for w in words if w.strip()}
        alternatives = []
        for word in sorted(squeezed, key=len, reverse=True):
            m = re.fullmatch(r"附件(\d+)", word)
            alternatives.append(rf"附件{m.group(1)}(?!\d)" if m else re.escape(word))
        out.append((form_id, re.compile("|".join(alternatives))))
    return tuple(out)


def forms_named(name: str, forms: Iterable[tuple[str, tuple[str, ...]]]) -> frozenset[str]:
    """The forms (ids) a file name mentions, each form given as (id, its words: annex, title,
    short name, sheet name): "附件4_…" names 附件4, "鼓楼区台账" the ledger, "附件1、附件3" both."""
    text = fold(name)
    return frozenset(
        form_id for form_id, pattern in _form_patterns(tuple(forms)) if pattern.search(text)
    )
