"""click's own words (usage, errors, help) reach the clerk in Chinese."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.cli_zh import ZH


def test_usage_errors_are_chinese() -> None:
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 2
    assert "错误：缺少参数 'INBOX'" in result.stderr
    assert "可运行 'main validate --help' 查看帮助。" in result.stderr
    assert "Error" not in result.stderr and "Missing" not in result.stderr


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
