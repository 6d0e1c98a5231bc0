"""Annotated copies of rejected returns: red cells, one comment per cell, a first 问题清单 sheet,
the original's validations, protection and hidden sheets kept, and the inbox left untouched."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.datavalidation import DataValidation

from pipeline.annotate import (
    ANNOTATED_DIR,
    AUTHOR,
    ERROR_RGB,
    ISSUES_SHEET,
    WARNING_RGB,
    annotate,
    annotated_path,
    write_annotated_copies,
    write_annotated_copy,
)
from pipeline.model import Issue, Return

SHEET = "调度表"


def _county_workbook(path: Path) -> Path:
    """A small return shaped like a template: protected sheet, validation, merged input, hidden
    _meta, a county comment, and text typed to look like a formula."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET
    ws["A1"] = "附件4"
    ws["D7"] = 12
    ws["E7"] = "十二"
    ws["D9"] = 3
    ws.merge_cells("D9:E9")
    ws["H7"] = "=1+1"
    ws["H7"].data_type = "s"  # typed as text by the clerk
    ws["B3"] = "鼓楼区"
    ws["B3"].comment = openpyxl.comments.Comment("县里自己的批注", "county")
    dv = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="0")
    ws.add_data_validation(dv)
    dv.add("D7:H40")
    ws.protection.sheet = True
    meta = wb.create_sheet("_meta")
    meta["A1"], meta["B1"] = "form_id", "annex4_progress"
    meta.sheet_state = "hidden"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _issues(rel: str) -> list[Issue]:
    return [
        Issue("progress-not-number", "error", "不是数字，请填阿拉伯数字", rel, SHEET, "E7", "十二"),
        Issue("progress-le", "error", "A2 不能大于 A1", rel, SHEET, "E7", "十二"),
        Issue("progress-drop", "warning", "比上月少，请核实", rel, SHEET, "E9", "3"),
        Issue("progress-formula", "error", "不能填公式", rel, SHEET, "H7", "=1+1"),
        Issue("sheet-missing", "error", "缺少工作表 附件9", rel, "附件9", ""),
    ]


def _return(inbox: Path, rel: str, fmt: str = "xlsx") -> Return:
    return Return(
        path=inbox / rel,
        rel=rel,
        fmt=fmt,
        form_id="annex4_progress",
        unit_name="鼓楼区",
        period="2023-06",
        status="rejected",
        mtime=dt.datetime(2023, 6, 30, 17, 0, 0),
        issues=_issues(rel),
    )


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _sheet_xml(path: Path, title: str) -> str:
    """The XML of the worksheet named `title` inside an .xlsx."""
    wb = openpyxl.load_workbook(path)
    index = wb.sheetnames.index(title) + 1
    with zipfile.ZipFile(path) as z:
        return z.read(f"xl/worksheets/sheet{index}.xml").decode("utf-8")


def _fill(cell: openpyxl.cell.cell.Cell) -> str | None:
    return cell.fill.fgColor.rgb if cell.fill.fill_type == "solid" else None


def test_copy_marks_bad_cells_red_with_one_comment_listing_all_issues(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "鼓楼区/附件4 六月.xlsx")
    _county_workbook(ret.path)
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy == tmp_path / "out" / ANNOTATED_DIR / "鼓楼区" / "附件4 六月.xlsx"
    wb = openpyxl.load_workbook(copy)
    ws = wb[SHEET]
    assert _fill(ws["E7"]) == ERROR_RGB
    assert _fill(ws["H7"]) == ERROR_RGB
    assert _fill(ws["D9"]) == WARNING_RGB  # E9 lies in the merged D9:E9: its top-left is marked
    assert _fill(ws["D7"]) is None  # a good cell stays as it was
    comment = ws["E7"].comment
    assert comment is not None and comment.author == AUTHOR
    assert "不是数字" in comment.text and "A2 不能大于 A1" in comment.text
    assert comment.text.count("【错误】") == 2
    assert ws["D9"].comment is not None and "【警告】" in ws["D9"].comment.text
    assert ws["B3"].comment is not None and ws["B3"].comment.text == "县里自己的批注"
    assert ws["D7"].value == 12 and ws["E7"].value == "十二"


