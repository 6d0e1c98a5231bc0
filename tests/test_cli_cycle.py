"""The monthly-cycle commands end to end: a small inbox of filled templates through the real
reader, validator and consolidation, then `status`, `remind` and `prefill` on it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Mapping
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline import forms as forms_mod
from pipeline.cli import main
from pipeline.forms import ledger_form, progress_form, unit_by_name
from pipeline.layout import LedgerLayout, progress_layout
from pipeline.templates import template_filename, write_template
from pipeline.validate import validate_inbox

CONTACTS = {"鼓楼区": ("林晓", "gulou@example.cn"), "台江区": ("陈明", "taijiang@example.cn")}


def _stamp(path: Path, when: dt.datetime) -> None:
    ts = time.mktime(when.timetuple())
    os.utime(path, (ts, ts))


def fill_progress(
    inbox: Path, unit: str, period: str, values: Mapping[str, Any], received: dt.datetime
) -> Path:
    form = progress_form()
    u = unit_by_name(unit)
    path = inbox / period / template_filename(form, u, period)
    write_template(form, path, unit=u, period=period)
    wb = openpyxl.load_workbook(path)
    ws = wb[form.sheet_name]
    for code, cell in progress_layout(form).value_cells.items():
        ws[cell.a1] = values.get(code, 0)
    wb.save(path)
    _stamp(path, received)
    return path


def hazard(hid: str, status: str, found: dt.date, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "hazard_id": hid,
        "domain": "建筑施工",
        "enterprise": "福州某建设有限公司",
        "site": "某安置房项目",
        "description": "高支模未按专项方案搭设",
        "basis": "附件2第10项",
        "found_by": "企业自查",
        "found_date": found,
        "measures": "停工整改，按方案加固",
        "responsible": "张三",
        "funds": 1.5,
        "deadline": dt.date(2023, 8, 31),
        "emergency_plan": "有",
        "supervised": "否",
        "status": status,
    }
    row.update(extra)
    return row


def fill_ledger(
    inbox: Path, unit: str, period: str, rows: list[dict[str, Any]], received: dt.datetime
) -> Path:
    form = ledger_form()
    lay = LedgerLayout(form=form)
    u = unit_by_name(unit)
    path = inbox / period / template_filename(form, u, period)
    write_template(form, path, unit=u, period=period)
    wb = openpyxl.load_workbook(path)
    ws = wb[form.sheet_name]
    for i, row in enumerate(rows):
        for key, value in row.items():
            if isinstance(value, dt.date):
                value = dt.datetime.combine(value, dt.time())
            ws.cell(lay.first_data_row + 1 + i, lay.col(key) + 1, value)
    wb.save(path)
    _stamp(path, received)
    return path


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """June: 鼓楼区 and 台江区 report. July: 鼓楼区 reports (its ledger a day late),
    台江区's 附件4 is rejected (A2 > A1), everyone else sends nothing."""
    root = tmp_path_factory.mktemp("inbox")
    june, july = dt.datetime(2023, 6, 30, 10), dt.datetime(2023, 7, 31, 10)
    fill_progress(root, "鼓楼区", "2023-06", {"A1": 2, "B1": 10, "C3a": 1, "C3b": "0.5"}, june)
    fill_progress(root, "台江区", "2023-06", {"A1": 1, "A2": 1, "B1": 4}, june)
    fill_ledger(root, "鼓楼区", "2023-06", [hazard("GL-001", "整改中", dt.date(2023, 6, 3))], june)
    fill_progress(
        root, "鼓楼区", "2023-07", {"A1": 3, "A2": 1, "B1": 12, "C3a": 2, "C3b": "0.75"}, july
    )
    fill_progress(root, "台江区", "2023-07", {"A1": 1, "A2": 5, "B1": 4}, july)
    fill_ledger(
        root,
        "鼓楼区",
        "2023-07",
        [
            hazard(
                "GL-001", "已整改待验收", dt.date(2023, 6, 3), rectified_date=dt.date(2023, 7, 10)
            ),
            hazard("GL-002", "整改中", dt.date(2023, 7, 12), deadline=dt.date(2023, 9, 30)),
        ],
        dt.datetime(2023, 8, 2, 9),
    )
    return root


