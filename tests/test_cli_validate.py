"""`python -m pipeline validate`: exit codes, the JSON document, the screen, and where outputs go."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.model import Issue, Return

Install = Callable[[list[Return]], None]


def _workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "调度表"
    ws["D7"] = "十二"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _ret(inbox: Path, rel: str, status: str, issues: list[Issue] | None = None) -> Return:
    path = inbox / rel
    if not path.exists():
        _workbook(path)
    return Return(
        path=path,
        rel=rel,
        fmt="xlsx",
        form_id="annex4_progress",
        unit_name="鼓楼区",
        period="2023-06",
        status=status,  # type: ignore[arg-type]
        mtime=dt.datetime(2023, 6, 30, 12, 0, 0),
        issues=issues or [],
    )


def _bad(rel: str) -> list[Issue]:
    return [Issue("progress-not-number", "error", "不是数字", rel, "调度表", "D7", "十二")]


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Make `validate_inbox` return the given Returns (reporting each through on_file), so the
    command's own logic is tested apart from the reading rules; end-to-end tests follow below."""

    def installer(returns: list[Return]) -> None:
        def fake(
            inbox: Path, *, on_file: Callable[[Return], None] | None = None, jobs: int = 1
        ) -> list[Return]:
            for r in returns:
                if on_file is not None:
                    on_file(r)
            return returns

        monkeypatch.setattr("pipeline.validate.validate_inbox", fake)

    yield installer


def _run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, ["validate", *args])


def test_all_accepted_exits_0_and_writes_the_report(tmp_path: Path, install: Install) -> None:
    inbox = tmp_path / "inbox"
    install([_ret(inbox, "a.xlsx", "accepted"), _ret(inbox, "~$a.xlsx", "ignored")])
    result = _run(str(inbox), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "校验报告.xlsx").is_file()
    assert not (tmp_path / "out" / "退回修改").exists()
    assert "已接收" in result.stdout and "校验报告" in result.stdout


def test_any_rejected_exits_1_shows_its_first_issues_and_writes_a_copy(
    tmp_path: Path, install: Install
) -> None:
    inbox = tmp_path / "inbox"
    install(
        [
            _ret(inbox, "a.xlsx", "accepted"),
            _ret(inbox, "县/b.xlsx", "rejected", _bad("县/b.xlsx")),
        ]
    )
    out = tmp_path / "out"
    result = _run(str(inbox), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "退回" in result.stdout
    assert "调度表!D7" in result.stdout and "不是数字" in result.stdout
    assert (out / "退回修改" / "县" / "b.xlsx").is_file()
    assert str(out / "退回修改") in result.stdout


def test_json_is_one_document_on_stdout_with_the_design_shape(
    tmp_path: Path, install: Install
) -> None:
    inbox = tmp_path / "inbox"
    install(
        [
            _ret(inbox, "a.xlsx", "accepted"),
            _ret(inbox, "b.xlsx", "rejected", _bad("b.xlsx")),
        ]
    )
    result = _run(str(inbox), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert list(doc) == ["files"]
    assert [(f["file"], f["status"]) for f in doc["files"]] == [
        ("a.xlsx", "accepted"),
        ("b.xlsx", "rejected"),
    ]
    for f in doc["files"]:
        assert set(f) == {"file", "form", "unit", "period", "status", "issues"}
    assert doc["files"][1]["issues"] == [
        {
            "sheet": "调度表",
            "cell": "D7",
            "rule": "progress-not-number",
            "severity": "error",
            "value": "十二",
            "message": "不是数字",
        }
    ]
    assert "校验报告" in result.stderr


def test_missing_inbox_is_a_usage_error_in_chinese(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "收件箱文件夹不存在" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["{tmp}/nowhere", "--out", "{tmp}/out", "--json"], "收件箱文件夹不存在"),
        (["{tmp}/inbox", "--json", "--out", "{tmp}/file/out"], "输出"),
        (["{tmp}/inbox", "--json", "--jobs", "0"], "--jobs"),
    ],
)
def test_json_on_exit_2_is_one_error_document(
    tmp_path: Path, install: Install, args: list[str], words: str
) -> None:
    """A script reading stdout gets JSON also when validate stops with a usage error."""
    install([_ret(tmp_path / "inbox", "a.xlsx", "accepted")])
    (tmp_path / "file").write_text("x")
    result = _run(*(a.format(tmp=tmp_path) for a in args))
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc == {"error": {"exit_code": 2, "message": doc["error"]["message"]}}
    assert words in doc["error"]["message"]
    assert doc["error"]["message"] in result.stderr


