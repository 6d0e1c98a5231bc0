"""click's own words (usage, errors, help) reach the clerk in Chinese."""

from __future__ import annotations

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
