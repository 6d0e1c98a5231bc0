"""Command-line interface: a thin click adapter over the stage functions.

Each command parses its options, calls one stage function and turns its result into screen
output, a JSON document (`--json`, stdout only) and an exit code (DESIGN §10). Progress and
human-readable text go to stderr when `--json` is given, so stdout stays one JSON document;
a command that stops with an error prints `{"error": {"exit_code": 2, "message": "…"}}` there
(PipelineGroup) and its Chinese message on stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from pipeline import __version__, cli_zh
from pipeline.forms import DefinitionError, load_calendar, parse_period, period_label

# Reading is most of a run and parallel reading gives the same results in the same order, so
# every core reads by default (4,200 province files: about half the time on 2 cores). Past 8
# the one-process phases (validate, consolidate, write) dominate and each worker holds its own
# copy of the libraries.
DEFAULT_JOBS = min(8, os.cpu_count() or 1)
JOBS_HELP = "并行读取的进程数（默认：本机核数，最多 8）。"

cli_zh.install()


def _check_period(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A period written YYYY-MM that lies within the campaign's reporting months."""
    if value is None or value == "":
        return None
    try:
        parse_period(value)
    except ValueError:
        raise click.BadParameter(f"期间须写成 YYYY-MM，例如 2023-06（收到：{value}）") from None
    try:
        calendar = load_calendar()
    except DefinitionError as exc:
        raise click.ClickException(f"表单定义有误：{exc}") from None
    if value not in calendar.periods:
        raise click.BadParameter(
            f"{period_label(value)}不在专项行动的报送月份内"
            f"（{period_label(calendar.first_period)}至{period_label(calendar.last_period)}，"
            f"见 schemas/calendar.toml）"
        )
    return value


def _check_today(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"日期须写成 YYYY-MM-DD，例如 2023-07-28（收到：{value}）"
        ) from None


# Options that several commands share, worded once.
inbox_argument = click.argument("inbox", type=click.Path(path_type=Path), metavar="收件箱")
json_option = click.option(
    "--json", "as_json", is_flag=True, help="在标准输出只打印一个 JSON 文档。"
)
today_option = click.option(
    "--today",
    metavar="年-月-日",
    callback=_check_today,
    help="按哪一天计算剩余天数 YYYY-MM-DD（默认：今天）。",
)


def jobs_option(help_text: str = JOBS_HELP) -> Any:
    return click.option(
        "--jobs",
        cls=cli_zh.Option,
        type=cli_zh.MinInt(1),
        metavar="整数",
        default=DEFAULT_JOBS,
        show_default=True,
        help=help_text,
    )


def _read_returns(inbox: Path, jobs: int, *, out: Path | None = None) -> list[Any]:
    """Check the inbox (and the output folder), then read and validate every file in it with a
    progress bar on stderr. Usage problems exit 2 with a Chinese message."""
    from pipeline.console import OutputError, advance, count_files, file_progress, os_error_text
    from pipeline.validate import validate_inbox

    if not inbox.exists():
        raise click.UsageError(f"收件箱文件夹不存在：{inbox}")
    if not inbox.is_dir():
        raise click.UsageError(f"收件箱应是一个文件夹：{inbox}")
    if out is not None:
        if out.exists() and not out.is_dir():
            raise click.UsageError(f"输出位置已有同名文件，不是文件夹：{out}")
        # say so before reading the whole inbox, not when writing fails at the end
        above = next((d for d in out.absolute().parents if d.exists()), None)
        if above is not None and not above.is_dir():
            raise click.UsageError(f"输出文件夹无法创建：{above} 是文件，不是文件夹（{out}）")
        if out.resolve().is_relative_to(inbox.resolve()):
            raise click.UsageError(f"输出文件夹不能放在收件箱里（收件箱不得改动）：{out}")
    with file_progress(count_files(inbox), "读取报表") as progress:
        try:
            return validate_inbox(inbox, on_file=lambda ret: advance(progress, ret.rel), jobs=jobs)
        except OSError as exc:
            raise OutputError(f"收件箱无法读取：{inbox}（{os_error_text(exc)}）") from None


