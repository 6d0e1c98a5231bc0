"""Reading the inbox: which files are read, defensive opening, identification, extraction."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import struct
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from helpers_fill import (
    PERIOD,
    UNIT,
    drop_meta,
    edit,
    errors,
    good_inspection,
    good_ledger_rows,
    good_progress,
    make_return,
    mutations,
    ole_bytes,
    read_one,
    rules,
    template,
    template_bytes,
    zip_bytes,
)

from pipeline import safety
from pipeline.cli import main
from pipeline.forms import load_forms, progress_form
from pipeline.layout import META_SHEET, LedgerLayout, a1, checklist_layout, progress_layout
from pipeline.model import Return
from pipeline.read import CHINA_TZ, parse_received, read_inbox, read_return


def _statuses(returns: list) -> dict[str, tuple[str, list[str]]]:
    return {r.rel: (r.status, rules(r)) for r in returns}


# --- the inbox ---------------------------------------------------------------------------------


def test_inbox_reads_returns_and_ignores_locks_hidden_junk_and_other_files(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "鼓楼区/附件4 调度表（6月）.xlsx")
    (inbox / "~$附件4.xlsx").write_bytes(b"\x00" * 165)
    (inbox / ".~lock.附件4.xlsx#").write_text("lock")
    (inbox / ".hidden.xlsx").write_bytes(b"x")
    (inbox / "Thumbs.db").write_bytes(b"x")
    (inbox / "desktop.ini").write_text("x")
    (inbox / ".DS_Store").write_bytes(b"x")
    (inbox / "说明.docx").write_bytes(b"x")
    (inbox / "README").write_text("x")
    (inbox / ".git").mkdir()
    (inbox / ".git" / "x.xlsx").write_bytes(b"x")
    (inbox / "像工作簿的文件夹.xlsx").mkdir()  # a folder named like a workbook is walked into
    make_return(inbox, "ledger", "像工作簿的文件夹.xlsx/台账.xlsx")
    os.symlink(inbox / "鼓楼区" / "附件4 调度表（6月）.xlsx", inbox / "link.xlsx")
    seen: list[str] = []
    returns = read_inbox(inbox, on_file=lambda r: seen.append(r.rel))
    got = _statuses(returns)
    assert [r.rel for r in returns] == sorted(got) == seen
    assert got["鼓楼区/附件4 调度表（6月）.xlsx"] == ("accepted", [])
    assert got["像工作簿的文件夹.xlsx/台账.xlsx"] == ("accepted", [])
    assert got["~$附件4.xlsx"] == ("ignored", ["file-ignored-lock"])
    assert got[".~lock.附件4.xlsx#"] == ("ignored", ["file-ignored-lock"])
    for name in (".hidden.xlsx", "Thumbs.db", "desktop.ini", ".DS_Store", ".git/"):
        assert got[name] == ("ignored", ["file-ignored-hidden"]), name
    assert got["说明.docx"] == ("ignored", ["file-ignored-not-spreadsheet"])
    assert got["README"] == ("ignored", ["file-ignored-not-spreadsheet"])
    assert got["link.xlsx"] == ("ignored", ["file-ignored-symlink"])
    assert all(r.ignore_reason for r in returns if r.status == "ignored")
    assert ".git/x.xlsx" not in got


def test_a_return_exported_as_csv_or_fods_is_an_error_other_text_files_are_ignored(
    tmp_path: Path,
) -> None:
    # a clerk exported the filled 附件4 as CSV, or LibreOffice saved it as flat XML: the unit
    # would count as not reported, so the file is an error that says to save the workbook
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in (
        "附件4_进展情况调度表_鼓楼区_2023年7月.csv",
        "鼓楼区 台账.tsv",
        "附件２检查清单.fods",
        "联系人.csv",
        "附件4填报说明.txt",  # a cover note, not an export
    ):
        (inbox / name).write_text("x", encoding="utf-8")
    # Excel's 文本文件(制表符分隔) and XML 电子表格 2003 copies: exports by their content
    (inbox / "附件4_鼓楼区.txt").write_text("调度表\t\n一、总体情况\t12\n", encoding="utf-8")
    xml = '<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">'
    (inbox / "台账_鼓楼区.xml").write_text(xml, encoding="utf-8")
    got = _statuses(read_inbox(inbox))
    assert got["附件4_鼓楼区.txt"] == ("rejected", ["file-not-workbook"])
    assert got["台账_鼓楼区.xml"] == ("rejected", ["file-not-workbook"])
    assert got["附件4_进展情况调度表_鼓楼区_2023年7月.csv"] == ("rejected", ["file-not-workbook"])
    assert got["鼓楼区 台账.tsv"] == ("rejected", ["file-not-workbook"])
    assert got["附件２检查清单.fods"] == ("rejected", ["file-not-workbook"])
    assert got["联系人.csv"] == ("ignored", ["file-ignored-not-spreadsheet"])
    assert got["附件4填报说明.txt"] == ("ignored", ["file-ignored-not-spreadsheet"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_special_files_are_not_opened(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.xlsx")  # opening it would block forever
    (ret,) = read_inbox(inbox)
    assert (ret.status, rules(ret)) == ("ignored", ["file-ignored-special"])


def test_inbox_is_not_modified(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress")
    make_return(inbox, "annex1_gas")
    (inbox / "bad.xlsx").write_bytes(b"PK\x03\x04broken")
    (inbox / "~$lock.xlsx").write_bytes(b"x")

    def snapshot() -> dict[str, tuple[str, int]]:
        return {
            p.relative_to(inbox).as_posix(): (
                hashlib.sha256(p.read_bytes()).hexdigest(),
                p.stat().st_mtime_ns,
            )
            for p in sorted(inbox.rglob("*"))
            if p.is_file()
        }

    before = snapshot()
    read_inbox(inbox)
    assert snapshot() == before
    assert sorted(p.name for p in inbox.iterdir()) == [
        "annex1_gas.xlsx",
        "annex4_progress.xlsx",
        "bad.xlsx",
        "~$lock.xlsx",
    ]


def test_received_from_mtime_is_china_local_time(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    path = make_return(inbox, "annex4_progress")
    moment = dt.datetime(2023, 6, 30, 17, 20, tzinfo=CHINA_TZ)
    os.utime(path, (moment.timestamp(), moment.timestamp()))
    (ret,) = read_inbox(inbox)
    assert ret.received == dt.datetime(2023, 6, 30, 17, 20)
    assert ret.received_source == "mtime"
    assert ret.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ret.size == path.stat().st_size
    assert ret.fmt == "xlsx"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_receipt_log_sets_received_by_relative_path_or_bare_name(
    tmp_path: Path, encoding: str
) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "鼓楼区/a4.xlsx")
    make_return(inbox, "ledger", "鼓楼区/台账.xlsx")
    make_return(inbox, "annex1_gas", "附件1.xlsx")
    log = (
        "文件名,收到时间\n"
        "鼓楼区/a4.xlsx,2023-06-30 17:20\n"
        "台账.xlsx,2023/7/1 08:05:09\n"
        "不存在.xlsx,2023-06-30 10:00\n"
        "附件1.xlsx,昨天\n"
    )
    (inbox / "收文登记.csv").write_bytes(log.encode(encoding))
    returns = {r.rel: r for r in read_inbox(inbox)}
    assert returns["鼓楼区/a4.xlsx"].received == dt.datetime(2023, 6, 30, 17, 20)
    assert returns["鼓楼区/a4.xlsx"].received_source == "log"
    assert returns["鼓楼区/台账.xlsx"].received == dt.datetime(2023, 7, 1, 8, 5, 9)
    assert returns["附件1.xlsx"].received_source == "mtime"
    logged = returns["收文登记.csv"]
    assert logged.status == "ignored"
    assert rules(logged) == [
        "file-ignored-receipt-log",
        "receipt-log-row-invalid",
        "receipt-log-row-invalid",
    ]


def test_receipt_times_kept_as_plain_numbers_are_read_and_a_bad_column_is_one_message(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    names = [f"{i}.xlsx" for i in range(5)]
    for name in names:
        make_return(inbox, "annex4_progress", name)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["文件名", "收到时间"])
    for i, name in enumerate(names):  # the time column left in 常规 format: serial numbers
        ws.append([name, 45107.75 + i / 24])
    wb.save(inbox / "收文登记.xlsx")
    returns = {r.rel: r for r in read_inbox(inbox)}
    assert [returns[n].received for n in names] == [
        dt.datetime(2023, 6, 30, 18 + i) for i in range(5)
    ]
    assert rules(returns["收文登记.xlsx"]) == ["file-ignored-receipt-log"]
    # a column no row of which can be read: one message, naming a few rows and an example
    (inbox / "收文登记.xlsx").unlink()
    rows = "".join(f"{n},昨天下午\n" for n in names)
    (inbox / "收文登记.csv").write_text("文件名,收到时间\n" + rows, encoding="utf-8")
    log = next(r for r in read_inbox(inbox) if r.rel == "收文登记.csv")
    assert rules(log) == ["file-ignored-receipt-log", "receipt-log-times-invalid"]
    assert "有 5 行的收到时间无法识别（第 2、3、4 等行，如“昨天下午”）" in log.issues[1].message


def test_a_file_the_system_cannot_read_gets_a_chinese_reason(tmp_path: Path) -> None:
    (tmp_path / "a file").write_bytes(b"")
    ret = read_return(tmp_path / "a file" / "附件4.xlsx", tmp_path)  # below a file: ENOTDIR
    assert rules(ret) == ["file-unreadable-os"]
    assert "路径中的某一级是文件，不是文件夹" in ret.issues[0].message
    assert "Not a directory" not in ret.issues[0].message


def test_receipt_log_kept_as_a_workbook_is_read_like_the_csv(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "鼓楼区/a4.xlsx")
    make_return(inbox, "ledger", "鼓楼区/台账.xlsx")
    make_return(inbox, "annex1_gas", "附件1.xlsx")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["文件名", "收到时间"])
    ws.append(["鼓楼区/a4.xlsx", dt.datetime(2023, 6, 30, 17, 20)])  # a date-and-time cell
    ws.append(["台账.xlsx", "2023/7/1 08:05:09"])  # typed as text
    ws.append(["附件1.xlsx", "昨天"])
    wb.save(inbox / "收文登记.xlsx")
    returns = {r.rel: r for r in read_inbox(inbox)}
    assert returns["鼓楼区/a4.xlsx"].received == dt.datetime(2023, 6, 30, 17, 20)
    assert returns["鼓楼区/a4.xlsx"].received_source == "log"
    assert returns["鼓楼区/台账.xlsx"].received == dt.datetime(2023, 7, 1, 8, 5, 9)
    assert returns["附件1.xlsx"].received_source == "mtime"
    logged = returns["收文登记.xlsx"]
    assert logged.status == "ignored"  # not a return to send back
    assert rules(logged) == ["file-ignored-receipt-log", "receipt-log-row-invalid"]
    # a damaged one is reported, and the times fall back to the files' own
    (inbox / "收文登记.xlsx").write_bytes(b"PK\x03\x04 truncated")
    returns = {r.rel: r for r in read_inbox(inbox)}
    assert rules(returns["收文登记.xlsx"]) == [
        "file-ignored-receipt-log",
        "receipt-log-unreadable",
    ]
    assert returns["鼓楼区/a4.xlsx"].received_source == "mtime"


def test_a_second_receipt_log_is_said_to_be_unused(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "鼓楼区/a4.xlsx")
    (inbox / "收文登记.csv").write_text("文件名,收到时间\na4.xlsx,2023-06-30 17:20\n", "utf-8")
    wb = openpyxl.Workbook()
    wb.active.append(["文件名", "收到时间"])
    wb.active.append(["a4.xlsx", "2023-07-03 09:00"])
    wb.save(inbox / "收文登记.xlsx")
    returns = {r.rel: r for r in read_inbox(inbox)}
    assert returns["鼓楼区/a4.xlsx"].received == dt.datetime(2023, 6, 30, 17, 20)  # the CSV's
    unused = returns["收文登记.xlsx"]
    assert unused.status == "ignored"
    assert rules(unused) == ["receipt-log-unused"]  # not also "the log the times come from"
    assert "以“收文登记.csv”为准，本文件未使用" in unused.issues[-1].message
    assert rules(returns["收文登记.csv"]) == ["file-ignored-receipt-log"]


def test_a_linked_receipt_log_is_not_followed_and_the_real_one_is_used(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "a4.xlsx")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("文件名,收到时间\na4.xlsx,2023-06-01 08:00\n", "utf-8")
    (inbox / "收文登记.csv").symlink_to(outside)
    wb = openpyxl.Workbook()
    wb.active.append(["文件名", "收到时间"])
    wb.active.append(["a4.xlsx", "2023-06-30 17:20"])
    wb.save(inbox / "收文登记.xlsx")
    returns = {r.rel: r for r in read_inbox(inbox)}
    assert returns["a4.xlsx"].received == dt.datetime(2023, 6, 30, 17, 20)  # the workbook's
    assert rules(returns["收文登记.csv"]) == ["file-ignored-symlink"]
    assert rules(returns["收文登记.xlsx"]) == ["file-ignored-receipt-log"]


def test_a_receipt_log_over_the_size_limit_is_reported_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "a4.xlsx")
    (inbox / "收文登记.csv").write_text("文件名,收到时间\na4.xlsx,2023-06-30 17:20\n", "utf-8")
    monkeypatch.setattr("pipeline.safety.MAX_FILE_BYTES", 10)
    returns = {r.rel: r for r in read_inbox(inbox)}
    assert rules(returns["收文登记.csv"]) == ["file-ignored-receipt-log", "receipt-log-unreadable"]
    assert "文件过大" in returns["收文登记.csv"].issues[-1].message
    assert returns["a4.xlsx"].received_source == "mtime"


def test_receipt_log_without_its_columns_is_reported(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress")
    (inbox / "receipt_log.csv").write_text("name,time\na,b\n", encoding="utf-8")
    returns = {r.rel: r for r in read_inbox(inbox)}
    assert rules(returns["receipt_log.csv"]) == [
        "file-ignored-receipt-log",
        "receipt-log-unreadable",
    ]
    assert returns["annex4_progress.xlsx"].received_source == "mtime"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-06-30 17:20", dt.datetime(2023, 6, 30, 17, 20)),
        ("2023-06-30T09:20:00+00:00", dt.datetime(2023, 6, 30, 17, 20)),
        ("2023年6月30日 17:20", dt.datetime(2023, 6, 30, 17, 20)),
        ("2023-06-30", dt.datetime(2023, 6, 30)),
        ("", None),
        ("下午", None),
        ("45107.7222222222", dt.datetime(2023, 6, 30, 17, 20)),  # a serial in 常规 format
        ("45107", dt.datetime(2023, 6, 30)),
        ("12345", None),  # a serial before 2000 is no receipt time of this campaign
    ],
)
def test_parse_received(text: str, expected: dt.datetime | None) -> None:
    assert parse_received(text) == expected


def test_parallel_reading_gives_the_same_returns(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    for i in range(3):
        make_return(inbox, "annex4_progress", f"a{i}.xlsx")
    (inbox / "bad.xlsx").write_bytes(b"nope")
    one = read_inbox(inbox)
    two = read_inbox(inbox, jobs=2)
    assert [(r.rel, r.status, r.progress, rules(r)) for r in one] == [
        (r.rel, r.status, r.progress, rules(r)) for r in two
    ]


def test_parallel_reading_joins_its_workers_before_returning(tmp_path: Path) -> None:
    # left to be reaped in the background, they would still run into the next stage
    import multiprocessing

    inbox = tmp_path / "inbox"
    for i in range(4):
        make_return(inbox, "annex4_progress", f"a{i}.xlsx")
    assert len(read_inbox(inbox, jobs=2)) == 4
    assert multiprocessing.active_children() == []


# --- defensive opening -------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _rewrite_zip(data: bytes, change: dict[str, bytes]) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    entries = [(i.filename, change.get(i.filename, src.read(i.filename))) for i in src.infolist()]
    return zip_bytes(entries)


@pytest.mark.parametrize(
    ("name", "data", "rule"),
    [
        ("empty.xlsx", b"", "file-empty"),
        ("pdf.xlsx", b"%PDF-1.7\n...", "file-not-spreadsheet-content"),
        ("picture.xls", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "file-not-spreadsheet-content"),
        ("csv.xlsx", "序号,名称\n1,鼓楼区\n".encode(), "file-not-spreadsheet-content"),
        (
            "html.xls",
            b"<html><table><tr><td>1</td></tr></table></html>",
            "file-not-spreadsheet-content",
        ),
        ("plain.xlsx", zip_bytes([("readme.txt", b"hello")]), "file-not-spreadsheet-content"),
        (
            "word.xlsx",
            zip_bytes([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")]),
            "file-not-spreadsheet-content",
        ),
        (
            "binary.xlsx",
            zip_bytes([("[Content_Types].xml", b"<Types/>"), ("xl/workbook.bin", b"\0")]),
            "file-format-unsupported",
        ),
        ("encrypted.xlsx", ole_bytes(["EncryptionInfo", "EncryptedPackage"]), "file-encrypted"),
        (
            "encrypted4k.xlsx",
            ole_bytes(["EncryptionInfo", "EncryptedPackage"], 4096),
            "file-encrypted",
        ),
        ("word.xls", ole_bytes(["WordDocument"]), "file-not-spreadsheet-content"),
        ("ole-truncated.xls", ole_bytes(["Workbook"])[:700], "file-truncated"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(
    tmp_path: Path, name: str, data: bytes, rule: str
) -> None:
    ret = read_one(_write(tmp_path, name, data))
    assert ret.status == "rejected"
    assert errors(ret) == [(rule, "")]
    assert ret.issues[0].message and ret.issues[0].file == name


def test_the_minimal_ole_file_is_a_real_compound_file() -> None:
    # the detector follows the FAT chain to the directory: the names come back exactly
    assert safety.ole_stream_names(ole_bytes(["EncryptionInfo", "EncryptedPackage"])) == [
        "Root Entry",
        "EncryptionInfo",
        "EncryptedPackage",
    ]


def test_truncated_workbook(tmp_path: Path) -> None:
    data = template_bytes("annex4_progress")
    ret = read_one(_write(tmp_path, "cut.xlsx", data[: len(data) // 2]))
    assert errors(ret) == [("file-truncated", "")]


def test_workbook_with_a_damaged_part(tmp_path: Path) -> None:
    data = bytearray(template_bytes("annex4_progress"))
    offset = data.index(b"xl/worksheets/sheet1.xml") + 40  # inside the compressed sheet
    data[offset : offset + 64] = b"\xff" * 64
    ret = read_one(_write(tmp_path, "damaged.xlsx", bytes(data)))
    assert ret.status == "rejected"
    assert errors(ret)[0][0] in ("file-corrupt", "file-unreadable")


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    bomb = zip_bytes(
        [
            ("[Content_Types].xml", b"<Types/>"),
            ("xl/workbook.xml", b"<w/>"),
            ("xl/worksheets/sheet1.xml", b"\0" * (40 * 1024 * 1024)),
        ]
    )
    assert len(bomb) < 100 * 1024
    ret = read_one(_write(tmp_path, "bomb.xlsx", bomb))
    assert errors(ret) == [("file-zip-limits", "")]


def test_zip_with_lying_sizes_is_refused_while_inflating(tmp_path: Path) -> None:
    # zipfile stops at the declared size and the checksum then fails: never more than declared
    payload = b"<x/>" + b" " * (3 * 1024 * 1024)
    data = bytearray(
        zip_bytes([("[Content_Types].xml", b"<Types/>"), ("xl/workbook.xml", payload)])
    )
    # declare the workbook part as 100 bytes in both the local header and the central directory
    name = b"xl/workbook.xml"
    local = _header(data, b"PK\x03\x04", 30, name)
    struct.pack_into("<I", data, local + 22, 100)
    central = _header(data, b"PK\x01\x02", 46, name)
    struct.pack_into("<I", data, central + 24, 100)
    ret = read_one(_write(tmp_path, "liar.xlsx", bytes(data)))
    assert errors(ret) == [("file-corrupt", "")]


def _header(data: bytearray, magic: bytes, name_at: int, name: bytes) -> int:
    """Offset of the zip header with `magic` whose file name (at `name_at`) is `name`."""
    at = data.find(magic)
    while at >= 0:
        if data[at + name_at : at + name_at + len(name)] == name:
            return at
        at = data.find(magic, at + 1)
    raise AssertionError(name)


def test_too_many_zip_entries(tmp_path: Path) -> None:
    entries = [("[Content_Types].xml", b"<Types/>"), ("xl/workbook.xml", b"<w/>")]
    entries += [(f"xl/media/{i}.bin", b"") for i in range(safety.MAX_ZIP_ENTRIES)]
    ret = read_one(_write(tmp_path, "many.xlsx", zip_bytes(entries, zipfile.ZIP_STORED)))
    assert errors(ret) == [("file-zip-limits", "")]


def test_xml_entity_declarations_are_refused(tmp_path: Path) -> None:
    data = template_bytes("annex4_progress")
    src = zipfile.ZipFile(io.BytesIO(data))
    workbook = src.read("xl/workbook.xml")
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        + workbook.split(b"?>", 1)[1]
    )
    ret = read_one(_write(tmp_path, "lol.xlsx", _rewrite_zip(data, {"xl/workbook.xml": bomb})))
    assert errors(ret) == [("file-xml-dtd", "")]
    assert "xl/workbook.xml" in ret.issues[0].message


def test_a_value_far_away_makes_the_sheet_too_large(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    edit(path, "调度表", {"XFD1048576": "x"})
    ret = read_one(path)
    assert errors(ret) == [("file-sheet-too-large", "")]


def test_foreign_workbook_is_unidentified(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "2023年度职工食堂采购清单"
    wb.active["A2"] = "大米"
    wb.save(tmp_path / "foreign.xlsx")
    ret = read_one(tmp_path / "foreign.xlsx")
    assert errors(ret) == [("file-unidentified", "")]
    assert ret.form_id is None


def test_unknown_form_in_metadata(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    edit(path, META_SHEET, {"B1": "annex9_other"})
    ret = read_one(path)
    assert errors(ret) == [("file-form-unknown", "B1")]


def test_older_form_version_is_a_warning(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    edit(path, META_SHEET, {"B2": "2022.9"})
    ret = read_one(path)
    assert ret.status == "accepted"
    assert rules(ret) == ["file-form-version"]


# --- identification ------------------------------------------------------------------------------


def test_renamed_file_is_identified_by_metadata(tmp_path: Path) -> None:
    path = make_return(
        tmp_path / "inbox", "annex3_confined_space", "新建 Microsoft Excel 工作表 (2).xlsx"
    )
    ret = read_one(path)
    assert (ret.form_id, ret.unit_code, ret.unit_name, ret.period) == (
        "annex3_confined_space",
        "350102",
        UNIT,
        PERIOD,
    )
    assert ret.identified_by == "metadata"
    assert ret.status == "accepted", ret.issues


@pytest.mark.parametrize(
    "form_id",
    ["annex1_gas", "annex2_construction", "annex3_confined_space", "annex4_progress", "ledger"],
)
def test_workbook_without_metadata_is_identified_by_labels(tmp_path: Path, form_id: str) -> None:
    path = drop_meta(make_return(tmp_path / "inbox", form_id))
    ret = read_one(path)
    assert (ret.form_id, ret.unit_name, ret.period, ret.identified_by) == (
        form_id,
        UNIT,
        PERIOD,
        "labels",
    )
    assert ret.status == "accepted", ret.issues


def test_blank_template_takes_unit_and_period_from_what_the_clerk_typed(tmp_path: Path) -> None:
    path = make_return(
        tmp_path / "inbox", "annex4_progress", unit=None, period=None,
        unit_name="台江区建设局", period_text="2023年7月",
    )  # fmt: skip
    ret = read_one(path)
    assert (ret.unit_code, ret.unit_name, ret.period) == ("350103", "台江区", "2023-07")
    assert ret.identified_by == "metadata"
    assert ret.status == "accepted", ret.issues


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("高新区", "3501GX"),  # the alias in units.csv
        ("福州市高新区", "3501GX"),
        ("福州市鼓楼区住房和城乡建设局", "350102"),
        ("福建省福州市鼓楼区", "350102"),
        ("福州鼓楼区", "350102"),
    ],
)
def test_blank_template_takes_the_unit_as_a_clerk_writes_it(
    tmp_path: Path, typed: str, code: str
) -> None:
    path = make_return(
        tmp_path / "inbox", "annex4_progress", unit=None, period=None,
        unit_name=typed, period_text="2023年7月",
    )  # fmt: skip
    ret = read_one(path)
    assert (ret.unit_code, ret.period) == (code, "2023-07")
    assert ret.status == "accepted", ret.issues


@pytest.mark.parametrize("typed", ["长乐路", "高新技术企业", "福州市", "福州市城乡建设局", "鼓楼"])
def test_a_name_that_is_no_unit_stays_unknown(tmp_path: Path, typed: str) -> None:
    path = make_return(
        tmp_path / "inbox", "annex4_progress", unit=None, period=None,
        unit_name=typed, period_text="2023年7月",
    )  # fmt: skip
    ret = read_one(path)
    assert errors(ret) == [("unit-unknown", progress_layout(progress_form()).unit_cell.a1)]
    assert ret.unit_name is None


def test_blank_template_without_unit_or_period(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "ledger", unit=None, period=None)
    ret = read_one(path)
    assert errors(ret) == [("unit-missing", "B2"), ("period-missing", "F2")]


def test_blank_template_with_unknown_unit_and_bad_period(tmp_path: Path) -> None:
    path = make_return(
        tmp_path / "inbox", "annex4_progress", unit=None, period=None,
        unit_name="平潭综合实验区", period_text="六月",
    )  # fmt: skip
    ret = read_one(path)
    lay = progress_layout(progress_form())
    assert errors(ret)[:2] == [
        ("unit-unknown", lay.unit_cell.a1),
        ("period-invalid", lay.period_cell.a1),
    ]


def test_period_outside_the_campaign(tmp_path: Path) -> None:
    path = make_return(
        tmp_path / "inbox",
        "annex4_progress",
        unit=None,
        period=None,
        unit_name=UNIT,
        period_text="2024年3月",
    )
    ret = read_one(path)
    assert errors(ret) == [
        ("period-out-of-campaign", progress_layout(progress_form()).period_cell.a1)
    ]


def test_cells_disagreeing_with_metadata(tmp_path: Path) -> None:
    lay = progress_layout(progress_form())
    path = make_return(
        tmp_path / "inbox", "annex4_progress", unit_name="仓山区", period_text="2023年5月"
    )
    ret = read_one(path)
    assert errors(ret) == [
        ("meta-unit-mismatch", lay.unit_cell.a1),
        ("meta-period-mismatch", lay.period_cell.a1),
    ]
    assert (ret.unit_name, ret.period) == (UNIT, PERIOD)  # the template's identity stands


def test_unknown_unit_in_metadata(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "ledger")
    edit(path, META_SHEET, {"B4": "999999", "B5": "平潭"})
    ret = read_one(path)
    assert ("unit-unknown", "") in errors(ret)


def test_missing_label_is_reported(tmp_path: Path) -> None:
    path = drop_meta(make_return(tmp_path / "inbox", "annex4_progress"))
    lay = progress_layout(progress_form())
    edit(path, "调度表", {lay.period_label_cell.a1: None, lay.period_cell.a1: None})
    ret = read_one(path)
    assert ("label-missing", lay.period_label_cell.a1) in errors(ret)


def test_hidden_sheet_is_read_with_a_warning(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("Sheet1")  # something visible must remain
    wb["调度表"].sheet_state = "hidden"
    wb.save(path)
    ret = read_one(path)
    assert rules(ret) == ["sheet-hidden"]
    assert ret.status == "accepted"
    assert ret.progress == {k: Decimal(str(v)) for k, v in good_progress().items()}


def test_unrelated_extra_sheet_is_skipped(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    edit_wb = openpyxl.load_workbook(path)
    edit_wb.create_sheet("草稿")["A1"] = "随手记的数字 12"
    edit_wb.save(path)
    ret = read_one(path)
    assert [(i.rule, i.sheet) for i in ret.issues] == [("sheet-skipped", "草稿")]
    assert ret.status == "accepted"


def test_deleted_form_sheet(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("Sheet1")
    del wb["调度表"]
    wb.save(path)
    ret = read_one(path)
    assert errors(ret) == [("sheet-missing", "")]


def test_duplicate_progress_sheet(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    wb = openpyxl.load_workbook(path)
    wb.copy_worksheet(wb["调度表"]).title = "调度表 (2)"
    wb.save(path)
    ret = read_one(path)
    assert [(i.rule, i.sheet) for i in ret.issues if i.severity == "error"] == [
        ("sheet-duplicate", "调度表 (2)")
    ]


# --- extraction ----------------------------------------------------------------------------------


def test_progress_values_are_read_exactly_with_their_cells(tmp_path: Path) -> None:
    ret = read_one(
        make_return(tmp_path / "inbox", "annex4_progress", report_date=dt.date(2023, 7, 1))
    )
    assert ret.status == "accepted", ret.issues
    assert ret.progress == {k: Decimal(str(v)) for k, v in good_progress().items()}
    assert ret.progress["C3b"] == Decimal("3.5") and ret.progress["D5a"] == Decimal("12.3456")
    lay = progress_layout(progress_form())
    assert ret.progress_cells == {
        code: ("调度表", cell.a1) for code, cell in lay.value_cells.items()
    }
    assert ret.report_date == dt.date(2023, 7, 1)


@pytest.mark.parametrize(
    ("day", "when"),
    [
        (dt.date(2023, 6, 1), None),
        (dt.date(2023, 7, 1), None),
        (dt.date(2023, 12, 15), None),  # within half a year of the period's end: late, not wrong
        (dt.date(2023, 5, 31), "早于该月开始"),
        (dt.date(2024, 7, 1), "比期末晚半年以上"),  # 2024 typed for 2023
    ],
)
def test_a_report_date_that_cannot_be_the_day_of_filling_is_a_warning(
    tmp_path: Path, day: dt.date, when: str | None
) -> None:
    ret = read_one(make_return(tmp_path / "inbox", "annex4_progress", report_date=day))
    assert ret.status == "accepted"
    assert ret.report_date == day
    flagged = [i for i in ret.issues if i.rule == "progress-date-implausible"]
    if when is None:
        assert flagged == []
        return
    (issue,) = flagged
    assert issue.severity == "warning"
    assert issue.cell == progress_layout(progress_form()).date_cell.a1
    assert f"时间 {day.isoformat()} {when}，而本表报送的是2023年6月末的累计数" in issue.message


def test_progress_as_clerks_type_it(tmp_path: Path) -> None:
    typed = good_progress() | {
        "A1": "１２",
        "B1": "40家",
        "C3b": "3.5万元",
        "D3": "1,20",
        "D4": " 35 ",
    }
    ret = read_one(make_return(tmp_path / "inbox", "annex4_progress", progress=typed))
    cell = progress_layout(progress_form()).value_cells["D3"].a1
    assert errors(ret) == [("value-ambiguous", cell)]
    assert ret.progress["A1"] == 12 and ret.progress["B1"] == 40 and ret.progress["D4"] == 35
    assert ret.progress["C3b"] == Decimal("3.5")
    assert "D3" not in ret.progress


def test_progress_after_inserted_rows_and_columns(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    wb = openpyxl.load_workbook(path)
    ws = wb["调度表"]
    ws.merged_cells.ranges = set()  # openpyxl does not move merges; the values are what matter
    ws.insert_rows(1, 2)
    ws.insert_cols(1)
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "accepted", ret.issues
    assert ret.progress == {k: Decimal(str(v)) for k, v in good_progress().items()}
    lay = progress_layout(progress_form())
    a1 = lay.value_cells["A1"]
    from pipeline.layout import a1 as address

    assert ret.progress_cells["A1"] == ("调度表", address(a1.row + 2, a1.col + 1))


def test_progress_typed_into_the_right_half_of_a_broken_merge(tmp_path: Path) -> None:
    lay = progress_layout(progress_form())
    cell = lay.value_cells["A1"]
    from pipeline.layout import a1 as address

    right = address(cell.row, cell.col + 1)
    path = make_return(
        tmp_path / "inbox", "annex4_progress", progress=good_progress() | {"A1": None}
    )
    wb = openpyxl.load_workbook(path)
    ws = wb["调度表"]
    for rng in list(ws.merged_cells.ranges):
        if cell.a1 in rng:
            ws.unmerge_cells(str(rng))
    ws[right] = 12
    wb.save(path)
    ret = read_one(path)
    assert ret.progress["A1"] == 12
    assert ret.progress_cells["A1"] == ("调度表", right)
    # both halves filled: two figures, neither taken silently
    edit(path, "调度表", {cell.a1: 5, right: 6})
    ret = read_one(path)
    assert errors(ret) == [("value-ambiguous", cell.a1)]
    assert f"{cell.a1}（“5”）、{right}（“6”）" in ret.errors[0].message
    assert "A1" not in ret.progress


def test_several_inspections_in_one_workbook(tmp_path: Path) -> None:
    second = good_inspection("annex1_gas") | {"answers": {1: "否", 2: "否", 3: "否"}, "details": {}}
    path = make_return(
        tmp_path / "inbox", "annex1_gas", inspections=[good_inspection("annex1_gas"), second]
    )
    ret = read_one(path)
    assert ret.status == "accepted", ret.issues
    assert [i.sheet for i in ret.inspections] == ["附件1", "附件1 (2)"]
    assert ret.inspections[0].answers == {1: "是", 2: "否", 3: "不涉及"}
    assert ret.inspections[1].answers == {1: "否", 2: "否", 3: "否"}
    first = ret.inspections[0]
    assert first.details[1]["description"] == "现场检查发现该项问题"
    assert first.details[1]["deadline"] == dt.date(2023, 6, 30)
    assert first.footer == {
        "inspected_unit": "被检查单位甲",
        "inspectors": "检查人员甲",
        "inspection_date": dt.date(2023, 6, 5),
    }
    lay = checklist_layout(load_forms()["annex1_gas"])  # type: ignore[arg-type]
    # an item's cell is the tick given (what a flag about its hazard points to)
    assert [first.item_cells[no] for no in (1, 2, 3)] == [
        _a1(lay.item_row(no), lay.tick_col(answer))
        for no, answer in ((1, "是"), (2, "否"), (3, "不涉及"))
    ]
    assert first.footer_cells["inspection_date"] == lay.footer_cell("inspection_date").a1


def _a1(row: int, col: int) -> str:
    from pipeline.layout import a1

    return a1(row, col)


def test_checklist_with_an_inserted_column_and_rows(tmp_path: Path) -> None:
    form = load_forms()["annex2_construction"]
    path = make_return(tmp_path / "inbox", "annex2_construction")
    wb = openpyxl.load_workbook(path)
    ws = wb["附件2"]
    ws.merged_cells.ranges = set()
    ws.insert_cols(2)  # a column inserted after 序号
    ws.insert_rows(4)  # a row inserted above the header
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "accepted", ret.issues
    (inspection,) = ret.inspections
    assert inspection.answers == good_inspection("annex2_construction")["answers"]
    lay = checklist_layout(form)  # type: ignore[arg-type]
    first = form.items[0].no  # type: ignore[union-attr]
    assert inspection.item_cells[first] == _a1(lay.item_row(first) + 1, lay.tick_col("是") + 1)
    assert inspection.footer["inspection_date"] == dt.date(2023, 6, 5)


# A clerk's own item typed into the blank row below the items (or a copy of an item's row):
# the answers in it belong to no item, so they would be dropped without a word.
CHECKLISTS = ["annex1_gas", "annex2_construction", "annex3_confined_space"]


def _checklist_sheet(path: Path) -> tuple[Any, Any]:
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    ws.protection.sheet = False
    return wb, ws


def _fill_extra_row(ws: Any, lay: Any, row: int, no: Any, *, major_only: bool = False) -> None:
    """What a clerk types into Excel row `row` (1-based) for an item of their own."""

    def put(key: str, value: Any) -> None:
        ws.cell(row, lay.col(key) + 1, value)

    put("no", no)
    put("matter", "其他：液化气钢瓶超期未检、无合格证")
    if major_only:
        put("major_yes", "√")
        return
    put("tick_0", "√")
    put("description", "3只50kg液化气钢瓶超过检验期限")
    put("requirement", "立即停用并送检")
    put("deadline", dt.date(2023, 6, 20))


@pytest.mark.parametrize("form_id", CHECKLISTS)
def test_an_item_the_clerk_added_below_the_items_is_an_error_naming_its_row(
    tmp_path: Path, form_id: str
) -> None:
    form = load_forms()[form_id]
    lay = checklist_layout(form)  # type: ignore[arg-type]
    path = make_return(tmp_path / "inbox", form_id)
    wb, ws = _checklist_sheet(path)
    row = lay.last_item_row + 2  # the blank row between the items and the footer, 1-based
    _fill_extra_row(ws, lay, row, len(form.items) + 1)  # type: ignore[union-attr]
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "rejected"
    last = _a1(row - 1, lay.last_col)
    assert errors(ret) == [("checklist-extra-row", f"A{row}:{last}")]
    issue = ret.errors[0]
    assert issue.sheet == form.sheet_name and issue.value == "其他：液化气钢瓶超期未检、无合格证"
    if form_id == "annex1_gas":
        assert issue.message == (
            "第 9 行（A9:I9）不是本检查清单的检查事项，其中填写的内容（D9、G9、H9、I9）不会被读取，"
            "也不会汇总。请删除该行：检查中发现的隐患请填入《重大事故隐患台账》，或写入对应检查事项的"
            "“重大隐患描述”栏，然后重新报送。"
        )


def test_a_major_hazard_tick_alone_in_an_extra_row_is_an_error(tmp_path: Path) -> None:
    form = load_forms()["annex2_construction"]
    lay = checklist_layout(form)  # type: ignore[arg-type]
    path = make_return(tmp_path / "inbox", "annex2_construction")
    wb, ws = _checklist_sheet(path)
    row = lay.last_item_row + 2
    _fill_extra_row(ws, lay, row, "45", major_only=True)
    wb.save(path)
    assert errors(read_one(path)) == [("checklist-extra-row", f"A{row}:L{row}")]


def test_a_second_row_for_an_item_among_inserted_rows_is_an_error(tmp_path: Path) -> None:
    """Rows inserted for room among the items and below them are read past while empty; one
    holding a copy of an item's row (same 序号) is named where it now is."""
    form_id = "annex3_confined_space"
    lay = checklist_layout(load_forms()[form_id])  # type: ignore[arg-type]
    path = make_return(tmp_path / "inbox", form_id)
    wb, ws = _checklist_sheet(path)
    ws.merged_cells.ranges = set()
    first = lay.first_item_row + 1  # 1-based Excel row of item 1
    ws.insert_rows(first + 1, 2)  # two rows after item 1
    ws.insert_rows(lay.last_item_row + 1 + 2 + 1, 3)  # three after the last item
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "accepted", ret.issues
    assert ret.inspections[0].answers == good_inspection(form_id)["answers"]

    wb, ws = _checklist_sheet(path)
    for c in range(1, lay.last_col + 2):
        ws.cell(first + 2, c, ws.cell(first, c).value)  # item 1's row again, in the 2nd new row
    wb.save(path)
    ret = read_one(path)
    assert errors(ret) == [("checklist-extra-row", f"A{first + 2}:I{first + 2}")]
    assert ret.inspections[0].details[1]["row"] == first  # item 1 is still read from its row


