"""click's own words (usage, errors, help) reach the clerk in Chinese."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import DEFAULT_JOBS, main
from pipeline.cli_zh import ZH, display_width


def test_usage_errors_are_chinese() -> None:
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 2
    assert "错误：缺少参数 '收件箱'。" in result.stderr
    assert "可运行 'main validate --help' 查看帮助。" in result.stderr
    assert "用法：main validate [选项] 收件箱" in result.stderr
    assert "Error" not in result.stderr and "Missing" not in result.stderr
    assert "INBOX" not in result.stderr and "OPTIONS" not in result.stderr


def test_unknown_option_suggests_in_chinese() -> None:
    result = CliRunner().invoke(main, ["consolidate", "inbox", "--otu", "x"])
    assert result.exit_code == 2
    assert "没有选项 '--otu'" in result.stderr
    assert "'--out'" in result.stderr


def test_defaults_in_help_are_chinese() -> None:
    result = CliRunner().invoke(main, ["validate", "--help"])
    assert "[默认：output]" in result.output
    assert "default" not in result.output


def test_catalogue_keeps_the_placeholders() -> None:
    import re

    for english, chinese in ZH.items():
        fields = set(re.findall(r"\{[^}]*\}|%\([a-z]+\)s", english))
        assert fields == set(re.findall(r"\{[^}]*\}|%\([a-z]+\)s", chinese)), english


def test_a_bad_limit_variable_with_json_prints_an_error_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The group refuses to run on an unusable FZ_* limit (exit 2); with --json stdout still
    holds one JSON document."""
    reason = "环境变量 FZ_MAX_FILE_MB（单个文件大小上限，单位：MB）应为正数，现为“abc”"
    monkeypatch.setattr("pipeline.safety.LIMIT_ERRORS", [reason])
    result = CliRunner().invoke(main, ["status", "inbox", "--json"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["error"]["exit_code"] == 2 and reason in doc["error"]["message"]
    assert reason in result.stderr
    plain = CliRunner().invoke(main, ["status", "inbox"])
    assert plain.exit_code == 2 and plain.stdout == ""


@pytest.mark.parametrize(
    "name",
    ["ENOTDIR", "ENOENT", "EACCES", "EPERM", "EROFS", "ENOSPC", "EEXIST", "EISDIR", "ENAMETOOLONG"],
)
def test_os_errors_are_explained_in_chinese(name: str) -> None:
    from pipeline.console import os_error_text

    code = getattr(errno, name)
    text = os_error_text(OSError(code, os.strerror(code), "/x"))
    assert text and not any("a" <= ch.lower() <= "z" for ch in text), text


def test_os_errors_without_a_chinese_text_fall_back_to_a_name_not_english_prose() -> None:
    from pipeline.console import os_error_text

    assert os_error_text(OSError(errno.ESTALE, os.strerror(errno.ESTALE))) == "系统错误 ESTALE"
    assert os_error_text(OSError("something went wrong")) == "系统错误（OSError）"
    assert os_error_text(TimeoutError()) == "超时"
    assert os_error_text(OSError("收件箱里的文件太多")) == "收件箱里的文件太多"


def test_templates_into_a_folder_under_a_file_says_why_in_chinese(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["templates", "--out", str(blocker / "sub")])
    assert result.exit_code != 0
    assert "路径中的某一级是文件，不是文件夹" in result.stderr
    assert "Not a directory" not in result.output


@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_a_bad_jobs_value_is_refused_in_chinese(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(main, ["validate", str(tmp_path), "--jobs", value])
    assert result.exit_code == 2
    assert f"'--jobs' 的值无效：须为不小于 1 的整数，收到 {value}" in result.stderr
    assert "x>=1" not in result.stderr and "range" not in result.stderr


# Words that may stay in help as they are: the program, command and option names, formats,
# file types and literal values the clerk types or sees in files.
LITERALS = {
    *("python", "m", "pipeline", "h", "YYYY", "MM", "DD", "SMTP", "TOML", "smtp", "host"),
    *("port", "security", "user", "password", "from", "to", "FZ_MAIL_TO", "eml", "xlsx"),
    *("CSV", "JSON", "output", "template_workbooks"),
}


def _help_texts() -> dict[str, str]:
    prog = "python -m pipeline"
    texts = {"": CliRunner().invoke(main, ["--help"], prog_name=prog).output}
    for name in main.commands:
        texts[name] = CliRunner().invoke(main, [name, "--help"], prog_name=prog).output
    return texts


def test_help_has_no_english_placeholders_or_words() -> None:
    for name, text in _help_texts().items():
        words = set(re.findall(r"[A-Za-z_]+", re.sub(r"(?<![\w])--?[a-z][a-z-]*", " ", text)))
        assert words <= LITERALS | set(main.commands), (name, sorted(words - LITERALS))
        for english in ("TEXT", "INTEGER", "RANGE", "OPTIONS", "COMMAND", "ARGS", "INBOX", "x>="):
            assert english not in text, (name, english)
        assert "选项：" in text and "选项:" not in text
        assert text.startswith(f"用法：python -m pipeline {name}".rstrip() + " [选项]")


def test_jobs_help_shows_its_default_and_minimum_in_chinese() -> None:
    text = CliRunner().invoke(main, ["consolidate", "--help"]).output
    assert "--jobs 整数" in text and f"[默认：{DEFAULT_JOBS}；至少 1]" in text
    assert "--period 年-月" in text and "--out 文件夹" in text


@pytest.mark.parametrize("command", ["status", "email", "consolidate"])
def test_help_columns_line_up_with_chinese_placeholders(command: str) -> None:
    text = CliRunner().invoke(main, [command, "--help"]).output
    starts = {
        display_width(m.group(1))
        for line in text.splitlines()
        if (m := re.match(r"^(  -.*?\s{2,})\S", line))
    }
    assert len(starts) == 1, text
