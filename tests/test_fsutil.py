"""Every output the pipeline writes gets the normal umask-derived mode (0644 under umask 022,
folders 0755), not the 0600/0700 of tempfile, and atomic writes leave nothing half-written."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_consolidate import build_returns, fixture_units

from pipeline.fsutil import atomic_write, atomic_write_bytes, temp_dir


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _no_temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def test_atomic_write_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        group_only = atomic_write_bytes(tmp_path / "a.bin", b"x")
        folder = temp_dir(tmp_path, prefix=".stage-")
    finally:
        os.umask(old)
    assert _mode(group_only) == 0o640
    assert _mode(folder) == 0o750


def test_atomic_write_replaces_the_file_and_cleans_up_on_failure(
    tmp_path: Path, umask_022: None
) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic_write(target, lambda tmp: tmp.write_text("old", encoding="utf-8"))
    assert target.read_text(encoding="utf-8") == "old" and _mode(target) == 0o644

    def broken(tmp: Path) -> None:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_validation_report_and_annotated_copies_are_readable_by_colleagues(
    tmp_path: Path, umask_022: None
) -> None:
    from test_annotate import _county_workbook, _return

    from pipeline.annotate import ANNOTATED_DIR, write_annotated_copies
    from pipeline.report import write_validation_report

    inbox = tmp_path / "inbox"
    ret = _return(inbox, "县/附件4.xlsx")
    _county_workbook(ret.path)
    out = tmp_path / "out"
    copies = write_annotated_copies([ret], out)
    report = write_validation_report([ret], out / "校验报告.xlsx", copies=copies)
    copy = copies[ret.rel].path
    assert copy is not None
    assert {_mode(report), _mode(copy)} == {0o644}
    assert _mode(out / ANNOTATED_DIR) == _mode(copy.parent) == 0o755
    assert _no_temporaries(out) == []


def test_eml_template_and_consolidation_outputs_are_0644(tmp_path: Path, umask_022: None) -> None:
    from pipeline.consolidate import consolidate
    from pipeline.forms import load_units, progress_form
    from pipeline.mail import build_message, write_eml
    from pipeline.output import write_outputs
    from pipeline.templates import write_template

    eml = write_eml(
        build_message(sender="a@example.org", to=[], subject="主题", body="正文"),
        tmp_path / "mail" / "报送.eml",
    )
    template = tmp_path / "templates" / "附件4.xlsx"
    write_template(progress_form(), template, unit=load_units()[0], period="2023-06")
    outputs = write_outputs(
        consolidate(build_returns(), "2023-07", units=fixture_units()), tmp_path / "output"
    )
    modes = {p.name: _mode(p) for p in [eml, template, *outputs.values()]}
    assert set(modes.values()) == {0o644}, modes
    assert _no_temporaries(tmp_path) == []


def test_generated_inbox_folder_is_0755(tmp_path: Path, umask_022: None) -> None:
    from pipeline.forms import load_calendar
    from pipeline.samples import ScenarioParams, build_scenario, write_inbox

    params = ScenarioParams(
        units=ScenarioParams.city().units[:1],
        periods=load_calendar().periods[:1],
        checklist_workbooks=(1, 1),
        plants=False,
    )
    scenario = build_scenario(params, 3)
    # the .xlsx returns only, so no LibreOffice is needed
    scenario = dataclasses.replace(
        scenario, files=[f for f in scenario.files if f.fmt in ("xlsx", "lock")]
    )
    written = write_inbox(scenario, tmp_path / "inbox")
    assert written
    assert _mode(tmp_path / "inbox") == 0o755
    assert {_mode(p) for p in written} == {0o644}
