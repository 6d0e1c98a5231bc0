"""LibreOffice round trip: filled templates saved by soffice as .xlsx, .xls and .ods read back exactly."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from helpers_fill import (
    PERIOD,
    UNIT,
    drop_meta,
    good_inspection,
    good_ledger_rows,
    good_progress,
    make_return,
    mutations,
    read_one,
    rules,
)

from pipeline.forms import load_forms

pytestmark = pytest.mark.libreoffice

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
FORMATS = ("xlsx", "xls", "ods")
TIMEOUT = 240

SECOND_GAS = {
    "answers": {1: "否", 2: "是", 3: "否"},
    "details": {
        2: {
            "description": "气瓶间设在地下室",
            "requirement": "立即搬离",
            "deadline": dt.date(2023, 6, 20),
        }
    },
    "footer": {
        "inspected_unit": "某液化气供应站",
        "inspectors": "李四、王五",
        "inspection_date": dt.date(2023, 6, 12),
    },
}


def _convert(files: list[Path], fmt: str, out: Path, profile: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    assert SOFFICE is not None
    command = [
        SOFFICE,
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless",
        "--norestore",
        "--convert-to",
        fmt,
        "--outdir",
        str(out),
        *map(str, files),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=TIMEOUT)


def _far_away(path: Path) -> Path:
    """A return with one stray value at the last cell an .xls can hold (IV65536)."""
    import openpyxl

    wb = openpyxl.load_workbook(make_return(path.parent, "annex4_progress", path.name))
    wb["调度表"]["IV65536"] = "x"
    wb.save(path)
    return path


def _merged_ledger(path: Path) -> Path:
    """A ledger with 企业名称 merged over a company's three hazards (C4:C6)."""
    import openpyxl

    rows = [dict(r, enterprise="福州某建设工程有限公司") for r in good_ledger_rows()]
    wb = openpyxl.load_workbook(make_return(path.parent, "ledger", path.name, ledger_rows=rows))
    wb["隐患台账"].merge_cells("C4:C6")
    wb.save(path)
    return path


