"""Email for the monthly cycle: the output workbook and reminder drafts as .eml, and SMTP sending.

Nothing here sends anything unless `send_message` is called (the CLI does so only under
`--send`). Messages are built with the standard `email` package: Chinese subjects are RFC 2047
encoded, attachment file names RFC 2047 encoded in both name= and filename= (see
_attachment_part), bodies base64 so any relay accepts them. The
saved .eml bytes are deterministic (no Date, a boundary derived from the content) and carry
`X-Unsent: 1`, so Outlook and Thunderbird open them as drafts ready to send.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import os
import re
import smtplib
import socket
import ssl
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import formatdate, make_msgid, quote
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pipeline.forms import (
    Calendar,
    Form,
    LedgerForm,
    ProgressForm,
    Unit,
    period_end,
    period_label,
)
from pipeline.fsutil import atomic_write_bytes
from pipeline.messages import carried_groups, os_error_text

Security = Literal["starttls", "ssl", "none"]
SECURITIES: tuple[Security, ...] = ("starttls", "ssl", "none")
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}
HEADLINE_CODES = ("A1", "A2", "A3", "A4", "A5", "A6")

# setting -> environment variable; the environment wins over the config file
ENV_VARS: dict[str, str] = {
    "host": "FZ_SMTP_HOST",
    "port": "FZ_SMTP_PORT",
    "security": "FZ_SMTP_SECURITY",
    "user": "FZ_SMTP_USER",
    "password": "FZ_SMTP_PASSWORD",
    "sender": "FZ_MAIL_FROM",
    "to": "FZ_MAIL_TO",
    "cafile": "FZ_SMTP_CAFILE",
}
# config-file key -> setting (TOML keys, at top level or under [smtp])
_CONFIG_KEYS: dict[str, str] = {
    "host": "host",
    "port": "port",
    "security": "security",
    "user": "user",
    "password": "password",
    "from": "sender",
    "to": "to",
    "timeout": "timeout",
    "cafile": "cafile",
}

MIME_TYPES: dict[str, tuple[str, str]] = {
    ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".xlsm": ("application", "vnd.ms-excel.sheet.macroEnabled.12"),
    ".xls": ("application", "vnd.ms-excel"),
    ".ods": ("application", "vnd.oasis.opendocument.spreadsheet"),
    ".csv": ("text", "csv"),
}


class MailError(Exception):
    """A mail problem the user can fix; str(exc) is the Chinese message to show."""


class MailConfigError(MailError):
    """SMTP settings are missing or malformed."""


class SendError(MailError):
    """The SMTP conversation failed (connection, TLS, authentication, refusal)."""


# --- addresses -------------------------------------------------------------------------------


def parse_address(text: str, display_name: str = "") -> Address | None:
    """'a@b.cn' -> Address; None when `text` is not a plain, valid address."""
    text = text.strip()
    if not text or text.count("@") != 1 or any(ch.isspace() for ch in text):
        return None
    local, _, domain = text.partition("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        return None
    try:
        return Address(display_name=display_name, addr_spec=text)
    except (ValueError, IndexError):
        return None


def split_addresses(text: str | Sequence[str]) -> tuple[str, ...]:
    """'a@x.cn, b@y.cn; c@z.cn' (or a list of such) -> ('a@x.cn', 'b@y.cn', 'c@z.cn')."""
    items = [text] if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in items:
        for part in str(item).replace(";", ",").replace("，", ",").replace("；", ",").split(","):
            if part.strip():
                out.append(part.strip())
    return tuple(out)


def _checked(addresses: Sequence[str], what: str) -> list[Address]:
    out = []
    for text in addresses:
        addr = parse_address(text)
        if addr is None:
            raise MailConfigError(f"{what}地址格式有误：{text!r}（应为 name@example.com 的形式）。")
        out.append(addr)
    return out


# --- building messages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """One attached file: the name the recipient sees, its bytes and MIME type."""

    filename: str
    data: bytes
    mime: tuple[str, str] = ("application", "octet-stream")

    @classmethod
    def from_path(cls, path: Path, filename: str | None = None) -> Attachment:
        name = filename or path.name
        mime = MIME_TYPES.get(Path(name).suffix.lower(), ("application", "octet-stream"))
        return cls(filename=name, data=path.read_bytes(), mime=mime)


def build_message(
    *,
    sender: Address | str,
    to: Sequence[Address | str],
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """A draft message (X-Unsent: 1, no Date) with a plain-text Chinese body and attachments.

    `to` may be empty: the draft is then addressed by hand before sending.
    """
    msg = EmailMessage(policy=MAIL_POLICY)
    if sender:
        msg["From"] = sender
    if to:
        # one header string, so plain strings and Address objects parse alike
        msg["To"] = ", ".join(str(a) for a in to)
    msg["Subject"] = subject
    msg["X-Unsent"] = "1"
    msg.set_content(body, subtype="plain", charset="utf-8", cte="base64")
    if attachments:
        msg.make_mixed()
        for att in attachments:
            msg.attach(_attachment_part(att))
    _freeze_boundary(msg)
    return msg


# Headers set as raw text (the attachment names below) are written exactly as given; every other
# header is a header object and folds as policy.SMTP folds it. (With refold_source "long", a
# raw line over 78 characters, such as an .xlsx Content-Type line, would be re-parsed and the
# names re-encoded as RFC 2231 continuations.)
MAIL_POLICY = policy.SMTP.clone(refold_source="none")
_WORD_BYTES = 39  # UTF-8 bytes per encoded-word: 52 base64 characters, every line under 78


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 B-encoded UTF-8 words, each holding whole characters."""
    chunks: list[bytes] = []
    chunk = b""
    for ch in text:
        b = ch.encode("utf-8")
        if chunk and len(chunk) + len(b) > _WORD_BYTES:
            chunks.append(chunk)
            chunk = b""
        chunk += b
    if chunk:
        chunks.append(chunk)
    return [f"=?UTF-8?B?{base64.b64encode(c).decode('ascii')}?=" for c in chunks]