def test_an_item_row_that_lost_its_number_is_only_a_missing_item(tmp_path: Path) -> None:
    form_id = "annex1_gas"
    lay = checklist_layout(load_forms()[form_id])  # type: ignore[arg-type]
    path = make_return(tmp_path / "inbox", form_id)
    row = lay.item_row(2) + 1
    edit(path, "附件1", {f"A{row}": None})
    assert errors(read_one(path)) == [("checklist-item-missing", f"A{row}")]


def test_a_deleted_column_of_template_text_is_read_with_a_warning(tmp_path: Path) -> None:
    """检查类别 deleted: items are found by 序号 and answers by their headers, as before."""
    form_id = "annex1_gas"
    path = make_return(tmp_path / "inbox", form_id)
    wb, ws = _checklist_sheet(path)
    ws.merged_cells.ranges = set()
    ws.delete_cols(2)
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "accepted", ret.issues
    assert [(i.rule, i.severity, i.cell) for i in ret.issues] == [
        ("checklist-text-column-missing", "warning", "B4")
    ]
    (inspection,) = ret.inspections
    assert inspection.answers == good_inspection(form_id)["answers"]
    assert inspection.item_cells[1] == "C6"  # 是 of item 1, one column left of the template's


@pytest.mark.parametrize(
    ("form_id", "deleted", "cell"),
    [
        ("annex1_gas", "F", "F5"),  # 检查结果 不涉及: named under its group header
        ("annex1_gas", "G", "G4"),  # 重大隐患描述
        ("annex2_construction", "J", "J5"),  # 是否重大隐患 否
        ("annex3_confined_space", "A", "A4"),  # 序号: the items cannot be told apart
    ],
)
def test_a_deleted_answer_column_is_named(
    tmp_path: Path, form_id: str, deleted: str, cell: str
) -> None:
    path = make_return(tmp_path / "inbox", form_id)
    wb, ws = _checklist_sheet(path)
    ws.merged_cells.ranges = set()
    ws.delete_cols(openpyxl.utils.column_index_from_string(deleted))
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "rejected"
    assert errors(ret) == [("checklist-column-missing", cell)]
    assert ret.inspections == []


