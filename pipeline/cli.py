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
    except OSError as exc:
        raise click.ClickException(f"无法写入模板文件夹 {out}：{exc.strerror or exc}") from None
    click.echo(f"已生成 {len(paths)} 个模板（{period}），位于 {out}{'/' if out.name else ''}")


@main.command()
@click.argument("inbox", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("output"),
    show_default=True,
    help="输出文件夹：校验报告.xlsx 和 退回修改/ 下的批注副本。",
)
@click.option("--json", "as_json", is_flag=True, help="在标准输出只打印一个 JSON 文档。")
@click.option(
    "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="并行读取的进程数。"
)
def validate(inbox: Path, out: Path, as_json: bool, jobs: int) -> None:
    """校验收件箱（可含子文件夹）中回收的报表，写出校验报告和退回修改副本。

    全部接收时退出码为 0，有退回的文件时为 1，用法错误为 2。
    """
    from pipeline.annotate import ANNOTATED_DIR, write_annotated_copies
    from pipeline.console import (
        OutputError,
        advance,
        count_files,
        echo_json,
        file_progress,
        note,
        stdout_console,
    )
    from pipeline.report import REPORT_NAME, print_summary, validation_json
    from pipeline.report import write_validation_report as write_report

    if not inbox.exists():
        raise click.UsageError(f"收件箱文件夹不存在：{inbox}")
    if not inbox.is_dir():
        raise click.UsageError(f"收件箱应是一个文件夹：{inbox}")
    if out.exists() and not out.is_dir():
        raise click.UsageError(f"输出位置已有同名文件，不是文件夹：{out}")
    if out.resolve().is_relative_to(inbox.resolve()):
        raise click.UsageError(f"输出文件夹不能放在收件箱里（收件箱不得改动）：{out}")
    from pipeline.validate import validate_inbox

    with file_progress(count_files(inbox), "读取报表") as progress:
        try:
            returns = validate_inbox(
                inbox, on_file=lambda ret: advance(progress, ret.rel), jobs=jobs
            )
        except OSError as exc:
            raise OutputError(f"收件箱无法读取：{inbox}（{exc.strerror or exc}）") from None
    try:
        copies = write_annotated_copies(returns, out)
        report = write_report(returns, out / REPORT_NAME, copies=copies)
    except OSError as exc:
        raise OutputError(f"输出文件夹无法写入：{out}（{exc.strerror or exc}）") from None

    if as_json:
        echo_json(validation_json(returns))
        note(f"校验报告：{report}")
        if not any(r.status != "ignored" for r in returns):
            note("收件箱中没有报表文件。")
    else:
        print_summary(
            stdout_console(),
            returns,
            report=report,
            copies=copies,
            annotated_dir=out / ANNOTATED_DIR,
        )
    sys.exit(1 if any(r.status == "rejected" for r in returns) else 0)


def run() -> None:  # pragma: no cover - console entry point alias
    main(prog_name="python -m pipeline")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
