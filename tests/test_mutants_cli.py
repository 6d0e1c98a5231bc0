"""Exit codes of `python -m pipeline validate` where a hand-made mutant of pipeline/cli.py
showed them untested: a file rejected before its form could be told is still a rejection."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
from click.testing import CliRunner
from helpers_fill import make_return

from pipeline.cli import main


def test_validate_exits_1_for_a_workbook_that_is_no_return_at_all(tmp_path: Path) -> None:
    # mutant: the exit code counts only rejected returns of a known form. A county's own
    # workbook (no template metadata, no form title) is rejected as file-unidentified and
    # must be sent back: exit 1, as for any other rejection (DESIGN §10)
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "鼓楼区_附件4.xlsx")
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws["A1"] = "自制统计表"
    ws["B2"] = 12
    wb.save(inbox / "自制统计表.xlsx")
    result = CliRunner().invoke(
        main, ["validate", str(inbox), "--out", str(tmp_path / "out"), "--json"]
    )
    assert result.exit_code == 1, result.output
    files = {f["file"]: f for f in json.loads(result.stdout)["files"]}
    assert files["鼓楼区_附件4.xlsx"]["status"] == "accepted"
    odd = files["自制统计表.xlsx"]
    assert odd["status"] == "rejected" and not odd["form"]
    assert "file-unidentified" in [i["rule"] for i in odd["issues"] if i["severity"] == "error"]