def test_ledger_frame(tmp_path: Path) -> None:
    ret = read_one(make_return(tmp_path / "inbox", "ledger"))
    assert ret.status == "accepted", ret.issues
    frame = ret.ledger
    assert frame is not None
    keys = [c.key for c in load_forms()["ledger"].columns]  # type: ignore[union-attr]
    assert list(frame.columns) == [*keys, "_sheet", "_row"]
    assert list(frame["_row"]) == [4, 5, 6]
    rows = good_ledger_rows()
    assert list(frame["hazard_id"]) == [r["hazard_id"] for r in rows]
    assert frame.loc[0, "funds"] == Decimal("12.5")
    assert frame.loc[0, "found_date"] == dt.date(2023, 6, 2)
    assert frame.loc[2, "closed_date"] == dt.date(2023, 6, 3)
    assert frame.loc[1, "funds"] is None
    assert set(frame["_sheet"]) == {"隐患台账"}


def test_ledger_skips_empty_rows_in_between(tmp_path: Path) -> None:
    rows = good_ledger_rows()
    ret = read_one(
        make_return(tmp_path / "inbox", "ledger", ledger_rows=[rows[0], {}, {}, rows[1]])
    )
    assert ret.ledger is not None
    assert list(ret.ledger["_row"]) == [4, 7]