def test_copy_starts_with_a_problem_list_naming_sheet_and_cell(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "附件4.xlsx")
    _county_workbook(ret.path)
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy is not None
    wb = openpyxl.load_workbook(copy)
    assert wb.sheetnames[0] == ISSUES_SHEET
    assert wb.active is not None and wb.active.title == ISSUES_SHEET
    rows = list(wb[ISSUES_SHEET].iter_rows(values_only=True))
    header = rows.index(
        ("序号", "工作表", "单元格", "严重程度", "填写值", "问题说明", "怎么改", "规则代码")
    )
    listed = [(r[1], r[2], r[3], r[7]) for r in rows[header + 1 :]]
    # errors first, then warnings; an issue on a sheet the file lacks is listed all the same
    assert listed == [
        (SHEET, "E7", "错误", "progress-not-number"),
        (SHEET, "E7", "错误", "progress-le"),
        (SHEET, "H7", "错误", "progress-formula"),
        ("附件9", None, "错误", "sheet-missing"),
        (SHEET, "E9", "警告", "progress-drop"),
    ]
    first = wb[ISSUES_SHEET].cell(row=header + 2, column=3)
    assert first.hyperlink is not None and first.hyperlink.location == f"'{SHEET}'!E7"
    assert rows[1] == ("文件", "附件4.xlsx", None, None, None, None, None, None)


def test_copy_keeps_validations_protection_and_the_hidden_meta_sheet(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "附件4.xlsx")
    _county_workbook(ret.path)
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy is not None
    wb = openpyxl.load_workbook(copy)
    assert wb["_meta"].sheet_state == "hidden"
    assert wb["_meta"]["B1"].value == "annex4_progress"
    ws = wb[SHEET]
    assert ws.protection.sheet
    assert [str(dv.sqref) for dv in ws.data_validations.dataValidation] == ["D7:H40"]
    assert not wb[SHEET].sheet_view.tabSelected


def test_text_typed_like_a_formula_stays_text_in_the_copy(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "附件4.xlsx")
    _county_workbook(ret.path)
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy is not None
    for title in (SHEET, ISSUES_SHEET):
        xml = _sheet_xml(copy, title)
        assert "<f>" not in xml and "<f " not in xml, title
    assert openpyxl.load_workbook(copy)[SHEET]["H7"].value == "=1+1"


def test_inbox_is_byte_for_byte_unchanged(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    rets = [_return(inbox, "a/附件4.xlsx"), _return(inbox, "b.xlsx")]
    for r in rets:
        _county_workbook(r.path)
    (inbox / "c.xlsx").write_bytes(b"PK\x03\x04 truncated")
    rets.append(_return(inbox, "c.xlsx"))
    before = _digest(inbox)
    stat_before = {p: p.stat().st_mtime_ns for p in inbox.rglob("*")}
    write_annotated_copies(rets, tmp_path / "out")
    assert _digest(inbox) == before
    assert {p: p.stat().st_mtime_ns for p in inbox.rglob("*")} == stat_before


def test_same_return_gives_the_same_copy_bytes(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "附件4.xlsx")
    _county_workbook(ret.path)
    first = write_annotated_copy(ret, tmp_path / "one")
    second = write_annotated_copy(ret, tmp_path / "two")
    assert first is not None and second is not None
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"2023-06-30T17:00:00Z" in z.read("docProps/core.xml")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "文件为空"),
        (b"PK\x03\x04" + b"\x00" * 40, "文件不完整"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "无法"),
        (b"just some text, not a workbook", "实际内容是文本文件"),
    ],
    ids=["empty", "truncated-zip", "broken-ole-or-encrypted", "not-a-spreadsheet"],
)
def test_unopenable_file_gets_no_copy_and_a_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ret = _return(inbox, "坏文件.xlsx")
    ret.path.write_bytes(content)
    result = annotate(ret, tmp_path / "out")
    assert result.path is None
    assert reason in result.reason
    assert write_annotated_copy(ret, tmp_path / "out") is None
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.xlsx"))


