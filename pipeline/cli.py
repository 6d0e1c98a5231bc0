"""Command-line interface: a thin click adapter over the stage functions.

Each command parses its options, calls one stage function and turns its result into screen
output, a JSON document (`--json`, stdout only) and an exit code (DESIGN §10). Progress and
human-readable text go to stderr when `--json` is given, so stdout stays one JSON document.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline import __version__
from pipeline.forms import DefinitionError, load_calendar, parse_period


def _check_period(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        parse_period(value)
    except ValueError:
        raise click.BadParameter(f"期间须写成 YYYY-MM，例如 2023-06（收到：{value}）") from None
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipeline")
def main() -> None:
    """福州市建设系统重大事故隐患专项排查整治2023行动：报表模板生成、回收校验与汇总。"""


@main.command()
@click.option(
    "--period", callback=_check_period, help="报送期间 YYYY-MM（默认：专项行动日历的默认期间）。"
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("template_workbooks"),
    show_default=True,
    help="模板输出文件夹。",
)
def templates(period: str | None, out: Path) -> None:
    """为每个填报单位生成本期各表模板，另生成一套空白模板。"""
    from pipeline.templates import generate_templates

    try:
        period = period or load_calendar().default_period
        paths = generate_templates(period, out)
    except DefinitionError as exc:
        raise click.ClickException(f"表单定义有误：{exc}") from None
    click.echo(f"已生成 {len(paths)} 个模板（{period}），位于 {out}{'/' if out.name else ''}")


def run() -> None:  # pragma: no cover - console entry point alias
    main(prog_name="python -m pipeline")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
