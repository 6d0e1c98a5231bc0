"""Returns that arrive inside a .zip (pipeline.archive): read in place, never extracted."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_fill import PERIOD, UNIT, make_return, template_bytes

from pipeline import archive
from pipeline.annotate import annotate
from pipeline.cli import main
from pipeline.consolidate import consolidate
from pipeline.read import read_inbox
from pipeline.validate import validate_returns

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_inputs"


def _zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def _gbk_zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    """A .zip as WinRAR or Windows' compressed folder writes it on a Chinese Windows: names in
    GBK, the UTF-8 flag not set. Written with same-length ASCII stand-ins, then swapped."""
    stand_ins = []
    for i, (name, _data) in enumerate(entries):
        raw = name.encode("gbk")
        stand_in = f"{i:03d}".encode() + b"_" * (len(raw) - 3)
        assert len(stand_in) == len(raw)
        stand_ins.append((stand_in, raw))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for (stand_in, _raw), (_name, data) in zip(stand_ins, entries, strict=True):
            zf.writestr(stand_in.decode(), data)
    data = buffer.getvalue()
    for stand_in, raw in stand_ins:
        assert data.count(stand_in) == 2  # the local header and the central directory
        data = data.replace(stand_in, raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _returns(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, bytes]]:
    """Filled returns for UNIT/PERIOD, as (name, bytes)."""
    out = []
    for name, form_id in files.items():
        path = make_return(tmp_path / "made", form_id, name)
        out.append((name, path.read_bytes()))
    return out


def test_the_returns_in_a_zip_count_as_if_they_were_in_a_folder(tmp_path: Path) -> None:
    files = {
        "附件4_进展情况调度表.xlsx": "annex4_progress",
        "台账_重大事故隐患台账.xlsx": "ledger",
        "附件1_燃气检查清单.xlsx": "annex1_gas",
    }
    made = _returns(tmp_path, files)
    folder = tmp_path / "folder"
    for name, data in made:
        (folder / UNIT).mkdir(parents=True, exist_ok=True)
        (folder / UNIT / name).write_bytes(data)
    zipped = tmp_path / "zipped"
    _zip(zipped / f"{UNIT}报表.zip", made)

    plain = read_inbox(folder)
    packed = read_inbox(zipped)
    validate_returns(plain)
    validate_returns(packed)
    assert [r.rel for r in packed] == [f"{UNIT}报表.zip"] + [
        f"{UNIT}报表.zip/{n}" for n, _ in sorted(made)
    ]
    box = packed[0]
    assert box.status == "ignored" and [i.rule for i in box.issues] == ["file-archive-read"]
    assert "其中的 3 个表格文件已逐个读取，都列在" in box.issues[0].message
    inner = packed[1:]
    assert [(r.status, r.form_id, r.unit_name, r.period) for r in inner] == [
        (r.status, r.form_id, r.unit_name, r.period) for r in plain
    ]
    assert [r.sha256 for r in inner] == [r.sha256 for r in plain]
    assert all(r.member is not None and r.path == zipped / f"{UNIT}报表.zip" for r in inner)
    a = consolidate(plain, PERIOD)
    b = consolidate(packed, PERIOD)
    assert a.city == b.city and a.city["A1"] > 0
    assert len(b.ledger) == len(a.ledger) > 0
    assert len(b.checklist) == len(a.checklist) > 0


def test_names_written_in_gbk_are_read_as_the_county_wrote_them(tmp_path: Path) -> None:
    made = _returns(tmp_path, {"附件4_进展情况调度表_鼓楼区.xlsx": "annex4_progress"})
    made.append(("说明（请查收）.docx", b"not a workbook"))
    _gbk_zip(tmp_path / "inbox" / "鼓楼区7月报表.zip", made)
    with zipfile.ZipFile(tmp_path / "inbox" / "鼓楼区7月报表.zip") as zf:
        assert not any(i.flag_bits & 0x800 for i in zf.infolist())  # really unflagged
    returns = read_inbox(tmp_path / "inbox")
    assert [(r.rel, r.status) for r in returns] == [
        ("鼓楼区7月报表.zip", "ignored"),
        ("鼓楼区7月报表.zip/说明（请查收）.docx", "ignored"),
        ("鼓楼区7月报表.zip/附件4_进展情况调度表_鼓楼区.xlsx", "accepted"),
    ]


def test_member_names_utf8_unflagged_unicode_path_field_and_unsafe_parts() -> None:
    utf8 = zipfile.ZipInfo("附件4.xlsx".encode().decode("cp437"))
    assert archive.member_name(utf8) == "附件4.xlsx"
    # Info-ZIP's Unicode Path field wins over the legacy name it matches ...
    legacy = "????.xlsx"
    field = b"\x01" + struct.pack("<I", zlib.crc32(legacy.encode("cp437"))) + "台账.xlsx".encode()
    info = zipfile.ZipInfo(legacy)
    info.extra = struct.pack("<HH", 0x7075, len(field)) + field
    assert archive.member_name(info) == "台账.xlsx"
    # ... but not over a name changed since (its CRC no longer matches)
    stale = zipfile.ZipInfo("renamed.xlsx")
    stale.extra = info.extra
    assert archive.member_name(stale) == "renamed.xlsx"
    # names never climb out, nor keep a drive or a leading slash
    assert archive.member_name(zipfile.ZipInfo("../../etc/a.xlsx")) == "etc/a.xlsx"
    assert archive.member_name(zipfile.ZipInfo("C:\\temp\\.\\b.xlsx")) == "temp/b.xlsx"
    assert archive.member_name(zipfile.ZipInfo("/abs/c.xlsx")) == "abs/c.xlsx"


def test_a_zip_is_received_when_the_receipt_log_says_it_was(tmp_path: Path) -> None:
    made = _returns(tmp_path, {"附件4.xlsx": "annex4_progress"})
    inbox = tmp_path / "inbox"
    _zip(inbox / "2023年6月" / "鼓楼区.zip", made)
    (inbox / "收文登记.csv").write_text("文件名,收到时间\n鼓楼区.zip,2023-06-30 17:20\n", "utf-8")
    returns = read_inbox(inbox)
    inner = next(r for r in returns if r.rel.endswith("附件4.xlsx"))
    assert inner.rel == "2023年6月/鼓楼区.zip/附件4.xlsx"
    assert (str(inner.received), inner.received_source) == ("2023-06-30 17:20:00", "log")
    log = next(r for r in returns if r.rel == "收文登记.csv")
    assert [i.rule for i in log.issues] == ["file-ignored-receipt-log"]  # the row was used
    # without a log entry a file in a zip is received when the zip was saved (its mtime)
    (inbox / "收文登记.csv").unlink()
    os.utime(inbox / "2023年6月" / "鼓楼区.zip", (1688110000, 1688110000))
    inner = next(r for r in read_inbox(inbox) if r.rel.endswith("附件4.xlsx"))
    assert inner.received_source == "mtime" and str(inner.received) == "2023-06-30 15:26:40"


@pytest.mark.parametrize(
    ("name", "kind"), [("鼓楼区.rar", "RAR"), ("鼓楼区.7z", "7z"), ("鼓楼区.tar.gz", "gzip")]
)
def test_an_archive_we_cannot_read_is_an_error_that_says_extract_it(
    tmp_path: Path, name: str, kind: str
) -> None:
    (tmp_path / name).write_bytes(b"Rar!\x1a\x07\x00" + b"\0" * 64)
    (ret,) = read_inbox(tmp_path)
    assert ret.status == "rejected"
    assert [i.rule for i in ret.issues] == ["archive-unsupported"]
    assert f"这是 {kind} 压缩包" in ret.issues[0].message and "解压" in ret.issues[0].message
    # nothing to mark up: no annotated copy, and the reason is not "not a spreadsheet inside"
    copy = annotate(ret, tmp_path / "out")
    assert (copy.path, copy.reason) == (None, "压缩包未读取，没有可标注的表格")


def test_a_damaged_zip_is_an_error_and_the_others_are_read(tmp_path: Path) -> None:
    make_return(tmp_path, "annex4_progress", "附件4.xlsx")
    (tmp_path / "坏.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    returns = {r.rel: r for r in read_inbox(tmp_path)}
    assert returns["坏.zip"].status == "rejected"
    assert [i.rule for i in returns["坏.zip"].issues] == ["archive-unreadable"]
    assert returns["附件4.xlsx"].status == "accepted"


def test_a_zip_over_the_entry_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive.safety, "MAX_ZIP_ENTRIES", 3)
    _zip(tmp_path / "多.zip", [(f"{i}.xlsx", b"x") for i in range(4)])
    (ret,) = read_inbox(tmp_path)
    assert ret.status == "rejected" and "4 个条目，超过上限 3 个" in ret.issues[0].message


def _flag_encrypted(data: bytes) -> bytes:
    """Set the 'encrypted' bit of every entry (local headers and central directory)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(signature)
        while at >= 0:
            out[at + offset] |= 0x01
            at = out.find(signature, at + 4)
    return bytes(out)