def _name_param(key: str, name: str) -> str:
    """' key="…"' for a file name: plain when short ASCII, else encoded-words, one per line."""
    if name.isascii() and name.isprintable() and len(name) <= 60:
        return f' {key}="{quote(name)}"'
    return f' {key}="' + "\n ".join(_encoded_words(name)) + '"'


def _attachment_part(att: Attachment) -> EmailMessage:
    """One attachment whose Chinese file name every common client shows.

    Python's email package writes a non-ASCII file name only as RFC 2231 continuations
    (filename*0*=utf-8''…; filename*1*=…) and no name= on Content-Type. Outlook, Foxmail and
    the 126/163/QQ webmails often show those as garbled text or ATT00001. What they all read,
    and what Outlook, Gmail and Foxmail themselves send, is an RFC 2047 encoded-word inside
    quotes, on both Content-Type name= and Content-Disposition filename=. It is not strictly
    RFC 2047 (no encoded-words in quoted strings), but Thunderbird, Apple Mail and Python's
    own parser (get_filename()) decode it too. No filename* is added beside it: a client
    reading both could pick either, and the plain one is the one everybody reads.
    """
    maintype, subtype = att.mime
    encoded = MIMEPart(policy=MAIL_POLICY)
    encoded.set_content(att.data, maintype=maintype, subtype=subtype, cte="base64")
    part = EmailMessage(policy=MAIL_POLICY)  # no set_content, so no MIME-Version of its own
    part.set_raw("Content-Type", f"{maintype}/{subtype};\n" + _name_param("name", att.filename))
    part.set_raw("Content-Transfer-Encoding", "base64")
    part.set_raw("Content-Disposition", "attachment;\n" + _name_param("filename", att.filename))
    part.set_payload(encoded.get_payload())
    return part


def _freeze_boundary(msg: EmailMessage) -> None:
    """Give multipart messages a boundary derived from their content, so bytes are reproducible."""
    if not msg.is_multipart():
        return
    digest = hashlib.sha256()
    for part in msg.walk():
        if part.is_multipart():
            continue
        digest.update(str(part.get("Content-Type", "")).encode("utf-8"))
        digest.update(str(part.get("Content-Disposition", "")).encode("utf-8"))
        payload = part.get_payload(decode=True)
        digest.update(payload if isinstance(payload, bytes) else b"")
    # "=_" cannot occur in base64 or quoted-printable text, so the boundary never collides
    msg.set_boundary(f"=_fz_{digest.hexdigest()[:40]}")


def message_bytes(msg: EmailMessage) -> bytes:
    """The message as RFC 5322 bytes with CRLF line ends (how .eml files are stored)."""
    return msg.as_bytes(policy=MAIL_POLICY)


def write_eml(msg: EmailMessage, path: Path) -> Path:
    """Write `msg` to `path` atomically (temp file in the same folder, then rename)."""
    return atomic_write_bytes(path, message_bytes(msg))


def form_display(form: Form) -> str:
    """How a form is named in Chinese text: '附件4《进展情况调度表》', '《重大事故隐患台账》'."""
    annex = form.annex if form.annex.startswith("附件") else ""
    return f"{annex}《{form.short_name}》"


