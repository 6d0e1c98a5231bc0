"""Every template opens in LibreOffice headless and prints to a non-empty PDF (CI installs soffice)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.forms import load_calendar, load_forms, load_units
from pipeline.templates import BLANK_DIR, generate_templates

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")

pytestmark = [
    pytest.mark.libreoffice,
    pytest.mark.skipif(SOFFICE is None, reason="soffice (LibreOffice) is not installed"),
]


def test_every_template_converts_to_pdf(tmp_path: Path) -> None:
    assert SOFFICE is not None
    period = load_calendar().default_period
    paths = generate_templates(period, tmp_path / "tpl", units=[load_units()[0]])
    assert len(paths) == 2 * len(load_forms())
    assert any(p.parent.name == BLANK_DIR for p in paths)
    # soffice names the PDF after the file stem; unit and blank files have different stems.
    assert len({p.stem for p in paths}) == len(paths)
    out = tmp_path / "pdf"
    profile = tmp_path / "lo-profile"
    # One soffice call for all files keeps start-up cost to once.
    result = subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for path in paths:
        pdf = out / f"{path.stem}.pdf"
        assert pdf.is_file(), f"{path.name}: no PDF\n{result.stdout}\n{result.stderr}"
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF"), path.name
        assert len(data) > 10_000, path.name  # a real page with CJK glyphs, not an empty shell
