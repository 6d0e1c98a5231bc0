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
from collections.abc import Iterable
from pathlib import PurePosixPath

from pipeline.normalize import fold

# 2023年7月, 2023 年 07 月
_YEAR_MONTH = re.compile(r"(?<!\d)(20\d\d)\s*年\s*(\d{1,2})\s*月")
# 2023-07, 2023.7, 2023_07, 2023/07 (and the month of a date written that way)
_YEAR_SEP_MONTH = re.compile(r"(?<!\d)(20\d\d)\s*[-_.]\s*(\d{1,2})(?!\d)")
# 202307 (not 20230705: a date's digits run on)
_YEAR_MONTH_DIGITS = re.compile(r"(?<!\d)(20\d\d)(0[1-9]|1[0-2])(?!\d)")
# 7月, 07月份: a month without its year, read in the return's own year
_MONTH = re.compile(r"(?<!\d)(\d{1,2})\s*月")
# 附件4, 附件 4: the annex number is no month ("附件4月报")
_ANNEX = re.compile(r"附件\s*\d+")


def periods_named(name: str, year: int) -> frozenset[str]:
    """The periods (YYYY-MM) a file or folder name mentions; a month named without its year
    is taken in `year`. Only months 1–12 count."""
    text = _ANNEX.sub(" ", fold(name))
    found: set[str] = set()
    spans: list[tuple[int, int]] = []
    for pattern in (_YEAR_MONTH, _YEAR_SEP_MONTH, _YEAR_MONTH_DIGITS):
        for m in pattern.finditer(text):
            if 1 <= int(m.group(2)) <= 12:
                found.add(f"{m.group(1)}-{int(m.group(2)):02d}")
                spans.append(m.span())
    for m in _MONTH.finditer(text):
        if any(start <= m.start() < stop for start, stop in spans):
            continue  # the month of a year-month already read
        if 1 <= int(m.group(1)) <= 12:
            found.add(f"{year}-{int(m.group(1)):02d}")
    return frozenset(found)


@functools.cache
def _unit_patterns(names: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Per unit, one pattern for its full name and its short forms (鼓楼区 -> 鼓楼; 福州高新区 ->
    高新区, 高新), over folded text."""
    out = []
    for name in names:
        full = fold(name)
        forms = {full}
        if full.startswith("福州") and len(full) > 4:
            forms.add(full[2:])
        for form in list(forms):
            if form[-1] in "区县市" and len(form) >= 3:
                forms.add(form[:-1])
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        out.append((name, re.compile(f"(?:{alternatives})")))
    return tuple(out)


def units_named(name: str, unit_names: Iterable[str]) -> frozenset[str]:
    """The units (by their names in the unit table) a file or folder name mentions."""
    text = fold(name)
    return frozenset(
        unit for unit, pattern in _unit_patterns(tuple(unit_names)) if pattern.search(text)
    )


def claims(
    rel: str, unit_names: Iterable[str], year: int
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