def date_label(day: dt.date) -> str:
    """2023-08-01 -> '2023年8月1日'."""
    return f"{day.year}年{day.month}月{day.day}日"


def days_left_text(days_left: int) -> str:
    """0 -> '今天截止', 3 -> '还剩 3 天', -2 -> '已逾期 2 天'."""
    if days_left > 0:
        return f"还剩 {days_left} 天"
    if days_left == 0:
        return "今天截止（当天报送仍算按时）"
    return f"已逾期 {-days_left} 天"


# --- the output workbook ---------------------------------------------------------------------


def output_workbook_name(form: ProgressForm, period: str) -> str:
    """'福州市重大事故隐患专项排查整治2023行动进展情况调度表_2023年7月.xlsx'."""
    return f"{form.title.replace(' ', '')}_{period_label(period)}.xlsx"


def find_output_workbooks(
    out_dir: Path, form: ProgressForm, periods: Sequence[str]
) -> dict[str, Path]:
    """period -> output workbook path, for the periods whose workbook exists in `out_dir`."""
    found = {}
    for period in periods:
        path = out_dir / output_workbook_name(form, period)
        if path.is_file():
            found[period] = path
    return found


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


def headline_totals(workbook: Path, form: ProgressForm) -> dict[str, Decimal]:
    """A1–A6 as the output workbook's 调度表 sheet shows them.

    Each item's number is found next to its label (the seed's layout puts the input cell to the
    right of the label, on the label's second row), so the reading does not depend on the exact
    row numbers of the sheet. Raises MailError when the sheet or a figure cannot be found.
    """
    from openpyxl import load_workbook

    try:
        wb = load_workbook(workbook, read_only=False, data_only=True)
    except Exception as exc:  # any corrupt-file error from openpyxl/zipfile
        raise MailError(f"无法打开汇总表 {workbook}：{exc}") from None
    try:
        if form.sheet_name not in wb.sheetnames:
            raise MailError(f"汇总表 {workbook.name} 中没有“{form.sheet_name}”工作表。")
        ws = wb[form.sheet_name]
        labels = {form.item_of(code).label: code for code in HEADLINE_CODES}
        totals: dict[str, Decimal] = {}
        for row in ws.iter_rows():
            for cell in row:
                code = labels.get(str(cell.value).strip()) if isinstance(cell.value, str) else None
                if code is None or code in totals:
                    continue
                r, c = cell.row, cell.column
                assert isinstance(r, int) and isinstance(c, int)
                for rr, cc in ((r + 1, c + 1), (r, c + 1), (r + 1, c + 2), (r, c + 2)):
                    value = _as_decimal(ws.cell(rr, cc).value)
                    if value is not None:
                        totals[code] = value
                        break
        missing = [code for code in HEADLINE_CODES if code not in totals]
        if missing:
            raise MailError(
                f"汇总表 {workbook.name} 的“{form.sheet_name}”中找不到 {'、'.join(missing)} 的数字，"
                "请重新运行 make consolidate。"
            )
        return totals
    finally:
        wb.close()


def reporting_note(workbook: Path) -> str:
    """'13 个单位中 11 个报送了本期调度表；仓山区本期未报送，合计中沿用其2023年6月的累计数；
    马尾区从未报送，按0计。'

    Read from the JSON that consolidate writes beside the workbook; '' when it is absent or
    unreadable (the note is a courtesy, the workbook is what is sent).
    """
    import json

    path = workbook.with_suffix(".json")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        units = list(doc["units"])
        carried = [str(u) for u in doc.get("carried_forward", [])]
        sources = doc.get("carried_from")  # absent from the JSON of older versions
        sources = {str(u): str(p or "") for u, p in sources.items()} if sources else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    if not units:
        return ""
    text = f"{len(units)} 个单位中 {len(units) - len(carried)} 个报送了本期调度表"
    if carried and sources is None:
        text += f"；{'、'.join(carried)}本期未报送，合计中沿用其此前已接收的累计数（无则为0）"
    elif carried:
        assert sources is not None
        months, never = carried_groups({unit: sources.get(unit, "") for unit in carried})
        for period, names in months:
            shown = period_label(period) if re.fullmatch(r"\d{4}-\d{2}", period) else period
            text += f"；{'、'.join(names)}本期未报送，合计中沿用其{shown}的累计数"
        if never:
            text += f"；{'、'.join(never)}从未报送，按0计"
    return text + "。"


