"""Email: the output workbook as .eml, reminder drafts, and SMTP sending to a loopback server."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner
from fixtures_consolidate import progress_return

from pipeline import forms as forms_mod
from pipeline.cli import main
from pipeline.forms import Unit, load_calendar, load_units, progress_form
from pipeline.layout import progress_layout
from pipeline.mail import (
    Draft,
    IssueLine,
    MailConfigError,
    Reminder,
    SmtpSettings,
    draft_json,
    headline_totals,
    load_settings,
    message_bytes,
    output_email,
    output_workbook_name,
    reminder_message,
    send_message,
    write_reminders,
)
from pipeline.status import cycle_from_returns, status_of_cycle
from pipeline.templates import write_template

PERIOD = "2023-07"
TOTALS = {"A1": 12, "A2": 8, "A3": 5, "A4": 3, "A5": 2, "A6": 1}
CONTACTS = {
    "鼓楼区": ("林晓", "gulou@example.cn"),
    "台江区": ("陈明", "taijiang@example.cn"),
}
FZ_VARS = (
    "FZ_SMTP_CAFILE",
    "FZ_SMTP_HOST",
    "FZ_SMTP_PORT",
    "FZ_SMTP_SECURITY",
    "FZ_SMTP_USER",
    "FZ_SMTP_PASSWORD",
    "FZ_MAIL_FROM",
    "FZ_MAIL_TO",
)


def parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def attachments(msg: EmailMessage) -> list[tuple[str | None, bytes]]:
    out = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((part.get_filename(), payload))
    return out


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def make_output_workbook(out_dir: Path, period: str = PERIOD) -> Path:
    """A workbook with a 调度表 sheet in the seed's layout holding the city's A1–A6."""
    form = progress_form()
    path = out_dir / output_workbook_name(form, period)
    write_template(form, path, unit=None, period=period)
    wb = openpyxl.load_workbook(path)
    ws = wb[form.sheet_name]
    cells = progress_layout(form).value_cells
    for code in form.value_codes:
        ws[cells[code].a1] = TOTALS.get(code, 0)
    ws[cells["C3b"].a1] = 1.0002
    wb.save(path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _accept_city(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"city", b"s3cret")
    return AuthResult(success=ok, handled=False)


def _refuse(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


@contextmanager
def smtp_server(**kwargs: Any) -> Iterator[tuple[int, Sink]]:
    """A real SMTP server on 127.0.0.1 and a free port, for the duration of the block."""
    sink = Sink()
    port = _free_port()
    # smtplib falls back from PLAIN to LOGIN after a refusal, which aiosmtpd's LOGIN mishandles
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, auth_exclude_mechanism=["LOGIN"], **kwargs
    )
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


def smtp_env(port: int, **extra: str) -> dict[str, str | None]:
    env: dict[str, str | None] = dict.fromkeys(FZ_VARS, None)
    env.update(
        FZ_SMTP_HOST="127.0.0.1",
        FZ_SMTP_PORT=str(port),
        FZ_SMTP_SECURITY="none",
        FZ_MAIL_FROM="city@example.cn",
    )
    env.update(extra)
    return env


@pytest.fixture
def contact_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of schemas/ with contact addresses for two units (the others stay empty)."""
    target = tmp_path / "schemas"
    shutil.copytree(forms_mod.SCHEMAS_DIR, target)
    lines = (target / "units.csv").read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        code, name, kind, _cn, _ce, *rest = line.split(",")
        contact = CONTACTS.get(name, ("", ""))
        out.append(",".join([code, name, kind, *contact, *rest]))
    (target / "units.csv").write_text("\n".join(out) + "\n", encoding="utf-8")
    monkeypatch.setattr(forms_mod, "SCHEMAS_DIR", target)
    return target


# --- the output workbook as a message --------------------------------------------------------


def test_headline_totals_come_from_the_workbook(tmp_path: Path) -> None:
    path = make_output_workbook(tmp_path)
    totals = headline_totals(path, progress_form())
    assert totals == {k: Decimal(v) for k, v in TOTALS.items()}