def test_a_total_or_signature_line_below_the_ledger_is_one_clear_error(tmp_path: Path) -> None:
    rows = good_ledger_rows()
    footer = [
        {"hazard_id": "合计：3 条"},
        {"hazard_id": "填表人：张三", "enterprise": "审核人：李四"},
    ]
    ret = read_one(make_return(tmp_path / "inbox", "ledger", ledger_rows=[*rows, *footer]))
    assert ret.status == "rejected"
    first = 4 + len(rows)  # the template's first data row is 4
    assert [(i.rule, i.cell, i.value) for i in ret.errors] == [
        ("ledger-footer-row", f"A{first}", "合计：3 条"),
        ("ledger-footer-row", f"A{first + 1}", "填表人：张三"),
    ]
    assert "第 7 行（“合计：3 条”）像是合计、签名或说明行" in ret.errors[0].message
    assert ret.ledger is not None and list(ret.ledger["_row"]) == [4, 5, 6]
    # a hazard whose number starts with such a word is a hazard: it fills its row
    odd = [dict(rows[0], hazard_id="合计-2023-001")]
    assert read_one(make_return(tmp_path / "in2", "ledger", ledger_rows=odd)).status == "accepted"


def _ledger_edited(tmp_path: Path, edit: Any, rows: list[dict[str, Any]] | None = None) -> Return:
    """The good ledger (or `rows`), edited with openpyxl (`edit(ws)`), read and validated."""
    path = make_return(tmp_path / "inbox", "ledger", ledger_rows=rows or good_ledger_rows())
    wb = openpyxl.load_workbook(path)
    edit(wb["隐患台账"])
    wb.save(path)
    return read_one(path)