def _number(value: Decimal) -> str:
    """Decimal("12") -> '12', Decimal("1.5000") -> '1.5' (as the clerk would write it)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def output_email(
    workbook: Path,
    period: str,
    *,
    form: ProgressForm,
    calendar: Calendar,
    totals: Mapping[str, Decimal],
    sender: Address | str,
    to: Sequence[Address | str] = (),
    note: str = "",
) -> EmailMessage:
    """The city's 调度表 for `period` as a message: headline A1–A6 in the body, workbook attached.

    `note` (e.g. `reporting_note(workbook)`) is added as the body's last paragraph of data.
    """
    label = period_label(period)
    end = date_label(period_end(period))
    subject = f"{form.title.replace(' ', '')}（{label}，截至{end}累计）"
    lines = [
        "您好！",
        "",
        f"现报送{calendar.campaign}《{form.short_name}》（{label}），"
        f"为截至{end}的累计情况，详见附件。",
        "",
        "主要数据（总体情况）：",
    ]
    for code in HEADLINE_CODES:
        item = form.item_of(code)
        lines.append(f"  {item.no}. {item.label}：{_number(totals[code])}")
    if note:
        lines += ["", note]
    lines += [
        "",
        f"附件：{workbook.name}",
        "",
        calendar.city_unit,
    ]
    return build_message(
        sender=sender,
        to=to,
        subject=subject,
        body="\n".join(lines) + "\n",
        attachments=[Attachment.from_path(workbook)],
    )


# --- reminders (催报 / 退回修改) -------------------------------------------------------------


@dataclass(frozen=True)
class IssueLine:
    """One validation problem as a reminder lists it."""

    sheet: str
    cell: str
    message: str
    rule: str = ""


@dataclass
class Reminder:
    """One matter of a unit's reminder: one form not sent (催报) or one rejected return (退回修改).
    A rejected file nothing in it identifies may be of no known form (None)."""

    unit: Unit
    form: Form | None
    period: str
    kind: Literal["missing", "rejected"]
    due: dt.date
    today: dt.date
    file: str = ""  # the rejected return, as named in the inbox
    issues: list[IssueLine] = field(default_factory=list)
    attachment: Path | None = None
    attachment_name: str = ""
    prefilled_from: str = ""  # period whose accepted data the attached template carries
    # where the path of a rejected file of no readable unit names the unit ("文件名",
    # "所在文件夹“鼓楼区”"; see pipeline.status.owners_by_path); "" when the file names it
    by_path: str = ""

    @property
    def what(self) -> str:
        """'附件4《进展情况调度表》', or '文件“现场照片.xlsx”' for a file of no known form."""
        if self.form is not None:
            return form_display(self.form)
        return f"文件“{PurePosixPath(self.file).name}”"

    @property
    def days_left(self) -> int:
        return (self.due - self.today).days

    @property
    def attached(self) -> str:
        """The attachment's name as the draft carries it ("" for none)."""
        return self.attachment_name or (self.attachment.name if self.attachment is not None else "")

    @property
    def address(self) -> Address | None:
        return parse_address(self.unit.contact_email, self.unit.contact_name or self.unit.name)


@dataclass
class Draft:
    """One reminder .eml to one unit for one period, covering every form the unit has not sent
    and every return of it that was rejected (`items`, all of the same unit and period)."""

    items: list[Reminder]

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("a reminder draft needs at least one item")
        first = self.items[0]
        if any((r.unit, r.period) != (first.unit, first.period) for r in self.items):
            raise ValueError("a reminder draft is for one unit and one period")

    @property
    def unit(self) -> Unit:
        return self.items[0].unit

    @property
    def period(self) -> str:
        return self.items[0].period

    @property
    def due(self) -> dt.date:
        return self.items[0].due

    @property
    def today(self) -> dt.date:
        return self.items[0].today

    @property
    def days_left(self) -> int:
        return self.items[0].days_left

    @property
    def address(self) -> Address | None:
        return self.items[0].address

    @property
    def missing(self) -> list[Reminder]:
        return [r for r in self.items if r.kind == "missing"]

    @property
    def rejected(self) -> list[Reminder]:
        return [r for r in self.items if r.kind == "rejected"]

    @property
    def tag(self) -> str:
        """'催报', '退回修改' or '催报、退回修改': what the draft is about."""
        return "、".join(
            t for t, present in (("催报", self.missing), ("退回修改", self.rejected)) if present
        )


def _forms_text(items: Sequence[Reminder]) -> str:
    """'附件4《进展情况调度表》、《重大事故隐患台账》': each form once, in order."""
    return "、".join(dict.fromkeys(r.what for r in items))


def reminder_subject(draft: Draft) -> str:
    parts = []
    if draft.missing:
        parts.append(f"{_forms_text(draft.missing)}尚未报送")
    if draft.rejected:
        parts.append(f"{_forms_text(draft.rejected)}未通过校验，请修改后重新报送")
    return f"【{draft.tag}】{draft.unit.name} {period_label(draft.period)} " + "；".join(parts)