def _extra_item(path: Path) -> Path:
    """附件1 with a clerk's own item 4 in the blank row 9 below the items, a hazard ticked."""
    import openpyxl

    wb = openpyxl.load_workbook(make_return(path.parent, "annex1_gas", path.name))
    ws = wb["附件1"]
    ws.protection.sheet = False
    for cell, value in {
        "A9": 4,
        "C9": "其他：液化气钢瓶超期未检",
        "D9": "√",
        "G9": "3只液化气钢瓶超过检验期限",
        "H9": "立即停用并送检",
        "I9": dt.date(2023, 6, 20),
    }.items():
        ws[cell] = value
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Each filled return, saved by LibreOffice in each format: {fmt: {stem: path}}."""
    if SOFFICE is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    base = tmp_path_factory.mktemp("roundtrip")
    inbox = base / "filled"
    files = [
        make_return(inbox, "annex4_progress", "a4.xlsx", report_date=dt.date(2023, 7, 1)),
        make_return(
            inbox, "annex1_gas", "a1.xlsx", inspections=[good_inspection("annex1_gas"), SECOND_GAS]
        ),
        make_return(inbox, "annex2_construction", "a2.xlsx"),
        make_return(inbox, "annex3_confined_space", "a3.xlsx"),
        make_return(inbox, "ledger", "ledger.xlsx"),
        drop_meta(make_return(inbox, "annex4_progress", "a4-nometa.xlsx")),
        drop_meta(make_return(inbox, "ledger", "ledger-nometa.xlsx")),
        _far_away(inbox / "far.xlsx"),
        _merged_ledger(inbox / "ledger-merged.xlsx"),
        _extra_item(inbox / "a1-extra.xlsx"),
    ]
    out: dict[str, dict[str, Path]] = {}
    for fmt in FORMATS:
        _convert(files, fmt, base / fmt, base / "profile")
        out[fmt] = {f.stem: base / fmt / f"{f.stem}.{fmt}" for f in files}
        for path in out[fmt].values():
            assert path.is_file(), f"soffice did not write {path.name}"
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_progress_numbers_survive(converted: dict[str, dict[str, Path]], fmt: str) -> None:
    ret = read_one(converted[fmt]["a4"])
    assert (ret.status, ret.issues) == ("accepted", [])
    assert (ret.fmt, ret.form_id, ret.unit_name, ret.period, ret.identified_by) == (
        fmt,
        "annex4_progress",
        UNIT,
        PERIOD,
        "metadata",
    )
    assert ret.progress == {k: Decimal(str(v)) for k, v in good_progress().items()}
    assert ret.progress["C3b"] == Decimal("3.5")
    assert ret.progress["D5a"] == Decimal("12.3456")
    assert ret.report_date == dt.date(2023, 7, 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_checklist_ticks_texts_and_dates_survive(
    converted: dict[str, dict[str, Path]], fmt: str
) -> None:
    ret = read_one(converted[fmt]["a1"])
    assert (ret.status, ret.issues) == ("accepted", [])
    assert ret.identified_by == "metadata"
    first, second = ret.inspections
    assert (first.sheet, second.sheet) == ("附件1", "附件1 (2)")
    expected = good_inspection("annex1_gas")
    assert first.answers == expected["answers"]
    assert second.answers == SECOND_GAS["answers"]
    assert first.footer == expected["footer"]
    assert second.footer == SECOND_GAS["footer"]
    assert first.details[1]["description"] == expected["details"][1]["description"]
    assert first.details[1]["requirement"] == expected["details"][1]["requirement"]
    assert second.details[2]["deadline"] == dt.date(2023, 6, 20)
    for stem, form_id in (("a2", "annex2_construction"), ("a3", "annex3_confined_space")):
        other = read_one(converted[fmt][stem])
        assert (other.status, other.issues) == ("accepted", [])
        (inspection,) = other.inspections
        good = good_inspection(form_id)
        assert inspection.answers == good["answers"]
        assert inspection.footer == good["footer"]
        no = next(iter(good["details"]))
        assert {k: inspection.details[no][k] for k in good["details"][no]} == good["details"][no]


@pytest.mark.parametrize("fmt", FORMATS)
def test_ledger_rows_survive(converted: dict[str, dict[str, Path]], fmt: str) -> None:
    ret = read_one(converted[fmt]["ledger"])
    assert (ret.status, ret.issues) == ("accepted", [])
    assert ret.ledger is not None
    keys = [c.key for c in load_forms()["ledger"].columns]  # type: ignore[union-attr]
    got = [{k: row[k] for k in keys if row[k] is not None} for row in ret.ledger.to_dict("records")]
    assert got == good_ledger_rows()
    assert list(ret.ledger["_row"]) == [4, 5, 6]


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_metadata_the_labels_identify_the_file(
    converted: dict[str, dict[str, Path]], fmt: str
) -> None:
    for stem, form_id in (("a4-nometa", "annex4_progress"), ("ledger-nometa", "ledger")):
        ret = read_one(converted[fmt][stem])
        assert (ret.status, ret.issues) == ("accepted", [])
        assert (ret.form_id, ret.unit_name, ret.period, ret.identified_by) == (
            form_id,
            UNIT,
            PERIOD,
            "labels",
        )


@pytest.mark.parametrize("fmt", FORMATS)
def test_merged_ledger_cells_are_one_error_in_every_format(
    converted: dict[str, dict[str, Path]], fmt: str
) -> None:
    # python-calamine reports merged areas for xlsx and xls only: an .ods has them from the
    # safety scan of its content.xml, so it too gets one error, not a 未填写 per covered row
    ret = read_one(converted[fmt]["ledger-merged"])
    assert [(i.rule, i.cell) for i in ret.errors] == [("ledger-merged-cells", "C4:C6")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_item_added_below_the_checklist_is_an_error_in_every_format(
    converted: dict[str, dict[str, Path]], fmt: str
) -> None:
    ret = read_one(converted[fmt]["a1-extra"])
    assert [(i.rule, i.cell, i.value) for i in ret.errors] == [
        ("checklist-extra-row", "A9:I9", "其他：液化气钢瓶超期未检")
    ]


def test_xls_saved_with_an_xlsx_name_is_read_by_content(
    converted: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    renamed = tmp_path / "看起来是xlsx.xlsx"
    shutil.copyfile(converted["xls"]["a4"], renamed)
    ret = read_one(renamed)
    assert ret.status == "accepted"
    assert ret.fmt == "xls"
    assert rules(ret) == ["file-extension-mismatch"]
    assert ret.progress == {k: Decimal(str(v)) for k, v in good_progress().items()}


@pytest.mark.parametrize("fmt", ["xls", "ods"])
def test_far_away_value_is_refused_before_the_reader_allocates_it(
    converted: dict[str, dict[str, Path]], fmt: str
) -> None:
    # calamine would allocate 65536 x 256 cells (about a gigabyte) for this one value
    ret = read_one(converted[fmt]["far"])
    assert [(i.rule, i.cell) for i in ret.errors] == [("file-sheet-too-large", "")]
    assert "调度表" in ret.errors[0].message


@pytest.mark.parametrize("fmt", ["xls", "ods"])
def test_damaged_xls_and_ods_never_raise(
    converted: dict[str, dict[str, Path]], fmt: str, tmp_path: Path
) -> None:
    from pipeline.read import read_inbox
    from pipeline.validate import validate_returns

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for stem in ("a4", "ledger"):
        for i, data in enumerate(mutations(converted[fmt][stem].read_bytes(), 60, seed=11)):
            (inbox / f"{stem}-{i:03d}.{fmt}").write_bytes(data)
    returns = read_inbox(inbox)
    validate_returns(returns)
    assert len(returns) == 120
    assert not [r.rel for r in returns if "file-read-failed" in rules(r)]
    assert all(r.status in ("accepted", "rejected") for r in returns)