def test_a_signature_line_merged_across_the_table_is_one_footer_error(tmp_path: Path) -> None:
    def edit(ws: Any) -> None:
        ws["A7"] = "填表人：张三　审核人：李四　联系电话：0591-12345678"
        ws.merge_cells("A7:U7")

    ret = _ledger_edited(tmp_path, edit)
    assert [(i.rule, i.cell) for i in ret.errors] == [("ledger-footer-row", "A7")]
    assert ret.ledger is not None and list(ret.ledger["_row"]) == [4, 5, 6]


def test_a_total_in_an_inserted_number_column_is_one_footer_error(tmp_path: Path) -> None:
    def edit(ws: Any) -> None:
        ws.insert_cols(1)
        ws["A3"] = "序号"
        for r in range(4, 7):
            ws.cell(r, 1, r - 3)
        ws["A7"] = "合计"
        ws["M7"] = 12.5  # the funds' total, under 整改资金 (moved to M)

    ret = _ledger_edited(tmp_path, edit)
    assert [(i.rule, i.cell) for i in ret.errors] == [("ledger-footer-row", "A7")]
    assert ("ledger-column-extra", "A3") in [(i.rule, i.cell) for i in ret.issues]


@pytest.mark.parametrize(
    "merge",
    ["A7:C7", "A400:C400", "U4:V4", "T4:U4", "C8:C9"],
    ids=["empty-under-the-data", "far-below", "one-row-widened", "one-row-empty", "empty-rows"],
)
def test_merges_that_lose_nothing_leave_a_good_ledger_accepted(tmp_path: Path, merge: str) -> None:
    ret = _ledger_edited(tmp_path, lambda ws: ws.merge_cells(merge))
    assert ret.status == "accepted", [(i.rule, i.cell) for i in ret.issues]


def _ledger_without(tmp_path: Path, labels: list[str], insert: str | None = None) -> Return:
    """The good ledger with the columns headed `labels` deleted (and a column headed `insert`
    with data put first), read and validated."""
    path = make_return(tmp_path / "inbox", "ledger", ledger_rows=good_ledger_rows())
    wb = openpyxl.load_workbook(path)
    ws = wb["隐患台账"]
    for label in labels:
        col = next(c.column for c in ws[3] if c.value == label)
        ws.delete_cols(col)
    if insert:
        ws.insert_cols(1)
        ws.cell(3, 1, insert)
        for r in range(4, 7):
            ws.cell(r, 1, r - 3)
    wb.save(path)
    return read_one(path)


@pytest.mark.parametrize(
    "label", ["整改资金（万元）", "整改期限", "整改完成日期", "验收人", "督办级别"]
)
def test_a_deleted_column_a_rule_needs_rejects_the_ledger(tmp_path: Path, label: str) -> None:
    # the 五落实 and the status rules cannot be checked without it: not a mere warning
    ret = _ledger_without(tmp_path, [label])
    assert ret.status == "rejected"
    assert [i.rule for i in ret.errors] == ["ledger-column-missing"]
    assert f"“{label}”" in ret.errors[0].message


def test_a_deleted_column_no_rule_reads_and_an_inserted_number_column_are_warnings(
    tmp_path: Path,
) -> None:
    ret = _ledger_without(tmp_path, ["统一社会信用代码"], insert="序号")
    assert ret.status == "accepted"
    assert sorted((i.rule, i.cell) for i in ret.issues) == [
        ("ledger-column-extra", "A3"),
        ("ledger-column-missing", "D3"),
    ]
    assert ret.ledger is not None
    assert ret.ledger["hazard_id"].tolist()[:2] == ["GL-2023-001", "GL-2023-002"]


def test_a_header_typed_twice_over_data_is_a_warning(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "ledger", ledger_rows=good_ledger_rows())
    wb = openpyxl.load_workbook(path)
    ws = wb["隐患台账"]
    extra = ws.max_column + 1
    ws.cell(3, extra, "备注")
    ws.cell(4, extra, "另一栏备注")
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "accepted"
    (issue,) = ret.issues
    assert (issue.rule, issue.cell, issue.severity) == (
        "ledger-column-duplicate",
        a1(2, extra - 1),
        "warning",
    )
    assert "表头“备注”出现了两次（U3 和这里）" in issue.message


