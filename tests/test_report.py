"""The validation report workbook and the validate JSON document, read back as a clerk would."""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline.model import Issue, Return
from pipeline.report import (
    FILES_SHEET,
    ISSUES_SHEET,
    AnnotatedCopy,
    validation_json,
    write_validation_report,
)


def _returns(tmp_path: Path) -> list[Return]:
    rejected = Return(
        path=tmp_path / "inbox" / "鼓楼区" / "附件4.xlsx",
        rel="鼓楼区/附件4.xlsx",
        size=12345,
        sha256="ab" * 32,
        mtime=dt.datetime(2023, 6, 30, 17, 5, 0),
        received=dt.datetime(2023, 7, 1, 9, 0, 0),
        received_source="log",
        fmt="xlsx",
        form_id="annex4_progress",
        unit_code="350102",
        unit_name="鼓楼区",
        period="2023-06",
        identified_by="metadata",
        status="rejected",
        issues=[
            Issue(
                "progress-not-number",
                "error",
                "不是数字",
                "鼓楼区/附件4.xlsx",
                "调度表",
                "D7",
                "=1+1",
            ),
            Issue("progress-le", "error", "A2 大于 A1", "鼓楼区/附件4.xlsx", "调度表", "H7", "5"),
            Issue("progress-drop", "warning", "比上月少", "鼓楼区/附件4.xlsx", "调度表", "D9", "3"),
        ],
    )
    accepted = Return(
        path=tmp_path / "inbox" / "台江区.xlsx",
        rel="台江区.xlsx",
        size=999,
        sha256="cd" * 32,
        mtime=dt.datetime(2023, 6, 29, 8, 0, 0),
        received=dt.datetime(2023, 6, 29, 8, 0, 0),
        received_source="mtime",
        fmt="xlsx",
        form_id="ledger",
        unit_name="台江区",
        period="2023-06",
        identified_by="labels",
        status="accepted",
    )
    ignored = Return(
        path=tmp_path / "inbox" / "~$台江区.xlsx",
        rel="~$台江区.xlsx",
        size=165,
        status="ignored",
        ignore_reason="Office 临时锁定文件",
        issues=[Issue("file-ignored-lock", "info", "锁定文件，已忽略。", "~$台江区.xlsx")],
    )
    return [rejected, accepted, ignored]


def _rows(path: Path, sheet: str) -> list[tuple[object, ...]]:
    wb = openpyxl.load_workbook(path)
    return [tuple(r) for r in wb[sheet].iter_rows(values_only=True)]


def test_issue_sheet_has_one_row_per_issue_with_location_rule_and_chinese_severity(
    tmp_path: Path,
) -> None:
    path = write_validation_report(_returns(tmp_path), tmp_path / "out" / "校验报告.xlsx")
    rows = _rows(path, ISSUES_SHEET)
    assert rows[0] == (
        "文件",
        "工作表",
        "单元格",
        "规则代码",
        "严重程度",
        "填写值",
        "问题说明",
        "表单",
        "单位",
        "期间",
    )
    # files in path order (code points: "~" sorts before any Chinese character)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows[1:]] == [
        ("~$台江区.xlsx", "", "", "file-ignored-lock", "提示"),
        ("鼓楼区/附件4.xlsx", "调度表", "D7", "progress-not-number", "错误"),
        ("鼓楼区/附件4.xlsx", "调度表", "H7", "progress-le", "错误"),
        ("鼓楼区/附件4.xlsx", "调度表", "D9", "progress-drop", "警告"),
    ]
    assert rows[2][7:] == ("附件4 进展情况调度表", "鼓楼区", "2023-06")


def test_issue_sheet_has_autofilter_frozen_header_widths_and_wrapping(tmp_path: Path) -> None:
    path = write_validation_report(_returns(tmp_path), tmp_path / "校验报告.xlsx")
    wb = openpyxl.load_workbook(path)
    ws = wb[ISSUES_SHEET]
    assert ws.auto_filter.ref == "A1:J5"
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["G"].width > 40
    assert ws["G2"].alignment.wrap_text
    files = wb[FILES_SHEET]
    assert files.auto_filter.ref == "A1:O4"
    assert files.freeze_panes == "A2"