def test_a_password_protected_file_in_a_zip_is_named_and_not_read(tmp_path: Path) -> None:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("附件4.xlsx", template_bytes("annex4_progress"))
    (tmp_path / "加密.zip").write_bytes(_flag_encrypted(data.getvalue()))
    box, inner = read_inbox(tmp_path)
    assert box.status == "ignored"
    assert (inner.rel, inner.status) == ("加密.zip/附件4.xlsx", "rejected")
    assert [i.rule for i in inner.issues] == ["archive-member-encrypted"]


def test_a_zip_in_a_zip_and_a_lock_file_in_one(tmp_path: Path) -> None:
    _zip(tmp_path / "外.zip", [("内.zip", b"PK\x05\x06" + b"\0" * 18), ("~$附件4.xlsx", b"x")])
    rules = {r.rel: [i.rule for i in r.issues] for r in read_inbox(tmp_path)}
    assert rules == {
        "外.zip": ["file-archive-read"],
        "外.zip/~$附件4.xlsx": ["file-ignored-lock"],
        "外.zip/内.zip": ["archive-nested"],
    }


def test_a_workbook_renamed_zip_is_read_as_the_workbook_it_is(tmp_path: Path) -> None:
    make_return(tmp_path, "annex4_progress", "附件4.zip")
    (ret,) = read_inbox(tmp_path)
    assert (ret.status, ret.form_id, ret.member) == ("accepted", "annex4_progress", None)
    assert [i.rule for i in ret.issues] == ["file-extension-mismatch"]