def test_output_email_names_period_and_totals_and_attaches_the_workbook(tmp_path: Path) -> None:
    path = make_output_workbook(tmp_path)
    form = progress_form()
    msg = output_email(
        path,
        PERIOD,
        form=form,
        calendar=load_calendar(),
        totals={k: Decimal(v) for k, v in TOTALS.items()},
        sender="city@example.cn",
        to=["a@example.cn"],
    )
    raw = message_bytes(msg)
    # RFC 2047 encoded-words in quotes on name= and filename=, never raw bytes in a header
    assert b'\r\n name="=?UTF-8?B?56aP5bee' in raw and b'\r\n filename="=?UTF-8?B?56aP5bee' in raw
    assert all(b < 0x80 for b in raw)
    back = parse(raw)
    assert back["Subject"] == (
        "福州市重大事故隐患专项排查整治2023行动进展情况调度表（2023年7月，截至2023年7月31日累计）"
    )
    assert back["X-Unsent"] == "1" and back["Date"] is None and back["Message-ID"] is None
    assert attachments(back) == [(path.name, path.read_bytes())]
    body = body_text(back)
    assert "辖区部门接报的企业自查发现的重大事故隐患（个）：12" in body
    assert "辖区部门挂牌督办重大事故隐患中已完成整改的（个）：1" in body


ATTACHMENT_NAMES = [
    "福州市重大事故隐患专项排查整治2023行动进展情况调度表_2023年7月.xlsx",
    "350102_鼓楼区_附件2_建筑施工重点检查事项清单（退回修改）.ods",
    "短名.csv",
    'report "final".xlsx',
]


@pytest.mark.parametrize("name", ATTACHMENT_NAMES)
def test_attachment_names_carry_name_and_filename_as_encoded_words(name: str) -> None:
    from email.header import decode_header, make_header

    from pipeline.mail import build_message

    data = bytes(range(256)) * 3
    msg = build_message(
        sender="city@example.cn",
        to=["a@example.cn"],
        subject="测试",
        body="正文",
        attachments=[_attachment(name, data)],
    )
    raw = message_bytes(msg)
    assert all(b < 0x80 for b in raw)
    assert b"filename*" not in raw and b"name*" not in raw  # no RFC 2231 form for clients to mix
    assert max(len(line) for line in raw.split(b"\r\n")) <= 80  # the .xlsx MIME type is 65 long
    (part,) = parse(raw).iter_attachments()
    # Python's parser (policy.default) decodes both parameters ...
    assert part.get_filename() == name
    assert part.get_param("name") == name
    assert part.get_content_disposition() == "attachment"
    assert part.get_payload(decode=True) == data
    # ... and so does a plain RFC 2047 decoder, which is what the mail clients apply to them
    legacy = BytesParser(policy=policy.compat32).parsebytes(raw)
    (legacy_part,) = [p for p in legacy.walk() if p.get("Content-Disposition")]
    for raw_value in (legacy_part.get_param("name"), legacy_part.get_filename()):
        assert isinstance(raw_value, str)
        unfolded = raw_value.replace("\r\n", "")
        assert str(make_header(decode_header(unfolded))) == name or unfolded == name


def _attachment(name: str, data: bytes) -> Any:
    from pipeline.mail import MIME_TYPES, Attachment

    mime = MIME_TYPES.get(Path(name).suffix.lower(), ("application", "octet-stream"))
    return Attachment(filename=name, data=data, mime=mime)


def test_draft_has_no_date_and_the_sent_copy_has_date_and_message_id(tmp_path: Path) -> None:
    from email.utils import parsedate_to_datetime

    from pipeline.mail import build_message, sendable_copy

    name = ATTACHMENT_NAMES[0]
    draft = build_message(
        sender="city@example.cn",
        to=["a@example.cn"],
        subject="测试",
        body="正文",
        attachments=[_attachment(name, b"PK")],
    )
    before = message_bytes(draft)
    wire = parse(message_bytes(sendable_copy(draft, "city@example.cn")))
    assert wire["X-Unsent"] is None
    assert parsedate_to_datetime(wire["Date"]).tzinfo is not None
    assert wire["Message-ID"].startswith("<") and wire["Message-ID"].endswith("@example.cn>")
    assert [p.get_filename() for p in wire.iter_attachments()] == [name]
    assert message_bytes(draft) == before  # the draft itself is untouched: still no Date
    assert b"\r\nDate:" not in before and b"\r\nMessage-ID:" not in before


def test_eml_bytes_are_reproducible(tmp_path: Path) -> None:
    path = make_output_workbook(tmp_path)
    kwargs: dict[str, Any] = {
        "form": progress_form(),
        "calendar": load_calendar(),
        "totals": {k: Decimal(v) for k, v in TOTALS.items()},
        "sender": "city@example.cn",
    }
    first = message_bytes(output_email(path, PERIOD, **kwargs))
    again = message_bytes(output_email(path, PERIOD, **kwargs))
    assert first == again


# --- the email command -----------------------------------------------------------------------