def test_county_text_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    rets = _returns(tmp_path)
    rets[0].rel = '=HYPERLINK("http://x")'
    rets[0].issues[1].value = "+SUM(A1:A2)"
    rets[0].issues[2].value = "http://example.com/"
    path = write_validation_report(rets, tmp_path / "校验报告.xlsx")
    with zipfile.ZipFile(path) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets
        for name in sheets:
            xml = z.read(name).decode("utf-8")
            assert "<f>" not in xml and "<f " not in xml, name
            assert "hyperlink" not in xml, name
        strings = z.read("xl/sharedStrings.xml").decode("utf-8")
    assert "=1+1" in strings and "+SUM(A1:A2)" in strings
    ws = openpyxl.load_workbook(path)[ISSUES_SHEET]
    values = [c.value for c in ws["F"]]
    assert "=1+1" in values
    assert all(c.data_type == "s" for c in ws["F"] if c.value)


def test_files_sheet_one_row_per_file_with_chinese_status_and_metadata(tmp_path: Path) -> None:
    rets = _returns(tmp_path)
    copies = {
        "鼓楼区/附件4.xlsx": AnnotatedCopy(tmp_path / "out" / "退回修改" / "鼓楼区" / "附件4.xlsx")
    }
    path = write_validation_report(rets, tmp_path / "out" / "校验报告.xlsx", copies=copies)
    rows = _rows(path, FILES_SHEET)
    assert rows[0][:13] == (
        "文件",
        "表单",
        "单位",
        "期间",
        "识别方式",
        "状态",
        "问题数",
        "其中错误",
        "大小（字节）",
        "修改时间",
        "收到时间",
        "收到时间来源",
        "SHA-256",
    )
    by_file = {r[0]: r for r in rows[1:]}
    assert set(by_file) == {"鼓楼区/附件4.xlsx", "台江区.xlsx", "~$台江区.xlsx"}
    gulou = by_file["鼓楼区/附件4.xlsx"]
    assert gulou[1:9] == (
        "附件4 进展情况调度表",
        "鼓楼区",
        "2023-06",
        "模板元数据",
        "退回",
        3,
        2,
        12345,
    )
    # its receipt time is from the log: the modification time says nothing and is not shown
    # (a copied inbox would change the report's bytes)
    assert gulou[9] is None
    assert gulou[10] == dt.datetime(2023, 7, 1, 9, 0, 0)
    assert gulou[11:14] == ("收文登记", "ab" * 32, "退回修改/鼓楼区/附件4.xlsx")
    assert by_file["台江区.xlsx"][1:7] == (
        "重大事故隐患台账",
        "台江区",
        "2023-06",
        "表头文字",
        "已接收",
        0,
    )
    assert by_file["~$台江区.xlsx"][5] == "忽略"
    assert by_file["~$台江区.xlsx"][14] == "Office 临时锁定文件"


def test_files_sheet_says_why_a_rejected_file_has_no_annotated_copy(tmp_path: Path) -> None:
    rets = _returns(tmp_path)
    copies = {"鼓楼区/附件4.xlsx": AnnotatedCopy(None, "文件已损坏（压缩包不完整），无法打开")}
    path = write_validation_report(rets, tmp_path / "校验报告.xlsx", copies=copies)
    row = next(r for r in _rows(path, FILES_SHEET) if r[0] == "鼓楼区/附件4.xlsx")
    assert row[13] == "未生成：文件已损坏（压缩包不完整），无法打开"


def test_same_input_gives_same_bytes_and_no_clock_is_read(tmp_path: Path) -> None:
    first = write_validation_report(_returns(tmp_path), tmp_path / "a" / "校验报告.xlsx")
    second = write_validation_report(_returns(tmp_path), tmp_path / "b" / "校验报告.xlsx")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as z:
        core = z.read("docProps/core.xml").decode("utf-8")
        stamps = {i.date_time for i in z.infolist()}
    # the document time is the latest receipt among the inputs, not the time of the run
    assert re.findall(r"<dcterms:created[^>]*>([^<]+)<", core) == ["2023-07-01T09:00:00Z"]
    assert len(stamps) == 1 and next(iter(stamps))[0] == 1980