def test_the_columns_rules_need_are_those_the_validation_rules_read() -> None:
    from pipeline.read import LEDGER_RULE_COLUMNS
    from pipeline.validate import ledger_operands

    form = load_forms()["ledger"]
    read_by_rules = set().union(*ledger_operands(form).values())  # type: ignore[arg-type]
    needed = {c.key for c in form.columns if c.required or c.open_required}  # type: ignore[union-attr]
    assert read_by_rules - needed == set(LEDGER_RULE_COLUMNS)


def test_merged_ledger_cells_are_one_error_not_a_pile_of_empty_cells(tmp_path: Path) -> None:
    # 企业名称 merged over a company's three hazards: every row shows it, only C4 holds it
    rows = [dict(r, enterprise="福州某建设工程有限公司") for r in good_ledger_rows()]
    path = make_return(tmp_path / "inbox", "ledger", ledger_rows=rows)
    wb = openpyxl.load_workbook(path)
    ws = wb["隐患台账"]
    ws.merge_cells("C4:C6")
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "rejected"
    assert [(i.rule, i.cell) for i in ret.errors] == [("ledger-merged-cells", "C4:C6")]
    message = ret.errors[0].message
    assert "C4:C6（“企业名称”，第 4 至 6 行）是合并单元格" in message and "取消合并" in message
    assert ret.errors[0].value == "福州某建设工程有限公司"


def _ledger_by_row(form: Any, grid: Any, header_row: int, columns: dict[str, int]) -> tuple:
    """The ledger rows as first read, one row and one cell at a time: (records, issues)."""
    from pipeline import read
    from pipeline.model import Return
    from pipeline.normalize import NormalizeError, is_blank

    ret = Return(path=Path("x.xlsx"), rel="x.xlsx")
    records = []
    for r in range(header_row + 1, grid.height):
        raw = {key: grid.get(r, c) for key, c in columns.items()}
        if all(is_blank(v) for v in raw.values()):
            continue
        record: dict[str, Any] = {c.key: None for c in form.columns}
        for column in form.columns:
            if column.key not in columns:
                continue
            value = raw[column.key]
            try:
                record[column.key] = read._ledger_value(column.type, column.choices, value)
            except NormalizeError as exc:
                cell = read.a1(r, columns[column.key])
                label = f"第 {r + 1} 行{column.label}"
                ret.add(read._value_issue(exc, grid.name, cell, value, label, row=r + 1))
        record["_sheet"] = grid.name
        record["_row"] = r + 1
        records.append(record)
    return records, ret.issues


def _exactly(value: Any) -> Any:
    """A value compared with its type, a Decimal by its text (Decimal("-0") is not "0")."""
    return (type(value), str(value) if isinstance(value, Decimal) else value)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("missing", [(), ("credit_code", "remarks")])
def test_ledger_read_by_column_agrees_with_reading_row_by_row(
    seed: int, ragged: bool, missing: tuple[str, ...]
) -> None:
    # awkward values in every column (errors in several rows and columns, blank rows, values
    # equal across types, invisible characters), read column by column and row by row
    import random

    from pipeline import read
    from pipeline.model import Return

    form = load_forms()["ledger"]
    rng = random.Random(seed)
    pool: list[Any] = [
        "", "", "", None, " ", "\u200b", "GL-1", " GL-2 ", "整改中", " 整改 中 ", "已整改待验收",
        "有", "无", "没有", "是", "否", "市级", "省", "建筑施工", "燃气", "2023-06-05",
        "2023年6月5日", "6月5日", "下周", "12.5", "约5", "3.5万元", "１２", "91350100MA2YQ9R94L",
        " ９１３５０１００ｍａ２ ", "=1+1", 0, 1, 45082, 20230605, 0.0, -0.0, 1.0, 12.5, 0.1 + 0.2,
        float("nan"), True, False, dt.date(2023, 6, 5), dt.datetime(2023, 6, 5),
        dt.datetime(2023, 6, 5, 9, 30), dt.time(9, 30),
    ]  # fmt: skip
    header = [c.label for c in form.columns if c.key not in missing]
    width = len(header) + 2
    lines: list[list[Any]] = [["台账"] + [""] * (width - 1), [""] * width, [*header, "", ""]]
    for _ in range(120):
        kind = rng.random()
        if kind < 0.1:
            line = [""] * width  # a blank row
        elif kind < 0.15:
            line = [rng.choice(["", None, " ", "\u200b"]) for _ in range(width)]
        elif kind < 0.4:
            line = [""] * width  # one value alone on its row (an unreadable one, often)
            line[rng.randrange(width)] = rng.choice(pool)
        else:
            line = [rng.choice(pool) for _ in range(width)]
        if ragged and rng.random() < 0.3:
            line = line[: rng.randrange(0, width)]
        lines.append(line)
    grid = read.Grid("隐患台账", lines, True)
    ret = Return(path=Path("x.xlsx"), rel="x.xlsx")
    read._read_ledger(ret, form, grid)
    frame = ret.ledger
    assert frame is not None
    columns = frame.attrs["columns"]
    records, issues = _ledger_by_row(form, grid, 2, columns)
    assert [
        (i.rule, i.cell, i.value, i.message)
        for i in ret.issues
        if not i.rule.startswith("ledger-column-")
    ] == [(i.rule, i.cell, i.value, i.message) for i in issues]
    keys = [*(c.key for c in form.columns), "_sheet", "_row"]
    assert list(frame.columns) == keys
    assert str(frame["_row"].dtype) == "int64"
    assert all(str(frame[key].dtype) == "object" for key in keys[:-1])
    assert len(frame) == len(records) > 50
    for key in keys:
        got = [_exactly(v) for v in frame[key].tolist()]
        expected = [_exactly(rec[key]) for rec in records]
        if key == "_row":
            assert frame[key].tolist() == [rec["_row"] for rec in records]
        else:
            assert got == expected, key


# --- 台账 header cells that name no column ------------------------------------------------
# A renamed header, an inserted column, an empty header over data: what a county typed under
# such a header is never lost without a word (DESIGN §9), and a missing column is one issue,
# not one per row.

LEDGER_LAYOUT = LedgerLayout(form=load_forms()["ledger"])
LEDGER_SHEET = "隐患台账"


def _ledger_header(key: str) -> str:
    return a1(LEDGER_LAYOUT.header_row, LEDGER_LAYOUT.col(key))


def _ledger_issues(ret: Return) -> list[tuple[str, str, str, str]]:
    return [(i.rule, i.severity, i.cell, i.value) for i in ret.issues]


def _ledger_renamed(tmp_path: Path, key: str, text: str) -> Path:
    return edit(
        make_return(tmp_path / "inbox", "ledger"), LEDGER_SHEET, {_ledger_header(key): text}
    )


def _ledger_insert_column(path: Path, col: int, header: Any, values: list[Any]) -> Path:
    """Insert a column before 1-based `col` (everything right of it moves), with `header` in
    the header row and `values` below it."""
    wb = openpyxl.load_workbook(path)
    ws = wb[LEDGER_SHEET]
    ws.insert_cols(col)
    ws.cell(LEDGER_LAYOUT.header_row + 1, col, header)
    for i, value in enumerate(values):
        ws.cell(LEDGER_LAYOUT.first_data_row + 1 + i, col, value)
    wb.save(path)
    return path


def test_the_template_as_sent_out_has_no_column_issue(tmp_path: Path) -> None:
    ret = read_one(make_return(tmp_path / "inbox", "ledger"))
    assert ret.status == "accepted"
    assert ret.issues == []


def test_renamed_optional_header_over_data_rejects_the_file_at_that_header(
    tmp_path: Path,
) -> None:
    # the second hazard has a credit code: under "信用代码" it would be lost and never checked
    cell = _ledger_header("credit_code")
    ret = read_one(_ledger_renamed(tmp_path, "credit_code", "信用代码"))
    assert ret.status == "rejected"
    assert _ledger_issues(ret) == [("ledger-column-unknown", "error", cell, "信用代码")]
    issue = ret.issues[0]
    assert issue.sheet == LEDGER_SHEET
    assert issue.message == (
        "表头“信用代码”不是台账的列名；台账缺少“统一社会信用代码”列。"
        "请把表头改回模板原样后重新报送，否则该列内容无法汇总。"
    )


def test_renamed_judgement_basis_header_is_one_error(tmp_path: Path) -> None:
    ret = read_one(_ledger_renamed(tmp_path, "basis", "判定依据（条款）"))
    assert _ledger_issues(ret) == [
        ("ledger-column-unknown", "error", _ledger_header("basis"), "判定依据（条款）")
    ]
    assert "“判定依据”" in ret.issues[0].message


def test_renamed_required_header_is_one_column_error_and_no_row_errors(tmp_path: Path) -> None:
    cell = _ledger_header("status")
    ret = read_one(_ledger_renamed(tmp_path, "status", "状态"))
    assert ret.status == "rejected"
    assert _ledger_issues(ret) == [("ledger-column-missing", "error", cell, "状态")]


def test_renamed_open_hazard_column_does_not_ask_to_fill_cells_that_are_filled(
    tmp_path: Path,
) -> None:
    # the open hazard's 应急预案 is "有": before, N4 was reported as not filled (五落实)
    cell = _ledger_header("emergency_plan")
    ret = read_one(_ledger_renamed(tmp_path, "emergency_plan", "应急预案情况"))
    assert ret.status == "rejected"
    assert _ledger_issues(ret) == [("ledger-column-unknown", "error", cell, "应急预案情况")]
    assert not any("未填写" in i.message for i in ret.issues)


def test_renamed_date_column_gives_no_status_or_date_order_issues(tmp_path: Path) -> None:
    # 已整改 and 已验收销号 hazards need 整改完成日期, and the dates are compared with it: none
    # of these rules may speak of a column that was not read
    cell = _ledger_header("rectified_date")
    ret = read_one(_ledger_renamed(tmp_path, "rectified_date", "完成日期"))
    assert _ledger_issues(ret) == [("ledger-column-unknown", "error", cell, "完成日期")]