def test_email_without_send_writes_the_eml_and_sends_nothing(tmp_path: Path) -> None:
    workbook = make_output_workbook(tmp_path)
    with smtp_server() as (port, sink):
        result = CliRunner().invoke(
            main,
            ["email", "--period", PERIOD, "--out", str(tmp_path), "--to", "prov@example.cn"],
            env=smtp_env(port),
        )
    assert result.exit_code == 0, result.output
    assert sink.received == []
    eml = tmp_path / f"{workbook.stem}.eml"
    msg = parse(eml.read_bytes())
    assert [a.addr_spec for a in msg["To"].addresses] == ["prov@example.cn"]
    assert attachments(msg) == [(workbook.name, workbook.read_bytes())]
    assert "未发送" in result.output


def test_email_send_delivers_to_a_real_smtp_server(tmp_path: Path) -> None:
    workbook = make_output_workbook(tmp_path)
    with smtp_server(authenticator=_accept_city, auth_require_tls=False) as (port, sink):
        result = CliRunner().invoke(
            main,
            ["email", "--period", PERIOD, "--out", str(tmp_path), "--send", "--json"],
            env=smtp_env(
                port,
                FZ_SMTP_USER="city",
                FZ_SMTP_PASSWORD="s3cret",
                FZ_MAIL_TO="prov@example.cn, leader@example.cn",
            ),
        )
    assert result.exit_code == 0, result.output
    assert len(sink.received) == 1
    mail_from, rcpts, content = sink.received[0]
    assert mail_from == "city@example.cn"
    assert rcpts == ["prov@example.cn", "leader@example.cn"]
    msg = parse(content)
    assert "2023年7月" in msg["Subject"] and "进展情况调度表" in msg["Subject"]
    assert msg["X-Unsent"] is None and msg["Date"] and msg["Message-ID"]
    assert attachments(msg) == [(workbook.name, workbook.read_bytes())]
    assert (tmp_path / f"{workbook.stem}.eml").is_file()
    doc = json.loads(result.stdout)
    assert doc["sent"] is True and "error" not in doc  # an error key only when it failed


def test_email_auth_failure_says_so_in_chinese_and_keeps_the_eml(tmp_path: Path) -> None:
    workbook = make_output_workbook(tmp_path)
    with smtp_server(authenticator=_refuse, auth_require_tls=False) as (port, sink):
        result = CliRunner().invoke(
            main,
            ["email", "--period", PERIOD, "--out", str(tmp_path), "--send", "--json"],
            env=smtp_env(
                port, FZ_SMTP_USER="city", FZ_SMTP_PASSWORD="wrong", FZ_MAIL_TO="p@example.cn"
            ),
        )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)  # what was made, and the error as every command gives it
    assert doc["sent"] is False and doc["eml"].endswith(".eml")
    assert doc["error"]["exit_code"] == 1
    assert doc["error"]["message"].startswith("SMTP 身份验证失败")
    assert sink.received == []
    assert "SMTP 身份验证失败：服务器 127.0.0.1:" in result.stderr
    assert "拒绝了用户 city 的用户名或密码" in result.stderr
    assert "wrong" not in result.output
    assert "Traceback" not in result.output
    assert (tmp_path / f"{workbook.stem}.eml").is_file()


@pytest.mark.parametrize(
    ("security", "listening", "expected"),
    [
        ("none", False, "连接被拒绝"),
        ("starttls", True, "不支持 STARTTLS"),
        ("ssl", True, "无法与 SMTP 服务器"),
    ],
)
def test_connection_and_tls_failures_exit_1_with_a_chinese_reason(
    tmp_path: Path, security: str, listening: bool, expected: str
) -> None:
    workbook = make_output_workbook(tmp_path)
    args = ["email", "--period", PERIOD, "--out", str(tmp_path), "--send", "--to", "p@example.cn"]
    with smtp_server() as (port, _sink):
        if not listening:
            port = _free_port()
        result = CliRunner().invoke(main, args, env=smtp_env(port, FZ_SMTP_SECURITY=security))
    assert result.exit_code == 1, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert (tmp_path / f"{workbook.stem}.eml").is_file()


def test_email_without_a_workbook_tells_to_consolidate_first(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["email", "--period", PERIOD, "--out", str(tmp_path)], env=smtp_env(1)
    )
    assert result.exit_code == 2
    assert "make consolidate" in result.output
    assert list(tmp_path.iterdir()) == []


def test_email_picks_the_latest_workbook_when_no_period_is_given(tmp_path: Path) -> None:
    make_output_workbook(tmp_path, "2023-06")
    latest = make_output_workbook(tmp_path, "2023-07")
    result = CliRunner().invoke(main, ["email", "--out", str(tmp_path), "--json"], env=smtp_env(1))
    assert result.exit_code == 0, result.output
    assert f'"eml": "{tmp_path / (latest.stem + ".eml")}"' in result.stdout


