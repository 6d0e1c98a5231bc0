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

from pipeline.normalize import fold

# A year and month (2023年7月, 2023-07, 2023.7, 202307) or a month alone (7月), each possibly
# the end of a range (2023年5-6月, 1—6月); a day after it (2023年7月1日, 2023-07-01, 7月1日前)
# makes it a date, which names no period (a deadline or the day it was sent)
_DAY = r"(?:\s*\d{1,2}\s*[日号]|\s*[-./]\s*\d{1,2}(?!\d))"
_RANGE = r"(?:(\d{1,2})\s*[-~—–至到]\s*)?"
_PERIOD = re.compile(
    r"(?<!\d)(?:"
    rf"(20\d\d)\s*年\s*{_RANGE}(\d{{1,2}})\s*月(?!{_DAY})"  # 2023年7月, 2023年5-6月
    rf"|(20\d\d)\s*[-.]\s*(\d{{1,2}})(?![\d.]|{_DAY})"  # 2023-07, 2023.7
    r"|(20\d\d)(0[1-9]|1[0-2])(?!\d)"  # 202307 (not 20230705)
    rf"|{_RANGE}(\d{{1,2}})\s*月(?!{_DAY})"  # 7月, 1-6月: in the return's own year
    r")"
)
# 附件4, 附件 4: the annex number is no month ("附件4月报", "附件4 7月")
_ANNEX = re.compile(r"附件\s*\d")


def periods_named(name: str, year: int) -> frozenset[str]:
    """The periods (YYYY-MM) a file or folder name mentions: a year and month, or a month
    without its year (taken in `year`); every month of a range (5-6月). A date (with its day)
    names no period. Only months 1–12 count."""
    text = fold(_ANNEX.sub(" ", unicodedata.normalize("NFKC", name)))
    found: set[str] = set()
    for m in _PERIOD.finditer(text):
        y1, first1, last1, y2, m2, y3, m3, first4, last4 = m.groups()
        if y1:
            y, first, last = int(y1), first1, last1
        elif y2:
            y, first, last = int(y2), None, m2
        elif y3:
            y, first, last = int(y3), None, m3
        else:
            y, first, last = year, first4, last4
        stop = int(last)
        start = int(first) if first else stop
        if 1 <= start <= stop <= 12:
            found.update(f"{y}-{month:02d}" for month in range(start, stop + 1))
    return frozenset(found)


@functools.cache
def _unit_patterns(names: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Per unit, one pattern over NFKC text for its full name (鼓楼区, 福州高新区, 高新区) and its
    short form (鼓楼), the short form only standing alone: not inside a longer run of Chinese
    (长乐路, 高新技术企业), though 福州鼓楼 and 鼓楼7月 count."""
    out = []
    for name in names:
        full = unicodedata.normalize("NFKC", name)
        fulls = {full}
        if full.startswith("福州") and len(full) > 4:
            fulls.add(full[2:])
        shorts = {f[:-1] for f in fulls if f[-1] in "区县市" and len(f) >= 3 and f[:-1] != "高新"}
        alternatives = [re.escape(f) for f in sorted(fulls, key=len, reverse=True)]
        alternatives += [
            rf"(?<![\u4e00-\u9fff](?<!福州)){re.escape(f)}(?![\u4e00-\u9fff])"
            for f in sorted(shorts, key=len, reverse=True)
        ]
        out.append((name, re.compile("|".join(alternatives))))
    return tuple(out)


def units_named(name: str, unit_names: Iterable[str]) -> frozenset[str]:
    """The units (by their names in the unit table) a file or folder name mentions."""
    text = unicodedata.normalize("NFKC", name)  # spaces kept: "鼓楼 附件4" names 鼓楼区
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
