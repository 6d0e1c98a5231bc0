"""Validation cases that hand-made mutants of pipeline/validate.py and the form data showed
untested: the cross rules DESIGN §8 names (pinned by code here, not derived from the form data
the mutant edits) and the size limits at their boundary."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers_fill import errors, good_progress, make_return, read_one

from pipeline.forms import progress_form
from pipeline.layout import progress_layout
from pipeline.model import Return

PL = progress_layout(progress_form())


def _cell(code: str) -> str:
    return PL.value_cells[code].a1


def progress(tmp_path: Path, **changes: Any) -> Return:
    return read_one(
        make_return(tmp_path / "inbox", "annex4_progress", progress=good_progress() | changes)
    )


# DESIGN §8: "A2 > A1, B6 > B1, C8b > C8a, D5b > D5a" are validation issues, and every 其中 /
# 未… count of section B is a part of B1. Written out here: a mutant that drops an item from a
# rule in annex4_progress.toml (or the rule itself) is not caught by a test built from that file.
CROSS_RULES = [
    ("a4-a2-gt-a1", "A2", "A1"),
    ("a4-a4-gt-a3", "A4", "A3"),
    ("a4-a6-gt-a5", "A6", "A5"),
    *[("a4-b-gt-b1", b, "B1") for b in ("B2", "B3", "B4", "B5", "B6", "B7", "B8")],
    ("a4-c8b-gt-c8a", "C8b", "C8a"),
    ("a4-d5b-gt-d5a", "D5b", "D5a"),
]


@pytest.mark.parametrize(("rule", "part", "whole"), CROSS_RULES)
def test_each_part_above_its_whole_is_rejected_at_the_part(
    tmp_path: Path, rule: str, part: str, whole: str
) -> None:
    values = good_progress()
    bigger = Decimal(str(values[whole])) + Decimal("0.5" if part == "D5b" else "1")
    ret = progress(tmp_path, **{part: bigger})
    assert ret.status == "rejected"
    assert errors(ret) == [(rule, _cell(part))]


@pytest.mark.parametrize(("rule", "part", "whole"), CROSS_RULES)
def test_each_part_equal_to_its_whole_is_accepted(
    tmp_path: Path, rule: str, part: str, whole: str
) -> None:
    values = good_progress()
    ret = progress(tmp_path, **{part: values[whole]})
    assert ret.status == "accepted", errors(ret)


def test_the_largest_amount_and_count_are_accepted_one_more_is_not(tmp_path: Path) -> None:
    # mutant: value-too-large with `<` for `<=` (MAX_MONEY, MAX_COUNT "above this is a typing
    # error": the limit itself is a value a county can report)
    at_limit = progress(tmp_path / "a", C3b=Decimal("100000"), D5a=Decimal("100000"), D3=100000)
    assert at_limit.status == "accepted", errors(at_limit)
    over = progress(tmp_path / "b", C3b=Decimal("100000.0001"), D3=100001)
    assert sorted(errors(over)) == sorted(
        [("value-too-large", _cell("C3b")), ("value-too-large", _cell("D3"))]
    )