def test_send_without_a_server_configured_is_a_usage_error(tmp_path: Path) -> None:
    make_output_workbook(tmp_path)
    env = dict.fromkeys(FZ_VARS, None)
    result = CliRunner().invoke(
        main, ["email", "--period", PERIOD, "--out", str(tmp_path), "--send"], env=env
    )
    assert result.exit_code == 2
    assert "FZ_SMTP_HOST" in result.stderr


# --- settings --------------------------------------------------------------------------------


def test_environment_wins_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "smtp.toml"
    config.write_text(
        '[smtp]\nhost = "smtp.126.com"\nport = 465\nsecurity = "ssl"\nuser = "zacscl@126.com"\n'
        'password = "file-secret"\nfrom = "zacscl@126.com"\nto = ["a@example.cn", "b@example.cn"]\n',
        encoding="utf-8",
    )
    settings = load_settings(config, env={"FZ_SMTP_PORT": "994", "FZ_MAIL_TO": "c@example.cn"})
    assert settings == SmtpSettings(
        host="smtp.126.com",
        port=994,
        security="ssl",
        user="zacscl@126.com",
        password="file-secret",
        sender="zacscl@126.com",
        to=("c@example.cn",),
    )
    assert "file-secret" not in repr(settings)
    assert load_settings(None, env={"FZ_SMTP_SECURITY": "starttls"}).effective_port == 587


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('host = "x"\nsecurty = "ssl"\n', "未知的设置项 'securty'"),
        ('port = "abc"\n', "端口须为数字"),
        ('security = "tls"\n', "starttls、ssl 或 none"),
        (
            "host = \n",
            r"格式有误（第 1 行第 \d+ 列附近），请按 TOML 格式改正$",
        ),  # not tomllib's English
    ],
)
def test_bad_config_files_are_explained(tmp_path: Path, text: str, match: str) -> None:
    config = tmp_path / "smtp.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(MailConfigError, match=match):
        load_settings(config, env={})


def test_an_unreadable_config_file_is_explained_in_chinese(tmp_path: Path) -> None:
    with pytest.raises(MailConfigError, match=r"无法读取邮件配置文件 .*：是文件夹，不是文件$"):
        load_settings(tmp_path, env={})


def test_send_message_refuses_a_message_without_recipients() -> None:
    msg = output_email_stub()
    with pytest.raises(MailConfigError, match="没有收件人"):
        send_message(msg, SmtpSettings(host="127.0.0.1", port=1, security="none"))


def output_email_stub() -> EmailMessage:
    from pipeline.mail import build_message

    return build_message(sender="city@example.cn", to=[], subject="测试", body="正文")


# --- reminders -------------------------------------------------------------------------------


def test_reminder_for_a_missing_form_is_addressed_and_explains_the_deadline(tmp_path: Path) -> None:
    attachment = tmp_path / "附件4_进展情况调度表_鼓楼区_2023年7月.xlsx"
    attachment.write_bytes(b"PK\x03\x04 not really a workbook")
    unit = Unit("350102", "鼓楼区", "区", "林晓", "gulou@example.cn")
    rem = Reminder(
        unit=unit,
        form=progress_form(),
        period=PERIOD,
        kind="missing",
        due=dt.date(2023, 8, 1),
        today=dt.date(2023, 8, 3),
        attachment=attachment,
    )
    msg = parse(message_bytes(reminder_message(Draft([rem]), load_calendar())))
    assert [a.addr_spec for a in msg["To"].addresses] == ["gulou@example.cn"]
    assert msg["To"].addresses[0].display_name == "林晓"
    assert msg["From"].addresses[0].addr_spec == "zacscl@126.com"
    assert msg["Subject"] == "【催报】鼓楼区 2023年7月 附件4《进展情况调度表》尚未报送"
    body = body_text(msg)
    assert "鼓楼区建设局 林晓：" in body
    assert "本期报送截止日期为 2023年8月1日，已逾期 2 天。" in body
    assert attachments(msg) == [(attachment.name, attachment.read_bytes())]