def test_report_replaces_the_previous_one_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "校验报告.xlsx").write_bytes(b"old report")
    path = write_validation_report(_returns(tmp_path), out / "校验报告.xlsx")
    assert path.read_bytes().startswith(b"PK")
    assert sorted(p.name for p in out.iterdir()) == ["校验报告.xlsx"]


def test_empty_input_writes_headers_only(tmp_path: Path) -> None:
    path = write_validation_report([], tmp_path / "校验报告.xlsx")
    assert _rows(path, ISSUES_SHEET)[1:] == []
    assert _rows(path, FILES_SHEET)[1:] == []


def test_odd_file_names_and_overlong_text_do_not_break_the_report(tmp_path: Path) -> None:
    rets = _returns(tmp_path)
    rets[1].rel = "bad\udcffname.xlsx"  # a file name with stray bytes, as os.listdir gives it
    rets[0].issues[0].value = "x" * 40_000
    rets[0].issues[1].message = "控制字符\x01\x02"
    path = write_validation_report(rets, tmp_path / "校验报告.xlsx")
    rows = _rows(path, ISSUES_SHEET)
    long = next(r[5] for r in rows[1:] if r[3] == "progress-not-number")
    assert isinstance(long, str) and len(long) == 32767
    assert any(
        r[0] == "bad\ufffdname.xlsx" or r[0] == "bad?name.xlsx" for r in _rows(path, FILES_SHEET)
    )


def test_validation_json_has_the_design_shape(tmp_path: Path) -> None:
    doc = validation_json(_returns(tmp_path))
    assert list(doc) == ["files"]
    json.dumps(doc)  # serialisable as is
    by_file = {f["file"]: f for f in doc["files"]}
    gulou = by_file["鼓楼区/附件4.xlsx"]
    assert set(gulou) == {"file", "form", "unit", "period", "status", "issues"}
    assert (gulou["form"], gulou["unit"], gulou["period"], gulou["status"]) == (
        "annex4_progress",
        "鼓楼区",
        "2023-06",
        "rejected",
    )
    assert gulou["issues"][0] == {
        "sheet": "调度表",
        "cell": "D7",
        "rule": "progress-not-number",
        "severity": "error",
        "value": "=1+1",
        "message": "不是数字",
    }
    assert by_file["~$台江区.xlsx"]["status"] == "ignored"
    assert by_file["~$台江区.xlsx"]["form"] == ""


@pytest.mark.parametrize("count", [0, 1])
def test_autofilter_covers_at_least_the_header(tmp_path: Path, count: int) -> None:
    rets = _returns(tmp_path)[1:2]
    rets[0].issues = [Issue("x", "warning", "m", "", "s", "A1")] * count
    path = write_validation_report(rets, tmp_path / "校验报告.xlsx")
    ws = openpyxl.load_workbook(path)[ISSUES_SHEET]
    assert ws.auto_filter.ref == "A1:J2"


def test_rows_with_long_wrapped_messages_are_tall_enough_to_read(tmp_path: Path) -> None:
    rets = _returns(tmp_path)
    rets[0].issues[0].message = "很长的说明" * 40  # 200 CJK characters: several lines at width 60
    path = write_validation_report(rets, tmp_path / "校验报告.xlsx")
    ws = openpyxl.load_workbook(path)[ISSUES_SHEET]
    row = next(c.row for c in ws["D"] if c.value == "progress-not-number")
    short = next(c.row for c in ws["D"] if c.value == "progress-drop")
    assert ws.row_dimensions[row].height is not None and ws.row_dimensions[row].height >= 90
    assert ws.row_dimensions[short].height is None  # one line: Excel's default height
    assert ws.page_setup.orientation == "landscape"
