"""The --json document of consolidate, where hand-made mutants of pipeline/output.py showed
untested: which units it lists as carried forward, and the late flag of every submission."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

from fixtures_consolidate import GL, MW, TJ, fixture_units, progress_return

from pipeline.consolidate import consolidate
from pipeline.output import to_json, write_outputs


def test_json_lists_a_never_reported_unit_among_the_carried_ones() -> None:
    # mutant: carried_forward keeps only the units with a period to carry from. 马尾区 never
    # reported and enters the city total as zeros: it is in carried_forward, with a null
    # carried_from, as Consolidation.carried_units() says
    units = [u for u in fixture_units() if u.name in (GL, TJ, MW)]
    rets = [
        progress_return(GL, "2023-07", {"A1": "2"}),
        progress_return(TJ, "2023-06", {"A1": "1"}),
    ]
    doc = to_json(consolidate(rets, "2023-07", units=units))
    assert doc["carried_forward"] == [TJ, MW]
    assert doc["carried_from"] == {TJ: "2023-06", MW: None}
    assert doc["units"][MW]["A1"] == 0 and doc["units"][TJ]["A1"] == 1
    assert doc["city"]["A1"] == 3


def test_json_late_is_the_submissions_table_s_for_rejected_and_superseded_files_too() -> None:
    # mutant: "late" in the JSON only for accepted files. A late file that was rejected, or
    # replaced by a later one, was still received late: the JSON says what the workbook says
    late = dt.datetime(2023, 8, 3, 9, 0)
    first = progress_return(GL, "2023-07", {"A1": "1"}, rel="a_初稿.xlsx", received=late)
    second = progress_return(
        GL, "2023-07", {"A1": "2"}, rel="b_修改.xlsx", received=late.replace(hour=10)
    )
    rejected = progress_return(
        TJ, "2023-07", {}, rel="c_台江.xlsx", received=late, status="rejected"
    )
    result = consolidate([first, second, rejected], "2023-07", units=fixture_units()[:2])
    doc = to_json(result)
    by_file = {s["file"]: (s["status"], s["late"]) for s in doc["submissions"] if s["file"]}
    assert by_file == {
        "a_初稿.xlsx": ("superseded", True),
        "b_修改.xlsx": ("accepted", True),
        "c_台江.xlsx": ("rejected", True),
    }
    table = result.submissions
    assert [s["late"] for s in doc["submissions"]] == [bool(v) for v in table["late"]]


def test_a_file_name_typed_as_a_formula_is_a_string_cell_on_every_sheet(tmp_path: Path) -> None:
    # mutants (together): WORKBOOK_OPTIONS strings_to_formulas True and _string writing with
    # ws.write. Each alone is caught by the other; the fixture's formula-like text is in the
    # ledger sheet, which has its own writer, so no test saw the status sheets' text at all.
    # A county names its file "=HYPERLINK(…)": the 报送情况 sheet lists it as text.
    name = '=HYPERLINK("http://x","附件4").xlsx'
    ret = progress_return(GL, "2023-07", {"A1": "1"}, rel=name)
    paths = write_outputs(consolidate([ret], "2023-07", units=fixture_units()[:1]), tmp_path)
    with zipfile.ZipFile(paths["workbook"]) as z:
        for part in z.namelist():
            if part.startswith("xl/worksheets/sheet"):
                xml = z.read(part)
                assert b"<f>" not in xml and b"<f " not in xml, part
        assert name.replace('"', "&quot;") in z.read("xl/sharedStrings.xml").decode() or (
            name in z.read("xl/sharedStrings.xml").decode()
        )