def test_inserted_column_with_data_is_a_warning_and_every_column_still_read(
    tmp_path: Path,
) -> None:
    plain = read_one(make_return(tmp_path / "plain", "ledger"))
    path = make_return(tmp_path / "inbox", "ledger")
    _ledger_insert_column(
        path, LEDGER_LAYOUT.col("basis") + 1, "联系电话", ["13800000000", None, "0591-8765432"]
    )
    ret = read_one(path)
    assert ret.status == "accepted"
    assert _ledger_issues(ret) == [
        ("ledger-column-extra", "warning", _ledger_header("basis"), "联系电话")
    ]
    assert "写入“备注”列" in ret.issues[0].message
    assert ret.ledger is not None and plain.ledger is not None
    keys = [c.key for c in load_forms()["ledger"].columns]
    assert ret.ledger[keys].to_dict("records") == plain.ledger[keys].to_dict("records")
    assert ret.ledger.attrs["columns"]["basis"] == LEDGER_LAYOUT.col("basis") + 1


def test_data_under_an_empty_header_between_the_columns_is_a_warning(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "ledger")
    _ledger_insert_column(path, LEDGER_LAYOUT.col("found_date") + 1, None, [None, "电话已核实"])
    ret = read_one(path)
    assert ret.status == "accepted"
    assert _ledger_issues(ret) == [
        ("ledger-column-extra", "warning", _ledger_header("found_date"), "")
    ]
    assert ret.issues[0].message.startswith("表头为空的这一列不是台账的列名")


def test_data_right_of_the_ledger_under_no_header_is_a_warning(tmp_path: Path) -> None:
    right = LEDGER_LAYOUT.last_col + 2
    path = make_return(tmp_path / "inbox", "ledger")
    edit(path, LEDGER_SHEET, {a1(LEDGER_LAYOUT.first_data_row + 1, right): "另见附件"})
    ret = read_one(path)
    assert _ledger_issues(ret) == [
        ("ledger-column-extra", "warning", a1(LEDGER_LAYOUT.header_row, right), "")
    ]


def test_unknown_header_over_an_empty_column_is_no_issue(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "ledger")
    edit(path, LEDGER_SHEET, {a1(LEDGER_LAYOUT.header_row, LEDGER_LAYOUT.last_col + 1): "联系电话"})
    ret = read_one(path)
    assert ret.status == "accepted"
    assert ret.issues == []


def test_extra_column_while_a_column_is_missing_is_an_error_naming_it(tmp_path: Path) -> None:
    # 备注 (empty) deleted, 联系电话 with data added after the table: perhaps 备注 renamed
    path = make_return(tmp_path / "inbox", "ledger")
    extra = a1(LEDGER_LAYOUT.header_row, LEDGER_LAYOUT.last_col + 1)
    edit(
        path,
        LEDGER_SHEET,
        {
            _ledger_header("remarks"): None,
            extra: "联系电话",
            a1(LEDGER_LAYOUT.first_data_row, LEDGER_LAYOUT.last_col + 1): "138",
        },
    )
    ret = read_one(path)
    assert ret.status == "rejected"
    assert _ledger_issues(ret) == [("ledger-column-unknown", "error", extra, "联系电话")]
    assert "台账缺少“备注”列" in ret.issues[0].message


def test_required_column_missing_without_a_renamed_header_is_still_reported(
    tmp_path: Path,
) -> None:
    # 整改状态 header cleared: no other header to take for it; still no error per row
    rows = good_ledger_rows()
    path = make_return(tmp_path / "inbox", "ledger", ledger_rows=rows)
    cell = _ledger_header("status")
    wb = openpyxl.load_workbook(path)
    ws = wb[LEDGER_SHEET]
    for r in range(LEDGER_LAYOUT.header_row, LEDGER_LAYOUT.first_data_row + len(rows)):
        ws[a1(r, LEDGER_LAYOUT.col("status"))] = None
    wb.save(path)
    ret = read_one(path)
    assert _ledger_issues(ret) == [("ledger-column-missing", "error", cell, "")]


def test_validate_json_and_the_annotated_copy_name_the_header_cell(tmp_path: Path) -> None:
    cell = _ledger_header("credit_code")
    _ledger_renamed(tmp_path, "credit_code", "信用代码")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["validate", str(tmp_path / "inbox"), "--out", str(out), "--json"]
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    (entry,) = [f for f in doc["files"] if f["file"] == "ledger.xlsx"]
    assert entry["status"] == "rejected"
    (issue,) = entry["issues"]
    assert (issue["rule"], issue["severity"], issue["sheet"], issue["cell"], issue["value"]) == (
        "ledger-column-unknown",
        "error",
        LEDGER_SHEET,
        cell,
        "信用代码",
    )
    copy = openpyxl.load_workbook(out / "退回修改" / "ledger.xlsx")
    ws = copy[LEDGER_SHEET]
    assert ws[cell].fill.fill_type == "solid" and ws[cell].fill.fgColor.rgb == "FFFF0000"
    assert ws[cell].comment is not None and "统一社会信用代码" in ws[cell].comment.text


def test_reading_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.read as read

    def boom(*_args: object) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(read, "_read_book", boom)
    path = make_return(tmp_path / "inbox", "annex4_progress")
    ret = read_return(path, path.parent)
    assert errors(ret) == [("file-read-failed", "")]


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex4_progress")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: permissions are not enforced")
        ret = read_one(path)
        assert errors(ret) == [("file-unreadable-os", "")]
    finally:
        path.chmod(0o644)


def test_oversized_file_is_refused_without_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safety, "MAX_FILE_BYTES", 1000)
    path = make_return(tmp_path / "inbox", "annex4_progress")
    ret = read_one(path)
    assert errors(ret) == [("file-too-large", "")]
    assert ret.sha256 == ""


def test_template_helper_writes_the_real_template(tmp_path: Path) -> None:
    path = template(tmp_path / "t.xlsx", "annex4_progress")
    wb = openpyxl.load_workbook(path)
    assert META_SHEET in wb.sheetnames


def test_a_sheet_of_many_rows_is_refused_in_bounded_time(tmp_path: Path) -> None:
    rows = safety.MAX_SHEET_ROWS + 50_000
    sheet = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        + b"".join(
            b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (i, i) for i in range(1, rows + 1)
        )
        + b"</sheetData></worksheet>"
    )
    data = _rewrite_zip(template_bytes("annex4_progress"), {"xl/worksheets/sheet1.xml": sheet})
    ret = read_one(_write(tmp_path, "rows.xlsx", data))
    assert errors(ret) == [("file-sheet-too-large", "")]


# --- formulas, odd names, renamed sheets -------------------------------------------------------


def test_formula_without_a_calculated_value(tmp_path: Path) -> None:
    # openpyxl (like many tools) writes formulas without results; calamine would read blanks
    lay = progress_layout(progress_form())
    path = make_return(
        tmp_path / "inbox", "annex4_progress", progress=good_progress() | {"A1": "=10+2"}
    )
    ret = read_one(path)
    assert errors(ret) == [("value-formula-no-result", lay.value_cells["A1"].a1)]


def test_formula_with_an_error_value(tmp_path: Path) -> None:
    lay = progress_layout(progress_form())
    cell = lay.value_cells["B1"].a1
    path = make_return(tmp_path / "inbox", "annex4_progress")
    src = zipfile.ZipFile(path)
    sheet = src.read("xl/worksheets/sheet1.xml")
    start = sheet.index(f'<c r="{cell}"'.encode())
    end = sheet.index(b"</c>", start) + 4
    errored = f'<c r="{cell}" t="e"><f>40/0</f><v>#DIV/0!</v></c>'.encode()
    data = _rewrite_zip(
        path.read_bytes(), {"xl/worksheets/sheet1.xml": sheet[:start] + errored + sheet[end:]}
    )
    ret = read_one(_write(tmp_path, "err.xlsx", data))
    assert errors(ret) == [("value-formula-error", cell)]
    assert ret.errors[0].value == "#DIV/0!"


@pytest.mark.parametrize(
    "name",
    [
        "鼓楼区 附件4（6月）最终版 (2).xlsx",
        "a#b%c&d;e'f.xlsx",
        "空 格 .xlsx",
        "UPPER.XLSX",
        "换\n行.xlsx",
    ],
)
def test_odd_file_names(tmp_path: Path, name: str) -> None:
    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", name)
    (ret,) = read_inbox(inbox)
    assert (ret.rel, ret.status, ret.fmt) == (name, "accepted", "xlsx")


def test_renamed_sheet_is_found_by_its_title(tmp_path: Path) -> None:
    path = drop_meta(make_return(tmp_path / "inbox", "annex4_progress"))
    wb = openpyxl.load_workbook(path)
    wb["调度表"].title = "6月数据"
    wb.save(path)
    ret = read_one(path)
    assert (ret.status, ret.form_id, ret.identified_by) == ("accepted", "annex4_progress", "labels")
    assert ret.progress_cells["A1"][0] == "6月数据"


def test_workbook_holding_only_the_metadata_sheet(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "ledger")
    wb = openpyxl.load_workbook(path)
    for name in wb.sheetnames:
        if name != META_SHEET:
            del wb[name]
    wb[META_SHEET].sheet_state = "visible"
    wb.save(path)
    ret = read_one(path)
    assert errors(ret) == [("sheet-missing", "")]


def test_a_sheet_of_another_form_is_not_read_and_says_so(tmp_path: Path) -> None:
    path = make_return(tmp_path / "inbox", "annex1_gas")
    other = openpyxl.load_workbook(make_return(tmp_path / "other", "annex3_confined_space"))
    wb = openpyxl.load_workbook(path)
    sheet = wb.create_sheet("附件3")
    for row in other["附件3"].iter_rows(values_only=True):
        sheet.append(row)
    wb.save(path)
    ret = read_one(path)
    assert ret.status == "accepted"
    assert [(i.rule, i.severity, i.sheet) for i in ret.issues] == [
        ("sheet-other-form", "warning", "附件3")
    ]
    assert [i.sheet for i in ret.inspections] == ["附件1"]