def test_ctrl_c_with_json_is_an_error_document_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inbox").mkdir()

    def interrupted(*_args: object, **_kwargs: object) -> list[Return]:
        raise KeyboardInterrupt

    monkeypatch.setattr("pipeline.validate.validate_inbox", interrupted)
    result = _run(str(tmp_path / "inbox"), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": {"exit_code": 1, "message": "已中止。"}}
    assert "已中止。" in result.stderr


def test_inbox_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "inbox.xlsx").write_bytes(b"x")
    result = _run(str(tmp_path / "inbox.xlsx"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "收件箱应是一个文件夹" in result.output


def test_output_inside_the_inbox_is_refused(tmp_path: Path, install: Install) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    install([])
    result = _run(str(inbox), "--out", str(inbox / "output"))
    assert result.exit_code == 2
    assert "收件箱" in result.output
    assert list(inbox.iterdir()) == []


def test_bad_jobs_value_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    result = _run(str(tmp_path / "inbox"), "--jobs", "0")
    assert result.exit_code == 2


def test_empty_inbox_exits_0_with_a_clear_note(tmp_path: Path, install: Install) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    install([])
    result = _run(str(inbox), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "收件箱中没有报表文件" in result.stdout
    json_result = _run(str(inbox), "--out", str(tmp_path / "out"), "--json")
    assert json_result.exit_code == 0
    assert json.loads(json_result.stdout) == {"files": []}
    assert "收件箱中没有报表文件" in json_result.stderr


def test_inbox_is_unchanged_by_a_run(tmp_path: Path, install: Install) -> None:
    inbox = tmp_path / "inbox"
    install([_ret(inbox, "b.xlsx", "rejected", _bad("b.xlsx"))])
    before = hashlib.sha256((inbox / "b.xlsx").read_bytes()).hexdigest()
    result = _run(str(inbox), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert hashlib.sha256((inbox / "b.xlsx").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in inbox.iterdir()) == ["b.xlsx"]


def test_two_runs_give_identical_output_bytes(tmp_path: Path, install: Install) -> None:
    inbox = tmp_path / "inbox"
    install([_ret(inbox, "a.xlsx", "accepted"), _ret(inbox, "b.xlsx", "rejected", _bad("b.xlsx"))])
    outputs = []
    for name in ("one", "two"):
        out = tmp_path / name
        assert _run(str(inbox), "--out", str(out)).exit_code == 1
        outputs.append(
            {
                p.relative_to(out).as_posix(): p.read_bytes()
                for p in sorted(out.rglob("*"))
                if p.is_file()
            }
        )
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"校验报告.xlsx", "退回修改/b.xlsx"}


def test_output_folder_that_cannot_be_written_is_exit_2(tmp_path: Path, install: Install) -> None:
    inbox = tmp_path / "inbox"
    install([_ret(inbox, "a.xlsx", "accepted")])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _run(str(inbox), "--out", str(blocker / "out"))
    assert result.exit_code == 2
    # said before the inbox is read, in Chinese (not the OS's "Not a directory")
    assert f"输出文件夹无法创建：{blocker} 是文件，不是文件夹" in result.stderr
    assert "Not a directory" not in result.output


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.EACCES, "没有权限"), (errno.ENOSPC, "磁盘已满"), (errno.EROFS, "只读文件系统")],
)
def test_a_failed_write_is_explained_in_chinese(
    tmp_path: Path, install: Install, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    inbox = tmp_path / "inbox"
    install([_ret(inbox, "a.xlsx", "accepted")])

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError(code, os.strerror(code), str(tmp_path / "out" / "校验报告.xlsx"))

    monkeypatch.setattr("pipeline.report.write_validation_report", refuse)
    result = _run(str(inbox), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert f"输出文件夹无法写入：{tmp_path / 'out'}（{words}" in result.stderr
    assert os.strerror(code) not in result.output


def _commands(group: click.Group) -> list[str]:
    return sorted(group.commands)


@pytest.mark.parametrize("command", _commands(main))
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "用法：" in result.output and "显示本帮助并退出" in result.output
    assert "Usage:" not in result.output and "Show this message" not in result.output
    cmd = main.commands[command]
    assert cmd.help and cmd.help.strip()


def test_the_group_has_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "validate" in result.output


# --- end to end: real templates, real reading and validation -----------------------------------


def _filled_progress(path: Path, unit_index: int, **values: object) -> Path:
    """A 附件4 template for one unit and 2023-06, every figure 0 except `values` (by item code)."""
    from pipeline.forms import load_units, progress_form
    from pipeline.layout import progress_layout
    from pipeline.templates import write_template

    form = progress_form()
    write_template(form, path, unit=load_units()[unit_index], period="2023-06")
    cells = progress_layout(form).value_cells
    wb = openpyxl.load_workbook(path)
    ws = wb[form.sheet_name]
    for code, cell in cells.items():
        ws[cell.a1] = values.get(code, 0)
    wb.save(path)
    return path


def _progress_cell(code: str) -> str:
    from pipeline.forms import progress_form
    from pipeline.layout import progress_layout

    return progress_layout(progress_form()).value_cells[code].a1


@pytest.fixture
def real_inbox(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    _filled_progress(inbox / "鼓楼区.xlsx", 0, A1=5, A2=3)
    _filled_progress(inbox / "县" / "台江区.xlsx", 1, A1=5, A2=9, B1="十二")
    (inbox / "坏了.xlsx").write_bytes(b"PK\x03\x04 cut short")
    (inbox / "~$鼓楼区.xlsx").write_bytes(b"lock")
    return inbox


def test_end_to_end_exit_json_report_and_annotated_copy(tmp_path: Path, real_inbox: Path) -> None:
    from pipeline.messages import CATALOGUE

    out = tmp_path / "out"
    before = {p: p.read_bytes() for p in real_inbox.rglob("*") if p.is_file()}
    result = _run(str(real_inbox), "--out", str(out), "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    status = {f["file"]: f["status"] for f in doc["files"]}
    assert status == {
        "鼓楼区.xlsx": "accepted",
        "县/台江区.xlsx": "rejected",
        "坏了.xlsx": "rejected",
        "~$鼓楼区.xlsx": "ignored",
    }
    taijiang = next(f for f in doc["files"] if f["file"] == "县/台江区.xlsx")
    assert (taijiang["unit"], taijiang["period"], taijiang["form"]) == (
        "台江区",
        "2023-06",
        "annex4_progress",
    )
    located = {(i["cell"], i["severity"]) for i in taijiang["issues"]}
    assert {(_progress_cell("B1"), "error"), (_progress_cell("A2"), "error")} <= located
    assert all(i["rule"] in CATALOGUE for f in doc["files"] for i in f["issues"])

    # the inbox is untouched; the copy marks the same cells; the report explains the missing copy
    assert {p: p.read_bytes() for p in real_inbox.rglob("*") if p.is_file()} == before
    copy = openpyxl.load_workbook(out / "退回修改" / "县" / "台江区.xlsx")
    assert copy.sheetnames[0] == "问题清单"
    sheet = copy[taijiang["issues"][0]["sheet"]]
    for cell in (_progress_cell("B1"), _progress_cell("A2")):
        assert sheet[cell].fill.fgColor.rgb == "FFFF0000" and sheet[cell].comment is not None
    assert not (out / "退回修改" / "坏了.xlsx").exists()
    files = openpyxl.load_workbook(out / "校验报告.xlsx")["文件汇总"]
    broken = next(r for r in files.iter_rows(values_only=True) if r[0] == "坏了.xlsx")
    assert str(broken[13]).startswith("未生成：")


def test_end_to_end_screen_names_file_sheet_and_cell(tmp_path: Path, real_inbox: Path) -> None:
    result = _run(str(real_inbox), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert f"!{_progress_cell('B1')}" in result.stdout
    assert "县/台江区.xlsx" in result.stdout and "坏了.xlsx" in result.stdout
    assert "Traceback" not in result.output


def test_corrected_annotated_copy_is_accepted_when_sent_back(
    tmp_path: Path, real_inbox: Path
) -> None:
    out = tmp_path / "out"
    assert _run(str(real_inbox), "--out", str(out)).exit_code == 1
    # the county corrects the red cells in the copy it was sent and returns that very file
    resent = tmp_path / "inbox2" / "台江区（已改）.xlsx"
    resent.parent.mkdir()
    wb = openpyxl.load_workbook(out / "退回修改" / "县" / "台江区.xlsx")
    ws = wb.worksheets[1]
    ws[_progress_cell("A2")] = 3
    ws[_progress_cell("B1")] = 12
    wb.save(resent)
    result = _run(str(resent.parent), "--out", str(tmp_path / "out2"), "--json")
    assert result.exit_code == 0, result.output
    (only,) = json.loads(result.stdout)["files"]
    assert only["status"] == "accepted"
    assert not [i for i in only["issues"] if i["severity"] == "error"]


def test_parallel_reading_gives_the_same_result(tmp_path: Path, real_inbox: Path) -> None:
    one = _run(str(real_inbox), "--out", str(tmp_path / "one"), "--json")
    two = _run(str(real_inbox), "--out", str(tmp_path / "two"), "--json", "--jobs", "2")
    assert (one.exit_code, two.exit_code) == (1, 1)
    assert json.loads(one.stdout) == json.loads(two.stdout)
    for name in ("校验报告.xlsx", "退回修改/县/台江区.xlsx"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_end_to_end_empty_inbox_exits_0(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "~$x.xlsx").write_bytes(b"lock")
    result = _run(str(inbox), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "收件箱中没有报表文件" in result.stdout