def test_reminder_for_a_rejected_return_lists_each_problem_with_its_cell() -> None:
    unit = Unit("350103", "台江区", "区")
    rem = Reminder(
        unit=unit,
        form=progress_form(),
        period=PERIOD,
        kind="rejected",
        due=dt.date(2023, 8, 1),
        today=dt.date(2023, 8, 1),
        file="台江区/附件4.xlsx",
        issues=[IssueLine("调度表", "E6", "A2 大于 A1", "a4-a2-gt-a1")],
    )
    msg = parse(message_bytes(reminder_message(Draft([rem]), load_calendar())))
    assert msg["To"] is None
    assert msg["Subject"].startswith("【退回修改】台江区 2023年7月 附件4《进展情况调度表》")
    body = body_text(msg)
    assert "1. 附件4《进展情况调度表》（文件：台江区/附件4.xlsx），共 1 处问题：" in body
    assert "(1) 工作表“调度表”、E6：A2 大于 A1" in body
    assert "今天截止" in body
    assert "尚未收到" not in body and "一、" not in body  # nothing missing, no sections


def test_a_draft_is_for_one_unit_and_one_period() -> None:
    common = {"form": progress_form(), "kind": "missing", "due": dt.date(2023, 8, 1)}
    gl = Unit("350102", "鼓楼区", "区")
    tj = Unit("350103", "台江区", "区")
    day = dt.date(2023, 7, 30)
    with pytest.raises(ValueError):
        Draft([])
    with pytest.raises(ValueError):
        Draft(
            [
                Reminder(unit=gl, period=PERIOD, today=day, **common),  # type: ignore[arg-type]
                Reminder(unit=tj, period=PERIOD, today=day, **common),  # type: ignore[arg-type]
            ]
        )


def _rejected_inbox(inbox: Path, name: str = "附件4.xlsx") -> list[Any]:
    """Returns of 2023-07: 鼓楼区 accepted, 台江区 rejected (a real file), the rest missing."""
    from pipeline.messages import make_issue

    form = progress_form()
    cells = progress_layout(form).value_cells
    ok = progress_return("鼓楼区", PERIOD, {"A1": "3", "A2": "1"})
    bad = progress_return("台江区", PERIOD, {}, status="rejected")
    bad.path = inbox / "台江区" / name
    bad.rel = f"台江区/{name}"
    tj = next(u for u in load_units() if u.name == "台江区")
    write_template(form, bad.path, unit=tj, period=PERIOD)
    wb = openpyxl.load_workbook(bad.path)
    ws = wb[form.sheet_name]
    ws[cells["A1"].a1], ws[cells["A2"].a1] = 1, -5
    wb.save(bad.path)
    # as the reader records it: the annotator checks the file is still the one validated
    bad.size = bad.path.stat().st_size
    bad.sha256 = hashlib.sha256(bad.path.read_bytes()).hexdigest()
    bad.issues = [
        make_issue(
            "value-negative",
            file=bad.rel,
            sheet=form.sheet_name,
            cell=cells["A2"].a1,
            value="-5",
            label="A2",
        )
    ]
    return [ok, bad]