def reminder_body(draft: Draft, calendar: Calendar) -> str:
    """The Chinese text of a unit's reminder: each form it has not sent (with the attached
    template), each rejected return with its problems (with the annotated copy attached), the
    deadline and the days left."""
    label = period_label(draft.period)
    unit = draft.unit
    greeting = f"{unit.name}建设局" if unit.kind in ("区", "县", "市") else unit.name
    if unit.contact_name:
        greeting += f" {unit.contact_name}"
    lines = [f"{greeting}：", ""]
    missing, rejected = draft.missing, draft.rejected
    both = bool(missing) and bool(rejected)
    if missing:
        if both:
            lines.append("一、尚未报送的报表")
        lines.append(
            f"根据{calendar.document}要求，各县（市）区建设局应于每月1日前上报截至上月末的累计情况。"
            f"截至{date_label(draft.today)}，市建设局尚未收到贵单位 {label} 的以下报表："
        )
        for n, rem in enumerate(missing, 1):
            name = rem.attached
            if name:
                carried = (
                    f"（已预填贵单位 {period_label(rem.prefilled_from)} 已接收的数据，供参考和更新）"
                    if rem.prefilled_from
                    else ""
                )
                what = f"附件“{name}”是本期的模板{carried}。"
            else:
                what = "请按本期模板填写。"
            lines.append(f"  {n}. {rem.what}：{what}")
        lines += ["请填写后回复本邮件；如已报送，请忽略此项。", ""]
    if rejected:
        if both:
            lines.append("二、退回修改的报表")
        lines.append(
            f"贵单位报送的 {label} 以下报表未通过校验，需退回修改，请在原文件中改正后重新报送："
        )
        for n, rem in enumerate(rejected, 1):
            what = rem.what if rem.form is not None else "看不出是哪张报表的文件"
            lines.append(f"  {n}. {what}（文件：{rem.file}），共 {len(rem.issues)} 处问题：")
            for k, issue in enumerate(rem.issues, 1):
                where = "、".join(
                    p for p in (f"工作表“{issue.sheet}”" if issue.sheet else "", issue.cell) if p
                )
                lines.append(f"     ({k}) {where + '：' if where else ''}{issue.message}")
            if rem.by_path:
                lines.append(
                    f"     文件中读不出填报单位，按其{rem.by_path}归入贵单位；"
                    "如不是贵单位报送的，请告知市建设局。"
                )
            name = rem.attached
            if name:
                lines.append(f"     附件“{name}”是退回的报表，有问题的单元格已标红并附批注。")
        lines.append("")
    lines.append(f"本期报送截止日期为 {date_label(draft.due)}，{days_left_text(draft.days_left)}。")
    lines += ["", calendar.city_unit, date_label(draft.today)]
    return "\n".join(lines) + "\n"


def reminder_message(draft: Draft, calendar: Calendar) -> EmailMessage:
    """The .eml draft of a unit's reminder (To empty when the unit has no valid contact
    address): every missing form's template and every rejected return's annotated copy attached."""
    sender = parse_address(calendar.city_email, calendar.city_unit) or calendar.city_email
    to = [draft.address] if draft.address is not None else []
    attachments = [
        Attachment.from_path(rem.attachment, rem.attachment_name or None)
        for rem in (*draft.missing, *draft.rejected)
        if rem.attachment is not None
    ]
    return build_message(
        sender=sender,
        to=to,
        subject=reminder_subject(draft),
        body=reminder_body(draft, calendar),
        attachments=attachments,
    )


def reminder_filename(draft: Draft) -> str:
    """'350104_仓山区_催报.eml', '350103_台江区_催报、退回修改.eml': one draft per unit."""
    return f"{draft.unit.code}_{draft.unit.name}_{draft.tag}.eml"


# --- SMTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send; from FZ_* environment variables and/or a TOML file (env wins)."""

    host: str = ""
    port: int | None = None
    security: Security = "starttls"
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    to: tuple[str, ...] = ()
    timeout: float = 30.0
    # a PEM file of certificate authorities to trust besides the system's (an organisation's own
    # mail server with a certificate from an internal CA)
    cafile: str = ""

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


def _toml_place(exc: tomllib.TOMLDecodeError) -> str:
    """Where tomllib stopped, in Chinese ("（第 3 行第 7 列附近）"); its message is English."""
    found = re.search(r"line (\d+), column (\d+)", str(exc))
    return f"（第 {found.group(1)} 行第 {found.group(2)} 列附近）" if found else ""


