"""Shared test helpers: generated templates, valid fillings of every form, and one-call returns."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import openpyxl

from pipeline.fill import fill_workbook
from pipeline.forms import ChecklistForm, load_forms, unit_by_name
from pipeline.layout import META_SHEET
from pipeline.model import Issue, Return
from pipeline.read import read_return
from pipeline.templates import write_template
from pipeline.validate import validate_returns

UNIT = "鼓楼区"
PERIOD = "2023-06"
INSPECTION_DAY = dt.date(2023, 6, 5)


@cache
def template_bytes(form_id: str, unit: str | None = UNIT, period: str | None = PERIOD) -> bytes:
    """A generated template (the real writer), cached per session as bytes."""
    form = load_forms()[form_id]
    buffer_dir = Path(_scratch()) / f"{form_id}-{unit}-{period}.xlsx"
    write_template(form, buffer_dir, unit=unit_by_name(unit) if unit else None, period=period)
    data = buffer_dir.read_bytes()
    buffer_dir.unlink()
    return data


@cache
def _scratch() -> str:
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="helpers-fill-")
    # one per test process: removed at its exit, not left in /tmp
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def template(
    dest: Path, form_id: str, unit: str | None = UNIT, period: str | None = PERIOD
) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(template_bytes(form_id, unit, period))
    return dest


def good_progress() -> dict[str, Any]:
    """A consistent 附件4: every rule holds, with 万元 decimals."""
    values: dict[str, Any] = {
        "A1": 12, "A2": 10, "A3": 8, "A4": 5, "A5": 2, "A6": 1,
        "B1": 40, "B2": 3, "B3": 2, "B4": 4, "B5": 1, "B6": 6, "B7": 2, "B8": 5,
        "C1": 3, "C2": 15, "C3a": 4, "C3b": Decimal("3.5"), "C4": 1, "C5": 0, "C6": 2,
        "C7": 3, "C8a": 2, "C8b": 1, "C9": 1, "C10": 2,
        "D1": 6, "D2": 9, "D3": 120, "D4": 35, "D5a": Decimal("12.3456"), "D5b": Decimal("0.5"),
        "D6": 4, "D7": 2, "D8": 3,
    }  # fmt: skip
    assert set(values) == set(load_forms()["annex4_progress"].value_codes)  # type: ignore[union-attr]
    return values


def good_inspection(form_id: str) -> dict[str, Any]:
    """One complete inspection: the first item a hazard with its details, the rest fine."""
    form = load_forms()[form_id]
    assert isinstance(form, ChecklistForm)
    safe = {"是": "否", "否": "是"}
    answers = {it.no: safe[it.hazard_answer] for it in form.items}
    first = form.items[0]
    answers[first.no] = first.hazard_answer
    answers[form.items[-1].no] = "不涉及"
    details: dict[int, dict[str, Any]] = {
        first.no: {
            "description": "现场检查发现该项问题",
            "requirement": "立即停工整改",
            "deadline": dt.date(2023, 6, 30),
            **({"major": "是"} if form.has_major_column else {}),
        }
    }
    footer: dict[str, Any] = {}
    for f in form.footer:
        footer[f.key] = INSPECTION_DAY if f.type == "date" else f"{f.label}甲"
    return {"answers": answers, "details": details, "footer": footer}


def good_ledger_rows() -> list[dict[str, Any]]:
    """An open hazard with 五落实, a rectified one and a closed, supervised one."""
    base = {
        "domain": "建筑施工",
        "enterprise": "福州某建设工程有限公司",
        "site": "某小区二期工程",
        "description": "深基坑未按方案进行支护",
        "basis": "附件2第10项",
        "found_by": "部门检查",
        "supervised": "否",
    }
    return [
        {
            **base,
            "hazard_id": "GL-2023-001",
            "found_date": dt.date(2023, 6, 2),
            "measures": "按方案补设支护",
            "responsible": "王五",
            "funds": Decimal("12.5"),
            "deadline": dt.date(2023, 7, 15),
            "emergency_plan": "有",
            "status": "整改中",
        },
        {
            **base,
            "hazard_id": "GL-2023-002",
            "credit_code": valid_credit_code(),
            "found_date": dt.date(2023, 5, 20),
            "status": "已整改待验收",
            "rectified_date": dt.date(2023, 6, 10),
        },
        {
            **base,
            "hazard_id": "GL-2023-003",
            "found_date": dt.date(2023, 5, 8),
            "supervised": "是",
            "supervision_level": "市",
            "status": "已验收销号",
            "rectified_date": dt.date(2023, 5, 28),
            "accepted_by": "赵六",
            "closed_date": dt.date(2023, 6, 3),
        },
    ]


def valid_credit_code() -> str:
    """A real-format code (法人 9, 企业 1, 福州鼓楼 350102, organisation code) with its check char."""
    from pipeline.normalize import credit_code_check_char

    first17 = "91350102" + "MA2XY0K1" + "5"
    return first17 + credit_code_check_char(first17)


def make_return(
    inbox: Path,
    form_id: str,
    name: str | None = None,
    *,
    unit: str | None = UNIT,
    period: str | None = PERIOD,
    **fill: Any,
) -> Path:
    """A filled return in `inbox`: the template for unit/period, filled by fill_workbook with
    `fill` (defaults: the good filling of the form)."""
    form = load_forms()[form_id]
    out = inbox / (name or f"{form_id}.xlsx")
    tpl = template(
        inbox.parent / "_templates" / f"{form_id}-{unit}-{period}.xlsx", form_id, unit, period
    )
    if isinstance(form, ChecklistForm):
        fill.setdefault("inspections", [good_inspection(form_id)])
    elif form_id == "annex4_progress":
        fill.setdefault("progress", good_progress())
    else:
        fill.setdefault("ledger_rows", good_ledger_rows())
    fill_workbook(tpl, out, form, **fill)
    return out


def read_one(path: Path, *, validate: bool = True) -> Return:
    ret = read_return(path, path.parent)
    if validate:
        validate_returns([ret])
    return ret


def errors(ret: Return) -> list[tuple[str, str]]:
    """(rule, cell) of every error, for asserting."""
    return [(i.rule, i.cell) for i in ret.issues if i.severity == "error"]


def rules(ret: Return) -> list[str]:
    return [i.rule for i in ret.issues]


def first(ret: Return, rule: str) -> Issue:
    return next(i for i in ret.issues if i.rule == rule)


def drop_meta(path: Path) -> Path:
    """Remove the hidden metadata sheet, as when a clerk pastes into a fresh workbook."""
    wb = openpyxl.load_workbook(path)
    del wb[META_SHEET]
    wb.save(path)
    return path


def edit(path: Path, sheet: str, cells: Mapping[str, Any]) -> Path:
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet]
    for address, value in cells.items():
        ws[address] = value
    wb.save(path)
    return path


def zip_bytes(
    entries: Sequence[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buffer.getvalue()


def ole_bytes(stream_names: Sequence[str], sector_size: int = 512) -> bytes:
    """A minimal, well-formed MS-CFB compound file: a root entry and one empty stream per name
    (empty streams need no data sectors). Sector 0 is the FAT, sector 1 the directory."""
    import struct

    assert len(stream_names) <= sector_size // 128 - 1
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    shift = sector_size.bit_length() - 1  # 9 (version 3) or 12 (version 4)
    struct.pack_into("<HHHH", header, 0x18, 0x3E, 3 if shift == 9 else 4, 0xFFFE, shift)
    struct.pack_into("<H", header, 0x20, 6)  # mini sector shift
    struct.pack_into("<I", header, 0x2C, 1)  # one FAT sector
    struct.pack_into("<I", header, 0x30, 1)  # directory starts at sector 1
    struct.pack_into("<I", header, 0x38, 4096)  # mini stream cutoff
    struct.pack_into("<II", header, 0x3C, 0xFFFFFFFE, 0)  # no mini FAT
    struct.pack_into("<II", header, 0x44, 0xFFFFFFFE, 0)  # no DIFAT sectors
    difat = [0] + [0xFFFFFFFF] * 108
    struct.pack_into("<109I", header, 0x4C, *difat)
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [0xFFFFFFFF] * (sector_size // 4 - 2)
    fat_sector = struct.pack(f"<{sector_size // 4}I", *fat)

    def entry(name: str, kind: int, child: int = 0xFFFFFFFF, right: int = 0xFFFFFFFF) -> bytes:
        raw = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le")
        raw[0 : len(encoded)] = encoded
        struct.pack_into("<HBB", raw, 64, len(encoded), kind, 1)  # length, type, black
        struct.pack_into("<III", raw, 68, 0xFFFFFFFF, right, child)  # left, right, child
        struct.pack_into("<IQ", raw, 116, 0xFFFFFFFE, 0)  # start sector, size
        return bytes(raw)

    entries = [entry("Root Entry", 5, child=1 if stream_names else 0xFFFFFFFF)]
    for i, name in enumerate(stream_names, start=1):
        entries.append(entry(name, 2, right=i + 1 if i < len(stream_names) else 0xFFFFFFFF))
    directory = b"".join(entries).ljust(sector_size, b"\0")
    return bytes(header).ljust(sector_size, b"\0") + fat_sector + directory


def mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    """Deterministic damage: flipped bytes, cuts, zeroed runs and duplicated runs."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        buf = bytearray(data)
        kind = rng.randrange(4)
        at = rng.randrange(len(buf))
        if kind == 0:
            for _ in range(rng.randint(1, 16)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == 1:
            del buf[at:]
        elif kind == 2:
            buf[at : at + 64] = bytes(len(buf[at : at + 64]))
        else:
            buf[at:at] = buf[rng.randrange(len(buf)) :][:200]
        out.append(bytes(buf))
    return out


PDF_BYTES = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64


def nameless_inbox(inbox: Path) -> dict[str, str]:
    """An inbox of 2023-07 returns that are rejected before their unit is read, by what a clerk
    sent: key -> the file's path relative to the inbox. 鼓楼区's 附件4 saved as a PDF, and a
    photo saved as .xlsx in its folder; an empty 台账 in 台江区's folder and an empty 附件4
    named for June; 马尾区's 附件4 with 平潭综合实验区 typed as the unit; an empty file named
    for no unit; a .rar the city has to extract."""
    month = "2023年7月"
    files = {
        "pdf": f"{month}/鼓楼区/附件4_进展情况调度表_鼓楼区_{month}.xlsx",
        "photo": f"{month}/鼓楼区/现场照片.xlsx",
        "empty_ledger": f"{month}/台江区/台账.xlsx",
        "june": f"{month}/台江区/附件4_台江区_2023年6月.xlsx",
        "typed": f"{month}/马尾区/附件4.xlsx",
        "no_unit": "长乐路项目台账.xlsx",
        "rar": f"{month}/仓山区.rar",
    }
    data = {"pdf": PDF_BYTES, "photo": JPEG_BYTES, "rar": b"Rar!\x1a\x07\x01\x00" + b"\x00" * 32}
    for key, rel in files.items():
        path = inbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if key == "typed":
            made = make_return(
                inbox / "_made", "annex4_progress", unit=None, period=None,
                unit_name="平潭综合实验区", period_text="2023年7月",
            )  # fmt: skip
            made.replace(path)
        else:
            path.write_bytes(data.get(key, b""))
    for leftover in (inbox / "_made", inbox / "_templates"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
    return files