def test_write_reminders_drafts_one_eml_per_unit_covering_all_its_forms(
    tmp_path: Path, contact_schemas: Path
) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    returns = _rejected_inbox(inbox)
    cycle = cycle_from_returns(returns, PERIOD)
    report = status_of_cycle(cycle, today=dt.date(2023, 7, 30))
    drafts = write_reminders(cycle, report, out)
    # every unit owes something: 鼓楼区 its 台账, 台江区 its 台账 and a corrected 附件4, the
    # others both monthly forms; one draft each
    assert [d.draft.unit.name for d in drafts] == [u.name for u in load_units()]
    by_unit = {d.draft.unit.name: d for d in drafts}
    folder = out / "催报邮件" / "2023年7月"
    assert sorted(p.name for p in folder.iterdir()) == sorted(d.path.name for d in drafts)
    items = [(r.form.id, r.kind) for d in drafts for r in d.reminders]
    # monthly forms only: 13 units × (附件4, 台账), less 鼓楼区's accepted 附件4 and 台江区's
    # rejected one (which is returned instead)
    assert sum(1 for _f, kind in items if kind == "missing") == 13 * 2 - 2
    assert all(form_id in ("annex4_progress", "ledger") for form_id, _k in items)

    # 台江区: the rejected 附件4 and the missing 台账 in one draft, both files attached
    tj = by_unit["台江区"]
    assert tj.path.name == "350103_台江区_催报、退回修改.eml"
    # items in the forms' order; the body and attachments put the missing ones first
    assert [(r.form.id, r.kind) for r in tj.reminders] == [
        ("annex4_progress", "rejected"),
        ("ledger", "missing"),
    ]
    msg = parse(tj.path.read_bytes())
    assert [a.addr_spec for a in msg["To"].addresses] == ["taijiang@example.cn"]
    assert msg["Subject"] == (
        "【催报、退回修改】台江区 2023年7月 《重大事故隐患台账》尚未报送；"
        "附件4《进展情况调度表》未通过校验，请修改后重新报送"
    )
    annotated = out / "退回修改" / "台江区" / "附件4.xlsx"
    assert annotated.is_file()
    attached = dict(attachments(msg))
    assert list(attached) == ["台账_重大事故隐患台账_台江区_2023年7月.xlsx", "附件4.xlsx"]
    assert attached["附件4.xlsx"] == annotated.read_bytes()
    assert attached["台账_重大事故隐患台账_台江区_2023年7月.xlsx"][:2] == b"PK"
    body = body_text(msg)
    a2 = progress_layout(progress_form()).value_cells["A2"].a1
    assert body.index("一、尚未报送的报表") < body.index("二、退回修改的报表")
    assert (
        "1. 《重大事故隐患台账》：附件“台账_重大事故隐患台账_台江区_2023年7月.xlsx”是本期的模板"
        in body
    )
    assert "1. 附件4《进展情况调度表》（文件：台江区/附件4.xlsx），共 1 处问题：" in body
    assert f"(1) 工作表“调度表”、{a2}：A2不能为负数" in body
    assert "附件“附件4.xlsx”是退回的报表，有问题的单元格已标红并附批注。" in body
    assert body.count("本期报送截止日期为 2023年8月1日，还剩 2 天。") == 1
    assert tj.warning == ""

    # 鼓楼区 only owes its 台账
    gl = by_unit["鼓楼区"]
    assert gl.path.name == "350102_鼓楼区_催报.eml"
    msg = parse(gl.path.read_bytes())
    assert msg["Subject"] == "【催报】鼓楼区 2023年7月 《重大事故隐患台账》尚未报送"
    assert [a.addr_spec for a in msg["To"].addresses] == ["gulou@example.cn"]
    ((name, data),) = attachments(msg)
    assert name == "台账_重大事故隐患台账_鼓楼区_2023年7月.xlsx"
    assert data[:2] == b"PK"
    assert "还剩 2 天" in body_text(msg) and "退回修改" not in body_text(msg)

    # 闽侯县 owes both monthly forms: one draft, two templates, no address
    mh = by_unit["闽侯县"]
    msg = parse(mh.path.read_bytes())
    assert msg["To"] is None
    assert msg["Subject"] == (
        "【催报】闽侯县 2023年7月 附件4《进展情况调度表》、《重大事故隐患台账》尚未报送"
    )
    assert [n for n, _d in attachments(msg)] == [
        "附件4_进展情况调度表_闽侯县_2023年7月.xlsx",
        "台账_重大事故隐患台账_闽侯县_2023年7月.xlsx",
    ]
    body = body_text(msg)
    assert "  1. 附件4《进展情况调度表》：附件“附件4_进展情况调度表_闽侯县_2023年7月.xlsx”" in body
    assert "  2. 《重大事故隐患台账》：附件“台账_重大事故隐患台账_闽侯县_2023年7月.xlsx”" in body
    assert "闽侯县 没有有效的联系邮箱" in mh.warning and mh.path.name in mh.warning


def test_draft_json_lists_each_form_of_the_draft(tmp_path: Path, contact_schemas: Path) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    returns = _rejected_inbox(inbox)
    cycle = cycle_from_returns(returns, PERIOD)
    drafts = write_reminders(cycle, status_of_cycle(cycle, today=dt.date(2023, 8, 2)), out)
    docs = {d["unit"]: d for d in (draft_json(r) for r in drafts)}
    assert len(docs) == 13
    tj = docs["台江区"]
    assert set(tj) == {"unit", "code", "to", "eml", "warning", "items"}
    assert (tj["code"], tj["to"], tj["warning"]) == ("350103", "taijiang@example.cn", "")
    assert Path(tj["eml"]).name == "350103_台江区_催报、退回修改.eml"
    assert sorted(tj["items"], key=lambda i: i["form"]) == [
        {"form": "annex4_progress", "kind": "rejected", "file": "台江区/附件4.xlsx",
         "attachment": "附件4.xlsx"},
        {"form": "ledger", "kind": "missing", "file": "",
         "attachment": "台账_重大事故隐患台账_台江区_2023年7月.xlsx"},
    ]  # fmt: skip
    assert docs["闽侯县"]["to"] == "" and "没有有效的联系邮箱" in docs["闽侯县"]["warning"]