def _setting(key: str, raw: Any, source: str) -> Any:
    if key == "port":
        try:
            port = int(str(raw).strip())
        except ValueError:
            raise MailConfigError(f"{source}：端口须为数字（收到 {raw!r}）。") from None
        if not 0 < port < 65536:
            raise MailConfigError(f"{source}：端口须在 1–65535 之间（收到 {port}）。")
        return port
    if key == "security":
        value = str(raw).strip().lower()
        if value not in SECURITIES:
            raise MailConfigError(f"{source}：加密方式须为 starttls、ssl 或 none（收到 {raw!r}）。")
        return value
    if key == "to":
        return split_addresses(raw if isinstance(raw, list) else str(raw))
    if key == "timeout":
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise MailConfigError(f"{source}：timeout 须为秒数（收到 {raw!r}）。") from None
    return str(raw).strip() if key != "password" else str(raw)


def load_settings(
    config_file: Path | None = None, env: Mapping[str, str] | None = None
) -> SmtpSettings:
    """Settings from `config_file` (TOML, keys at top level or under [smtp]) overlaid by `env`."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with config_file.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise MailConfigError(
                f"无法读取邮件配置文件 {config_file}：{os_error_text(exc)}"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise MailConfigError(
                f"邮件配置文件 {config_file} 格式有误{_toml_place(exc)}，请按 TOML 格式改正"
            ) from None
        table = data.get("smtp", data)
        if not isinstance(table, dict):
            raise MailConfigError(f"邮件配置文件 {config_file}：[smtp] 须为一个表。")
        for key, raw in table.items():
            if key not in _CONFIG_KEYS:
                raise MailConfigError(
                    f"邮件配置文件 {config_file} 中有未知的设置项 {key!r}"
                    f"（可用：{', '.join(_CONFIG_KEYS)}）。"
                )
            values[_CONFIG_KEYS[key]] = _setting(_CONFIG_KEYS[key], raw, str(config_file))
    for key, var in ENV_VARS.items():
        raw = env.get(var, "")
        if raw.strip():
            values[key] = _setting(key, raw, f"环境变量 {var}")
    return SmtpSettings(**values)


def _friendly_refusal(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{exc.smtp_code} {text}".strip()


def sendable_copy(msg: EmailMessage, sender: str) -> EmailMessage:
    """The draft with X-Unsent removed and Date/Message-ID added, as it goes on the wire."""
    out = copy.deepcopy(msg)
    del out["X-Unsent"]
    del out["Date"]
    del out["Message-ID"]
    out["Date"] = formatdate(localtime=True)
    domain = sender.rpartition("@")[2] or None
    out["Message-ID"] = make_msgid(domain=domain)
    return out


def send_message(msg: EmailMessage, settings: SmtpSettings) -> list[str]:
    """Send `msg` as settings say; returns the accepted recipients. Raises SendError in Chinese.

    Envelope sender and recipients come from the message's From and To headers.
    """
    host = settings.host
    if not host:
        raise MailConfigError(
            "没有设置 SMTP 服务器：请设置环境变量 FZ_SMTP_HOST，或用 --config 指定配置文件。"
        )
    from_addrs = [a.addr_spec for a in msg["From"].addresses] if msg["From"] else []
    if not from_addrs:
        raise MailConfigError("没有发件人地址：请设置 FZ_MAIL_FROM 或在配置文件中填写 from。")
    rcpts = [a.addr_spec for a in msg["To"].addresses] if msg["To"] else []
    if not rcpts:
        raise MailConfigError("没有收件人：请用 --to 指定，或设置 FZ_MAIL_TO / 配置文件中的 to。")
    port = settings.effective_port
    where = f"{host}:{port}"
    wire = sendable_copy(msg, from_addrs[0])
    context = ssl.create_default_context()
    if settings.cafile:
        try:
            context.load_verify_locations(cafile=settings.cafile)
        except (OSError, ssl.SSLError) as exc:
            # (ssl.SSLError is an OSError whose codes are OpenSSL's, not the system's)
            why = "不是可用的 PEM 格式证书" if isinstance(exc, ssl.SSLError) else os_error_text(exc)
            raise MailConfigError(
                f"无法读取证书文件 {settings.cafile}（FZ_SMTP_CAFILE / cafile）：{why}"
            ) from None
    try:
        smtp: smtplib.SMTP
        if settings.security == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=settings.timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=settings.timeout)
        with smtp:
            smtp.ehlo()
            if settings.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SendError(
                        f"SMTP 服务器 {where} 不支持 STARTTLS 加密。请确认端口和加密方式"
                        "（465 端口用 FZ_SMTP_SECURITY=ssl；仅在可信内网可用 none）。"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.user:
                smtp.login(settings.user, settings.password)
            refused = smtp.sendmail(from_addrs[0], rcpts, message_bytes(wire))
    except SendError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"SMTP 身份验证失败：服务器 {where} 拒绝了用户 {settings.user} 的用户名或密码"
            f"（{_friendly_refusal(exc)}）。请检查 FZ_SMTP_USER、FZ_SMTP_PASSWORD；"
            "126/163/QQ 等邮箱须使用“客户端授权码”而不是登录密码。"
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise SendError(
            f"SMTP 服务器 {where} 不接受身份验证（AUTH）。通常需要先加密连接："
            "请把 FZ_SMTP_SECURITY 设为 starttls 或 ssl。"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        who = "、".join(sorted(exc.recipients))
        raise SendError(
            f"SMTP 服务器 {where} 拒收了全部收件人：{who}。请检查收件人地址。"
        ) from None
    except smtplib.SMTPSenderRefused as exc:
        raise SendError(
            f"SMTP 服务器 {where} 拒绝了发件人 {from_addrs[0]}（{_friendly_refusal(exc)}）。"
            "发件人通常须与登录用户一致。"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"SMTP 服务器 {where} 拒绝了邮件（{_friendly_refusal(exc)}）。") from None
    except smtplib.SMTPServerDisconnected:
        raise SendError(
            f"与 SMTP 服务器 {where} 的连接意外断开。请检查端口与加密方式是否匹配"
            "（465 端口用 ssl，587/25 端口用 starttls）。"
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise SendError(
            f"无法与 SMTP 服务器 {where} 建立加密连接：证书验证失败（{exc.verify_message}）。"
            "请确认服务器地址正确。"
        ) from None
    except ssl.SSLError as exc:
        raise SendError(
            f"无法与 SMTP 服务器 {where} 建立加密连接（{exc.reason or exc}）。"
            "请检查加密方式：465 端口用 ssl，587/25 端口用 starttls。"
        ) from None
    except smtplib.SMTPException as exc:
        raise SendError(f"发送失败（SMTP 服务器 {where}）：{exc}") from None
    except socket.gaierror:
        raise SendError(f"找不到 SMTP 服务器 {host}：请检查服务器地址和网络连接。") from None
    except ConnectionRefusedError:
        raise SendError(
            f"无法连接 SMTP 服务器 {where}：连接被拒绝。请检查服务器地址和端口。"
        ) from None
    except TimeoutError:
        raise SendError(
            f"连接 SMTP 服务器 {where} 超时（{settings.timeout:g} 秒）。请检查网络或防火墙。"
        ) from None
    except OSError as exc:
        raise SendError(f"无法连接 SMTP 服务器 {where}：{os_error_text(exc)}。") from None
    return [r for r in rcpts if r not in refused]


def with_recipients(settings: SmtpSettings, to: Sequence[str]) -> SmtpSettings:
    """Settings with the recipients replaced (command-line --to wins over env and file)."""
    return replace(settings, to=split_addresses(list(to))) if to else settings


# --- writing the reminder drafts for a period ------------------------------------------------

REMINDER_DIR = "催报邮件"


@dataclass
class DraftResult:
    """One unit's reminder written: the draft, its path and a warning when it has no recipient."""

    draft: Draft
    path: Path
    warning: str = ""

    @property
    def reminders(self) -> list[Reminder]:
        """Every form the draft chases or returns."""
        return self.draft.items


