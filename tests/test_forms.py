"""Form definitions: verbatim labels from the seed, hazard answers, units, calendar, periods."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from pipeline.forms import (
    SCHEMAS_DIR,
    ChecklistForm,
    DefinitionError,
    checklist_forms,
    load_calendar,
    load_form,
    load_forms,
    load_units,
    next_period_start,
    period_end,
    period_label,
    period_range,
    progress_form,
    shift_period,
)

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_bced4c741a718fdd.txt"


@pytest.fixture(scope="module")
def seed_text() -> str:
    if not SEED.exists():
        pytest.skip(f"seed document not found at {SEED}")
    return SEED.read_text(encoding="utf-8")


def test_all_five_forms_load_with_versions() -> None:
    forms = load_forms()
    assert list(forms) == [
        "annex1_gas",
        "annex2_construction",
        "annex3_confined_space",
        "annex4_progress",
        "ledger",
    ]
    assert all(f.version for f in forms.values())


@pytest.mark.parametrize(
    ("form_id", "count"),
    [("annex1_gas", 3), ("annex2_construction", 44), ("annex3_confined_space", 7)],
)
def test_checklists_have_the_seed_item_counts(form_id: str, count: int) -> None:
    form = load_forms()[form_id]
    assert isinstance(form, ChecklistForm)
    assert [it.no for it in form.items] == list(range(1, count + 1))


def test_checklist_texts_are_verbatim_from_the_seed(seed_text: str) -> None:
    for form in checklist_forms():
        assert f"{form.title}" in seed_text
        for item in form.items:
            if item.reconstructed:
                continue
            assert item.matter in seed_text, (form.id, item.no)
            if item.content:
                assert item.content in seed_text, (form.id, item.no)


def test_annex2_items_1_to_31_are_marked_reconstructed() -> None:
    form = load_forms()["annex2_construction"]
    assert isinstance(form, ChecklistForm)
    assert [it.no for it in form.items if it.reconstructed] == list(range(1, 32))
    assert "待市建设局确认" in form.reconstructed_note
    assert "2022" in form.edition


def test_hazard_answers_follow_the_wording() -> None:
    forms = load_forms()
    annex2, annex3 = forms["annex2_construction"], forms["annex3_confined_space"]
    assert isinstance(annex2, ChecklistForm) and isinstance(annex3, ChecklistForm)
    assert {it.no for it in annex2.items if it.hazard_answer == "否"} == {42}
    assert {it.hazard_answer for it in annex3.items} == {"否"}


def test_annex4_labels_and_codes(seed_text: str) -> None:
    form = progress_form()
    assert form.title in seed_text
    for section in form.sections:
        assert section.label in seed_text
        for item in section.items:
            assert item.label in seed_text, item.code
    assert form.value_codes == (
        *[f"A{i}" for i in range(1, 7)],
        *[f"B{i}" for i in range(1, 9)],
        "C1", "C2", "C3a", "C3b", "C4", "C5", "C6", "C7", "C8a", "C8b", "C9", "C10",
        "D1", "D2", "D3", "D4", "D5a", "D5b", "D6", "D7", "D8",
    )  # fmt: skip
    assert {v.code for v in form.values if v.is_money} == {"C3b", "D5a", "D5b"}
    for note in form.footnotes:
        assert note in seed_text


def test_units_are_the_twelve_divisions_plus_the_high_tech_zone() -> None:
    units = load_units()
    assert len(units) == 13
    assert units[0].code == "350102" and units[0].name == "鼓楼区"
    real = [u for u in units if u.name != "福州高新区"]
    assert all(re.fullmatch(r"3501\d\d", u.code) for u in real)
    gx = next(u for u in units if u.name == "福州高新区")
    assert not gx.code.isdigit()  # cannot clash with a real division code
    assert gx.aliases == ("高新区",)


def test_a_unit_alias_may_not_name_another_unit(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    path = schemas / "units.csv"
    text = path.read_text(encoding="utf-8").replace(
        ",福州高新区,功能区,,,高新区", ",福州高新区,功能区,,,高新区、鼓楼区"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError, match="alias"):
        load_units(schemas)


def test_calendar_and_period_arithmetic() -> None:
    cal = load_calendar()
    assert cal.periods[0] == "2023-05" and cal.periods[-1] == "2023-12"
    assert cal.due_date("2023-06") == dt.date(2023, 7, 1)
    assert cal.due_date("2023-12") == dt.date(2024, 1, 1)
    assert period_end("2024-02") == dt.date(2024, 2, 29)
    assert next_period_start("2023-12") == dt.date(2024, 1, 1)
    assert shift_period("2023-01", -1) == "2022-12"
    assert period_range("2023-11", "2024-01") == ("2023-11", "2023-12", "2024-01")
    assert period_label("2023-06") == "2023年6月"
    assert {d.date for d in cal.deadlines} >= {dt.date(2023, 5, 30), dt.date(2023, 12, 5)}


def test_a_data_only_edit_changes_the_definition(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    path = schemas / "forms" / "annex1_gas.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("燃气场站设施安全间距不符合要求", "燃气场站设施安全间距不足")
    text += '\n[[items]]\nno = 4\ncategory = "城镇燃气"\nmatter = "新增检查事项"\nhazard_answer = "是"\n'
    path.write_text(text, encoding="utf-8")
    form = load_forms(schemas)["annex1_gas"]
    assert isinstance(form, ChecklistForm)
    assert "燃气场站设施安全间距不足" in form.item(3).matter
    assert form.item(4).matter == "新增检查事项"


def test_malformed_definition_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nkind = "checklist"\nitems = [{ no = 1 }]\n', encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"bad\.toml"):
        load_form(bad)