# --- the parsing sandbox -----------------------------------------------------------------------


def test_sandbox_parses_like_the_reader_in_process() -> None:
    data = template_bytes("annex4_progress")
    sandbox = safety.Sandbox()
    try:
        assert sandbox.parse(data) == safety.parse_workbook(data)
        assert sandbox.parse(b"not a workbook").error  # the child survives bad input
        assert sandbox.parse(data).sheets[0].name == "调度表"
    finally:
        sandbox.close()


def test_the_instructions_sheet_is_listed_but_not_parsed() -> None:
    from pipeline.layout import INSTRUCTIONS_SHEET

    data = template_bytes("annex2_construction")
    full = safety.parse_workbook(data)
    skip = (INSTRUCTIONS_SHEET,)
    part = safety.parse_workbook(data, skip)
    assert [s.name for s in part.sheets] == [s.name for s in full.sheets]
    assert INSTRUCTIONS_SHEET in [s.name for s in full.sheets]
    for mine, every in zip(part.sheets, full.sheets, strict=True):
        if mine.name == INSTRUCTIONS_SHEET:
            assert mine.skipped and mine.rows is None and every.rows
        else:
            assert mine == every
    sandbox = safety.Sandbox()
    try:
        assert sandbox.parse(data, skip) == part
        assert sandbox.parse(data) == full
    finally:
        sandbox.close()


def test_a_reader_that_dies_costs_one_file_not_the_run() -> None:
    # what calamine does on some damaged .xls: asks for terabytes and aborts the process
    dying = safety.Sandbox(command=["-c", "import os, sys; sys.stdin.buffer.read(8); os.abort()"])
    try:
        result = dying.parse(template_bytes("annex4_progress"))
        assert result.error.startswith("读取程序因文件内部数据损坏而异常退出")
        assert result.sheets == []
    finally:
        dying.close()


def test_a_reader_that_hangs_is_stopped() -> None:
    hanging = safety.Sandbox(timeout=0.5, command=["-c", "import time; time.sleep(60)"])
    try:
        assert "秒仍未完成" in hanging.parse(b"x").error
    finally:
        hanging.close()


def test_a_dead_sandbox_is_reported_on_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        safety,
        "parse_isolated",
        lambda _data, skip=(): safety.Parsed(error="读取程序因文件内部数据损坏而异常退出"),
    )
    ret = read_one(make_return(tmp_path / "inbox", "annex4_progress"))
    assert errors(ret) == [("file-unreadable", "")]


def _abort_on_b(args: tuple[Any, Path]) -> object:
    if args[0].path.name == "b.xlsx":
        os._exit(70)  # as abruptly as an abort, without a core dump
    from pipeline.read import _read_one as real

    return real(*args)


def test_a_worker_killed_by_a_file_does_not_lose_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.read as read

    inbox = tmp_path / "inbox"
    for name in ("a", "b", "c", "d"):
        make_return(inbox, "annex4_progress", f"{name}.xlsx")
    monkeypatch.setattr(read, "_read_entry", _abort_on_b)  # forked workers inherit the patch
    returns = read_inbox(inbox, jobs=2)
    assert [(r.rel, r.status) for r in returns] == [(f"{n}.xlsx", "accepted") for n in "abcd"]


def test_damaged_workbooks_never_raise(tmp_path: Path) -> None:
    from pipeline.validate import validate_returns

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = make_return(tmp_path / "good", "ledger").read_bytes()
    for i, data in enumerate(mutations(good, 80, seed=3)):
        (inbox / f"{i:03d}.xlsx").write_bytes(data)
    returns = read_inbox(inbox)
    validate_returns(returns)
    assert len(returns) == 80
    assert all(r.status in ("accepted", "rejected") for r in returns)
    assert not [r.rel for r in returns if "file-read-failed" in rules(r)]
    assert all(i.message for r in returns for i in r.issues)


def test_far_cell_with_unusual_attribute_order_is_still_seen(tmp_path: Path) -> None:
    data = template_bytes("annex4_progress")
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    far = b'<row r="90000"><c\ns="0"\nr="ZZ90000" t="inlineStr"><is><t>x</t></is></c></row>'
    sheet = sheet.replace(b"</sheetData>", far + b"</sheetData>")
    ret = read_one(
        _write(tmp_path, "odd.xlsx", _rewrite_zip(data, {"xl/worksheets/sheet1.xml": sheet}))
    )
    assert errors(ret) == [("file-sheet-too-large", "")]


def test_without_a_child_process_the_workbook_is_parsed_here() -> None:
    sandbox = safety.Sandbox(command=["-c", "pass"])
    sandbox.command = ["/nonexistent/python"]
    data = template_bytes("ledger")
    assert sandbox.parse(data) == safety.parse_workbook(data)


def test_wps_and_binary_extensions_are_judged_by_content(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    path = make_return(inbox, "annex4_progress", "附件4.et")  # an xlsx saved under a WPS name
    (inbox / "b.xlsb").write_bytes(
        zip_bytes([("[Content_Types].xml", b"<Types/>"), ("xl/workbook.bin", b"\0")])
    )
    got = {r.rel: (r.status, rules(r)) for r in read_inbox(inbox)}
    assert got[path.name] == ("accepted", ["file-extension-mismatch"])
    assert got["b.xlsb"] == ("rejected", ["file-format-unsupported"])


def test_plain_ticks_read_as_every_tick_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # _read_ticks takes a row of empty or plainly ticked cells at a glance; any other row goes
    # through to_tick cell by cell. Both must give the same answers and the same issues.
    import itertools

    from pipeline import read
    from pipeline.model import Return

    marks: list[Any] = ["", None, "√", "✓", "✔", "v", "V", "1", "是", "☑", "✅"]
    odd: list[Any] = [" √", "✔️", "x", "×", "√√", "?", "0", "/", 1, 1.0, 0, True, False]
    columns = [("是", 1), ("否", 2), ("不涉及", 3)]

    def read_row(values: tuple[Any, ...], plain: frozenset[str]) -> tuple[Any, ...]:
        monkeypatch.setattr(read, "TICK_MARKS", plain)
        grid = read.Grid("附件2", [["1", *values]], True)
        ret = Return(path=Path("x.xlsx"), rel="x.xlsx")
        ticks, error = read._read_ticks(ret, grid, 0, columns, 1, read.TICK_LABEL)
        return ticks, error, [(i.rule, i.cell, i.severity, i.message) for i in ret.issues]

    import pipeline.normalize as normalize

    rows = [*itertools.product(marks[:5], repeat=3), *itertools.product(marks + odd, repeat=2)]
    for values in rows:
        values = tuple(values) + ("",) * (3 - len(values))
        fast = read_row(values, normalize.TICK_MARKS)
        slow = read_row(values, frozenset())  # nothing is plain: every cell through to_tick
        assert fast == slow, values
    monkeypatch.setattr(read, "TICK_MARKS", normalize.TICK_MARKS)
    assert read_row(("√", "", None), normalize.TICK_MARKS)[:2] == (["是"], False)


def test_ctrl_c_stops_the_reading_pool_and_leaves_no_worker(tmp_path: Path) -> None:
    # Ctrl-C reaches the whole process group. Workers ignore it (one dying of it breaks the
    # pool, and Python 3.11's pool may then wait for ever); the parent cancels the queued files
    # and ends once the workers finish the chunk they hold
    import signal
    import subprocess
    import sys
    import time

    inbox = tmp_path / "inbox"
    first = make_return(inbox, "annex4_progress", "00.xlsx")
    for i in range(1, 24):
        shutil.copy(first, inbox / f"{i:02d}.xlsx")
    log = tmp_path / "read.log"
    code = f"""
import sys, time
from pathlib import Path
import signal
import pipeline.read as read
real = read.read_return
def slow(path, inbox):
    with open({str(log)!r}, "a") as fh:
        fh.write(str(signal.getsignal(signal.SIGINT) is signal.SIG_IGN) + "\\n")
    time.sleep(0.25)
    return real(path, inbox)
read.read_return = slow
print("start", flush=True)
try:
    read.read_inbox(Path({str(inbox)!r}), jobs=2)
except KeyboardInterrupt:
    sys.exit(130)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.readline() == "start\n"
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal
    try:
        assert proc.wait(timeout=30) == 130
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    seen = log.read_text().split()
    assert seen and set(seen) == {"True"}  # every worker ignored Ctrl-C
    assert len(seen) < 24  # the files still queued were never read
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert left.stdout.split() == []  # no worker left behind


def test_reading_in_spawned_workers_as_on_windows_gives_the_same_returns(tmp_path: Path) -> None:
    # Windows has no fork: its worker processes are spawned and import the pipeline afresh
    import subprocess
    import sys

    inbox = tmp_path / "inbox"
    make_return(inbox, "annex4_progress", "鼓楼区/附件4.xlsx")
    make_return(inbox, "ledger", "鼓楼区/台账.xlsx")
    make_return(inbox, "annex1_gas", "附件1.xlsx")
    script = (
        "import json, multiprocessing, sys\n"
        "if __name__ == '__main__':\n"
        "    multiprocessing.set_start_method('spawn', force=True)\n"
        "    from pipeline.read import read_inbox\n"
        "    got = [(r.rel, r.status, r.sha256) for r in read_inbox(sys.argv[1], jobs=2)]\n"
        "    print(json.dumps(got))\n"
    )
    (tmp_path / "spawned.py").write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "spawned.py"), str(inbox)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    spawned = [tuple(x) for x in json.loads(done.stdout)]
    forked = [(r.rel, r.status, r.sha256) for r in read_inbox(inbox, jobs=2)]
    assert spawned == forked and [s for _, s, _ in forked] == ["accepted"] * 3