def test_two_rejected_files_of_the_same_name_are_attached_under_distinct_names(
    tmp_path: Path, contact_schemas: Path
) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    ok, bad = _rejected_inbox(inbox)
    # the same rejected workbook sent again from another folder, under the same file name
    again = copy.copy(bad)
    again.path = inbox / "台江区" / "重发" / "附件4.xlsx"
    again.path.parent.mkdir(parents=True)
    again.path.write_bytes(bad.path.read_bytes())
    again.rel = "台江区/重发/附件4.xlsx"
    again.issues = list(bad.issues)
    cycle = cycle_from_returns([ok, bad, again], PERIOD)
    drafts = write_reminders(cycle, status_of_cycle(cycle, today=dt.date(2023, 8, 2)), out)
    tj = next(d for d in drafts if d.draft.unit.name == "台江区")
    msg = parse(tj.path.read_bytes())
    names = [n for n, _d in attachments(msg)]
    assert len(names) == len(set(names)) == 3, names
    assert {"附件4.xlsx", "附件4（2）.xlsx"} <= set(names)
    body = body_text(msg)
    assert "附件“附件4.xlsx”是退回的报表" in body and "附件“附件4（2）.xlsx”是退回的报表" in body


def test_remind_command_warns_about_units_without_an_address(
    tmp_path: Path, contact_schemas: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    # brackets as a browser names a second download: must not be taken for screen markup
    returns = _rejected_inbox(inbox, "附件4[1] [/b].xlsx")
    import pipeline.validate

    monkeypatch.setattr(pipeline.validate, "validate_inbox", lambda *a, **k: returns)
    result = CliRunner().invoke(
        main,
        ["remind", str(inbox), "--period", PERIOD, "--out", str(out), "--today", "2023-08-02"],
    )
    assert result.exit_code == 0, result.output
    assert "警告：" in result.output and "永泰县 没有有效的联系邮箱" in result.output
    assert "退回修改" in result.output
    assert (out / "退回修改" / "台江区" / "附件4[1] [/b].xlsx").is_file()
    # one draft per unit: every unit owes at least its 台账
    assert len(list((out / "催报邮件" / "2023年7月").glob("*.eml"))) == 13


def test_email_of_the_real_output_workbook_carries_the_city_totals(tmp_path: Path) -> None:
    from fixtures_consolidate import CITY_2023_07, TJ, build_returns

    from pipeline.consolidate import consolidate
    from pipeline.output import workbook_name, write_outputs

    paths = write_outputs(consolidate(build_returns(), PERIOD), tmp_path)
    assert (
        paths["workbook"].name
        == workbook_name(PERIOD)
        == output_workbook_name(progress_form(), PERIOD)
    )
    result = CliRunner().invoke(
        main,
        ["email", "--period", PERIOD, "--out", str(tmp_path), "--to", "prov@example.cn"],
        env=smtp_env(1),
    )
    assert result.exit_code == 0, result.output
    msg = parse((tmp_path / f"{paths['workbook'].stem}.eml").read_bytes())
    body = body_text(msg)
    for code in ("A1", "A2", "A3", "A4", "A5", "A6"):
        label = progress_form().item_of(code).label
        assert f"{label}：{CITY_2023_07[code]}" in body, code
    assert "13 个单位中 3 个报送了本期调度表；" in body  # 台江区 only sent a rejected one
    # carried units named with the month their figures come from, never-reported ones apart
    assert f"；{TJ}本期未报送，合计中沿用其2023年6月的累计数；" in body
    assert "晋安区" in body and "从未报送，按0计。" in body
    assert "无则为0" not in body
    assert attachments(msg) == [(paths["workbook"].name, paths["workbook"].read_bytes())]


def test_send_message_takes_plain_string_recipients() -> None:
    from pipeline.mail import build_message

    msg = build_message(
        sender="city@example.cn",
        to=["a@example.cn", "张三 <z@example.cn>"],
        subject="测试",
        body="正文",
    )
    with smtp_server() as (port, sink):
        sent = send_message(msg, SmtpSettings(host="127.0.0.1", port=port, security="none"))
    assert sent == ["a@example.cn", "z@example.cn"]
    assert sink.received[0][1] == ["a@example.cn", "z@example.cn"]


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate (made with openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not on PATH")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize(
    ("security", "server_option"), [("starttls", "tls_context"), ("ssl", "ssl_context")]
)
def test_an_untrusted_certificate_is_a_tls_failure_not_a_send(
    tmp_path: Path, self_signed: ssl.SSLContext, security: str, server_option: str
) -> None:
    workbook = make_output_workbook(tmp_path)
    args = ["email", "--period", PERIOD, "--out", str(tmp_path), "--send", "--to", "p@example.cn"]
    with smtp_server(**{server_option: self_signed}) as (port, sink):
        result = CliRunner().invoke(main, args, env=smtp_env(port, FZ_SMTP_SECURITY=security))
    assert result.exit_code == 1, result.output
    assert "证书验证失败" in result.stderr
    assert sink.received == []
    assert (tmp_path / f"{workbook.stem}.eml").is_file()


@pytest.fixture(scope="module")
def trusted_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context whose certificate names 127.0.0.1, and the certificate's path (the
    client trusts it through FZ_SMTP_CAFILE, as for a mail server with an internal CA)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not on PATH")
    folder = tmp_path_factory.mktemp("ca")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