def draft_json(result: DraftResult) -> dict[str, Any]:
    """One draft as remind --json lists it: the unit, recipient, .eml and each form it covers."""
    draft = result.draft
    return {
        "unit": draft.unit.name,
        "code": draft.unit.code,
        "to": draft.unit.contact_email if not result.warning else "",
        "eml": str(result.path),
        "warning": result.warning,
        "items": [
            {
                "form": rem.form.id if rem.form is not None else "",
                "kind": rem.kind,
                "file": rem.file,
                "attachment": rem.attached,
            }
            for rem in draft.items
        ],
    }


def _issue_lines(ret: Any) -> list[IssueLine]:
    return [IssueLine(i.sheet, i.cell, i.message, i.rule) for i in ret.errors]


def reminders_for(
    cycle: Any, report: Any, *, schemas_dir: Path | None = None
) -> list[tuple[Reminder, Any]]:
    """(Reminder, rejected Return or None) for each monthly form a unit has not sent and each
    rejected return (any form). Missing and rejected are consolidate's verdicts, read from the
    status report; a checklist is filed per inspection, so none in a month is not chased. A
    rejected file of no readable unit counts for the unit its path names (the report's
    `path_unit`): returned to it, under its form when the file name names one, else last.
    Grouped by unit, in the report's unit order.
    """
    by_rel = {r.rel: r for r in cycle.returns}
    out: list[tuple[Reminder, Any]] = []
    for unit in report.units:
        of_unit = {"unit": unit, "period": report.period, "due": report.due, "today": report.today}
        for form in report.forms:
            cell = report.cell(unit, form.id)
            common = {**of_unit, "form": form}
            if cell.status == "missing" and cell.required:
                out.append((Reminder(kind="missing", **common), None))
            rejected = [
                s
                for s in report.submissions
                if s.owner == unit.name and s.owner_form == form.id and s.status == "rejected"
            ]
            out += [
                _rejected(sub, by_rel, common) for sub in sorted(rejected, key=lambda s: s.file)
            ]
        # files their path puts down to the unit, of no known form: sent back all the same
        nameless = {**of_unit, "form": None}
        out += [_rejected(sub, by_rel, nameless) for sub in report.unplaced(unit)]
    return out