def test_zips_are_read_by_worker_processes_too(tmp_path: Path) -> None:
    made = _returns(tmp_path, {"a.xlsx": "annex4_progress", "b.xlsx": "ledger"})
    _zip(tmp_path / "inbox" / "x.zip", made)
    make_return(tmp_path / "inbox", "annex1_gas", "c.xlsx")
    one = [(r.rel, r.status, r.sha256) for r in read_inbox(tmp_path / "inbox", jobs=1)]
    two = [(r.rel, r.status, r.sha256) for r in read_inbox(tmp_path / "inbox", jobs=2)]
    assert one == two
    assert [(rel, s) for rel, s, _ in one] == [
        ("c.xlsx", "accepted"),
        ("x.zip", "ignored"),
        ("x.zip/a.xlsx", "accepted"),
        ("x.zip/b.xlsx", "accepted"),
    ]


def test_a_rejected_return_in_a_zip_gets_its_annotated_copy_and_the_zip_is_untouched(
    tmp_path: Path,
) -> None:
    bad = make_return(tmp_path / "made", "annex4_progress", "附件4.xlsx", progress={"A1": -1})
    inbox = tmp_path / "inbox"
    _zip(inbox / f"{UNIT}.zip", [("附件4.xlsx", bad.read_bytes())])
    before = _digest(inbox)
    result = CliRunner().invoke(main, ["validate", str(inbox), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    copy = tmp_path / "out" / "退回修改" / f"{UNIT}.zip" / "附件4.xlsx"
    assert copy.is_file()
    assert _digest(inbox) == before


@pytest.mark.skipif(not (SAMPLES / "2023年7月").is_dir(), reason="sample_inputs/ not generated")
def test_a_unit_that_sent_a_zip_has_reported(tmp_path: Path) -> None:
    """The sample inbox with 鼓楼区's July returns sent as one zip (logged by its name) gives the
    same July figures as the folder it replaces, and 鼓楼区 is not 'not reported'."""
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLES, inbox)
    folder = inbox / "2023年7月" / "鼓楼区"
    files = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    log = (inbox / "收文登记.csv").read_text("utf-8")
    times = [
        line.split(",")[1] for line in log.splitlines() if line.startswith("2023年7月/鼓楼区/")
    ]
    shutil.rmtree(folder)
    _gbk_zip(inbox / "2023年7月" / "鼓楼区7月报表.zip", files)
    with open(inbox / "收文登记.csv", "a", encoding="utf-8") as fh:
        fh.write(f"2023年7月/鼓楼区7月报表.zip,{max(times)}\n")
    runner = CliRunner()
    args = ["consolidate", "--period", "2023-07", "--json"]
    zipped = runner.invoke(main, [*args, str(inbox), "--out", str(tmp_path / "a")])
    plain = runner.invoke(main, [*args, str(SAMPLES), "--out", str(tmp_path / "b")])
    assert zipped.exit_code == 0, zipped.output
    import json

    a, b = json.loads(zipped.stdout), json.loads(plain.stdout)
    assert a["city"] == b["city"] and a["units"]["鼓楼区"] == b["units"]["鼓楼区"]
    mine = [s for s in a["submissions"] if s["unit"] == "鼓楼区"]
    assert {s["status"] for s in mine} == {"accepted"}
    assert all(s["file"].startswith("2023年7月/鼓楼区7月报表.zip/") for s in mine)
    assert not [f for f in a["anomalies"] if f["unit"] == "鼓楼区" and "missing" in f["rule"]]


def test_status_lists_an_archive_it_could_not_read(tmp_path: Path) -> None:
    make_return(tmp_path / "inbox", "annex4_progress", "附件4.xlsx")
    (tmp_path / "inbox" / "鼓楼区6月.rar").write_bytes(b"Rar!\x1a\x07\x00" + b"\0" * 64)
    result = CliRunner().invoke(main, ["status", str(tmp_path / "inbox"), "--period", PERIOD])
    assert result.exit_code == 0, result.output
    assert "另有 1 个文件无法读取或无法确定填报单位" in result.output
    assert "鼓楼区6月.rar" in result.output


def test_a_file_packed_with_deflate64_is_named_and_the_others_are_read(tmp_path: Path) -> None:
    # Windows' own compressed folders use Deflate64 for big files: zipfile cannot inflate it
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("大.xlsx", b"x" * 100)
    raw = bytearray(data.getvalue())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = raw.find(signature)
        struct.pack_into("<H", raw, at + offset, 9)  # compression method 9: Deflate64
    (tmp_path / "win.zip").write_bytes(bytes(raw))
    make_return(tmp_path, "annex4_progress", "附件4.xlsx")
    got = {r.rel: (r.status, [i.rule for i in r.issues]) for r in read_inbox(tmp_path)}
    assert got["win.zip/大.xlsx"] == ("rejected", ["archive-member-unsupported"])
    assert got["附件4.xlsx"] == ("accepted", [])
    (inner,) = [r for r in read_inbox(tmp_path) if r.rel == "win.zip/大.xlsx"]
    assert "Deflate64" in inner.issues[0].message


def _zip_bytes(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buffer.getvalue()


def _refusal(tmp_path: Path, data: bytes) -> str:
    (tmp_path / "x.zip").write_bytes(data)
    (ret,) = read_inbox(tmp_path)
    assert (ret.status, [i.rule for i in ret.issues]) == ("rejected", ["archive-unreadable"])
    return ret.issues[0].message


def test_entries_sharing_their_data_are_a_bomb_refused_before_inflating(tmp_path: Path) -> None:
    # one block of data listed under many names (62 KB that inflated a gigabyte per entry)
    raw = bytearray(_zip_bytes([("a.xlsx", b"x" * 500), ("b.xlsx", b"y" * 500)]))
    central = raw.find(b"PK\x01\x02", raw.find(b"PK\x01\x02") + 4)  # b's directory entry
    struct.pack_into("<I", raw, central + 42, 0)  # b's data said to be a's
    assert "条目相互重叠" in _refusal(tmp_path, bytes(raw))


def test_a_zip_inflating_past_the_limits_is_refused_before_inflating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zeros = _zip_bytes([("z.xlsx", b"\0" * (3 * 1024 * 1024))], zipfile.ZIP_DEFLATED)
    assert "压缩比异常" in _refusal(tmp_path, zeros)
    monkeypatch.setattr(archive.safety, "MAX_UNCOMPRESSED_BYTES", 1500)
    plain = _zip_bytes([("a.xlsx", b"x" * 1000), ("b.xlsx", b"y" * 1000)])
    assert "解压后共" in _refusal(tmp_path, plain)


def test_a_directory_too_big_is_refused_from_the_end_record_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "DIRECTORY_BYTES_PER_ENTRY", 10)
    monkeypatch.setattr(archive.safety, "MAX_ZIP_ENTRIES", 5)  # 50 bytes of directory at most
    data = _zip_bytes([(f"{'长' * 30}{i}.xlsx", b"x") for i in range(3)])
    parsed: list[object] = []
    monkeypatch.setattr(archive.zipfile, "ZipFile", lambda *a, **k: parsed.append(a))
    assert "目录过大" in _refusal(tmp_path, data)
    assert parsed == []  # zipfile never saw it


def test_a_zip_whose_end_record_points_before_the_file_is_damaged_not_an_os_error(
    tmp_path: Path,
) -> None:
    raw = bytearray(_zip_bytes([("a.xlsx", b"x" * 100)]))
    end = raw.rfind(b"PK\x05\x06")
    struct.pack_into("<I", raw, end + 12, len(raw) + 100)  # directory larger than the file
    assert "已损坏" in _refusal(tmp_path, bytes(raw))


def test_a_name_given_twice_in_a_zip_never_takes_another_files_name(tmp_path: Path) -> None:
    entries = [("x.xlsx", b"1"), ("x（另一个）.xlsx", b"2"), ("x.xlsx", b"3")]
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = _zip_bytes(entries)
    (tmp_path / "d.zip").write_bytes(data)
    rels = [r.rel for r in read_inbox(tmp_path)]
    assert rels == [
        "d.zip",
        "d.zip/x.xlsx",
        "d.zip/x（另一个）.xlsx",
        "d.zip/x（另一个）（另一个）.xlsx",
    ]


def test_odd_names_in_a_zip_get_their_annotated_copies_and_stop_nothing(tmp_path: Path) -> None:
    # names only an archive can hold: a file and a folder of one name, a name longer than a
    # file system takes, characters Windows refuses. Each rejected one gets its copy; the run
    # goes on (it stopped with "输出文件夹无法写入" before)
    bad = make_return(tmp_path / "made", "annex4_progress", "附件4.xlsx", progress={"A1": -1})
    data = bad.read_bytes()
    long_name = "附件4_" + "很长的文件名" * 20 + ".xlsx"  # 369 bytes
    inbox = tmp_path / "inbox"
    _zip(
        inbox / "长乐区补报.zip",
        [
            ("附件4.xlsx", data),
            ("附件4.xlsx/附件4.xlsx", data),
            (long_name, data),
            ("a:b?.xlsx", data),
        ],
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["validate", str(inbox), "--out", str(out), "--jobs", "2"])
    assert result.exit_code == 1, result.output
    copies = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.xlsx") if p.is_file())
    assert [c for c in copies if c != "校验报告.xlsx"] == sorted(
        [
            "退回修改/长乐区补报.zip/a_b_.xlsx",
            "退回修改/长乐区补报.zip/附件4.xlsx/附件4.xlsx",
            "退回修改/长乐区补报.zip/附件4（另一个）.xlsx",
            f"退回修改/长乐区补报.zip/{copies_long_name(long_name)}",
        ]
    )


def copies_long_name(name: str) -> str:
    """The name a too long member name is saved under: cut, hashed, still .xlsx."""
    from pipeline.annotate import _fit

    fitted = _fit(name)
    assert len(fitted.encode()) <= 180 and fitted.endswith(".xlsx") and "…" in fitted
    return fitted


def _read_in_child(path: str) -> tuple[bytes, list[int]]:
    data = archive.read_member(Path(path), 0, 100)
    return data, [key[0] for key in archive._OPEN]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_worker_opens_the_archive_afresh(tmp_path: Path) -> None:
    # the parent's open archive shares its file offset with a forked child: reading through it
    # from two processes at once would mix their reads
    import multiprocessing

    path = _zip(tmp_path / "a.zip", [("a.xlsx", b"abc")])
    assert archive.read_member(path, 0, 100) == b"abc"  # the parent has it open now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        data, pids = pool.apply(_read_in_child, (str(path),))
    assert data == b"abc" and pids and os.getpid() not in pids


def test_an_empty_zip_is_read_as_an_archive_with_nothing_in_it(tmp_path: Path) -> None:
    # Windows' 新建 → 压缩(zipped)文件夹 makes this 22-byte file
    (tmp_path / "新建压缩文件.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    (ret,) = read_inbox(tmp_path)
    assert (ret.status, [i.rule for i in ret.issues]) == ("ignored", ["file-archive-read"])
    assert "其中的 0 个表格文件" in ret.issues[0].message


def _zip64_hiding(entries: int) -> bytes:
    """A zip whose plain end record says one small entry while a ZIP64 record right before it
    (which zipfile reads) describes a directory of `entries` entries."""
    one = _zip_bytes([("a.xlsx", b"x")])
    central = one.find(b"PK\x01\x02")
    end = one.rfind(b"PK\x05\x06")
    entry = one[central:end]
    directory = entry * entries
    body = one[:central]
    record = b"PK\x06\x06" + struct.pack(
        "<QHHIIQQQQ", 44, 45, 45, 0, 0, entries, entries, len(directory), len(body)
    )
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, len(body) + len(directory), 1)
    plain = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(entry), len(body), 0)
    return body + directory + record + locator + plain