def annotated_copies(
    returns: list[Any], out: Path, jobs: int, replaced: dict[str, str] | None = None
) -> dict[str, Any]:
    """The 退回修改 copies of the rejected returns (pipeline.annotate), but those `replaced`
    (rel -> the corrected return) since. openpyxl, which makes them, is loaded only when a file
    was rejected or an old copy folder has to be cleared."""
    from pipeline.report import ANNOTATED_DIR

    old = out / ANNOTATED_DIR
    if not any(r.status == "rejected" for r in returns) and not (old.exists() or old.is_symlink()):
        return {}
    from pipeline.annotate import write_annotated_copies

    return write_annotated_copies(returns, out, jobs=jobs, replaced=replaced)


# ctx.meta key: whether the command line asked a command that has --json for it
_JSON_REQUESTED = "pipeline.json_requested"


def _json_requested(group: click.Group, args: Sequence[str]) -> bool:
    """Whether the raw command line runs a command that has `--json` and gives it. Read from
    the arguments themselves so that errors found while parsing them are covered too (the
    group's own options take no values, so the first word is the command; a word that is the
    value of an option, or follows `--`, is not the flag)."""
    words = list(args)
    at = next((i for i, w in enumerate(words) if not w.startswith("-")), None)
    command = group.commands.get(words[at]) if at is not None else None
    if at is None or command is None or not any(p.name == "as_json" for p in command.params):
        return False
    valued = {
        name
        for p in command.params
        if isinstance(p, click.Option) and not p.is_flag and not p.count
        for name in p.opts
    }
    rest = iter(words[at + 1 :])
    for word in rest:
        if word == "--":
            break
        if word == "--json":
            return True
        if word in valued:
            next(rest, None)
    return False


def _echo_error_json(exit_code: int, message: str) -> None:
    from pipeline.console import echo_json, error_document

    echo_json(error_document(exit_code, message))


class PipelineGroup(click.Group):
    """The command group. With `--json`, stdout holds one JSON document also when a command
    stops with an error (usage, bad value, nothing to consolidate, unwritable output): an
    `{"error": {"exit_code", "message"}}` document; the Chinese message still goes to stderr.
    Its commands' help and usage lines are Chinese throughout (cli_zh)."""

    context_class = cli_zh.Context
    command_class = cli_zh.Command

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("options_metavar", cli_zh.OPTIONS_METAVAR)
        kwargs.setdefault("subcommand_metavar", cli_zh.SUBCOMMAND_METAVAR)
        super().__init__(*args, **kwargs)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        wants_json = _json_requested(self, args)
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:
            if wants_json:
                _echo_error_json(exc.exit_code, exc.format_message())
            raise
        ctx.meta[_JSON_REQUESTED] = wants_json
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if ctx.meta.get(_JSON_REQUESTED):
                _echo_error_json(exc.exit_code, exc.format_message())
            raise
        except (KeyboardInterrupt, EOFError, click.Abort):  # Ctrl-C: click exits 1, 已中止。
            if ctx.meta.get(_JSON_REQUESTED):
                _echo_error_json(1, cli_zh.gettext("Aborted!"))
            raise