def _rejected(sub: Any, by_rel: Mapping[str, Any], common: dict[str, Any]) -> tuple[Reminder, Any]:
    """The 退回修改 matter of one rejected submission, with its return (None if not read)."""
    ret = by_rel.get(sub.file)
    issues = _issue_lines(ret) if ret is not None else []
    rem = Reminder(kind="rejected", file=sub.file, issues=issues, by_path=sub.path_where, **common)
    return rem, ret


def _unique_name(name: str, used: set[str]) -> str:
    """`name`, or '附件4（2）.xlsx' … when a draft already attaches a file of that name."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}（{n}）{suffix}"
    used.add(candidate)
    return candidate


def write_reminders(
    cycle: Any, report: Any, out_dir: Path, *, schemas_dir: Path | None = None
) -> list[DraftResult]:
    """Write one .eml draft per unit under out_dir/催报邮件/<期间>/ (old drafts there go),
    covering all of the unit's missing and rejected forms for the period.

    Rejected returns get their annotated copy attached (pipeline.annotate writes it under
    out_dir/退回修改/); missing forms get the period's template, prefilled from the unit's last
    accepted returns. Units without a valid contact address get a draft with an empty To and a
    warning in the result.
    """
    from pipeline import forms as forms_mod
    from pipeline.annotate import write_annotated_copy
    from pipeline.forms import load_calendar, load_forms
    from pipeline.prefill import unit_prefill, write_unit_template
    from pipeline.templates import template_filename

    sd = schemas_dir if schemas_dir is not None else forms_mod.SCHEMAS_DIR
    calendar = load_calendar(sd)
    all_forms = load_forms(sd)
    ledger = all_forms["ledger"]
    assert isinstance(ledger, LedgerForm)
    folder = out_dir / REMINDER_DIR / period_label(report.period)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.eml"):
        old.unlink()
    by_unit: dict[str, list[tuple[Reminder, Any]]] = {}
    for rem, ret in reminders_for(cycle, report, schemas_dir=sd):
        by_unit.setdefault(rem.unit.code, []).append((rem, ret))
    results: list[DraftResult] = []
    with tempfile.TemporaryDirectory(prefix="fz-remind-") as tmp:
        for items in by_unit.values():
            names: set[str] = set()  # attachment names within this draft
            for rem, ret in items:
                if rem.kind == "rejected" and ret is not None:
                    rem.attachment = write_annotated_copy(ret, out_dir)
                    if rem.attachment is not None:
                        rem.attachment_name = _unique_name(rem.attachment.name, names)
                elif rem.kind == "missing" and rem.form is not None:
                    data = unit_prefill(cycle.result, rem.unit, rem.period, ledger=ledger)
                    name = template_filename(rem.form, rem.unit, rem.period)
                    rem.attachment = write_unit_template(
                        rem.form, Path(tmp) / rem.unit.code / name, data, schemas_dir=sd
                    )
                    rem.attachment_name = _unique_name(name, names)
                    rem.prefilled_from = (
                        data.reference_period
                        if isinstance(rem.form, ProgressForm)
                        else data.ledger_period
                        if isinstance(rem.form, LedgerForm)
                        else None
                    ) or ""
            draft = Draft([rem for rem, _ret in items])
            fname = reminder_filename(draft)
            warning = ""
            if draft.address is None:
                shown = draft.unit.contact_email or "（空）"
                warning = (
                    f"{draft.unit.name} 没有有效的联系邮箱（schemas/units.csv 的 contact_email："
                    f"{shown}），草稿 {fname} 的收件人为空，请补填地址后再发送。"
                )
            msg = reminder_message(draft, calendar)
            results.append(DraftResult(draft, write_eml(msg, folder / fname), warning))
    return results
