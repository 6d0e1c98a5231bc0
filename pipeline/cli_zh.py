"""Chinese for click's own words (usage, help headings, parameter errors).

click marks its messages for gettext but ships no catalogues, and gettext's global lookup depends
on the clerk's locale settings. We route click's `_`/`ngettext` through this small catalogue
instead, so every machine shows the same Chinese; unknown messages fall back to click's English.
"""

from __future__ import annotations

import importlib
import unicodedata
from typing import Any

import click
import click.exceptions
import click.formatting

ZH: dict[str, str] = {
    "Usage:": "用法：",
    "Options": "选项",
    "Commands": "命令",
    "Positional arguments": "位置参数",
    "Show this message and exit.": "显示本帮助并退出。",
    "Show the version and exit.": "显示版本号并退出。",
    "%(prog)s, version %(version)s": "%(prog)s，版本 %(version)s",
    "Error: {message}": "错误：{message}",
    "Try '{command} {option}' for help.": "可运行 '{command} {option}' 查看帮助。",
    "Invalid value for {param_hint}: {message}": "{param_hint} 的值无效：{message}",
    "Invalid value: {message}": "值无效：{message}",
    "Missing argument": "缺少参数",
    "Missing option": "缺少选项",
    "Missing parameter": "缺少参数",
    "Missing parameter: {param_name}": "缺少参数：{param_name}",
    "Missing {param_type}": "缺少{param_type}",
    "Missing command.": "缺少命令。",
    "No such command {name!r}.": "没有命令 {name!r}。",
    "No such option {name!r}.": "没有选项 {name!r}。",
    "Option {name!r} does not take a value.": "选项 {name!r} 不带值。",
    "Argument {name!r} takes {nargs} values.": "参数 {name!r} 需要 {nargs} 个值。",
    "Aborted!": "已中止。",
    "default: {default}": "默认：{default}",
    "required": "必填",
    "env var: {var}": "环境变量：{var}",
    "deprecated": "已弃用",
    "file": "文件",
    "directory": "文件夹",
    "path": "路径",
    "unknown error": "未知错误",
    "{name} {filename!r} does not exist.": "{name} {filename!r} 不存在。",
    "{name} {filename!r} is a file.": "{name} {filename!r} 是文件，不是文件夹。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} 是文件夹，不是文件。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} 无法读取。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} 无法写入。",
    "{name} {filename!r} is not executable.": "{name} {filename!r} 不可执行。",
    "Could not open file {filename!r}: {message}": "无法打开文件 {filename!r}：{message}",
    "{value!r} is not a valid {number_type}.": "{value!r} 不是有效的{number_type}。",
    "{value} is not in the range {range}.": "{value} 不在范围 {range} 内。",
    "integer": "整数",
    "float": "数字",
    "Choose from:\n\t{choices}": "可选：\n\t{choices}",
}

ZH_PLURAL: dict[str, str] = {
    "Got unexpected extra argument ({args})": "多余的参数（{args}）",
    "Did you mean {possibility}?": "是不是 {possibility}？",
    "Option {name!r} requires an argument.": "选项 {name!r} 需要一个值。",
    "{value!r} is not {choice}.": "{value!r} 不是 {choice}。",
    "{value!r} does not match the format {format}.": "{value!r} 不符合格式 {format}。",
}
_PLURAL_FORMS: dict[str, str] = {
    "Got unexpected extra arguments ({args})": "多余的参数（{args}）",
    "(Did you mean one of: {possibilities}?)": "（是不是以下之一：{possibilities}？）",
    "Option {name!r} requires {nargs} arguments.": "选项 {name!r} 需要 {nargs} 个值。",
    "{value!r} is not one of {choices}.": "{value!r} 不是 {choices} 之一。",
    "{value!r} does not match the formats {formats}.": "{value!r} 不符合格式 {formats}。",
}

_CLICK_MODULES = (
    "click.core",
    "click.exceptions",
    "click.types",
    "click.parser",
    "click.decorators",
    "click.formatting",
    "click.termui",
    "click.utils",
)


def gettext(message: str) -> str:
    return ZH.get(message, message)


def ngettext(singular: str, plural: str, n: int) -> str:
    if n == 1:
        return ZH_PLURAL.get(singular, singular)
    return _PLURAL_FORMS.get(plural, plural)


def display_width(text: str) -> int:
    """Terminal columns `text` takes: CJK characters are two wide. Replaces click's `term_len`
    in help formatting, so a Chinese placeholder such as 文件夹 keeps the help columns aligned."""
    plain = click.unstyle(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in plain)


# Placeholders in usage lines and help (click's are OPTIONS, COMMAND, TEXT, INTEGER RANGE …).
OPTIONS_METAVAR = "[选项]"
SUBCOMMAND_METAVAR = "命令 [参数]..."


class HelpFormatter(click.HelpFormatter):
    """click's help layout with Chinese punctuation: 用法：… and 选项： (not 用法： … / 选项:)."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, gettext("Usage:") if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        self.write(f"{'':>{self.current_indent}}{heading}：\n")


class Context(click.Context):
    formatter_class = HelpFormatter


class Command(click.Command):
    """A command whose help and usage line are Chinese throughout."""

    context_class = Context

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", OPTIONS_METAVAR)
        super().__init__(*args, **kwargs)


class MinInt(click.ParamType):
    """A whole number not below `minimum`, refused in Chinese ("须为不小于 1 的整数，收到 0")
    and shown in help as 至少 N (click's IntRange says "x>=1" and "0 不在范围 x>=1 内")."""

    name = "整数"

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                number = None
        if number is None or number < self.minimum:
            self.fail(f"须为不小于 {self.minimum} 的整数，收到 {value}", param, ctx)
        return number


class Option(click.Option):
    """An option whose help brackets use Chinese separators and say 至少 N for a MinInt:
    "[默认：2；至少 1]" (click writes "[默认：2; x>=1]")."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        spec, text = record
        extras: list[str] = []
        head, bracket, tail = text.rpartition("  [")
        if bracket and tail.endswith("]"):
            text, extras = head, tail[:-1].split("; ")
        if isinstance(self.type, MinInt):
            extras.append(f"至少 {self.type.minimum}")
        return spec, f"{text}  [{'；'.join(extras)}]" if extras else text


_MISSING_MESSAGE = click.exceptions.MissingParameter.format_message


def _missing_message(self: click.exceptions.MissingParameter) -> str:
    """click ends "缺少参数 '收件箱'" with an ASCII full stop written into its code."""
    text = _MISSING_MESSAGE(self)
    stop = text.find(".")  # the first one follows the parameter's name
    return text if stop < 0 else f"{text[:stop]}。{text[stop + 1 :].lstrip()}"


def install() -> None:
    """Make click speak Chinese. Safe to call more than once."""
    click.formatting.term_len = display_width  # type: ignore[assignment]
    click.exceptions.MissingParameter.format_message = _missing_message  # type: ignore[method-assign]
    for name in _CLICK_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a click version without this module
            continue
        if hasattr(module, "_"):
            module._ = gettext  # type: ignore[attr-defined]
        if hasattr(module, "ngettext"):
            module.ngettext = ngettext  # type: ignore[attr-defined]