@click.group(cls=PipelineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pipeline")
def main() -> None:
    """福州市建设系统重大事故隐患专项排查整治2023行动：报表模板生成、回收校验与汇总。"""
    from pipeline.safety import LIMIT_ERRORS

    if LIMIT_ERRORS:  # a limit set in the environment that cannot be used: say so, don't guess
        raise click.UsageError("；".join(LIMIT_ERRORS) + "。请改正或删除该环境变量后重试。")


@main.command()
@click.option(
    "--period",
    metavar="年-月",
    callback=_check_period,
    help="报送期间 YYYY-MM（默认：专项行动日历的默认期间）。",
)
@click.option(
    "--out",
    metavar="文件夹",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("template_workbooks"),
    show_default=True,
    help="模板输出文件夹。",
)
@json_option
def templates(period: str | None, out: Path, as_json: bool) -> None:
    """为每个填报单位生成本期各表模板，另生成一套空白模板。"""
    from pipeline.console import OutputError, echo_json, note, os_error_text
    from pipeline.templates import generate_templates

    try:
        period = period or load_calendar().default_period
        paths = generate_templates(period, out)
    except DefinitionError as exc:
        raise OutputError(f"表单定义有误：{exc}") from None
    except OSError as exc:
        raise OutputError(f"无法写入模板文件夹 {out}：{os_error_text(exc)}") from None
    done = f"已生成 {len(paths)} 个模板（{period}），位于 {out}{'/' if out.name else ''}"
    if not as_json:
        click.echo(done)
        return
    echo_json(_templates_json(period, out, paths))
    note(done)


def _templates_json(period: str, out: Path, paths: list[Path]) -> dict[str, Any]:
    """`templates --json`: each written template with its unit (null for the blank set) and
    form, in the order written."""
    from pipeline.forms import load_forms, load_units
    from pipeline.templates import BLANK_DIR, template_filename

    base = out / period
    forms = load_forms().values()
    made: dict[Path, tuple[str | None, str | None]] = {
        base / BLANK_DIR / template_filename(form, None, None): (None, form.id) for form in forms
    }
    for unit in load_units():
        for form in forms:
            made[base / unit.name / template_filename(form, unit, period)] = (unit.name, form.id)
    written = []
    for path in paths:
        unit_name, form_id = made.get(path, (None, None))
        written.append({"unit": unit_name, "form": form_id, "path": str(path)})
    return {"period": period, "out": str(out), "templates": written}


# --- consolidate (pipeline.consolidate, pipeline.output) --------------------------------------


def _check_period_has_returns(returns: list[Any], period: str) -> None:
    """Exit 2 when the inbox holds no return at all (accepted or rejected, of any form) for the
    period asked for: a mistyped --period must not give a report in which every unit is
    carried forward. Like the other nothing-to-consolidate case, nothing is written."""
    from pipeline.console import OutputError

    read = [r for r in returns if r.status in ("accepted", "rejected")]
    held = sorted({r.period for r in read if r.period})
    if period in held:
        return
    if held:
        labels = "、".join(period_label(p) for p in held)
        found = f"收件箱中的报表属于{labels}（最新为{period_label(held[-1])}）。"
    else:
        found = "收件箱中没有能确定期间的报表。"
    unknown = sum(1 for r in read if not r.period)
    if unknown:
        found += f"另有 {unknown} 个文件无法确定期间（运行 make validate 查看）。"
    raise OutputError(
        f"收件箱中没有{period_label(period)}的任何报表（已接收的和退回的都没有）。{found}"
        f"请检查 PERIOD 或 --period 是否写错（本次为 {period}），以及收件箱路径。"
    )


@main.command()
@inbox_argument
@click.option(
    "--period",
    metavar="年-月",
    callback=_check_period,
    help="汇总期间 YYYY-MM（默认：收件箱中已接收的进展情况调度表的最新期间）。",
)
@click.option(
    "--out",
    metavar="文件夹",
    type=click.Path(path_type=Path),
    default=Path("output"),
    show_default=True,
    help="输出文件夹：市级汇总表（.xlsx）、CSV 和 JSON。",
)
@json_option
@click.option("--strict", is_flag=True, help="本期有退回修改、且尚未重报更正的文件时，退出码为 1。")
@jobs_option()
def consolidate(
    inbox: Path, period: str | None, out: Path, as_json: bool, strict: bool, jobs: int
) -> None:
    """汇总收件箱中已接收的报表，生成市级调度表、分县明细、异常标记、报送情况和台账汇总。

    \b
    写出汇总表时退出码为 0（退回的文件在表中和屏幕上列出）；
    加 --strict 时本期有退回修改、且尚未重报更正的文件则为 1；
    用法错误、收件箱中没有所指期间的任何报表或找不到可汇总的进展情况调度表时为 2。
    """
    from pipeline.console import OutputError, echo_json, note, os_error_text
    from pipeline.consolidate import NothingToConsolidate
    from pipeline.consolidate import consolidate as consolidate_returns
    from pipeline.forms import period_label
    from pipeline.output import period_rejections, summary_lines, to_json, write_outputs
    from pipeline.report import ANNOTATED_DIR, REPORT_NAME, write_validation_report

    returns = _read_returns(inbox, jobs, out=out)
    if period is not None:
        _check_period_has_returns(returns, period)
    try:
        result = consolidate_returns(returns, period)
    except NothingToConsolidate:
        where = f"{period_label(period)}及以前" if period else "收件箱中"
        raise OutputError(
            f"{where}没有可汇总的进展情况调度表（附件4）：没有任何一份通过校验。"
            "请先运行 make validate 查看退回原因，或检查 --period 和收件箱路径。"
        ) from None
    except DefinitionError as exc:
        raise OutputError(f"表单定义有误：{exc}") from None
    try:
        paths = write_outputs(result, out)
        # what the city sends back for 退回修改 comes with the same run
        copies = annotated_copies(returns, out, jobs, result.superseded_files())
        report = write_validation_report(returns, out / REPORT_NAME, copies=copies)
    except OSError as exc:
        raise OutputError(f"输出文件夹无法写入：{out}（{os_error_text(exc)}）") from None

    returned = sum(1 for c in copies.values() if c.path is not None)
    early = "" if period is not None else _early_period_note(result, returns)
    if as_json:
        echo_json(to_json(result))
        note(f"汇总表：{paths['workbook']}")
        note(f"校验报告：{report}")
        if early:
            note(early)
    else:
        if early:
            click.echo(click.style(early, fg="yellow"))
        for line in summary_lines(result, paths, returns):
            click.echo(line)
        click.echo(f"校验报告：{report}")
        if returned:
            click.echo(
                f"退回修改副本（标红加批注，可直接发回各单位）：{out / ANNOTATED_DIR}{os.sep}"
            )
    sys.exit(1 if strict and period_rejections(result, returns) else 0)


def _early_period_note(result: Any, returns: list[Any]) -> str:
    """When no period was asked for and the latest one found has 附件4 from fewer than half of
    the units, but the one before it from more (a unit sent next month's return early), a
    note that the table is of that thin month and how to ask for the other."""
    from pipeline.consolidate import PROGRESS_ID
    from pipeline.forms import period_label

    units = len(result.units)
    reported = units - len(result.carried_sources())
    earlier = [p for p in result.periods if p < result.period]
    if reported * 2 >= units or not earlier:
        return ""
    before = earlier[-1]
    before_reported = len(
        {
            r.unit_name
            for r in returns
            if r.status == "accepted" and r.form_id == PROGRESS_ID and r.period == before
        }
    )
    if before_reported <= reported:
        return ""
    return (
        f"注意：没有指定汇总期间，按收件箱中最新的{period_label(result.period)}汇总，但该期只有 "
        f"{reported}/{units} 个单位报送了进展情况调度表（{period_label(before)}有 "
        f"{before_reported} 个），其余单位沿用以前的数据。如要汇总{period_label(before)}，"
        f"请运行 make consolidate PERIOD={before}（或加 --period {before}）。"
    )


@main.command()
@inbox_argument
@click.option(
    "--out",
    metavar="文件夹",
    type=click.Path(path_type=Path),
    default=Path("output"),
    show_default=True,
    help="输出文件夹：校验报告.xlsx 和 退回修改/ 下的批注副本。",
)
@json_option
@jobs_option("并行读取和标注的进程数（默认：本机核数，最多 8）。")
def validate(inbox: Path, out: Path, as_json: bool, jobs: int) -> None:
    """校验收件箱（可含子文件夹）中回收的报表，写出校验报告和退回修改副本。

    全部接收时退出码为 0，有退回的文件时为 1，用法错误为 2。
    """
    from pipeline.console import OutputError, echo_json, note, os_error_text, stdout_console
    from pipeline.consolidate import replaced_rejections
    from pipeline.report import ANNOTATED_DIR, REPORT_NAME, print_summary, validation_json
    from pipeline.report import write_validation_report as write_report

    returns = _read_returns(inbox, jobs, out=out)
    try:
        # no copy to send back for a rejected file the unit has since corrected
        copies = annotated_copies(returns, out, jobs, replaced_rejections(returns))
        report = write_report(returns, out / REPORT_NAME, copies=copies)
    except OSError as exc:
        raise OutputError(f"输出文件夹无法写入：{out}（{os_error_text(exc)}）") from None

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


# --- the monthly cycle: status, remind, prefill, email (pipeline.status / .mail / .prefill) ---


def _m(value: object) -> str:
    """Text from files and data made safe for rich markup (brackets in county file names)."""
    from rich.markup import escape

    from pipeline.console import safe_text

    return escape(safe_text(value))


def _load_cycle(inbox: Path, period: str | None, jobs: int = 1, *, out: Path | None = None) -> Any:
    """Read, validate and consolidate the inbox with a progress bar on stderr (the output
    folder, when there is one, checked first)."""
    from pipeline.console import OutputError
    from pipeline.status import cycle_from_returns, latest_period

    returns = _read_returns(inbox, jobs, out=out)
    try:
        period = period or latest_period(returns, load_calendar())
        return cycle_from_returns(returns, period)
    except DefinitionError as exc:
        raise OutputError(f"表单定义有误：{exc}") from None


@main.command()
@inbox_argument
@click.option(
    "--period",
    metavar="年-月",
    callback=_check_period,
    help="报送期间 YYYY-MM（默认：收件箱中最新的期间）。",
)
@today_option
@json_option
@jobs_option()
def status(
    inbox: Path, period: str | None, today: dt.date | None, as_json: bool, jobs: int
) -> None:
    """各单位本期报送情况：已接收、退回修改、未报送、迟报，距截止日天数和后续时间节点。"""
    from pipeline.console import echo_json, stdout_console
    from pipeline.status import render_status, status_json, status_of_cycle

    cycle = _load_cycle(inbox, period, jobs)
    report = status_of_cycle(cycle, today=today or dt.date.today())
    if as_json:
        echo_json(status_json(report))
    else:
        render_status(report, stdout_console())


@main.command()
@inbox_argument
@click.option(
    "--period",
    metavar="年-月",
    callback=_check_period,
    help="报送期间 YYYY-MM（默认：收件箱中最新的期间）。",
)
@click.option(
    "--out",
    metavar="文件夹",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("output"),
    show_default=True,
    help="输出文件夹：邮件草稿写在其中的 催报邮件/<期间>/ 下。",
)
@today_option
@json_option
@jobs_option()
def remind(
    inbox: Path, period: str | None, out: Path, today: dt.date | None, as_json: bool, jobs: int
) -> None:
    """为未报送或被退回的单位生成催报/退回修改邮件草稿（.eml，附模板或标注副本），不发送。"""
    from pipeline.console import OutputError, echo_json, note, os_error_text, stdout_console
    from pipeline.mail import draft_json, write_reminders
    from pipeline.status import status_of_cycle, unidentified_rejected

    cycle = _load_cycle(inbox, period, jobs, out=out)
    report = status_of_cycle(cycle, today=today or dt.date.today())
    try:
        drafts = write_reminders(cycle, report, out)
    except OSError as exc:
        raise OutputError(f"输出文件夹无法写入：{out}（{os_error_text(exc)}）") from None
    nameless = unidentified_rejected(report)
    if as_json:
        echo_json(
            {
                "period": report.period,
                "today": report.today.isoformat(),
                "due_date": report.due.isoformat(),
                "days_left": report.days_left,
                "drafts": [draft_json(d) for d in drafts],
                "unidentified_rejected": nameless,
            }
        )
        for d in drafts:
            if d.warning:
                note(f"警告：{d.warning}")
        return
    console = stdout_console()
    from rich.table import Table

    from pipeline.mail import days_left_text
    from pipeline.status import form_heading, headline

    if not drafts:
        console.print(f"{headline(report)}：没有需要催报或退回的单位。")
    else:
        table = Table(title=f"{headline(report)}：已生成 {len(drafts)} 封邮件草稿（未发送）")
        table.add_column("单位")
        table.add_column("表")
        table.add_column("类型")
        table.add_column("收件人")
        table.add_column("附件")
        for d in drafts:
            unit = d.draft.unit
            attached = [r.attached for r in d.reminders]
            table.add_row(
                _m(unit.name),
                _m(
                    "、".join(
                        dict.fromkeys(
                            form_heading(r.form) if r.form else "未识别的文件" for r in d.reminders
                        )
                    )
                ),
                f"[red]{_m(d.draft.tag)}[/]" if d.draft.rejected else _m(d.draft.tag),
                _m(unit.contact_email) if not d.warning else "[yellow]（无）[/]",
                _m("\n".join(a for a in attached if a) or "（无）"),  # one file a line
            )
        console.print(table)
        console.print(f"草稿位于 {_m(drafts[0].path.parent)}（{days_left_text(report.days_left)}）")
    unaddressed: dict[str, list[str]] = {}
    for d in drafts:
        if d.warning:
            unaddressed.setdefault(d.draft.unit.name, []).append(d.path.name)
    for unit_name, names in unaddressed.items():
        console.print(
            f"[bold yellow]警告：[/]{_m(unit_name)} 没有有效的联系邮箱（schemas/units.csv 的 "
            f"contact_email），{len(names)} 封草稿的收件人为空：{_m('、'.join(names))}。"
            "请补填地址后再发送。"
        )
    if nameless:
        console.print(
            f"[yellow]另有 {len(nameless)} 个被退回的文件无法确定填报单位，未生成邮件："
            f"{_m('、'.join(nameless))}[/]"
        )


@main.command()
@inbox_argument
@click.option(
    "--period",
    metavar="年-月",
    callback=_check_period,
    help="刚汇总的期间 YYYY-MM（默认：收件箱中最新的期间）；生成其下一期的模板。",
)
@click.option(
    "--out",
    metavar="文件夹",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("template_workbooks"),
    show_default=True,
    help="模板输出文件夹（写在 <下一期>/<单位>/ 下）。",
)
@json_option
@jobs_option()
def prefill(inbox: Path, period: str | None, out: Path, as_json: bool, jobs: int) -> None:
    """生成下一期的模板：附件4 显示各单位最近一次已接收的累计数（锁定，供参考），台账预填已接收的隐患。"""
    from pipeline.console import OutputError, echo_json, os_error_text, stdout_console
    from pipeline.prefill import PrefillError, next_period, prefill_json, prefill_next_period

    if period is not None:
        try:
            next_period(period)
        except PrefillError as exc:
            raise OutputError(str(exc)) from None
    cycle = _load_cycle(inbox, period, jobs, out=out)
    try:
        result = prefill_next_period(cycle, out)
    except PrefillError as exc:
        raise OutputError(str(exc)) from None
    except OSError as exc:
        raise OutputError(f"输出文件夹无法写入：{out}（{os_error_text(exc)}）") from None
    if as_json:
        echo_json(prefill_json(result))
        return
    from rich.table import Table

    console = stdout_console()
    table = Table(
        title=f"{period_label(result.period)} 模板（预填 {period_label(cycle.period)} 及以前已接收的数据）"
    )
    table.add_column("单位")
    table.add_column("附件4 参考数据")
    table.add_column("台账预填")
    for u in result.units:
        ref = (
            f"{period_label(u.reference_period)}（{_m(Path(u.reference_file).name)}）"
            if u.reference_period
            else "[yellow]无已接收的附件4[/]"
        )
        led = (
            f"{len(u.ledger_rows)} 条（{period_label(u.ledger_period)}）"
            if u.ledger_period
            else "[yellow]无已接收的台账[/]"
        )
        table.add_row(_m(u.unit.name), ref, led)
    console.print(table)
    total = sum(len(p) for p in result.paths.values())
    console.print(f"已生成 {total} 个模板，位于 {_m(out / result.period)}")


@main.command()
@click.option(
    "--period",
    metavar="年-月",
    callback=_check_period,
    help="报送期间 YYYY-MM（默认：输出文件夹中最新的汇总表）。",
)
@click.option(
    "--out",
    metavar="文件夹",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("output"),
    show_default=True,
    help="consolidate 的输出文件夹；.eml 也写在这里。",
)
@click.option("--send", is_flag=True, help="经 SMTP 发送（不加此项只生成 .eml，绝不发送）。")
@click.option(
    "--to",
    "to",
    metavar="地址",
    multiple=True,
    help="收件人（可多次给出；优先于 FZ_MAIL_TO 和配置文件）。",
)
@click.option(
    "--config",
    metavar="文件",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SMTP 配置文件（TOML，[smtp] 下 host/port/security/user/password/from/to；环境变量优先）。",
)
@json_option
def email(
    period: str | None,
    out: Path,
    send: bool,
    to: tuple[str, ...],
    config: Path | None,
    as_json: bool,
) -> None:
    """把 consolidate 写出的汇总表做成邮件（.eml，正文含主要数据）；加 --send 经 SMTP 发出。

    发送失败（连接、加密、身份验证）退出码为 1，.eml 保留；找不到汇总表或设置有误为 2。
    """
    from pipeline.console import OutputError, echo_json, error_document, note, os_error_text
    from pipeline.forms import progress_form
    from pipeline.mail import (
        MailConfigError,
        MailError,
        find_output_workbooks,
        headline_totals,
        load_settings,
        output_email,
        output_workbook_name,
        parse_address,
        reporting_note,
        send_message,
        split_addresses,
        with_recipients,
        write_eml,
    )

    try:
        form = progress_form()
        calendar = load_calendar()
    except DefinitionError as exc:
        raise OutputError(f"表单定义有误：{exc}") from None
    if period is not None:
        workbook = out / output_workbook_name(form, period)
        if not workbook.is_file():
            raise OutputError(
                f"未找到 {period_label(period)} 的汇总表：{workbook}。"
                f"请先运行 make consolidate PERIOD={period} OUT={out}。"
            )
    else:
        found = find_output_workbooks(out, form, calendar.periods)
        if not found:
            raise OutputError(
                f"{out} 中没有汇总表（{output_workbook_name(form, calendar.default_period)} 之类）。"
                "请先运行 make consolidate。"
            )
        period = max(found)
        workbook = found[period]
    try:
        settings = with_recipients(load_settings(config), split_addresses(list(to)))
        sender = settings.sender or calendar.city_email
        sender_addr = parse_address(
            sender, calendar.city_unit if sender == calendar.city_email else ""
        )
        if sender_addr is None:
            raise MailConfigError(f"发件人地址格式有误：{sender!r}。")
        recipients = []
        for text in settings.to:
            addr = parse_address(text)
            if addr is None:
                raise MailConfigError(f"收件人地址格式有误：{text!r}（应为 name@example.com）。")
            recipients.append(addr)
        totals = headline_totals(workbook, form)
    except MailError as exc:
        raise OutputError(str(exc)) from None
    msg = output_email(
        workbook,
        period,
        form=form,
        calendar=calendar,
        totals=totals,
        sender=sender_addr,
        to=recipients,
        note=reporting_note(workbook),
    )
    try:
        eml = write_eml(msg, out / f"{workbook.stem}.eml")
    except OSError as exc:
        raise OutputError(f"输出文件夹无法写入：{out}（{os_error_text(exc)}）") from None
    document: dict[str, Any] = {
        "period": period,
        "workbook": str(workbook),
        "eml": str(eml),
        "subject": str(msg["Subject"]),
        "from": sender_addr.addr_spec,
        "to": [a.addr_spec for a in recipients],
        "totals": {
            k: int(v) if v == v.to_integral_value() else float(v) for k, v in totals.items()
        },
        "sent": False,
    }
    say = note if as_json else click.echo
    say(f"已生成邮件：{eml}")
    if not recipients:
        say("提示：邮件没有收件人；发送前请用 --to 指定，或设置 FZ_MAIL_TO。")
    code = 0
    if send:
        try:
            accepted = send_message(msg, settings)
        except MailError as exc:
            code = 2 if isinstance(exc, MailConfigError) else 1
            # the error document of every command, beside what was made (the .eml is kept)
            document |= error_document(code, str(exc))
            click.echo(f"错误：{exc}", err=True)
            click.echo(f"邮件未发送；.eml 已保留：{eml}", err=True)
        else:
            document["sent"] = True
            say(f"已发送至 {'、'.join(accepted)}（{settings.host}:{settings.effective_port}）。")
    else:
        say("未发送（加 --send 经 SMTP 发送）。")
    if as_json:
        echo_json(document)
    if code:
        sys.exit(code)


def run(args: Sequence[str] | None = None) -> NoReturn:
    """The command line as a process runs it (`python -m pipeline`, the console script): the
    command, then an exit that skips tearing the interpreter down.

    Freeing every object one by one at exit (the read returns, pandas, the modules) takes a
    quarter of a second at city scale, a tenth of the run, and does nothing for the user. So
    once the command has finished, the exit handlers run (the parsing sandbox is stopped, temporary
    folders removed), stdout and stderr are flushed, and the process ends with the command's
    exit code. Every output file is complete and closed before the command returns; only
    in-process callers (the tests' CliRunner) use `main` itself."""
    code: int | str | None
    # `python -m pipeline` shows as such in the help; a console script by its own name
    prog = "python -m pipeline" if Path(sys.argv[0]).name == "__main__.py" else None
    try:
        main(args=args, prog_name=prog)
        code = 0
    except SystemExit as exc:  # click ends every command so, with its exit code
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # sys.exit("text") prints the text and exits 1
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader that went away (head): nothing to do
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    run()
