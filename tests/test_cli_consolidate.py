"""`python -m pipeline consolidate`: exit codes, the Chinese summary, and JSON that agrees with
the workbook; end to end on sample_inputs/ when the sample generator has written it."""

from __future__ import annotations

import errno
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from fixtures_consolidate import CITY_2023_07, TJ, build_returns, fixture_units
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.cli import main
from pipeline.forms import progress_form
from pipeline.layout import progress_layout
from pipeline.model import Return
from pipeline.output import workbook_name

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_inputs"
PLANTED = ROOT / "tests" / "data" / "sample_planted.json"


@pytest.fixture
def inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An inbox folder whose validation yields the fixture returns (4 units, 2023-05…07)."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a.xlsx").write_bytes(b"")
    returns = build_returns()

    def fake_validate_inbox(_inbox: Path, *, on_file: Any = None, jobs: int = 1) -> list[Return]:
        for ret in returns:
            if on_file is not None:
                on_file(ret)
        return returns

    monkeypatch.setattr("pipeline.validate.validate_inbox", fake_validate_inbox)
    monkeypatch.setattr("pipeline.consolidate.load_units", fixture_units)
    return folder


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["consolidate", *args], catch_exceptions=False)


def test_writes_the_workbook_and_prints_a_chinese_summary(inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(str(inbox), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / workbook_name("2023-07")).is_file()
    text = result.stdout
    assert "2023年7月汇总完成" in text
    assert (
        "4 个单位中 3 个已报送进展情况调度表，1 个未报送、沿用最近一次报送的数据"
        f"（{TJ}沿用2023年6月）" in text
    )
    assert "退回修改 1 个" in text
    assert "警告 10 条，提示 3 条" in text
    assert str(out / workbook_name("2023-07")) in text


def test_json_agrees_with_the_workbook(inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(str(inbox), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # stdout is the JSON document and nothing else
    assert doc["period"] == "2023-07"
    assert doc["city"]["C3b"] == float(CITY_2023_07["C3b"])
    form = progress_form()
    book = openpyxl.load_workbook(out / workbook_name("2023-07"))
    table = book["调度表"]
    assert isinstance(table, Worksheet)
    for code, cell in progress_layout(form).value_cells.items():
        assert table.cell(cell.row + 1, cell.col + 1).value == doc["city"][code], code
    detail = book["分县明细"]
    assert isinstance(detail, Worksheet)
    codes = {detail.cell(6, c).value.split("（")[0]: c for c in range(3, 3 + len(form.value_codes))}
    for row in range(7, 11):
        unit = detail.cell(row, 1).value
        for code, col in codes.items():
            assert detail.cell(row, col).value == doc["units"][unit][code], (unit, code)
    flags = book["异常标记"]
    assert isinstance(flags, Worksheet)
    assert [r[2] for r in flags.iter_rows(min_row=2, values_only=True)] == [
        a["rule"] for a in doc["anomalies"]
    ]


def test_strict_fails_when_a_return_of_the_period_was_rejected(inbox: Path, tmp_path: Path) -> None:
    result = _run(str(inbox), "--out", str(tmp_path / "out"), "--strict")
    assert result.exit_code == 1
    assert (tmp_path / "out" / workbook_name("2023-07")).is_file()  # the output is still written
    # June had no rejected return
    assert (
        _run(str(inbox), "--out", str(tmp_path / "o6"), "--strict", "--period", "2023-06").exit_code
        == 0
    )


def test_nothing_usable_exits_2_with_a_chinese_message(
    inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nothing_accepted(_inbox: Path, *, on_file: Any = None, jobs: int = 1) -> list[Return]:
        return []

    monkeypatch.setattr("pipeline.validate.validate_inbox", nothing_accepted)
    result = _run(str(inbox), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "没有可汇总的进展情况调度表" in result.stderr
    assert "Traceback" not in result.output


def test_a_period_without_any_return_exits_2_and_names_the_periods_held(
    inbox: Path, tmp_path: Path
) -> None:
    """A mistyped --period (the fixture inbox goes to 2023-07) must not give a report in which
    every unit is carried forward; like the nothing-usable case, nothing is written."""
    out = tmp_path / "out"
    result = _run(str(inbox), "--period", "2023-08", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "收件箱中没有2023年8月的任何报表" in result.stderr
    assert "2023年5月、2023年6月、2023年7月（最新为2023年7月）" in result.stderr
    assert "PERIOD 或 --period" in result.stderr and "2023-08" in result.stderr
    assert result.stdout == ""
    assert not out.exists()


def test_a_period_whose_only_return_was_rejected_is_still_consolidated(
    inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some return for the period, even a rejected one: the report is written as before, the
    unit carried forward and the rejection listed."""
    returns = [r for r in build_returns() if r.period != "2023-07" or r.status == "rejected"]
    assert {r.status for r in returns if r.period == "2023-07"} == {"rejected"}

    def fake_validate_inbox(_inbox: Path, *, on_file: Any = None, jobs: int = 1) -> list[Return]:
        return returns

    monkeypatch.setattr("pipeline.validate.validate_inbox", fake_validate_inbox)
    out = tmp_path / "out"
    result = _run(str(inbox), "--period", "2023-07", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["period"] == "2023-07"
    assert {"unit": TJ, "status": "rejected"}.items() <= next(
        s for s in doc["submissions"] if s["unit"] == TJ and s["form"] == "annex4_progress"
    ).items()
    assert (out / workbook_name("2023-07")).is_file()


def test_a_period_with_no_return_on_real_files_exits_2(tmp_path: Path) -> None:
    """The audit's case end to end: real 附件4 files for June only, --period 2023-08."""
    from pipeline.forms import load_units
    from pipeline.templates import template_filename, write_template

    form = progress_form()
    inbox = tmp_path / "inbox"
    unit = load_units()[0]
    path = inbox / template_filename(form, unit, "2023-06")
    write_template(form, path, unit=unit, period="2023-06")
    book = openpyxl.load_workbook(path)
    sheet = book[form.sheet_name]
    for cell in progress_layout(form).value_cells.values():
        sheet[cell.a1] = 0
    book.save(path)
    out = tmp_path / "out"
    assert _run(str(inbox), "--period", "2023-06", "--out", str(out)).exit_code == 0
    result = _run(str(inbox), "--period", "2023-08", "--out", str(tmp_path / "out8"))
    assert result.exit_code == 2, result.output
    assert "收件箱中没有2023年8月的任何报表" in result.stderr
    assert "最新为2023年6月" in result.stderr
    assert not (tmp_path / "out8").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["missing-folder", "--out", "o"], "收件箱文件夹不存在"),
        (["{inbox}", "--out", "{inbox}/out"], "输出文件夹不能放在收件箱里"),
        (["{inbox}", "--period", "2023-7"], "期间须写成 YYYY-MM"),
        (["{inbox}", "--period", "2023-04"], "不在专项行动的报送月份内"),
        (["{inbox}", "--period", "2024-01"], "不在专项行动的报送月份内"),
    ],
)
def test_usage_errors_exit_2(
    inbox: Path, tmp_path: Path, args: list[str], words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run(*(a.format(inbox=inbox) for a in args))
    assert result.exit_code == 2
    assert words in result.output


def _error_document(result: Any) -> str:
    """The `--json` error document of an exit-2 run: one JSON document on stdout, the same
    Chinese message on stderr. Returns the message."""
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert list(doc) == ["error"] and doc["error"]["exit_code"] == 2
    message = doc["error"]["message"]
    assert isinstance(message, str) and message
    assert message in result.stderr
    return message


def test_json_when_nothing_usable_is_an_error_document(
    inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inbox whose only 附件4 was rejected: exit 2, and stdout still parses as JSON."""
    only_rejected = [r for r in build_returns() if r.status == "rejected"]

    def fake_validate_inbox(_inbox: Path, *, on_file: Any = None, jobs: int = 1) -> list[Return]:
        return only_rejected

    monkeypatch.setattr("pipeline.validate.validate_inbox", fake_validate_inbox)
    result = _run(str(inbox), "--out", str(tmp_path / "out"), "--json")
    assert "没有可汇总的进展情况调度表" in _error_document(result)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["{inbox}", "--period", "2023-08", "--json"], "收件箱中没有2023年8月的任何报表"),
        (["missing-folder", "--json"], "收件箱文件夹不存在"),
        (["{inbox}", "--json", "--out", "{inbox}/out"], "输出文件夹不能放在收件箱里"),
        (["{inbox}", "--json", "--period", "2023-7"], "期间须写成 YYYY-MM"),
        (["{inbox}", "--period", "2023-04", "--json"], "不在专项行动的报送月份内"),
        (["{inbox}", "--json", "--jobs", "x"], "--jobs"),
        (["{inbox}", "--json", "--bogus"], "没有选项 '--bogus'"),
    ],
)
def test_json_on_every_exit_2_path_is_an_error_document(
    inbox: Path, tmp_path: Path, args: list[str], words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run(*(a.format(inbox=inbox) for a in args))
    assert words in _error_document(result)
    # without --json stdout stays empty on the same path
    plain = _run(*(a.format(inbox=inbox) for a in args if a != "--json"))
    assert plain.exit_code == 2 and plain.stdout == ""


def test_json_given_as_a_value_or_after_double_dash_is_not_a_request(
    inbox: Path, tmp_path: Path
) -> None:
    named = _run("--", "--json")  # an inbox folder literally named --json (it does not exist)
    assert named.exit_code == 2 and named.stdout == ""
    result = CliRunner().invoke(main, ["consolidate", "--out", "--json"])  # --out's value
    assert result.exit_code == 2 and result.stdout == ""


def test_an_output_folder_under_a_file_is_refused_before_reading(
    inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_read(*_args: Any, **_kwargs: Any) -> list[Return]:
        raise AssertionError("the inbox was read although the output folder cannot be made")

    monkeypatch.setattr("pipeline.validate.validate_inbox", must_not_read)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = _run(str(inbox), "--out", str(blocker / "sub"))
    assert result.exit_code == 2
    assert f"{blocker} 是文件，不是文件夹" in result.stderr
    assert "Not a directory" not in result.output


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOENT, "文件或文件夹不存在"),
        (errno.ENOSPC, "磁盘已满"),
        (errno.EACCES, "没有权限"),
        (errno.ESTALE, "系统错误 ESTALE"),
    ],
)
def test_a_failed_write_names_the_reason_in_chinese(
    inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(code, os.strerror(code), str(tmp_path / "out"))

    monkeypatch.setattr("pipeline.output.write_outputs", refuse)
    result = _run(str(inbox), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"输出文件夹无法写入：{tmp_path / 'out'}（{words}）" in result.stderr
    assert os.strerror(code) not in result.output


def test_help_is_chinese() -> None:
    result = CliRunner().invoke(main, ["consolidate", "--help"])
    assert result.exit_code == 0
    assert "汇总" in result.output and "--strict" in result.output


needs_samples = pytest.mark.skipif(
    not (SAMPLES.is_dir() and PLANTED.is_file()), reason="sample_inputs/ not generated"
)


def _planted_flags(planted: dict[str, Any], period: str) -> set[tuple[str, str, str]]:
    """(rule, unit, item) of the anomaly flags the sample generator planted for `period`."""
    item_rules = ("cumulative-decreased", "ledger-mismatch", "ledger-overdue", "increment-outlier")
    return {
        (rule, p["unit"], p["item"] if rule in item_rules else "")
        for p in planted["plants"]
        if p["period"] == period
        for rule in p["rules"]
        if not rule.startswith(("file-", "checklist-"))  # validation issues, not flags
    }


def _decimals(figures: dict[str, Any]) -> dict[str, Decimal]:
    return {c: Decimal(str(v)) for c, v in figures.items()}


@needs_samples
def test_sample_inputs_end_to_end(tmp_path: Path) -> None:
    """Real files through validate and consolidate (the CLI, latest period): the city and unit
    totals equal the generator's, and exactly the planted anomalies are flagged."""
    planted = json.loads(PLANTED.read_text(encoding="utf-8"))
    result = _run(str(SAMPLES), "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    period = max(planted["expected"])
    assert doc["period"] == period
    expected = planted["expected"][period]
    assert _decimals(doc["city"]) == _decimals(expected["city"])
    for unit, figures in expected["units"].items():
        assert _decimals(doc["units"][unit]) == _decimals(figures), unit
    assert {(a["rule"], a["unit"], a["item"]) for a in doc["anomalies"]} == _planted_flags(
        planted, period
    )
    # the same run leaves what the city sends back for 退回修改: the report and marked copies
    assert (tmp_path / "校验报告.xlsx").is_file()
    rejected = [r for r in doc["submissions"] if r["status"] == "rejected"]
    assert rejected
    for sub in rejected:
        copy = (tmp_path / "退回修改" / sub["file"]).with_suffix(".xlsx")
        assert copy.is_file(), copy


def test_a_rejected_return_since_corrected_is_not_sent_back(tmp_path: Path) -> None:
    """鼓楼区's first 附件4 was rejected (A2 > A1), its correction passed: no 退回修改 copy, no
    --strict failure, and the report says why."""
    from helpers_fill import good_progress, make_return

    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "a_first.xlsx", progress=good_progress() | {"A2": 99})
    make_return(inbox, "annex4_progress", "b_fixed.xlsx")
    (inbox / "收文登记.csv").write_text(
        "文件名,收到时间\na_first.xlsx,2023-06-29 09:00\nb_fixed.xlsx,2023-06-30 09:00\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = _run(str(inbox), "--out", str(out), "--strict")
    assert result.exit_code == 0, result.output
    assert "退回修改 0 个，被更晚的报送替代 1 个" in result.output
    assert "退回修改副本" not in result.output
    assert not (out / "退回修改").exists() or not any((out / "退回修改").iterdir())
    report = openpyxl.load_workbook(out / "校验报告.xlsx")["文件汇总"]
    cells = [str(c.value) for row in report.iter_rows() for c in row if c.value]
    assert "未生成：已被 b_fixed.xlsx 替代，不需退回" in cells
    # validate, which does not consolidate, leaves no copy for it either
    checked = CliRunner().invoke(main, ["validate", str(inbox), "--out", str(tmp_path / "v")])
    assert checked.exit_code == 1  # a rejected file is still a rejected file
    assert not (tmp_path / "v" / "退回修改").exists() or not any(
        (tmp_path / "v" / "退回修改").iterdir()
    )
    # the workbook's list of replaced and rejected files says it was rejected, then corrected
    book = openpyxl.load_workbook(out / workbook_name("2023-06"))
    listed = [str(c.value) for row in book["报送情况"].iter_rows() for c in row if c.value]
    assert "曾被退回修改，单位已重报通过校验的文件：b_fixed.xlsx" in listed


@needs_samples
def test_a_copied_inbox_with_a_receipt_log_gives_the_same_bytes(tmp_path: Path) -> None:
    """DESIGN §9: the same inputs give the same output bytes. The sample inbox's receipt log
    covers every return, so copying it (new modification times, as a clone or cp gives) must
    not change a byte of any output."""
    import shutil

    outs = []
    for i, stamp in enumerate((1_690_000_000, 1_700_000_000)):
        inbox = shutil.copytree(SAMPLES, tmp_path / f"inbox{i}")
        for path in inbox.rglob("*"):
            os.utime(path, (stamp, stamp))
        out = tmp_path / f"out{i}"
        assert _run(str(inbox), "--out", str(out)).exit_code == 0
        outs.append({p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()})
    assert outs[0].keys() == outs[1].keys() and len(outs[0]) > 5
    assert [k for k in outs[0] if outs[0][k] != outs[1][k]] == []


@needs_samples
def test_sample_inputs_earlier_periods() -> None:
    from pipeline.consolidate import consolidate
    from pipeline.output import to_json
    from pipeline.validate import validate_inbox

    planted = json.loads(PLANTED.read_text(encoding="utf-8"))
    returns = validate_inbox(SAMPLES)
    for period, expected in sorted(planted["expected"].items()):
        doc = to_json(consolidate(returns, period))
        assert _decimals(doc["city"]) == _decimals(expected["city"]), period
        for unit, figures in expected["units"].items():
            assert _decimals(doc["units"][unit]) == _decimals(figures), (period, unit)
        flags = {(a["rule"], a["unit"], a["item"]) for a in doc["anomalies"]}
        assert flags == _planted_flags(planted, period), period


@pytest.fixture
def clean_inbox(inbox: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture inbox without its rejected returns."""
    returns = [r for r in build_returns() if r.status != "rejected"]
    assert returns and len(returns) < len(build_returns())

    def fake_validate_inbox(_inbox: Path, *, on_file: Any = None, jobs: int = 1) -> list[Return]:
        return returns

    monkeypatch.setattr("pipeline.validate.validate_inbox", fake_validate_inbox)
    return inbox


def test_nothing_rejected_skips_the_annotator(
    clean_inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("openpyxl's annotator loaded for a run with nothing to annotate")

    monkeypatch.setattr("pipeline.annotate.write_annotated_copies", must_not_run)
    out = tmp_path / "out"
    result = _run(str(clean_inbox), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert not (out / "退回修改").exists()


def test_nothing_rejected_still_clears_last_runs_copies(clean_inbox: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    stale = out / "退回修改" / "鼓楼区" / "附件4.xlsx"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old copy")
    result = _run(str(clean_inbox), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert not (out / "退回修改").exists()


def _process(*args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="sample_inputs/ not generated")
def test_the_process_ends_fast_with_complete_outputs_and_its_exit_code(tmp_path: Path) -> None:
    # `python -m pipeline` skips tearing the interpreter down at exit: what it printed and
    # wrote must be whole, its exit code the command's, as when run in process
    done = _process("consolidate", str(SAMPLES), "--out", str(tmp_path / "proc"), "--json")
    assert done.returncode == 0, done.stderr
    here = CliRunner().invoke(
        main, ["consolidate", str(SAMPLES), "--out", str(tmp_path / "here"), "--json"]
    )
    assert json.loads(done.stdout) == json.loads(here.stdout)
    proc = sorted(p.relative_to(tmp_path / "proc") for p in (tmp_path / "proc").rglob("*"))
    assert proc == sorted(p.relative_to(tmp_path / "here") for p in (tmp_path / "here").rglob("*"))
    for rel in proc:
        if (tmp_path / "proc" / rel).is_file():
            assert (tmp_path / "proc" / rel).read_bytes() == (tmp_path / "here" / rel).read_bytes()
    (tmp_path / "empty").mkdir()
    empty = _process("consolidate", str(tmp_path / "empty"), "--out", str(tmp_path / "x"), "--json")
    assert empty.returncode == 2
    assert json.loads(empty.stdout)["error"]["exit_code"] == 2
    assert _process("validate", str(SAMPLES), "--out", str(tmp_path / "v")).returncode == 1


@pytest.mark.skipif(not (SAMPLES / "2023年7月").is_dir(), reason="sample_inputs/ not generated")
def test_a_thin_latest_month_by_default_says_how_to_ask_for_the_month_before(
    tmp_path: Path,
) -> None:
    # one unit sent August's 附件4 early: by default the table is August's, 12 of 13 units
    # carried forward; the clerk is told so, and how to make July's
    import shutil

    from helpers_fill import make_return

    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLES, inbox)
    make_return(inbox / "2023年8月", "annex4_progress", "鼓楼区附件4.xlsx", period="2023-08")
    runner = CliRunner()
    default = runner.invoke(main, ["consolidate", str(inbox), "--out", str(tmp_path / "a")])
    assert default.exit_code == 0, default.output
    assert "按收件箱中最新的2023年8月汇总，但该期只有 1/13 个单位" in default.output
    assert "PERIOD=2023-07" in default.output
    asked = runner.invoke(
        main, ["consolidate", str(inbox), "--period", "2023-08", "--out", str(tmp_path / "b")]
    )
    assert asked.exit_code == 0 and "PERIOD=2023-07" not in asked.output
    usual = runner.invoke(main, ["consolidate", str(SAMPLES), "--out", str(tmp_path / "c")])
    assert usual.exit_code == 0 and "注意：没有指定汇总期间" not in usual.output