def test_zip_bomb_is_not_inflated_for_annotation(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ret = _return(inbox, "炸弹.xlsx")
    with zipfile.ZipFile(ret.path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (80 * 2**20))
    assert ret.path.stat().st_size < 2**20
    result = annotate(ret, tmp_path / "out")
    assert result.path is None and "压缩炸弹" in result.reason


def test_workbook_too_big_to_annotate_in_memory_gets_no_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "附件4.xlsx")
    _county_workbook(ret.path)
    monkeypatch.setattr("pipeline.annotate.MAX_UNCOMPRESSED_BYTES", 1000)
    result = annotate(ret, tmp_path / "out")
    assert result.path is None and "解压后过大" in result.reason


def test_file_changed_since_validation_gets_no_copy(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "附件4.xlsx")
    _county_workbook(ret.path)
    ret.sha256 = hashlib.sha256(b"what the reader saw").hexdigest()
    result = annotate(ret, tmp_path / "out")
    assert result.path is None and "被改动" in result.reason
    ret.sha256 = hashlib.sha256(ret.path.read_bytes()).hexdigest()
    assert annotate(ret, tmp_path / "out").path is not None


def test_copies_folder_is_replaced_as_a_whole(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    old, new = _return(inbox, "old.xlsx"), _return(inbox, "new.xlsx")
    _county_workbook(old.path)
    _county_workbook(new.path)
    out = tmp_path / "out"
    write_annotated_copies([old], out)
    assert (out / ANNOTATED_DIR / "old.xlsx").exists()
    old.status = "accepted"  # corrected since: its stale copy must not linger
    copies = write_annotated_copies([old, new], out)
    assert sorted(p.name for p in (out / ANNOTATED_DIR).iterdir()) == ["new.xlsx"]
    assert set(copies) == {"new.xlsx"}
    assert sorted(p.name for p in out.iterdir()) == [ANNOTATED_DIR]  # no staging left behind


def test_same_name_in_two_formats_gets_two_copies(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    a, b = _return(inbox, "鼓楼区.xlsm"), _return(inbox, "鼓楼区.xlsx")
    _county_workbook(a.path)
    _county_workbook(b.path)
    copies = write_annotated_copies([a, b], tmp_path / "out")
    paths = {c.path.name for c in copies.values() if c.path is not None}
    assert paths == {"鼓楼区.xlsx", "鼓楼区.xlsm.xlsx"}


def test_a_corrected_copy_sent_back_is_annotated_afresh(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "附件4.xlsx")
    _county_workbook(ret.path)
    first = write_annotated_copy(ret, tmp_path / "round1")
    assert first is not None
    # the county fixes E7 in our copy and returns it; only H7 is still wrong
    resent = inbox / "附件4（已改）.xlsx"
    shutil.copyfile(first, resent)
    ret2 = _return(inbox, resent.name)
    ret2.issues = [i for i in _issues(resent.name) if i.cell == "H7"]
    copy = write_annotated_copy(ret2, tmp_path / "round2")
    assert copy is not None
    wb = openpyxl.load_workbook(copy)
    assert wb.sheetnames.count(ISSUES_SHEET) == 1 and wb.sheetnames[0] == ISSUES_SHEET
    ws = wb[SHEET]
    assert _fill(ws["E7"]) is None and ws["E7"].comment is None
    assert _fill(ws["H7"]) == ERROR_RGB
    assert ws["B3"].comment is not None and ws["B3"].comment.text == "县里自己的批注"


def test_annotated_path_keeps_the_relative_path_and_cannot_escape(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert annotated_path("县/鼓楼区.xls", out) == out / ANNOTATED_DIR / "县" / "鼓楼区.xlsx"
    assert annotated_path("a.ods", out) == out / ANNOTATED_DIR / "a.xlsx"
    assert annotated_path("报表", out) == out / ANNOTATED_DIR / "报表.xlsx"
    assert annotated_path("../../etc/x.xlsx", out) == out / ANNOTATED_DIR / "etc" / "x.xlsx"


def _soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def _convert(soffice: str, source: Path, fmt: str, outdir: Path, profile: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--convert-to",
            fmt,
            "--outdir",
            str(outdir),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    converted = outdir / f"{source.stem}.{fmt}"
    assert converted.exists(), f"soffice did not write {converted}"
    return converted


@pytest.mark.libreoffice
@pytest.mark.parametrize("fmt", ["xls", "ods"])
def test_xls_and_ods_returns_are_rebuilt_cell_for_cell_and_annotated(
    tmp_path: Path, fmt: str
) -> None:
    soffice = _soffice()
    if soffice is None:
        pytest.skip("soffice (LibreOffice) is not installed")
    source = _county_workbook(tmp_path / "src" / "鼓楼区.xlsx")
    inbox = tmp_path / "inbox"
    saved = _convert(soffice, source, fmt, inbox, tmp_path / "lo-profile")
    ret = _return(inbox, saved.name, fmt=fmt)
    before = _digest(inbox)
    copies = write_annotated_copies([ret], tmp_path / "out")
    assert _digest(inbox) == before
    copy = copies[saved.name].path
    assert copy == tmp_path / "out" / ANNOTATED_DIR / "鼓楼区.xlsx"
    wb = openpyxl.load_workbook(copy)
    assert wb.sheetnames == [ISSUES_SHEET, SHEET, "_meta"]
    assert wb["_meta"].sheet_state == "hidden"
    ws = wb[SHEET]
    assert (ws["A1"].value, ws["D7"].value, ws["E7"].value, ws["D9"].value) == (
        "附件4",
        12,
        "十二",
        3,
    )
    assert ws["H7"].value == "=1+1"
    xml = _sheet_xml(copy, SHEET)
    assert "<f>" not in xml and "<f " not in xml
    assert _fill(ws["E7"]) == ERROR_RGB and _fill(ws["H7"]) == ERROR_RGB
    assert ws["E7"].comment is not None and ws["E7"].comment.text.count("【错误】") == 2
    notes = [r[1] for r in wb[ISSUES_SHEET].iter_rows(values_only=True) if r[0] == "修改要求"]
    assert notes and f".{fmt}" in str(notes[0])


def test_a_real_template_keeps_its_validations_protection_and_sheets(tmp_path: Path) -> None:
    from pipeline.forms import load_units, progress_form
    from pipeline.layout import progress_layout
    from pipeline.templates import template_filename, write_template

    form = progress_form()
    unit = load_units()[0]
    path = tmp_path / "inbox" / template_filename(form, unit, "2023-06")
    write_template(form, path, unit=unit, period="2023-06")
    wb = openpyxl.load_workbook(path)
    sheet = wb.sheetnames[0]
    a1 = progress_layout(form).value_cells["A1"].a1
    wb[sheet][a1] = "十二"
    validations = len(wb[sheet].data_validations.dataValidation)
    wb.save(path)
    ret = _return(path.parent, path.name)
    ret.issues = [Issue("progress-not-number", "error", "不是数字", path.name, sheet, a1, "十二")]
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy is not None
    out = openpyxl.load_workbook(copy)
    assert out.sheetnames == [ISSUES_SHEET, *wb.sheetnames]
    assert [s.sheet_state for s in out.worksheets] == ["visible"] + [
        s.sheet_state for s in wb.worksheets
    ]
    ws = out[sheet]
    assert ws.protection.sheet
    assert len(ws.data_validations.dataValidation) == validations > 0
    assert _fill(ws[a1]) == ERROR_RGB and ws[a1].comment is not None
    assert ws[a1].protection.locked is False  # the input cell is still open for the correction


def test_parallel_annotation_gives_the_same_copies(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    rets = [_return(inbox, f"县{i}/附件4.xlsx") for i in range(3)]
    for r in rets:
        _county_workbook(r.path)
    (inbox / "坏.xlsx").write_bytes(b"")
    rets.append(_return(inbox, "坏.xlsx"))
    serial = write_annotated_copies(rets, tmp_path / "one")
    parallel = write_annotated_copies(rets, tmp_path / "two", jobs=2)
    assert set(serial) == set(parallel) == {r.rel for r in rets}
    assert parallel["坏.xlsx"].path is None and "文件为空" in parallel["坏.xlsx"].reason
    for rel, copy in serial.items():
        other = parallel[rel]
        if copy.path is None:
            assert other.path is None
            continue
        assert other.path == tmp_path / "two" / copy.path.relative_to(tmp_path / "one")
        assert copy.path.read_bytes() == other.path.read_bytes()


def test_problem_list_rows_are_tall_enough_and_it_prints_landscape_a4_with_repeated_header(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    ret = _return(inbox, "附件4.xlsx")
    _county_workbook(ret.path)
    long_message = "本项累计数比上月少，请核对本月是否漏填或填错了单元格，" * 6  # about eight lines
    ret.issues.append(Issue("progress-drop", "warning", long_message, ret.rel, SHEET, "D7", "12"))
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy is not None
    ws = openpyxl.load_workbook(copy)[ISSUES_SHEET]
    rows = {ws.cell(row=r, column=8).value: r for r in range(1, ws.max_row + 1)}
    listed = [r for r in range(1, ws.max_row + 1) if ws.cell(row=r, column=6).value == long_message]
    assert len(listed) == 1
    long_row = listed[0]
    assert (ws.row_dimensions[long_row].height or 0) >= 15 * 6
    # a short issue is as tall as its 怎么改 text needs
    short = ws.row_dimensions[rows["progress-formula"]].height
    assert short is not None and 15 <= short < ws.row_dimensions[long_row].height
    assert ws.page_setup.orientation == "landscape"
    assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
    header = rows["规则代码"]
    assert ws.print_title_rows == f"${header}:${header}"


def _template_return(
    tmp_path: Path, form_id: str, fmt: str, fill: dict[str, object], copies: int = 0
) -> tuple[Return, openpyxl.Workbook]:
    """A county's return of `form_id`: the generated template filled with `fill` (A1 -> value on
    the form's sheet), `copies` more inspection sheets copied from it, saved by LibreOffice as
    `fmt`. Returns the rejected Return and the template as generated."""
    from pipeline.forms import load_forms, load_units
    from pipeline.templates import template_filename, write_template

    soffice = _soffice()
    if soffice is None:
        pytest.skip("soffice (LibreOffice) is not installed")
    form = load_forms()[form_id]
    unit = load_units()[0]
    source = tmp_path / "src" / template_filename(form, unit, "2023-06")
    write_template(form, source, unit=unit, period="2023-06")
    template = openpyxl.load_workbook(source)
    filled = openpyxl.load_workbook(source)
    for a1, value in fill.items():
        filled[form.sheet_name][a1] = value
    for n in range(copies):
        extra = filled.copy_worksheet(filled[form.sheet_name])
        extra.title = f"{form.sheet_name} ({n + 2})"
    filled.save(source)
    saved = _convert(soffice, source, fmt, tmp_path / "inbox", tmp_path / "lo-profile")
    ret = _return(saved.parent, saved.name, fmt=fmt)
    ret.form_id, ret.unit_code, ret.unit_name = form_id, unit.code, unit.name
    ret.issues = []
    return ret, template


@pytest.mark.libreoffice
@pytest.mark.parametrize("fmt", ["ods", "xls"])
def test_xls_and_ods_copies_are_rebuilt_on_the_template_with_the_countys_values(
    tmp_path: Path, fmt: str
) -> None:
    from pipeline.forms import progress_form
    from pipeline.layout import progress_layout

    cells = {code: cell.a1 for code, cell in progress_layout(progress_form()).value_cells.items()}
    ret, template = _template_return(
        tmp_path, "annex4_progress", fmt, {cells["A1"]: 12, cells["A2"]: "十二", cells["B1"]: 7}
    )
    sheet = progress_form().sheet_name
    ret.issues = [
        Issue("progress-not-number", "error", "不是数字", ret.rel, sheet, cells["A2"], "十二"),
        Issue("progress-drop", "warning", "比上月少", ret.rel, sheet, cells["B1"], "7"),
    ]
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy is not None
    wb = openpyxl.load_workbook(copy)
    assert wb.sheetnames == [ISSUES_SHEET, *template.sheetnames]
    assert [s.sheet_state for s in wb.worksheets[1:]] == [s.sheet_state for s in template]
    ws, tws = wb[sheet], template[sheet]
    assert sorted(map(str, ws.merged_cells.ranges)) == sorted(map(str, tws.merged_cells.ranges))
    assert len(ws.merged_cells.ranges) > 10
    assert ws.page_setup.orientation == "landscape" and str(ws.page_setup.paperSize) == "9"
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_area == tws.print_area
    assert ws.protection.sheet
    assert len(ws.data_validations.dataValidation) == len(tws.data_validations.dataValidation) > 0
    widths = {k: d.width for k, d in tws.column_dimensions.items()}
    assert {k: ws.column_dimensions[k].width for k in widths} == widths
    assert ws[cells["A1"]].border.left.style == tws[cells["A1"]].border.left.style is not None
    assert (ws[cells["A1"]].value, ws[cells["A2"]].value, ws[cells["B1"]].value) == (12, "十二", 7)
    assert ws[cells["A3"]].value is None and ws[cells["A1"]].protection.locked is False
    assert ws["A1"].value == tws["A1"].value  # the labels are the template's
    assert _fill(ws[cells["A2"]]) == ERROR_RGB and _fill(ws[cells["B1"]]) == WARNING_RGB
    assert _fill(ws[cells["A1"]]) is None
    assert ws[cells["A2"]].comment is not None
    assert wb["_meta"]["B1"].value == template["_meta"]["B1"].value
    notes = [r[1] for r in wb[ISSUES_SHEET].iter_rows(values_only=True) if r[0] == "修改要求"]
    assert notes and f".{fmt}" in str(notes[0]) and "标准模板" in str(notes[0])


@pytest.mark.libreoffice
def test_each_copied_inspection_sheet_gets_the_checklist_template(tmp_path: Path) -> None:
    from pipeline.forms import load_forms
    from pipeline.layout import a1, checklist_layout

    form = load_forms()["annex1_gas"]
    layout = checklist_layout(form)
    yes = a1(layout.item_row(form.items[0].no), layout.col("tick_0"))
    ret, template = _template_return(tmp_path, "annex1_gas", "xls", {yes: "√"}, copies=1)
    extra = f"{form.sheet_name} (2)"
    ret.issues = [Issue("checklist-two-ticks", "error", "勾了两项", ret.rel, extra, yes, "√")]
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy is not None
    wb = openpyxl.load_workbook(copy)
    assert wb.sheetnames == [ISSUES_SHEET, *template.sheetnames, extra]
    tws = template[form.sheet_name]
    for title in (form.sheet_name, extra):
        ws = wb[title]
        assert sorted(map(str, ws.merged_cells.ranges)) == sorted(map(str, tws.merged_cells.ranges))
        assert ws.protection.sheet and ws.page_setup.orientation == "landscape"
        assert len(ws.data_validations.dataValidation) == len(tws.data_validations.dataValidation)
        assert ws.print_title_rows == tws.print_title_rows and ws.freeze_panes == tws.freeze_panes
        assert ws.oddFooter.center.text == tws.oddFooter.center.text
        assert ws[yes].value == "√"
    assert _fill(wb[extra][yes]) == ERROR_RGB and _fill(wb[form.sheet_name][yes]) is None


@pytest.mark.libreoffice
def test_a_file_of_unknown_form_is_still_rebuilt_from_its_values(tmp_path: Path) -> None:
    soffice = _soffice()
    if soffice is None:
        pytest.skip("soffice (LibreOffice) is not installed")
    source = _county_workbook(tmp_path / "src" / "不明.xlsx")
    saved = _convert(soffice, source, "ods", tmp_path / "inbox", tmp_path / "lo-profile")
    ret = _return(saved.parent, saved.name, fmt="ods")
    ret.form_id = None
    copy = write_annotated_copy(ret, tmp_path / "out")
    assert copy is not None
    wb = openpyxl.load_workbook(copy)
    assert wb.sheetnames == [ISSUES_SHEET, SHEET, "_meta"]
    assert wb[SHEET]["E7"].value == "十二" and _fill(wb[SHEET]["E7"]) == ERROR_RGB
    assert not wb[SHEET].protection.sheet  # plain sheets: nothing to build on