def test_a_zip64_record_behind_a_small_end_record_is_what_gets_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # zipfile trusts the ZIP64 record right before the locator: the check must read the same,
    # and refuse before zipfile parses the directory (a million entries: seconds, gigabytes)
    data = _zip64_hiding(3000)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert len(zf.infolist()) == 3000  # what zipfile would parse
    parsed: list[object] = []
    monkeypatch.setattr(archive.zipfile, "ZipFile", lambda *a, **k: parsed.append(a))
    assert "3000 个条目，超过上限" in _refusal(tmp_path, data)
    assert parsed == []


def test_names_made_alike_for_the_file_system_still_get_a_copy_each(tmp_path: Path) -> None:
    # "a:b" and "a_b" are one name once Windows-reserved characters are replaced; "A.XLSX" and
    # "a.xlsx" one name on Windows and macOS: each rejected return keeps its own copy, named
    # the same way whatever the number of workers
    bad = make_return(tmp_path / "made", "annex4_progress", "x.xlsx", progress={"A1": -1})
    data = bad.read_bytes()
    inbox = tmp_path / "inbox"
    _zip(inbox / "鼓楼区.zip", [("6月:初稿.xlsx", data), ("6月_初稿.xlsx", data)])
    _zip(inbox / "台江区.zip", [("A.XLSX", data), ("a.xlsx", data)])
    runs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = CliRunner().invoke(
            main, ["validate", str(inbox), "--out", str(out), "--jobs", jobs]
        )
        assert result.exit_code == 1, result.output
        runs.append(
            sorted(p.relative_to(out).as_posix() for p in (out / "退回修改").rglob("*.xlsx"))
        )
    assert runs[0] == runs[1]
    assert len(runs[0]) == 4
    assert len({name.casefold() for name in runs[0]}) == 4


def test_a_zip_replaced_after_it_was_listed_is_not_read_under_the_old_names(
    tmp_path: Path,
) -> None:
    from pipeline.read import read_return

    good = template_bytes("annex4_progress")
    path = _zip(tmp_path / "x.zip", [("a.xlsx", good), ("b.xlsx", good)])
    listed = archive.members(path).files
    assert [(m.index, m.name) for m in listed] == [(0, "a.xlsx"), (1, "b.xlsx")]
    path.unlink()
    _zip(path, [("b.xlsx", good), ("a.xlsx", good)])  # the same names, the other order
    os.utime(path, ns=(1, 1))  # and a new modification time: no cache holds the old one
    ret = read_return(path, tmp_path, member=0, rel="x.zip/a.xlsx", member_name="a.xlsx")
    assert [i.rule for i in ret.issues] == ["archive-unreadable"]
    assert "被改动" in ret.issues[0].message