@pytest.fixture
def contact_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of schemas/ with contact addresses for 鼓楼区 and 台江区 only."""
    target = tmp_path / "schemas"
    shutil.copytree(forms_mod.SCHEMAS_DIR, target)
    lines = (target / "units.csv").read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        code, name, kind, _cn, _ce, *rest = line.split(",")
        out.append(",".join([code, name, kind, *CONTACTS.get(name, ("", "")), *rest]))
    (target / "units.csv").write_text("\n".join(out) + "\n", encoding="utf-8")
    monkeypatch.setattr(forms_mod, "SCHEMAS_DIR", target)
    return target


def parse(path: Path) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(msg, EmailMessage)
    return msg


def test_templates_json_lists_every_template_written(tmp_path: Path) -> None:
    """`templates --json`: one JSON document on stdout naming each file with its unit (null
    for the blank set) and form; the Chinese summary goes to stderr."""
    from pipeline.forms import load_forms, load_units

    out = tmp_path / "tpl"
    result = CliRunner().invoke(
        main, ["templates", "--period", "2023-06", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["period"], doc["out"]) == ("2023-06", str(out))
    listed = doc["templates"]
    assert sorted(t["path"] for t in listed) == sorted(str(p) for p in out.rglob("*.xlsx"))
    forms, units = set(load_forms()), {u.name for u in load_units()}
    assert {(t["unit"], t["form"]) for t in listed} == {
        (u, f) for u in (*units, None) for f in forms
    }
    assert len(listed) == (len(units) + 1) * len(forms)
    assert f"已生成 {len(listed)} 个模板（2023-06）" in result.stderr


def test_templates_json_error_is_a_json_document(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["templates", "--out", str(blocker / "sub"), "--json"])
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["error"]["exit_code"] == 2
    assert "无法写入模板文件夹" in doc["error"]["message"]


def test_the_readme_names_exactly_the_commands_that_take_json() -> None:
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (listed,) = re.findall(r"`python -m pipeline ([a-z|]+) …`", readme)
    assert "这七个命令都接受 `--json`" in readme
    takes_json = {n for n, c in main.commands.items() if any(p.name == "as_json" for p in c.params)}
    assert set(listed.split("|")) == takes_json == set(main.commands)


def test_the_inbox_reads_as_planned(inbox: Path) -> None:
    got = {(r.unit_name, r.period, r.form_id): r.status for r in validate_inbox(inbox)}
    assert got == {
        ("鼓楼区", "2023-06", "annex4_progress"): "accepted",
        ("台江区", "2023-06", "annex4_progress"): "accepted",
        ("鼓楼区", "2023-06", "ledger"): "accepted",
        ("鼓楼区", "2023-07", "annex4_progress"): "accepted",
        ("台江区", "2023-07", "annex4_progress"): "rejected",
        ("鼓楼区", "2023-07", "ledger"): "accepted",
    }


@pytest.mark.parametrize(
    "command", ["status", "remind", "prefill", "email"], ids=lambda c: f"{c}-help"
)
def test_every_cycle_command_has_chinese_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--period" in result.output


def test_status_json_on_the_due_day(inbox: Path) -> None:
    result = CliRunner().invoke(main, ["status", str(inbox), "--today", "2023-08-01", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["period"], doc["due_date"], doc["days_left"]) == ("2023-07", "2023-08-01", 0)
    forms = {name: unit["forms"] for name, unit in doc["units"].items()}
    assert forms["鼓楼区"]["annex4_progress"]["status"] == "accepted"
    assert forms["鼓楼区"]["ledger"]["late"] is True
    assert forms["鼓楼区"]["annex4_progress"]["late"] is False
    assert forms["台江区"]["annex4_progress"]["status"] == "rejected"
    assert forms["台江区"]["ledger"]["status"] == "missing"
    assert forms["仓山区"]["annex4_progress"]["status"] == "missing"
    assert doc["summary"]["units_complete"] == 1
    assert doc["deadlines"][0] == {
        "date": "2023-08-05",
        "what": "报送贯彻落实情况（第一次）",
        "days_left": 4,
    }


def test_status_screen_for_an_earlier_period(inbox: Path) -> None:
    result = CliRunner().invoke(
        main, ["status", str(inbox), "--period", "2023-06", "--today", "2023-07-03"]
    )
    assert result.exit_code == 0, result.output
    assert "2023年6月 报送情况" in result.stdout
    assert "已逾期 2 天" in result.stdout and "逾期未报" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--today", "2023-13-01"], "日期须写成 YYYY-MM-DD"),
        (["--period", "2023-7"], "期间须写成 YYYY-MM"),
    ],
)
def test_status_usage_errors_exit_2(inbox: Path, args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(main, ["status", str(inbox), *args])
    assert result.exit_code == 2
    assert fragment in result.output


def test_status_of_a_missing_inbox_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "收件箱文件夹不存在" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["status", "{tmp}/nope", "--json"], "收件箱文件夹不存在"),
        (["status", "{inbox}", "--json", "--today", "2023-13-01"], "日期须写成 YYYY-MM-DD"),
        (["remind", "{inbox}", "--json", "--out", "{inbox}/out"], "输出文件夹不能放在收件箱里"),
        (["prefill", "{inbox}", "--period", "2023-12", "--out", "{tmp}", "--json"], "最后一期"),
        (["email", "--period", "2023-07", "--out", "{tmp}", "--json"], "未找到 2023年7月 的汇总表"),
        (["email", "--out", "{tmp}", "--json"], "中没有汇总表"),
    ],
)
def test_json_on_exit_2_is_one_error_document(
    inbox: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    """Every command with --json keeps stdout one JSON document when it stops with exit 2."""
    argv = [a.format(inbox=inbox, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc == {"error": {"exit_code": 2, "message": doc["error"]["message"]}}
    assert words in doc["error"]["message"]
    assert doc["error"]["message"] in result.stderr
    plain = CliRunner().invoke(main, [a for a in argv if a != "--json"])
    assert plain.exit_code == 2 and plain.stdout == ""


@pytest.mark.parametrize("command", ["remind", "prefill"])
def test_an_output_folder_under_a_file_is_refused_in_chinese(
    inbox: Path, tmp_path: Path, command: str
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = CliRunner().invoke(main, [command, str(inbox), "--out", str(blocker / "sub")])
    assert result.exit_code == 2
    assert f"{blocker} 是文件，不是文件夹" in result.stderr
    assert "Not a directory" not in result.output


def test_remind_drafts_chase_the_missing_and_return_the_rejected(
    inbox: Path, tmp_path: Path, contact_schemas: Path
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["remind", str(inbox), "--period", "2023-07", "--out", str(out), "--today", "2023-08-02"],
    )
    assert result.exit_code == 0, result.output
    folder = out / "催报邮件" / "2023年7月"
    names = sorted(p.name for p in folder.glob("*.eml"))
    # one draft per unit, covering each of its missing and rejected forms
    assert "350103_台江区_催报、退回修改.eml" in names
    assert "350104_仓山区_催报.eml" in names
    assert not any(n.startswith("350102_") for n in names)  # 鼓楼区 sent everything it owes
    assert len(names) == 1 + 11

    back = parse(folder / "350103_台江区_催报、退回修改.eml")
    assert [a.addr_spec for a in back["To"].addresses] == ["taijiang@example.cn"]
    assert back["Subject"].startswith("【催报、退回修改】台江区 2023年7月")
    text = back.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    a2 = progress_layout(progress_form()).value_cells["A2"].a1
    assert f"工作表“调度表”、{a2}：" in text and "已逾期 1 天" in text
    attached = {p.get_filename(): p.get_payload(decode=True) for p in back.iter_attachments()}
    copies = [n for n in attached if n and (out / "退回修改" / "2023-07" / n).is_file()]
    assert len(copies) == 1 and len(attached) == 2  # the annotated 附件4 and a blank 台账
    annotated = out / "退回修改" / "2023-07" / copies[0]
    assert annotated.read_bytes() == attached[copies[0]]
    ws = openpyxl.load_workbook(annotated)["调度表"]
    assert ws[a2].comment is not None  # the annotated copy marks the cell

    chase = parse(folder / "350104_仓山区_催报.eml")
    assert chase["To"] is None
    names = {p.get_filename() for p in chase.iter_attachments()}
    assert "附件4_进展情况调度表_仓山区_2023年7月.xlsx" in names and len(names) == 2
    assert "仓山区 没有有效的联系邮箱" in result.stdout
    assert "催报、退回修改" in result.stdout  # the screen names both matters of 台江区's draft


def test_remind_prefills_the_template_of_a_unit_that_reported_before(
    inbox: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "remind",
            str(inbox),
            "--period",
            "2023-07",
            "--out",
            str(out),
            "--today",
            "2023-07-31",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    kinds = {(d["unit"], i["form"]): i["kind"] for d in doc["drafts"] for i in d["items"]}
    assert kinds[("台江区", "annex4_progress")] == "rejected"
    assert kinds[("台江区", "ledger")] == "missing"
    assert doc["days_left"] == 1
    assert len({d["unit"] for d in doc["drafts"]}) == len(doc["drafts"])  # one per unit
    # 台江区's 台账 was never sent: a blank template; its 附件4 item is the rejected copy
    (taijiang,) = [d for d in doc["drafts"] if d["unit"] == "台江区"]
    msg = parse(Path(taijiang["eml"]))
    assert "已预填" not in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_prefill_then_fill_in_then_read_back(inbox: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    result = CliRunner().invoke(
        main, ["prefill", str(inbox), "--period", "2023-07", "--out", str(templates)]
    )
    assert result.exit_code == 0, result.output
    assert "2023年8月 模板" in result.stdout
    form, lform = progress_form(), ledger_form()
    lay = progress_layout(form)
    caption = {c: cap.a1 for it in lay.items for c, cap, _i, _m in it.inputs}
    gl_a4 = (
        templates
        / "2023-08"
        / "鼓楼区"
        / template_filename(form, unit_by_name("鼓楼区"), "2023-08")
    )
    tj_a4 = (
        templates
        / "2023-08"
        / "台江区"
        / template_filename(form, unit_by_name("台江区"), "2023-08")
    )
    ws = openpyxl.load_workbook(gl_a4)[form.sheet_name]
    assert ws[caption["A1"]].value == "个（上月 3）"
    assert ws[caption["C3b"]].value == "万元\n上月 0.75"
    assert ws[caption["A1"]].protection.locked and ws.protection.sheet
    # 台江区's July return was rejected: its June figures are the last accepted ones, and the
    # caption names their month rather than calling them 上月 (e0bc7c4)
    assert (
        openpyxl.load_workbook(tj_a4)[form.sheet_name][caption["A1"]].value == "个（2023年6月 1）"
    )

    # The clerk types August's figures and keeps the prefilled ledger, adding one hazard.
    wb = openpyxl.load_workbook(gl_a4)
    ws = wb[form.sheet_name]
    for code, cell in lay.value_cells.items():
        ws[cell.a1] = {"A1": 4, "A2": 2, "B1": 15, "C3a": 2, "C3b": 0.75}.get(code, 0)
    next_inbox = tmp_path / "august"
    next_inbox.mkdir()
    wb.save(next_inbox / gl_a4.name)
    gl_ledger = (
        templates
        / "2023-08"
        / "鼓楼区"
        / template_filename(lform, unit_by_name("鼓楼区"), "2023-08")
    )
    llay = LedgerLayout(form=lform)
    wb = openpyxl.load_workbook(gl_ledger)
    ws = wb[lform.sheet_name]
    new = hazard("GL-003", "整改中", dt.date(2023, 8, 8))
    for key, value in new.items():
        if isinstance(value, dt.date):
            value = dt.datetime.combine(value, dt.time())
        ws.cell(llay.first_data_row + 3, llay.col(key) + 1, value)
    wb.save(next_inbox / gl_ledger.name)

    returns = {r.form_id: r for r in validate_inbox(next_inbox)}
    assert {f: r.status for f, r in returns.items()} == {
        "annex4_progress": "accepted",
        "ledger": "accepted",
    }, [i.message for r in returns.values() for i in r.issues]
    assert returns["annex4_progress"].period == "2023-08"
    ledger = returns["ledger"].ledger
    assert ledger is not None
    assert list(ledger["hazard_id"]) == ["GL-001", "GL-002", "GL-003"]
    assert list(ledger["status"]) == ["已整改待验收", "整改中", "整改中"]
    assert ledger["rectified_date"].iloc[0] == dt.date(2023, 7, 10)
    assert ledger["found_date"].iloc[1] == dt.date(2023, 7, 12)


def test_prefill_after_the_last_period_exits_2(inbox: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["prefill", str(inbox), "--period", "2023-12", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "最后一期为 2023-12" in result.output
    assert list(tmp_path.iterdir()) == []


def test_prefill_json_names_the_source_of_each_units_figures(inbox: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["prefill", str(inbox), "--period", "2023-07", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    units = {u["unit"]: u for u in doc["units"]}
    assert doc["period"] == "2023-08"
    assert (units["鼓楼区"]["reference_period"], units["鼓楼区"]["ledger_rows"]) == ("2023-07", 2)
    assert units["鼓楼区"]["reference"]["C3b"] == 0.75
    assert units["台江区"]["reference_period"] == "2023-06"
    assert units["仓山区"]["reference_period"] is None