@pytest.mark.parametrize(
    ("security", "server_option"), [("starttls", "tls_context"), ("ssl", "ssl_context")]
)
def test_starttls_and_ssl_send_when_the_certificate_is_trusted(
    tmp_path: Path, trusted_cert: tuple[ssl.SSLContext, Path], security: str, server_option: str
) -> None:
    server_context, cert = trusted_cert
    workbook = make_output_workbook(tmp_path)
    args = ["email", "--period", PERIOD, "--out", str(tmp_path), "--send", "--to", "p@example.cn"]
    env = smtp_env(0, FZ_SMTP_SECURITY=security, FZ_SMTP_CAFILE=str(cert))
    with smtp_server(**{server_option: server_context}) as (port, sink):
        env["FZ_SMTP_PORT"] = str(port)
        result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert len(sink.received) == 1
    message = BytesParser(policy=policy.default).parsebytes(sink.received[0][2])
    attachment = next(message.iter_attachments())
    assert attachment.get_payload(decode=True) == workbook.read_bytes()


def test_an_unreadable_cafile_is_a_settings_error(tmp_path: Path) -> None:
    make_output_workbook(tmp_path)
    args = ["email", "--period", PERIOD, "--out", str(tmp_path), "--send", "--to", "p@example.cn"]
    env = smtp_env(25, FZ_SMTP_SECURITY="starttls", FZ_SMTP_CAFILE=str(tmp_path / "none.pem"))
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert "无法读取证书文件" in result.stderr
    assert "：文件或文件夹不存在" in result.stderr and "No such file" not in result.stderr
    (tmp_path / "bad.pem").write_text("not a certificate", encoding="utf-8")
    env["FZ_SMTP_CAFILE"] = str(tmp_path / "bad.pem")
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert "：不是可用的 PEM 格式证书" in result.stderr


def test_a_file_of_no_readable_unit_goes_back_to_the_unit_its_path_names(
    tmp_path: Path, contact_schemas: Path
) -> None:
    from helpers_fill import nameless_inbox

    inbox, out = tmp_path / "inbox", tmp_path / "out"
    files = nameless_inbox(inbox)
    args = ["remind", str(inbox), "--period", PERIOD, "--out", str(out), "--today", "2023-08-03"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    drafts = {d["unit"]: d for d in doc["drafts"]}
    # 鼓楼区 sent its 附件4 as a PDF: returned (the file and why), not chased as unsent; the
    # photo in its folder, of no known form, goes back to it too
    gl = drafts["鼓楼区"]
    assert [(i["form"], i["kind"], i["file"]) for i in gl["items"]] == [
        ("annex4_progress", "rejected", files["pdf"]),
        ("ledger", "missing", ""),
        ("", "rejected", files["photo"]),
    ]
    # a readable return with the unit typed wrong: its annotated copy goes to its folder's unit
    (mw,) = [i for i in drafts["马尾区"]["items"] if i["form"] == "annex4_progress"]
    assert (mw["kind"], mw["attachment"]) == ("rejected", "附件4.xlsx")
    assert [(i["form"], i["kind"]) for i in drafts["台江区"]["items"]] == [
        ("annex4_progress", "missing"),  # June's empty file is no July return
        ("ledger", "rejected"),
    ]
    assert doc["unidentified_rejected"] == sorted([files["no_unit"], files["rar"], files["june"]])
    msg = parse((out / "催报邮件" / "2023年7月" / "350102_鼓楼区_催报、退回修改.eml").read_bytes())
    body = body_text(msg)
    assert "附件4_进展情况调度表_鼓楼区_2023年7月.xlsx”是本期的模板" not in body
    assert f"1. 附件4《进展情况调度表》（文件：{files['pdf']}），共 1 处问题：" in body
    assert (
        "文件中读不出填报单位，按其文件名归入贵单位；如不是贵单位报送的，请告知市建设局。" in body
    )
    assert "按其所在文件夹“鼓楼区”归入贵单位" in body
    assert "文件“现场照片.xlsx”未通过校验" in msg["Subject"]
    # on screen: only the files no path names are left without a draft
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0, shown.output
    assert "另有3个被退回的文件无法确定填报单位" in "".join(shown.stdout.split())  # wrapped
