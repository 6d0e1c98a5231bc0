"""Read every returned workbook in an inbox into model.Return objects (the reading stage).

`read_inbox` walks the inbox (recursively, sorted by relative path), `read_return` reads one
file. Each file is read from disk once: the bytes are hashed, checked by pipeline.safety and then
parsed by python-calamine from memory. Form, unit and period come from the template's hidden
metadata sheet, else from the labels on the sheet. Cells are looked up where pipeline.layout puts
them and, when a clerk inserted rows or columns, found again by their label text. Nothing here
raises for bad data: every problem becomes an Issue on the Return. Nothing in the inbox is
ever written.

Receipt time: from a receipt log in the inbox root (收文登记.csv or receipt_log.csv, or the
same kept as a workbook, 收文登记.xlsx/.xls/.ods; columns 文件名 = path relative to the inbox
or bare file name, 收到时间 = "2023-06-30 17:20", ISO 8601 or a date-and-time cell),
else the file's modification time. Both are naive datetimes in China Standard Time (UTC+8, no
daylight saving), the time the city clerk's clock shows.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import gc
import hashlib
import io
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from pipeline import archive, safety
from pipeline.forms import (
    TICKS,
    Calendar,
    ChecklistForm,
    Form,
    LedgerColumn,
    LedgerForm,
    ProgressForm,
    Unit,
    load_calendar,
    load_forms,
    load_units,
    period_end,
    period_label,
)
from pipeline.fsutil import worker_pool
from pipeline.layout import (
    INSTRUCTIONS_SHEET,
    META_KEYS,
    META_SHEET,
    PERIOD_LABEL,
    UNIT_LABEL,
    Cell,
    ChecklistLayout,
    LedgerLayout,
    a1,
    checklist_layout,
    progress_layout,
)
from pipeline.messages import make_issue, os_error_text
from pipeline.model import Inspection, Issue, Return
from pipeline.normalize import (
    EXCEL_EPOCH,
    SERIAL_MAX,
    SERIAL_MIN,
    TICK_HELP,
    TICK_MARKS,
    NormalizeError,
    clean_text,
    convert_column,
    display,
    fold,
    is_blank,
    match_name,
    to_choice,
    to_credit_code,
    to_date,
    to_number,
    to_period,
    to_tick,
    unit_mismatch,
)

# the log as a CSV, or as the workbook a clerk keeps it in (the first one found is used)
RECEIPT_LOG_NAMES = (
    "收文登记.csv",
    "receipt_log.csv",
    "收文登记.xlsx",
    "收文登记.xls",
    "收文登记.ods",
    "receipt_log.xlsx",
)
RECEIPT_NAME_COLUMN = "文件名"
RECEIPT_TIME_COLUMN = "收到时间"
JUNK_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", ".ds_store", "icon\r"})
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")
UNIT_SUFFIXES = ("住房和城乡建设局", "城乡建设局", "建设局", "住建局", "建设和交通局", "住建委")
# the city (and province) a clerk may write before the unit: 福州市鼓楼区住房和城乡建设局
UNIT_PREFIXES = ("福建省福州市", "福州市", "福州")
TITLE_SEARCH_ROWS = 12
LABEL_MAX_CHARS = 120  # longer texts (checklist items, notes) are never labels we look up
TICK_LABEL = "第 {no} 项检查结果“{answer}”栏"  # how messages name a checklist tick cell
MAJOR_LABEL = "第 {no} 项“是否重大隐患—{answer}”栏"

OnFile = Callable[[Return], None]


# --- the inbox -----------------------------------------------------------------------------


@dataclass
class _Entry:
    rel: str
    path: Path
    ignore: Issue | None = None
    inside: archive.Member | None = None  # a file inside the .zip at `path`, as listed
    archive: str = ""  # the .zip's own rel, for a file inside it (its receipt time is the zip's)


def read_inbox(inbox: Path, *, on_file: OnFile | None = None, jobs: int = 1) -> list[Return]:
    """Every file under `inbox`, in relative-path order, as a Return (ignored ones included).

    `on_file` is called with each Return as soon as it is read, in the same order. `jobs` > 1
    reads files in that many worker processes.
    """
    inbox = Path(inbox)
    entries = sorted(_unpacked(_walk(inbox)), key=lambda e: e.rel)
    archives = {e.archive for e in entries if e.archive}
    names = [e.rel for e in entries if e.ignore is None or e.rel in archives]
    receipts, log_issues, log_name = _receipt_log(inbox, names)
    to_read = [e for e in entries if e.ignore is None]
    out: list[Return] = []
    with collector_paused():
        pending = _read_all(to_read, inbox, jobs)
        for entry in entries:
            if entry.ignore is not None:
                if entry.ignore.rule == "file-ignored-receipt-log" and entry.rel != log_name:
                    # a second log beside the one used: say so, lest it be kept up to date
                    unused = make_issue("receipt-log-unused", used=log_name)
                    entry = _Entry(entry.rel, entry.path, unused)
                ret = _ignored(entry)
                if entry.rel == log_name:
                    for issue in log_issues:
                        ret.add(issue)
            else:
                ret = next(pending)
                _set_received(ret, receipts, entry.archive)
            out.append(ret)
            if on_file is not None:
                on_file(ret)
        # run the reader to its end, so that its pool shuts down as usual, the workers joined
        # here: closed early instead, it would drop them to be reaped in the background
        # during the next stage (which then also got their CPU time in the bench's phases)
        if next(pending, None) is not None:
            raise AssertionError("the reader returned more files than it was given")
    return out


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a stage that piles up objects it keeps: reading
    (every Return is kept, so a collection frees nothing, yet each one walked all of them: half
    the parent's CPU time at province scale) and validating a batch (its frames make hundreds of
    thousands of small objects, each full pass walking every object of the read returns). Both
    leave little cyclic garbage, collected as usual once the collector is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_all(entries: list[_Entry], inbox: Path, jobs: int) -> Iterator[Return]:
    """read_return of each entry, in order; with `jobs` > 1 in worker processes. A worker
    killed by a damaged file breaks the pool: the files not yet read are then read one by one,
    each parsed in the sandbox, so the culprit is found and the others still get read."""
    done = 0
    if jobs > 1 and len(entries) > 1:
        chunk = max(1, min(32, len(entries) // (jobs * 4)))
        with worker_pool(jobs, _worker_init) as pool:
            try:
                args = [(e, inbox) for e in entries]
                for ret in pool.map(_read_entry, args, chunksize=chunk):
                    done += 1
                    yield ret
            except BrokenProcessPool:
                pass
    for entry in entries[done:]:
        yield _read_one(entry, inbox)


def _worker_init() -> None:
    safety.IN_PROCESS = True  # a worker is expendable: it parses without a sandbox of its own
    safety.limit_memory()  # ... but a file asking for gigabytes must not take the machine down
    gc.enable()  # the parent pauses its collector while reading (collector_paused) ...
    gc.freeze()  # ... and what the worker inherits from it is never garbage: left out of it


def _read_entry(args: tuple[_Entry, Path]) -> Return:
    return _read_one(*args)


def _read_one(entry: _Entry, inbox: Path) -> Return:
    if entry.inside is None:
        return read_return(entry.path, inbox)
    inside = entry.inside
    return read_return(
        entry.path, inbox, member=inside.index, rel=entry.rel, member_name=inside.name
    )


def _walk(inbox: Path) -> Iterator[_Entry]:
    def on_error(exc: OSError) -> None:
        raise exc

    if not inbox.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(inbox, onerror=None, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            path = here / d
            rel = path.relative_to(inbox).as_posix()
            if path.is_symlink():
                yield _Entry(rel + "/", path, make_issue("file-ignored-symlink"))
            elif d.startswith("."):
                yield _Entry(rel + "/", path, make_issue("file-ignored-hidden"))
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in filenames:
            path = here / name
            rel = path.relative_to(inbox).as_posix()
            yield _Entry(rel, path, _why_ignored(path, name, here == inbox))


def _unpacked(entries: Iterator[_Entry]) -> Iterator[_Entry]:
    """The entries, each .zip among them followed by the files in it (see pipeline.archive);
    a .zip that is really a workbook renamed stays a file to read."""
    for entry in entries:
        yield entry
        if entry.ignore is None and entry.rel.lower().endswith(archive.ARCHIVE_EXTENSIONS):
            try:
                listing = archive.members(entry.path)
            except safety.Refused as refused:
                entry.ignore = _refusal(refused)
                continue
            except OSError as exc:
                entry.ignore = make_issue("file-unreadable-os", reason=os_error_text(exc))
                continue
            if listing.workbook:
                continue  # a workbook renamed .zip: read as one
            inside = list(_archive_entries(entry, listing.files))
            read = sum(1 for e in inside if e.ignore is None)
            rest = len(inside) - read
            entry.ignore = make_issue(
                "file-archive-read",
                read=read,
                rest=f"（另有 {rest} 个文件未读取，原因见各行）" if rest else "",
                name=entry.rel.rsplit("/", 1)[-1],
            )
            yield from inside


def _archive_entries(box: _Entry, files: list[archive.Member]) -> Iterator[_Entry]:
    """An entry for each file of the archive `box`, named "<archive rel>/<name inside>" (a
    name given twice made unique without taking another file's name)."""
    names = {f"{box.rel}/{m.name}" for m in files}
    taken: set[str] = set()
    for m in files:
        rel = f"{box.rel}/{m.name}"
        if rel in taken:  # the same name twice in one archive
            while rel in taken or rel in names:
                rel = _renamed(rel)
        taken.add(rel)
        ignore = _why_ignored_name(m.name.rsplit("/", 1)[-1])
        if ignore is None and m.refused:
            ignore = make_issue(m.refused, **m.fields)
        if ignore is None and m.size > safety.MAX_FILE_BYTES:
            size, limit = safety.human_size(m.size), safety.human_size(safety.MAX_FILE_BYTES)
            ignore = make_issue("file-too-large", size=size, limit=limit)
        yield _Entry(rel, box.path, ignore, m, box.rel)


def _renamed(rel: str) -> str:
    stem, dot, ext = rel.rpartition(".")
    return f"{stem}（另一个）{dot}{ext}" if dot and "/" not in ext else f"{rel}（另一个）"


def _ignored_by_name(name: str) -> Issue | None:
    """A lock file, a hidden or system file: known from its name, in the inbox or a .zip."""
    if name.startswith(("~$", ".~lock.")):
        return make_issue("file-ignored-lock")
    if name.startswith(".") or name.lower() in JUNK_NAMES:
        return make_issue("file-ignored-hidden")
    return None


def _why_ignored_name(name: str) -> Issue | None:
    """Why a file inside an archive is not read, from its name alone (as for the inbox's)."""
    if (issue := _ignored_by_name(name)) is not None:
        return issue
    ext = os.path.splitext(name)[1].lower()
    if ext in archive.ARCHIVE_EXTENSIONS or ext in archive.OTHER_ARCHIVES:
        return make_issue("archive-nested")
    return _not_a_workbook(name, ext)


def _why_ignored(path: Path, name: str, at_root: bool) -> Issue | None:
    if (issue := _ignored_by_name(name)) is not None:
        return issue
    try:
        st = path.lstat()
    except OSError as exc:
        return make_issue("file-unreadable-os", reason=os_error_text(exc))
    if stat.S_ISLNK(st.st_mode):
        return make_issue("file-ignored-symlink")
    if getattr(st, "st_file_attributes", 0) & 0x6:  # Windows FILE_ATTRIBUTE_HIDDEN | SYSTEM
        return make_issue("file-ignored-hidden")
    if not stat.S_ISREG(st.st_mode):
        return make_issue("file-ignored-special")
    if at_root and name in RECEIPT_LOG_NAMES:
        return make_issue("file-ignored-receipt-log")
    ext = os.path.splitext(name)[1].lower()
    if ext in archive.ARCHIVE_EXTENSIONS:
        return None  # read as a folder of files (see _unpacked)
    if ext in archive.OTHER_ARCHIVES:
        return make_issue("archive-unsupported", kind=archive.OTHER_ARCHIVES[ext])
    return _not_a_workbook(name, ext, path)


# Formats a return may be exported or saved as that are not workbooks we read; a file in one
# whose name says it is a return is an error (it would go uncounted), any other is ignored
TABLE_EXPORTS = {
    ".csv": "CSV 文本文件（.csv）",
    ".tsv": "文本文件（.tsv）",
    ".fods": "LibreOffice 平面 XML 表格（.fods）",
    ".numbers": "Apple Numbers 表格（.numbers）",
}
# ... and two that are exports only by their content: Excel's 文本文件(制表符分隔) and XML
# 电子表格 2003 (a cover note "附件4填报说明.txt" is no export)
SNIFFED_EXPORTS = {".txt": "制表符分隔的文本文件（.txt）", ".xml": "Excel 2003 XML 表格（.xml）"}
_RETURN_NAME = re.compile(r"附件\s*[1-4１-４一二三四]|台账|检查清单|调度表|进展情况|重大事故隐患")
_SNIFF_BYTES = 8192


def _not_a_workbook(name: str, ext: str, path: Path | None = None) -> Issue | None:
    """Why a file whose extension is not a workbook's is not read (None: it is one)."""
    if ext in safety.SPREADSHEET_EXTENSIONS:
        return None
    named = _RETURN_NAME.search(unicodedata.normalize("NFKC", name)) is not None
    if named and ext in TABLE_EXPORTS:
        return make_issue("file-not-workbook", what=TABLE_EXPORTS[ext])
    if named and ext in SNIFFED_EXPORTS and path is not None and _looks_exported(path, ext):
        return make_issue("file-not-workbook", what=SNIFFED_EXPORTS[ext])
    return make_issue("file-ignored-not-spreadsheet", value=ext or "（无扩展名）")


def _looks_exported(path: Path, ext: str) -> bool:
    """A .txt of tab-separated rows, or a .xml in Excel's 2003 spreadsheet format."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError:
        return False
    if ext == ".xml":
        return b"urn:schemas-microsoft-com:office:spreadsheet" in head
    rows = head.splitlines()[:20]
    return sum(1 for row in rows if b"\t" in row) >= 2


def _ignored(entry: _Entry) -> Return:
    ret = Return(
        path=entry.path,
        rel=entry.rel,
        status="ignored",
        member=entry.inside.index if entry.inside else None,
        member_name=entry.inside.name if entry.inside else "",
    )
    assert entry.ignore is not None
    if entry.ignore.severity == "error":
        # an OS error while looking at the file, or an archive (or a file in one) that cannot
        # be read: returns may be in it, unread
        ret.status = "rejected"
    else:
        ret.ignore_reason = entry.ignore.message
    try:
        st = entry.path.lstat()
        ret.size = st.st_size if entry.inside is None else entry.inside.size
        ret.mtime = _local(st.st_mtime)
    except OSError:
        pass
    ret.add(entry.ignore)
    return ret


def _local(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, CHINA_TZ).replace(tzinfo=None)


# --- the receipt log -----------------------------------------------------------------------


def _receipt_log(
    inbox: Path, names: Sequence[str]
) -> tuple[dict[str, dt.datetime], list[Issue], str]:
    """Received times by relative path, from the receipt log in the inbox root (if any), what
    is wrong in it, and its name ("" for none)."""
    path = next(  # a link is never followed (it is ignored as any link is)
        (
            inbox / n
            for n in RECEIPT_LOG_NAMES
            if (inbox / n).is_file() and not (inbox / n).is_symlink()
        ),
        None,
    )
    if path is None:
        return {}, [], ""
    times, issues = _receipt_times(path, names)
    return times, issues, path.name


def _receipt_times(path: Path, names: Sequence[str]) -> tuple[dict[str, dt.datetime], list[Issue]]:
    issues: list[Issue] = []
    try:
        size = path.stat().st_size
        if size > safety.MAX_FILE_BYTES:
            shown, limit = safety.human_size(size), safety.human_size(safety.MAX_FILE_BYTES)
            return {}, [
                make_issue("receipt-log-unreadable", reason=f"文件过大：{shown}，上限 {limit}")
            ]
        raw = path.read_bytes()
    except OSError as exc:
        return {}, [make_issue("receipt-log-unreadable", reason=os_error_text(exc))]
    if path.suffix.lower() == ".csv":
        text = None
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        if text is None:
            return {}, [
                make_issue("receipt-log-unreadable", reason="编码无法识别，请存为 UTF-8 的 CSV")
            ]
        rows = list(csv.reader(io.StringIO(text)))
    else:
        rows, reason = _receipt_log_sheet(raw)
        if reason:
            return {}, [make_issue("receipt-log-unreadable", reason=reason)]
    if not rows:
        return {}, [make_issue("receipt-log-unreadable", reason="文件为空")]
    header = [fold(h) for h in rows[0]]
    try:
        name_col = header.index(RECEIPT_NAME_COLUMN)
        time_col = header.index(RECEIPT_TIME_COLUMN)
    except ValueError:
        reason = f"第1行须有“{RECEIPT_NAME_COLUMN}”和“{RECEIPT_TIME_COLUMN}”两列"
        return {}, [make_issue("receipt-log-unreadable", reason=reason)]
    by_rel = set(names)
    by_base: dict[str, list[str]] = {}
    for rel in names:
        by_base.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    out: dict[str, dt.datetime] = {}
    untimed: list[tuple[int, str]] = []  # (row, the time as written) that could not be read
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(name_col, time_col):
            issues.append(make_issue("receipt-log-row-invalid", row=number, reason="列数不足"))
            continue
        name = unicodedata.normalize("NFC", row[name_col].strip()).replace("\\", "/").strip("/")
        when = parse_received(row[time_col])
        if when is None:
            untimed.append((number, row[time_col].strip()))
            continue
        if name in by_rel:
            targets = [name]
        elif len(by_base.get(name, [])) == 1:
            targets = by_base[name]
        elif name in by_base:
            reason = f"文件名“{name}”在收件夹中有多个同名文件，请写明所在子文件夹"
            issues.append(make_issue("receipt-log-row-invalid", row=number, reason=reason))
            continue
        else:
            reason = f"收件夹中没有文件“{name}”"
            issues.append(make_issue("receipt-log-row-invalid", row=number, reason=reason))
            continue
        for rel in targets:
            # a file logged twice keeps its first (earliest) receipt
            out[rel] = min(out.get(rel, when), when)
    if len(untimed) > RECEIPT_ROWS_SHOWN:
        # a whole column written another way: one message, not one per file
        shown = "、".join(str(n) for n, _ in untimed[:RECEIPT_ROWS_SHOWN])
        issues.insert(  # first: it says more than the rows told one by one
            0,
            make_issue(
                "receipt-log-times-invalid",
                count=len(untimed),
                rows=f"{shown} 等",
                example=untimed[0][1],
            ),
        )
    else:
        for number, text in untimed:
            reason = f"收到时间“{text}”无法识别（应如 2023-06-30 17:20）"
            issues.append(make_issue("receipt-log-row-invalid", row=number, reason=reason))
    return out, issues


def _receipt_log_sheet(data: bytes) -> tuple[list[list[str]], str]:
    """The first visible sheet of a receipt log kept as a workbook, as rows of text (each cell
    as messages show it: a date and time cell as "2023-06-30 17:20"), or why it cannot be read.
    Checked and parsed as defensively as any return."""
    try:
        safety.check_bytes(data)
    except safety.Refused as refused:
        return [], _refusal(refused).message.rstrip("。")
    parsed = safety.parse_isolated(data)
    if parsed.encrypted or parsed.error:
        return [], "文件已加密或已损坏"
    sheet = next((sh for sh in parsed.sheets if sh.visible and sh.rows is not None), None)
    if sheet is None or sheet.rows is None:
        return [], "没有可读取的工作表"
    return [[display(v) for v in row] for row in sheet.rows], ""


_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
RECEIPT_ROWS_SHOWN = 3  # more rows than this with unreadable times are told as one message
_RECEIVED = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[T ]+(\d{1,2})[:：时](\d{2})(?:[:：分](\d{2}))?)?"
)


def parse_received(text: str) -> dt.datetime | None:
    """'2023-06-30 17:20', '2023/6/30 17:20:05', ISO 8601 (an offset is converted to UTC+8),
    or an Excel serial date-time ('45107.7222': the cell kept in 常规 format) of 2000–2099."""
    value = unicodedata.normalize("NFKC", text).strip()
    if not value:
        return None
    if _SERIAL.fullmatch(value) and SERIAL_MIN <= float(value) < SERIAL_MAX + 1:
        seconds = round(float(value) * 86400 / 60) * 60  # to the minute, as logs are kept
        return dt.datetime.combine(EXCEL_EPOCH, dt.time()) + dt.timedelta(seconds=seconds)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(CHINA_TZ).replace(tzinfo=None)
        return parsed
    m = _RECEIVED.fullmatch(value)
    if not m:
        return None
    try:
        y, mo, d, h, mi, sec = (int(g) if g else 0 for g in m.groups())
        return dt.datetime(y, mo, d, h, mi, sec)
    except ValueError:
        return None


def _set_received(ret: Return, receipts: dict[str, dt.datetime], archive_rel: str = "") -> None:
    """The receipt time: the log's for the file, or for the .zip it came in, else the mtime
    (a file in a .zip has the archive's: when the city saved what the county sent)."""
    if ret.rel in receipts:
        ret.received, ret.received_source = receipts[ret.rel], "log"
    elif archive_rel in receipts:
        ret.received, ret.received_source = receipts[archive_rel], "log"
    elif ret.mtime is not None:
        ret.received, ret.received_source = ret.mtime, "mtime"


# --- one file ------------------------------------------------------------------------------


def read_return(
    path: Path,
    inbox: Path,
    *,
    member: int | None = None,
    rel: str | None = None,
    member_name: str = "",
) -> Return:
    """Read one file into a Return (with `member`, the file at that index inside the .zip at
    `path`, named `rel`). Never raises for bad data: problems become issues."""
    path = Path(path)
    if rel is None:
        try:
            rel = path.relative_to(inbox).as_posix()
        except ValueError:
            rel = path.name
    ret = Return(path=path, rel=rel, member=member, member_name=member_name)
    try:
        _read_file(ret)
    except BaseException as exc:  # a bug (or a reader panic) must not stop the run
        if isinstance(exc, safety.NOT_OURS):
            raise
        ret.add(make_issue("file-read-failed", detail=f"{type(exc).__name__}: {exc}"[:300]))
    ret.settle()
    return ret


def _read_file(ret: Return) -> None:
    path = ret.path
    try:
        st = path.lstat()
    except OSError as exc:
        ret.add(make_issue("file-unreadable-os", reason=os_error_text(exc)))
        return
    ret.size = st.st_size
    ret.mtime = _local(st.st_mtime)
    if not stat.S_ISREG(st.st_mode):
        ret.add(make_issue("file-unreadable-os", reason="不是普通文件"))
        return
    data = _file_bytes(ret, st.st_size)
    if data is None:
        return
    ret.size = len(data)
    ret.sha256 = hashlib.sha256(data).hexdigest()
    try:
        checked = safety.check_bytes(data)
    except safety.Refused as refused:
        ret.add(_refusal(refused))
        return
    ret.fmt = checked.fmt
    ext = PurePosixPath(ret.rel).suffix.lower().lstrip(".")
    if ext != ret.fmt and not (ext == "xlsx" and ret.fmt == "xlsm"):
        ret.add(make_issue("file-extension-mismatch", ext=f".{ext}", fmt=f".{ret.fmt}"))
    # the instructions sheet is never read (see _Book.content_sheets): not parsed either
    parsed = safety.parse_isolated(data, skip=(INSTRUCTIONS_SHEET,))
    if parsed.encrypted:
        ret.add(make_issue("file-encrypted"))
        return
    if parsed.error:
        ret.add(_calamine_failure(parsed.error))
        return
    for sheet in parsed.sheets:  # .ods: calamine reports no merged areas, the scan saw them
        if not sheet.merged and sheet.name in checked.merged:
            sheet.merged = checked.merged[sheet.name]
    book = _Book(parsed, ret)
    _read_book(ret, book, checked.formula_cells)


def _too_large(ret: Return, size: int) -> None:
    shown, limit = safety.human_size(size), safety.human_size(safety.MAX_FILE_BYTES)
    ret.add(make_issue("file-too-large", size=shown, limit=limit))


def _file_bytes(ret: Return, size: int) -> bytes | None:
    """The file's bytes, or those of the file inside a .zip it stands for (None, with the issue
    added, when too large or unreadable): held to MAX_FILE_BYTES whatever size the file system
    or the archive's directory says."""
    if size > safety.MAX_FILE_BYTES and ret.member is None:
        _too_large(ret, size)  # refused before reading
        return None
    try:
        cap = safety.MAX_FILE_BYTES + 1
        data = archive.source_bytes(ret.path, ret.member, cap, size, ret.member_name)
    except safety.Refused as refused:
        ret.add(_refusal(refused))
        return None
    except OSError as exc:
        ret.add(make_issue("file-unreadable-os", reason=os_error_text(exc)))
        return None
    if len(data) > safety.MAX_FILE_BYTES:
        _too_large(ret, len(data))
        return None
    return data


def _refusal(refused: safety.Refused) -> Issue:
    fields: dict[str, Any] = dict(refused.fields)
    fields.setdefault("detail", refused.detail)
    return make_issue(refused.code, **fields)


def _calamine_failure(detail: str) -> Issue:
    return make_issue("file-unreadable", detail=detail[:200])


# --- sheets as grids -------------------------------------------------------------------------


def label_key(value: Any) -> str:
    """A label as compared: NFKC, no spaces, no trailing colon or required-marker."""
    if type(value) is str:
        return _label_key(value)  # the same labels and item texts in every file of a form
    if not isinstance(value, str):
        return ""
    return fold(value).rstrip(":*").lstrip("*")


@functools.lru_cache(maxsize=16384)
def _label_key(text: str) -> str:
    return fold(text).rstrip(":*").lstrip("*")


# The A1 address of a 0-based (row, col): the same few hundred cells in every checklist
_a1 = functools.lru_cache(maxsize=16384)(a1)


class Grid:
    """One sheet's values, addressed by 0-based (row, col) exactly as in the workbook."""

    def __init__(
        self,
        name: str,
        rows: list[list[Any]],
        visible: bool,
        merged: Sequence[safety.Area] = (),
    ) -> None:
        self.name = name
        self.rows = rows
        self.visible = visible
        self.merged = merged  # ((row, col), (last row, last col)) of each merged area
        self._index: dict[str, list[tuple[int, int]]] | None = None

    @property
    def height(self) -> int:
        return len(self.rows)

    def get(self, row: int, col: int) -> Any:
        """The raw value, None for an empty or absent cell."""
        if row < 0 or col < 0 or row >= len(self.rows):
            return None
        line = self.rows[row]
        if col >= len(line):
            return None
        value = line[col]
        return None if value == "" else value

    def find(self, key: str) -> list[tuple[int, int]]:
        """Every cell whose label_key equals `key`, in reading order."""
        if self._index is None:
            index: dict[str, list[tuple[int, int]]] = {}
            for r, line in enumerate(self.rows):
                for c, value in enumerate(line):
                    if isinstance(value, str) and value and len(value) <= LABEL_MAX_CHARS:
                        index.setdefault(label_key(value), []).append((r, c))
            self._index = index
        return self._index.get(key, [])

    def is_empty(self) -> bool:
        return all(is_blank(v) for line in self.rows for v in line)

    def strings(self, max_rows: int | None = None) -> Iterator[tuple[int, int, str]]:
        for r, line in enumerate(self.rows[:max_rows]):
            for c, value in enumerate(line):
                if isinstance(value, str) and value.strip():
                    yield r, c, value


class _Book:
    """The workbook's sheets as parsed in the sandbox; a sheet's problem is reported once,
    when the sheet is first asked for."""

    def __init__(self, parsed: safety.Parsed, ret: Return) -> None:
        self.ret = ret
        self.names: list[str] = [s.name for s in parsed.sheets]
        self._sheets = {s.name: s for s in parsed.sheets}
        self._grids: dict[str, Grid | None] = {}

    def grid(self, name: str) -> Grid | None:
        if name not in self._grids:
            self._grids[name] = self._load(name)
        return self._grids[name]

    def _load(self, name: str) -> Grid | None:
        sheet = self._sheets[name]
        assert not sheet.skipped, f"sheet {name!r} was not parsed"
        if sheet.refused is not None:
            code, detail = sheet.refused
            self.ret.add(make_issue(code, detail=detail))
            return None
        if sheet.rows is None:
            issue = _calamine_failure(sheet.error or "工作表无法读取")
            issue.sheet = name
            self.ret.add(issue)
            return None
        return Grid(name, sheet.rows, sheet.visible, sheet.merged)

    def content_sheets(self) -> list[str]:
        return [n for n in self.names if n not in (META_SHEET, INSTRUCTIONS_SHEET)]


# --- identification ----------------------------------------------------------------------


@dataclass
class _Found:
    """A label found on a sheet and the value written after it."""

    sheet: str
    label_cell: Cell
    value_cell: Cell
    value: Any


def _read_meta(book: _Book) -> dict[str, str]:
    if META_SHEET not in book.names:
        return {}
    grid = book.grid(META_SHEET)
    if grid is None:
        return {}
    meta: dict[str, str] = {}
    for r in range(min(grid.height, 200)):
        key = grid.get(r, 0)
        if isinstance(key, str) and key.strip() in META_KEYS:
            value = clean_text(grid.get(r, 1))
            if value is not None:
                meta[key.strip()] = value
    return meta


def _title_keys() -> list[tuple[str, Form]]:
    """(normalised title, form), longest title first, so a title containing another wins."""
    titles: list[tuple[str, Form]] = _per_form("titles", load_forms(), _titles_of)
    return titles


def _titles_of(forms: dict[str, Form]) -> list[tuple[str, Form]]:
    pairs = [(label_key(f.title), f) for f in forms.values()]
    return sorted(pairs, key=lambda p: -len(p[0]))


def _form_of_sheet(grid: Grid) -> Form | None:
    """The form whose title appears near the top of the sheet (or anywhere, failing that)."""
    titles = _title_keys()
    for limit in (TITLE_SEARCH_ROWS, None):
        for _r, _c, text in grid.strings(limit):
            key = label_key(text)
            if len(key) > 200:
                continue
            for title, form in titles:
                if title and title in key:
                    return form
    return None


def _find_after_label(
    grid: Grid,
    key: str,
    expected_label: Cell | None,
    expected_value: Cell | None,
    stop_keys: Sequence[str] = (),
    *,
    scan_in_place: bool = False,
) -> _Found | None:
    """The value written after the label `key`.

    Where the layout puts the label, the value is in the layout's value cell (and, only with
    `scan_in_place`, for rows holding nothing else, the first non-empty cell to its right).
    A label found elsewhere (rows or columns inserted) keeps the layout's offset to its value;
    if that cell is empty, the first non-empty cell to its right that is not a note "（…）" or
    another label is taken. Failing a label cell, "填报单位：鼓楼区" typed into one cell counts.
    """
    spots: list[tuple[int, int]] = []
    if (
        expected_label is not None
        and label_key(grid.get(expected_label.row, expected_label.col)) == key
    ):
        spots.append((expected_label.row, expected_label.col))
    if not spots:
        # only the first spot counts: the whole-sheet index is built only when needed
        spots = list(grid.find(key))
    if not spots:
        inline = _inline_spots(grid, key)
        if not inline:
            return None
        r, c, rest = inline[0]
        return _Found(grid.name, Cell(r, c), Cell(r, c), rest)
    r, c = spots[0]
    label_cell = Cell(r, c)
    blank_at = Cell(r, c + 1)
    if expected_label is not None and expected_value is not None:
        dr, dc = r - expected_label.row, c - expected_label.col
        blank_at = Cell(expected_value.row + dr, expected_value.col + dc)
        value = grid.get(blank_at.row, blank_at.col)
        if not is_blank(value):
            return _Found(grid.name, label_cell, blank_at, value)
        if (dr, dc) == (0, 0) and not scan_in_place:
            return _Found(grid.name, label_cell, blank_at, None)
    for cc in range(c + 1, min(c + 12, _width(grid, r))):
        value = grid.get(r, cc)
        if is_blank(value):
            continue
        if label_key(value) in stop_keys:
            break
        if isinstance(value, str) and value.strip().startswith(("（", "(")):
            continue
        return _Found(grid.name, label_cell, Cell(r, cc), value)
    return _Found(grid.name, label_cell, blank_at, None)


def _inline_spots(grid: Grid, key: str) -> list[tuple[int, int, str]]:
    """Cells like "填报单位：鼓楼区" (label and value typed into one cell); NFKC folds "：" to ":"."""
    out = []
    for r, c, text in grid.strings(60):
        head, sep, rest = unicodedata.normalize("NFKC", text).partition(":")
        value = rest.strip(" _\u3000")
        if sep and label_key(head) == key and value:
            out.append((r, c, value))
    return out


def _width(grid: Grid, row: int) -> int:
    return len(grid.rows[row]) if 0 <= row < grid.height else 0


@dataclass
class _Identity:
    unit: _Found | None = None
    period: _Found | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_PER_FORM: dict[tuple[str, int], tuple[Any, Any]] = {}


def _per_form(what: str, form: Any, build: Callable[[Any], Any]) -> Any:
    """build(form), made once per form object (forms, the unit table and the calendar are
    loaded once and never change; they are hashed by value, which would cost more than most
    of what is cached here)."""
    hit = _PER_FORM.get((what, id(form)))
    if hit is None or hit[0] is not form:
        hit = _PER_FORM[(what, id(form))] = (form, build(form))
    return hit[1]


def _checklist_layout(form: ChecklistForm) -> ChecklistLayout:
    layout: ChecklistLayout = _per_form("checklist", form, checklist_layout)
    return layout


def _label_cells(form: Form) -> tuple[Cell, Cell, Cell, Cell]:
    """(unit label, unit value, period label, period value) cells of the form's layout."""
    cells: tuple[Cell, Cell, Cell, Cell] = _per_form("label cells", form, _label_cells_of)
    return cells


def _label_cells_of(form: Form) -> tuple[Cell, Cell, Cell, Cell]:
    if isinstance(form, ChecklistForm):
        cl = checklist_layout(form)
        return cl.unit_label_cell, cl.unit_cell, cl.period_label_cell, cl.period_cell
    if isinstance(form, ProgressForm):
        pl = progress_layout(form)
        return pl.unit_label_cell, pl.unit_cell, pl.period_label_cell, pl.period_cell
    ll = LedgerLayout(form=form)
    return ll.unit_label_cell, ll.unit_cell, ll.period_label_cell, ll.period_cell


def _sheet_identity(grid: Grid, form: Form) -> _Identity:
    ul, uv, pl, pv = _label_cells(form)
    unit_key, period_key = label_key(UNIT_LABEL), label_key(PERIOD_LABEL)
    stops = (unit_key, period_key, label_key(getattr(form, "date_label", "时间：")))
    return _Identity(
        unit=_find_after_label(grid, unit_key, ul, uv, stops),
        period=_find_after_label(grid, period_key, pl, pv, stops),
    )


def _resolve_unit(text: Any) -> tuple[str, str] | None:
    """(code, name) of the unit a clerk's text names."""
    shown = clean_text(text)
    if shown is None:
        return None
    units = load_units()
    # a unit's name or one of its aliases (units.csv), each denoting one unit (load_units)
    spellings = {spelling: u for u in units for spelling in (u.name, *u.aliases)}
    name = match_name(shown, list(spellings), UNIT_SUFFIXES, UNIT_PREFIXES)
    if name is None:
        code = fold(shown)
        hit = [u for u in units if u.code == code]
        return (hit[0].code, hit[0].name) if hit else None
    unit = spellings[name]
    return unit.code, unit.name


def _read_book(ret: Return, book: _Book, formulas: dict[str, dict[str, str]] | None = None) -> None:
    forms = load_forms()
    meta = _read_meta(book)
    form: Form | None = None
    if meta.get("form_id"):
        form = forms.get(meta["form_id"])
        if form is None:
            ret.add(
                make_issue("file-form-unknown", sheet=META_SHEET, cell="B1", value=meta["form_id"])
            )
            return
        ret.identified_by = "metadata"
        version = meta.get("form_version", "")
        ret.form_version = version
        if version and version != form.version:
            ret.add(
                make_issue(
                    "file-form-version", sheet=META_SHEET, value=version, current=form.version
                )
            )
    main: list[Grid] = []
    for name in book.content_sheets():
        grid = book.grid(name)
        if grid is None:
            continue
        sheet_form = _form_of_sheet(grid)
        if form is None and sheet_form is not None:
            form = sheet_form
            ret.identified_by = "labels"
        if sheet_form is not None and form is not None and sheet_form.id == form.id:
            main.append(grid)
        elif (
            not grid.is_empty()
            and sheet_form is None
            and form is not None
            and name == form.sheet_name
        ):
            main.append(grid)  # the title was deleted but the sheet kept its name
        elif sheet_form is not None and form is not None:
            ret.add(
                make_issue(
                    "sheet-other-form",
                    sheet=name,
                    other=_form_name(sheet_form),
                    form_name=_form_name(form),
                )
            )
        elif not grid.is_empty():
            ret.add(make_issue("sheet-skipped", sheet=name))
    if form is None:
        ret.add(make_issue("file-unidentified"))
        return
    ret.form_id = form.id
    if not ret.form_version:
        ret.form_version = form.version
    if not main:
        ret.add(make_issue("sheet-missing", expected=form.sheet_name, form_name=_form_name(form)))
        return
    for grid in main:
        if not grid.visible:
            ret.add(make_issue("sheet-hidden", sheet=grid.name))
        # formulas without a usable value read as empty cells: say why, before "not filled in"
        for cell, error in sorted((formulas or {}).get(grid.name, {}).items()):
            code = "value-formula-error" if error else "value-formula-no-result"
            ret.add(make_issue(code, sheet=grid.name, cell=cell, value=error))
    _identify(ret, form, meta, main)
    if isinstance(form, ProgressForm):
        if len(main) > 1:
            for grid in main[1:]:
                ret.add(make_issue("sheet-duplicate", sheet=grid.name, first=main[0].name))
        _read_progress(ret, form, main[0])
    elif isinstance(form, ChecklistForm):
        blank: list[str] = []
        seen: dict[tuple[Any, ...], str] = {}
        named: dict[tuple[str, str], str] = {}  # Inspection.identity -> its first sheet
        for grid in main:
            before = len(ret.issues)
            inspection = _read_checklist(ret, form, grid)
            if inspection is None:
                continue
            if len(ret.issues) == before and _untouched(inspection):
                blank.append(grid.name)  # a spare copy of the sheet, never filled in
                continue
            ret.inspections.append(inspection)
            # a copy of a filled sheet left as it was counts once in the consolidation (same
            # subject and date): say so, it may have been meant for another inspection
            content = inspection.content()
            identity = inspection.identity()
            if content in seen:
                ret.add(make_issue("checklist-sheet-copy", sheet=grid.name, first=seen[content]))
            else:
                seen[content] = grid.name
                if identity is not None and identity in named:
                    # another inspection, or the same one filled twice: both count, and the
                    # clerk is asked which (the consolidation keeps both, see _inspection_keys)
                    ret.add(
                        make_issue(
                            "checklist-same-inspection",
                            sheet=grid.name,
                            first=named[identity],
                            subject=inspection.subject(),
                            date=identity[1],
                        )
                    )
                if identity is not None:
                    named.setdefault(identity, grid.name)
        for name in blank:
            if ret.inspections:
                ret.add(make_issue("checklist-blank-sheet", sheet=name))
            else:
                ret.add(make_issue("checklist-empty", sheet=name))
    else:
        if len(main) > 1:
            for grid in main[1:]:
                ret.add(make_issue("sheet-duplicate", sheet=grid.name, first=main[0].name))
        _read_ledger(ret, form, main[0])


def _form_name(form: Form) -> str:
    return f"{form.annex} {form.title}" if form.annex != "台账" else form.title


def _identify(ret: Return, form: Form, meta: dict[str, str], grids: list[Grid]) -> None:
    """Unit and period from the metadata, checked against (or else taken from) the sheet."""
    meta_unit = None
    if meta.get("unit_code") or meta.get("unit_name"):
        by_code, by_name = _units_by_code_and_name(load_units())
        unit = by_code.get(meta.get("unit_code")) or by_name.get(meta.get("unit_name"))
        if unit is not None:
            meta_unit = (unit.code, unit.name)
        else:
            shown = meta.get("unit_name") or meta.get("unit_code")
            ret.add(make_issue("unit-unknown", sheet=META_SHEET, value=shown))
    meta_period = None
    if meta.get("period"):
        try:
            meta_period = to_period(meta["period"])
        except NormalizeError:
            meta_period = None
    if meta_unit:
        ret.unit_code, ret.unit_name = meta_unit
    if meta_period:
        ret.period = meta_period
    for grid in grids:
        ident = _sheet_identity(grid, form)
        _check_unit(ret, ident.unit, meta_unit, grid, form)
        _check_period(ret, ident.period, meta_period, grid, form)
    if ret.unit_code is None and not _has(
        ret, "unit-unknown", "meta-unit-mismatch", "label-missing"
    ):
        ret.add(make_issue("unit-missing", sheet=grids[0].name, cell=_label_cells(form)[1].a1))
    if ret.period is None and not _has(
        ret, "period-invalid", "meta-period-mismatch", "label-missing"
    ):
        ret.add(make_issue("period-missing", sheet=grids[0].name, cell=_label_cells(form)[3].a1))
    calendar = load_calendar()
    if ret.period is not None and ret.period not in _periods(calendar):
        ret.add(
            make_issue(
                "period-out-of-campaign",
                sheet=grids[0].name,
                cell=_label_cells(form)[3].a1,
                value=period_label(ret.period),
                first=period_label(calendar.first_period),
                last=period_label(calendar.last_period),
            )
        )


def _units_by_code_and_name(
    units: tuple[Unit, ...],
) -> tuple[dict[Any, Unit], dict[Any, Unit]]:
    found: tuple[dict[Any, Unit], dict[Any, Unit]] = _per_form("units", units, _index_units)
    return found


def _index_units(units: tuple[Unit, ...]) -> tuple[dict[Any, Unit], dict[Any, Unit]]:
    """The first unit with each code and with each name (as a scan of the table finds it)."""
    by_code: dict[Any, Unit] = {}
    by_name: dict[Any, Unit] = {}
    for unit in units:
        by_code.setdefault(unit.code, unit)
        by_name.setdefault(unit.name, unit)
    return by_code, by_name


def _periods(calendar: Calendar) -> frozenset[str]:
    periods: frozenset[str] = _per_form("periods", calendar, lambda c: frozenset(c.periods))
    return periods


def _has(ret: Return, *codes: str) -> bool:
    return any(i.rule in codes for i in ret.issues)


def _check_unit(
    ret: Return, found: _Found | None, meta_unit: tuple[str, str] | None, grid: Grid, form: Form
) -> None:
    if found is None:
        if meta_unit is None:
            ret.add(
                make_issue(
                    "label-missing",
                    sheet=grid.name,
                    cell=_label_cells(form)[0].a1,
                    label=UNIT_LABEL.rstrip("："),
                )
            )
        return
    if is_blank(found.value):
        return
    unit = _resolve_unit(found.value)
    cell = found.value_cell.a1
    shown = display(found.value)
    if unit is None:
        ret.add(make_issue("unit-unknown", sheet=grid.name, cell=cell, value=shown))
        return
    if meta_unit is not None and unit != meta_unit:
        ret.add(
            make_issue(
                "meta-unit-mismatch", sheet=grid.name, cell=cell, value=shown, expected=meta_unit[1]
            )
        )
        return
    if ret.unit_code is None:
        ret.unit_code, ret.unit_name = unit
    elif (ret.unit_code, ret.unit_name) != unit:
        ret.add(
            make_issue(
                "meta-unit-mismatch",
                sheet=grid.name,
                cell=cell,
                value=shown,
                expected=ret.unit_name,
            )
        )


def _check_period(
    ret: Return, found: _Found | None, meta_period: str | None, grid: Grid, form: Form
) -> None:
    if found is None:
        if meta_period is None:
            ret.add(
                make_issue(
                    "label-missing",
                    sheet=grid.name,
                    cell=_label_cells(form)[2].a1,
                    label=PERIOD_LABEL.rstrip("："),
                )
            )
        return
    if is_blank(found.value):
        return
    cell = found.value_cell.a1
    shown = display(found.value)
    try:
        period = to_period(found.value)
    except NormalizeError as exc:
        ret.add(
            make_issue("period-invalid", sheet=grid.name, cell=cell, value=shown, reason=exc.reason)
        )
        return
    assert period is not None
    if meta_period is not None and period != meta_period:
        ret.add(
            make_issue(
                "meta-period-mismatch",
                sheet=grid.name,
                cell=cell,
                value=shown,
                expected=period_label(meta_period),
            )
        )
        return
    if ret.period is None:
        ret.period = period
    elif ret.period != period:
        ret.add(
            make_issue(
                "meta-period-mismatch",
                sheet=grid.name,
                cell=cell,
                value=shown,
                expected=period_label(ret.period),
            )
        )


# --- 附件4 ---------------------------------------------------------------------------------------


def _typed_in(grid: Grid, row: int, first: int, last: int) -> list[tuple[int, Any]]:
    """(column, value) of the cells holding something in columns first..last of `row`."""
    found = ((c, grid.get(row, c)) for c in range(first, last + 1))
    return [(c, v) for c, v in found if not is_blank(v)]


def _read_progress(ret: Return, form: ProgressForm, grid: Grid) -> None:
    lay = progress_layout(form)
    items = {it.code: it for s in form.sections for it in s.items}
    for cells in lay.items:
        item = items[cells.code]
        key = label_key(item.label)
        expected = cells.label_cell
        if label_key(grid.get(expected.row, expected.col)) == key:
            dr = dc = 0
        else:
            spots = grid.find(key)
            if not spots:
                for code, _cap, input_cell, _merge in cells.inputs:
                    ret.progress_cells[code] = (grid.name, input_cell.a1)
                ret.add(
                    make_issue("label-missing", sheet=grid.name, cell=expected.a1, label=item.label)
                )
                continue
            dr, dc = spots[0][0] - expected.row, spots[0][1] - expected.col
        for code, _cap, input_cell, merge in cells.inputs:
            row, col = input_cell.row + dr, input_cell.col + dc
            raw = grid.get(row, col)
            # a broken merge: the clerk typed into another part of it (the right half); into
            # two parts, two figures, of which the sheet cannot say which one is meant
            parts = [] if merge is None else _typed_in(grid, row, col, merge.last.col + dc)
            if is_blank(raw) and len(parts) == 1:
                col, raw = parts[0]
            address = a1(row, col)
            ret.progress_cells[code] = (grid.name, address)
            value = form.value(code)
            try:
                if len(parts) > 1:
                    cells_typed = "、".join(f"{a1(row, c)}（“{display(v)}”）" for c, v in parts)
                    raise NormalizeError(
                        "value-ambiguous",
                        f"，但本栏原是一个合并格，拆开后 {cells_typed}各填了内容，无法确定以哪个为准，"
                        "请只在一格填写",
                    )
                number = to_number(raw, money=value.is_money)
            except NormalizeError as exc:
                ret.add(_value_issue(exc, grid.name, address, raw, progress_label(form, code)))
                continue
            if number is not None:
                ret.progress[code] = number
                typed = unit_mismatch(raw, value.unit)
                if typed is not None:
                    ret.add(
                        make_issue(
                            "value-unit-mismatch",
                            sheet=grid.name,
                            cell=address,
                            value=display(raw),
                            label=progress_label(form, code),
                            typed=typed,
                            unit=value.unit,
                            number=format(number.normalize(), "f"),  # "3.0个" read as 3
                        )
                    )
    date_found = _find_after_label(
        grid, label_key(form.date_label), lay.date_label_cell, lay.date_cell, ()
    )
    if date_found is not None and not is_blank(date_found.value):
        try:
            ret.report_date = to_date(date_found.value)
            _check_report_date(ret, form, grid.name, date_found.value_cell.a1)
        except NormalizeError as exc:
            issue = _value_issue(
                exc,
                grid.name,
                date_found.value_cell.a1,
                date_found.value,
                form.date_label.rstrip("："),
            )
            issue.severity = "warning"
            ret.add(issue)


# 时间 (the day the 附件4 was filled in) more than this long after its period's end is a typo
# (2024 for 2023), not a late return: returns are due on the 1st of the next month
REPORT_DATE_SLACK = dt.timedelta(days=183)


def _check_report_date(ret: Return, form: ProgressForm, sheet: str, cell: str) -> None:
    """Warn about a 时间 that cannot be the day the figures were filled in: before the period
    began (the figures run to its end), or half a year and more after it ended."""
    day, period = ret.report_date, ret.period
    if day is None or period is None:
        return
    end = period_end(period)
    start = end.replace(day=1)
    if start <= day <= end + REPORT_DATE_SLACK:
        return
    ret.add(
        make_issue(
            "progress-date-implausible",
            sheet=sheet,
            cell=cell,
            value=day.isoformat(),
            label=form.date_label.rstrip("："),
            period_label=period_label(period),
            when="早于该月开始" if day < start else "比期末晚半年以上",
        )
    )


def progress_label(form: ProgressForm, code: str, *, beside: str | None = None) -> str:
    """How messages name a 附件4 value, the way the paper form does: 总体情况第4项“…（个）”, or
    辖区部门精准严格执法情况第3项“行政处罚（次，万元）”中的“万元”. Never the stable code (A4,
    C3b): on the sheet it reads as a cell address, and a different cell at that. With `beside`
    (another value's code) in the same section, the section is left out: 第3项“…”."""
    for section in form.sections:
        for item in section.items:
            for value in item.values:
                if value.code != code:
                    continue
                same = beside is not None and any(
                    v.code == beside for it in section.items for v in it.values
                )
                name = f"{'' if same else section.label}第{item.no}项“{item.label}”"
                return f"{name}中的“{value.sub_label}”" if len(item.values) > 1 else name
    raise KeyError(code)


def _value_issue(
    exc: NormalizeError, sheet: str, cell: str, raw: Any, label: str, **fields: Any
) -> Issue:
    return make_issue(
        exc.code,
        sheet=sheet,
        cell=cell,
        value=display(raw),
        label=label,
        reason=exc.reason,
        **fields,
    )


# --- 附件1–3 --------------------------------------------------------------------------------------


@dataclass
class _ChecklistColumns:
    header_row: int  # the top header row
    cols: dict[str, int]
    missing: list[str] = field(default_factory=list)  # keys of columns whose header is not there


# Columns that only show the template's own text: a sheet without one is still read by 序号
_TEXT_COLUMNS = frozenset({"category", "matter", "content"})


def _checklist_columns(grid: Grid, lay: ChecklistLayout) -> _ChecklistColumns | None:
    """Where each column of the checklist is: the layout's place if the headers are there,
    else found by the header texts (columns may have been inserted or deleted). None when no
    row of the sheet looks like the header; else the columns found and the ones missing."""
    top, _sub = lay.header_rows
    expected = {c.key: i for i, c in enumerate(lay.columns)}
    if _headers_match(grid, lay, top, expected):
        return _ChecklistColumns(top, expected)
    # the header row: where the most of the top headers are (序号 itself may be the one deleted)
    best: _ChecklistColumns | None = None
    for r in sorted({r for h in _top_headers(lay) for r, _c in grid.find(label_key(h))}):
        cols, missing = _columns_by_header(grid, lay, r)
        if best is None or len(missing) < len(best.missing):
            best = _ChecklistColumns(r, cols, missing)
        if not missing:
            break
    if best is None or len(best.missing) * 2 > len(lay.columns):
        return None  # too little of the header to say it is one
    return best


def _top_headers(lay: ChecklistLayout) -> list[str]:
    return list(dict.fromkeys(c.header for c in lay.columns))


def _headers_match(grid: Grid, lay: ChecklistLayout, top: int, cols: dict[str, int]) -> bool:
    seen_groups: set[str] = set()
    for column in lay.columns:
        c = cols[column.key]
        if column.group:
            if label_key(grid.get(top + 1, c)) != label_key(column.sub_header):
                return False
            if column.group not in seen_groups:
                seen_groups.add(column.group)
                if label_key(grid.get(top, c)) != label_key(column.header):
                    return False
        elif label_key(grid.get(top, c)) != label_key(column.header):
            return False
    return True


def _columns_by_header(
    grid: Grid, lay: ChecklistLayout, top: int
) -> tuple[dict[str, int], list[str]]:
    """The columns whose header is on row `top` (a group's sub-headers on the row below, under
    its merged top header and before the next one), and the keys of those that are not."""
    width = max(_width(grid, top), _width(grid, top + 1))
    head = {label_key(grid.get(top, c)): c for c in reversed(range(width)) if grid.get(top, c)}
    cols: dict[str, int] = {}
    missing: list[str] = []
    groups: dict[str, list[Any]] = {}
    for column in lay.columns:
        if column.group:
            groups.setdefault(column.group, []).append(column)
            continue
        c = head.get(label_key(column.header))
        if c is None:
            missing.append(column.key)
        else:
            cols[column.key] = c
    for members in groups.values():
        start = head.get(label_key(members[0].header))
        if start is None:
            missing += [m.key for m in members]
            continue
        end = next((c for c in range(start + 1, width) if grid.get(top, c) is not None), width)
        c = start
        for column in members:
            at = next(
                (
                    x
                    for x in range(c, end)
                    if label_key(grid.get(top + 1, x)) == label_key(column.sub_header)
                ),
                None,
            )
            if at is None:
                missing.append(column.key)
                continue
            cols[column.key] = at
            c = at + 1
    order = {c.key: i for i, c in enumerate(lay.columns)}
    return cols, sorted(missing, key=order.__getitem__)


def _item_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        text = fold(value).strip(".、()")  # "1." "1、" "(1)" as clerks renumber
        if text.isdigit():
            return int(text)
    return None


def _read_checklist(ret: Return, form: ChecklistForm, grid: Grid) -> Inspection | None:
    lay = _checklist_layout(form)
    found = _checklist_columns(grid, lay)
    if found is None:
        ret.add(
            make_issue(
                "label-missing",
                sheet=grid.name,
                cell=Cell(lay.header_rows[0], 0).a1,
                label="序号/检查结果 表头",
            )
        )
        return None
    if found.missing and not _report_missing_columns(ret, lay, grid, found):
        return None
    cols = found.cols
    wanted = {it.no for it in form.items}
    rows: dict[int, int] = {}
    others: list[int] = []  # rows among and below the items that are not an item's row
    footer_keys = {label_key(f.label) for f in form.footer}
    last_row = grid.height
    no_col = cols["no"]
    for r in range(found.header_row + 2, grid.height):
        # a footer label in one of the first three cells ends the items ("" reads as None)
        line = grid.rows[r]
        if not line and "" in footer_keys:
            last_row = r
            break
        for value in line[:3]:
            if label_key(value) in footer_keys:
                break
        else:
            value = line[no_col] if no_col < len(line) else None
            no = _item_number(None if value == "" else value)
            if no is not None and no in wanted and no not in rows:
                rows[no] = r
            else:
                others.append(r)
            continue
        last_row = r
        break
    if others:
        _report_extra_rows(ret, form, grid, cols, others, rows)
    inspection = Inspection(sheet=grid.name)
    tick_cols = [(answer, cols[f"tick_{i}"]) for i, answer in enumerate(TICKS)]
    tick_bounds = _bounds([c for _a, c in tick_cols])
    major_cols = (
        [("是", cols["major_yes"]), ("否", cols["major_no"])] if form.has_major_column else []
    )
    major_bounds = _bounds([c for _a, c in major_cols]) if major_cols else (0, 0)
    has_major = form.has_major_column
    c_tick, c_deadline = cols["tick_0"], cols["deadline"]
    c_description, c_requirement = cols["description"], cols["requirement"]
    c_major = cols["major_yes"] if has_major else 0
    get = grid.get
    for item in form.items:
        item_row = rows.get(item.no)
        if item_row is None:
            ret.add(
                make_issue(
                    "checklist-item-missing",
                    sheet=grid.name,
                    cell=a1(lay.item_row(item.no), cols["no"]),
                    no=item.no,
                )
            )
            continue
        r = item_row
        ticks, tick_error = _read_ticks(ret, grid, r, tick_cols, item.no, TICK_LABEL)
        major_ticks: list[str] = []
        major_error = False
        if has_major:
            major_ticks, major_error = _read_ticks(ret, grid, r, major_cols, item.no, MAJOR_LABEL)
        deadline_raw = get(r, c_deadline)
        deadline_error = False
        if deadline_raw is None:
            deadline = None
        else:
            try:
                deadline = to_date(deadline_raw)
            except NormalizeError as exc:
                deadline, deadline_error = None, True
                ret.add(
                    _value_issue(
                        exc,
                        grid.name,
                        a1(r, c_deadline),
                        deadline_raw,
                        f"第 {item.no} 项整改时限",
                    )
                )
        tick_cell = _a1(r, c_tick)
        # the item's cell: the tick given (the hazard answer of a hazard), else the first column
        answered = dict(tick_cols).get(ticks[0]) if len(ticks) == 1 else None
        inspection.item_cells[item.no] = tick_cell if answered is None else _a1(r, answered)
        if len(ticks) == 1:
            inspection.answers[item.no] = ticks[0]
        cells = {
            "tick": tick_cell,
            "description": _a1(r, c_description),
            "requirement": _a1(r, c_requirement),
            "deadline": _a1(r, c_deadline),
        }
        # (row, first col, last col) of the tick groups: the tick rules name the whole
        # group (E8:G8) so an annotated copy marks every cell of it (A1 text made on demand)
        spans = {"ticks": (r, *tick_bounds)}
        if has_major:
            cells["major"] = _a1(r, c_major)
            spans["majors"] = (r, *major_bounds)
        inspection.details[item.no] = {
            "description": clean_text(get(r, c_description)),
            "requirement": clean_text(get(r, c_requirement)),
            "deadline": deadline,
            "major": major_ticks[0] if len(major_ticks) == 1 else None,
            "ticks": tuple(ticks),
            "major_ticks": tuple(major_ticks),
            "tick_error": tick_error,
            "major_error": major_error,
            "deadline_error": deadline_error,
            "row": r + 1,
            "cells": cells,
            "spans": spans,
        }
    _read_footer(ret, form, lay, grid, inspection, last_row, found.header_row - lay.header_rows[0])
    return inspection


def _report_missing_columns(
    ret: Return, lay: ChecklistLayout, grid: Grid, found: _ChecklistColumns
) -> bool:
    """One issue per column whose header is not on the header row, at the header cell where
    the template has it. A column of the template's own text (检查类别, 重点检查事项, 检查内容)
    is only a warning: items are found by 序号 and the answers by their headers, so nothing
    is misread without it. Any other missing column is an error. Whether the sheet can be read."""
    shift = found.cols["no"] - lay.col("no") if "no" in found.cols else 0
    seen = {c.header for c in lay.columns if c.key in found.cols}
    readable = True
    for key in found.missing:
        column = lay.columns[lay.col(key)]
        label = f"{column.header}（{column.sub_header}）" if column.group else column.header
        # a group's column missing under its header: name the sub-header cell
        row = found.header_row + (1 if column.group and column.header in seen else 0)
        text_only = key in _TEXT_COLUMNS
        readable = readable and text_only
        ret.add(
            make_issue(
                "checklist-text-column-missing" if text_only else "checklist-column-missing",
                sheet=grid.name,
                cell=a1(row, lay.col(key) + shift),
                label=label,
            )
        )
    return readable


def _report_extra_rows(
    ret: Return,
    form: ChecklistForm,
    grid: Grid,
    cols: dict[str, int],
    others: list[int],
    rows: dict[int, int],
) -> None:
    """An error for each row among or directly below the items that is not a template item's
    row yet holds a tick or text where answers go: a clerk's own extra item (or a second copy
    of an item's row) would otherwise be dropped without a word. Empty rows inserted for room
    are fine; so is a row that is a template item whose 序号 was lost (checklist-item-missing
    names that one)."""
    answer_keys = [k for k in cols if k.startswith(("tick_", "major_"))]
    answer_keys += ["description", "requirement", "deadline"]
    answer_cols = sorted(cols[k] for k in answer_keys)
    lost = {
        label_key(text)
        for it in form.items
        if it.no not in rows
        for text in (it.matter, it.content)
        if text
    }
    first_col, last_col = min(cols.values()), max(cols.values())
    for r in others:
        filled = [c for c in answer_cols if not is_blank(grid.get(r, c))]
        if not filled:
            continue
        line = grid.rows[r]
        if lost and any(label_key(v) in lost for v in line):
            continue
        shown = next(
            (
                grid.get(r, c)
                for c in (cols.get("matter"), cols.get("content"), *filled)
                if c is not None and not is_blank(grid.get(r, c))
            ),
            None,
        )
        ret.add(
            make_issue(
                "checklist-extra-row",
                sheet=grid.name,
                cell=f"{_a1(r, first_col)}:{_a1(r, last_col)}",
                value=display(shown),
                row=r + 1,
                cells="、".join(_a1(r, c) for c in filled),
                description=form.description_label,
            )
        )


def _bounds(cols: list[int]) -> tuple[int, int]:
    return min(cols), max(cols)


def _read_ticks(
    ret: Return, grid: Grid, row: int, columns: list[tuple[str, int]], no: int, label: str
) -> tuple[list[str], bool]:
    """(answers ticked, whether a cell could not be read) for one row's group of tick columns.

    A cross (x, ×) is read as a tick in no column: where another column of the group has a
    proper tick it is only a warning at the cross, otherwise an error there (the clerk may have
    meant that very column), which stands in for "nothing ticked"."""
    line = grid.rows[row] if 0 <= row < len(grid.rows) else []
    width = len(line)
    plain: list[str] = []
    for answer, c in columns:
        raw = line[c] if 0 <= c < width else None
        if raw is None or raw == "":
            continue
        if type(raw) is str and raw in TICK_MARKS:  # to_tick(raw) is True, nothing to say
            plain.append(answer)
            continue
        break
    else:
        return plain, False  # every cell empty or plainly ticked: as to_tick reads them
    ticks: list[str] = []
    crosses: list[tuple[str, int, Any]] = []
    error = False
    for answer, c in columns:
        raw = grid.get(row, c)
        try:
            if to_tick(raw):
                ticks.append(answer)
        except NormalizeError as exc:
            if exc.code == "tick-cross":
                crosses.append((answer, c, raw))
                continue
            error = True
            cell = a1(row, c)
            ret.add(
                _value_issue(
                    exc, grid.name, cell, raw, label.format(no=no, answer=answer), marks=TICK_HELP
                )
            )
    for answer, c, raw in crosses:
        ret.add(
            make_issue(
                "tick-cross-ignored" if ticks else "tick-cross",
                sheet=grid.name,
                cell=a1(row, c),
                value=display(raw),
                label=label.format(no=no, answer=answer),
                marks=TICK_HELP,
                ticked="”“".join(ticks),
            )
        )
    return ticks, error or (bool(crosses) and not ticks)


def _untouched(inspection: Inspection) -> bool:
    """Nothing ticked or written anywhere on the sheet (unit and period are prefilled)."""
    for details in inspection.details.values():
        if details["ticks"] or details["major_ticks"]:
            return False
        if any(details[k] is not None for k in ("description", "requirement", "deadline")):
            return False
    return all(v is None for v in inspection.footer.values())


def _read_footer(
    ret: Return,
    form: ChecklistForm,
    lay: ChecklistLayout,
    grid: Grid,
    inspection: Inspection,
    first_row: int,
    shift: int,
) -> None:
    stops, places = _per_form("footer", form, lambda _f: _footer_places(form, lay))
    for f, (key, label_at, value_at) in zip(form.footer, places, strict=True):
        expected_label = Cell(label_at.row + shift, label_at.col)
        expected_value = Cell(value_at.row + shift, value_at.col)
        found = _find_after_label(
            grid, key, expected_label, expected_value, stops, scan_in_place=True
        )
        if found is None:
            ret.add(
                make_issue("label-missing", sheet=grid.name, cell=expected_label.a1, label=f.label)
            )
            continue
        inspection.footer_cells[f.key] = found.value_cell.a1
        if f.type == "date":
            try:
                inspection.footer[f.key] = to_date(found.value)
            except NormalizeError as exc:
                inspection.footer[f.key] = None
                ret.add(_value_issue(exc, grid.name, found.value_cell.a1, found.value, f.label))
        else:
            inspection.footer[f.key] = clean_text(found.value)
    del first_row


def _footer_places(
    form: ChecklistForm, lay: ChecklistLayout
) -> tuple[tuple[str, ...], list[tuple[str, Cell, Cell]]]:
    """The footer labels as compared, and each field's (label key, label cell, value cell)."""
    stops = tuple(label_key(x.label) for x in form.footer)
    places = [
        (label_key(f.label), lay.footer_label_cell(f.key), lay.footer_cell(f.key))
        for f in form.footer
    ]
    return stops, places


# --- 台账 --------------------------------------------------------------------------------------------


def _read_ledger(ret: Return, form: LedgerForm, grid: Grid) -> None:
    lay = LedgerLayout(form=form)
    keys = {label_key(c.label): c.key for c in form.columns}
    first_key = label_key(form.columns[0].label)
    header_row = None
    if label_key(grid.get(lay.header_row, 0)) == first_key:
        header_row = lay.header_row
    else:
        for r, _c in grid.find(first_key):
            header_row = r
            break
        if header_row is None:
            # any header label will do to find the row
            for column in form.columns:
                spots = grid.find(label_key(column.label))
                if spots:
                    header_row = spots[0][0]
                    break
    columns: dict[str, int] = {}
    if header_row is not None:
        for c in range(_width(grid, header_row)):
            key = keys.get(label_key(grid.get(header_row, c)))
            if key is not None and key not in columns:
                columns[key] = c
    header = header_row if header_row is not None else lay.header_row
    told: set[str] = set()  # missing columns an issue at a renamed header already names
    if header_row is not None:
        told = _unknown_headers(ret, form, grid, header_row, columns)
    for column in form.columns:
        if column.key not in columns and column.key not in told:
            issue = make_issue(
                "ledger-column-missing",
                sheet=grid.name,
                cell=a1(header, lay.col(column.key)),
                label=column.label,
            )
            if not _column_needed(column):
                issue.severity = "warning"
            ret.add(issue)
    order = [c.key for c in form.columns]
    data: dict[str, list[Any]] = {key: [] for key in order}
    rows: list[int] = []
    if header_row is not None and columns:
        _merged_ledger_cells(ret, form, grid, header_row, columns)
        rows = _read_ledger_rows(ret, form, grid, header_row, columns, data)
    # object columns keep None for empty cells (inference would turn text columns into a
    # string dtype with NaN), dates as dt.date and money as Decimal; built as one object
    # block (a frame of Series would align their indexes: a few ms per ledger)
    cells = np.empty((len(rows), len(order) + 1), dtype=object)
    for j, key in enumerate(order):
        cells[:, j] = data[key]
    cells[:, -1] = grid.name
    frame = pd.DataFrame(cells, columns=[*order, "_sheet"], dtype=object, copy=False)
    frame["_row"] = np.array(rows, dtype="int64")
    frame.attrs["columns"] = {key: col for key, col in columns.items()}
    ret.ledger = frame


def _unknown_headers(
    ret: Return, form: LedgerForm, grid: Grid, header_row: int, columns: dict[str, int]
) -> set[str]:
    """Report each column that holds data below `header_row` under a header that names no
    ledger column (or under an empty header): its content would not be consolidated (DESIGN
    §9). A header where a missing column belongs (after the column found before it in the
    form's order) is taken for that column renamed: one error there names it, the column's own
    ledger-column-missing when it is required, else ledger-column-unknown. Any other such
    column is a ledger-column-extra warning (an inserted 序号 column). Return the keys of the
    missing columns so named."""
    lines = grid.rows[header_row + 1 :]
    width = max([_width(grid, header_row), *map(len, lines)])
    known = set(columns.values())
    labels = {label_key(c.label): c.key for c in form.columns}
    unknown: list[int] = []
    for c in range(width):
        if c in known or not any(not is_blank(v) for v in _column(lines, c)):
            continue
        key = labels.get(label_key(grid.get(header_row, c)))
        if key is None:
            unknown.append(c)
            continue
        # a label given twice: the first column of it is read, this one's data would be lost
        ret.add(
            make_issue(
                "ledger-column-duplicate",
                sheet=grid.name,
                cell=a1(header_row, c),
                value=display(grid.get(header_row, c)),
                label=form.column(key).label,
                first=a1(header_row, columns[key]),
            )
        )
    if not unknown:
        return set()
    # where each missing column belongs: after the column found before it (-1: the first)
    after: dict[int, list[LedgerColumn]] = {}
    previous = -1
    for column in form.columns:
        if column.key in columns:
            previous = columns[column.key]
        else:
            after.setdefault(previous, []).append(column)
    told: set[str] = set()
    taken: dict[int, int] = {}  # start -> how many of its missing columns are paired
    for c in unknown:
        text = grid.get(header_row, c)
        shown = "" if is_blank(text) else display(text).strip()
        header = f"表头“{shown}”" if shown else "表头为空的这一列"
        cell = a1(header_row, c)
        start = max((k for k in known if k < c), default=-1)
        here = after.get(start, [])
        n = taken.get(start, 0)
        if n < len(here):  # where a missing column belongs: that column, renamed
            column = here[n]
            taken[start] = n + 1
            told.add(column.key)
            if column.required:
                ret.add(
                    make_issue(
                        "ledger-column-missing",
                        sheet=grid.name,
                        cell=cell,
                        value=shown,
                        label=column.label,
                    )
                )
                continue
            ret.add(
                make_issue(
                    "ledger-column-unknown",
                    sheet=grid.name,
                    cell=cell,
                    value=shown,
                    header=header,
                    missing=f"“{column.label}”",
                )
            )
            continue
        # not where a missing column belongs (an inserted 序号 column, say): an extra column;
        # a missing column is then told by its own ledger-column-missing
        ret.add(
            make_issue(
                "ledger-column-extra", sheet=grid.name, cell=cell, value=shown, header=header
            )
        )
    return told


# Columns the ledger's row rules read besides the required ones and the 五落实 (open_required):
# the status and supervision rules'. Without one of them a rule cannot see what it must (a 已验收销号
# hazard's 验收人), so a file lacking it is rejected like one lacking a required column; only
# the columns no rule reads (统一社会信用代码, 判定依据, 备注) may be missing with a warning.
# tests/test_read.py checks this set against validate.ledger_operands.
LEDGER_RULE_COLUMNS = frozenset(
    {"rectified_date", "accepted_by", "closed_date", "supervision_level"}
)


def _column_needed(column: LedgerColumn) -> bool:
    return column.required or column.open_required or column.key in LEDGER_RULE_COLUMNS


def _read_ledger_rows(
    ret: Return,
    form: LedgerForm,
    grid: Grid,
    header_row: int,
    columns: dict[str, int],
    data: dict[str, list[Any]],
) -> list[int]:
    """Fill `data` (column key -> values) with the ledger rows below `header_row` that are not
    blank in every column found, and return their 1-based row numbers. Read column by column;
    a value that cannot be read is None there and an issue, in row order then column order."""
    lines = grid.rows[header_row + 1 :]
    count = len(lines)
    # the columns as tuples ("" for an empty cell reads as None does: blank), at once when
    # every line is as wide (calamine's are)
    by_col: list[Sequence[Any]] | None = None
    if lines and len(set(map(len, lines))) == 1 and len(lines[0]) > max(columns.values()):
        by_col = list(zip(*lines, strict=True))
    found: dict[str, list[Any]] = {}
    failures: list[tuple[int, int, NormalizeError]] = []  # (line, column position, error)
    for position, column in enumerate(form.columns):
        c = columns.get(column.key)
        if c is None:
            continue
        values = by_col[c] if by_col is not None else _column(lines, c)
        found[column.key], errors = convert_column(
            _ledger_converter(column.type, column.choices), values
        )
        failures.extend((i, position, exc) for i, exc in errors.items())
    # a row is blank when every column read as None (a converter returns None for a blank cell
    # only, and a blank cell never fails)
    blank = set(range(count))
    for results in found.values():  # the first column alone usually rules out most rows
        if not blank:
            break
        blank = {i for i in blank if results[i] is None}
    blank.difference_update(i for i, _p, _e in failures)
    keep = [i for i in range(count) if i not in blank] if blank else list(range(count))
    footers = _footer_rows(form, found, lines, columns, keep)
    if footers:  # one issue for such a line, not one for each of its empty required cells
        for i, (c, text) in footers.items():
            r = header_row + 1 + i
            ret.add(
                make_issue(
                    "ledger-footer-row",
                    sheet=grid.name,
                    cell=a1(r, c),
                    value=text,
                    row=r + 1,
                    text=text if len(text) <= 30 else text[:30] + "…",
                )
            )
        keep = [i for i in keep if i not in footers]
        failures = [f for f in failures if f[0] not in footers]
    failures.sort(key=lambda f: (f[0], f[1]))
    for i, position, exc in failures:
        column = form.columns[position]
        r = header_row + 1 + i
        ret.add(
            _value_issue(
                exc,
                grid.name,
                a1(r, columns[column.key]),
                _column(lines[i : i + 1], columns[column.key])[0],
                f"第 {r + 1} 行{column.label}",
                row=r + 1,
            )
        )
    everything = len(keep) == count
    for key in data:
        if key not in found:
            data[key] = [None] * len(keep)
        else:
            data[key] = found[key] if everything else [found[key][i] for i in keep]
    return [header_row + 2 + i for i in keep]


# A merged area reaching this many rows past the last row read is formatting, not data
MERGED_SLACK_ROWS = 100


def _merged_ledger_cells(
    ret: Return, form: LedgerForm, grid: Grid, header_row: int, columns: dict[str, int]
) -> None:
    """A merged area down ledger rows (企业名称 merged over a company's three hazards) shows its
    value on every row it covers, but the file holds it in the first row only: one error per
    area, naming it, and the value is read into the other rows with content, so they do not
    each get a 未填写 error for a cell the clerk sees filled (the file is rejected anyway).

    Only areas that lose something count: over two or more data rows (below the header), with a
    value, in a ledger column. A merge within one row (备注 widened to the right, a 合计 or
    signature line across the table) holds its value where it is read; an empty area, or one
    reaching far below the data (a whole column merged), is formatting."""
    labels = {c: col.label for col in form.columns if (c := columns.get(col.key)) is not None}
    for (r0, c0), (r1, c1) in grid.merged:
        if (
            r0 <= header_row
            or r1 <= r0
            or c1 < c0
            or r0 >= grid.height
            or r1 >= grid.height + MERGED_SLACK_ROWS
        ):
            continue
        value = grid.get(r0, c0)
        named = [labels[c] for c in range(c0, c1 + 1) if c in labels]
        if is_blank(value) or not named:
            continue
        area = f"{a1(r0, c0)}:{a1(r1, c1)}"
        shown = "、".join(f"“{n}”" for n in named[:3]) + (
            f"等 {len(named)} 列" if len(named) > 3 else ""
        )
        ret.add(
            make_issue(
                "ledger-merged-cells",
                sheet=grid.name,
                cell=area,
                value=display(value),
                area=area,
                labels=shown,
                first=r0 + 1,
                last=r1 + 1,
            )
        )
        for r in range(r0, min(r1, grid.height - 1) + 1):
            line = grid.rows[r]
            if r > r0:
                others = (v for c, v in enumerate(line) if c in labels and not c0 <= c <= c1)
                if not any(not is_blank(v) for v in others):
                    continue  # a row with nothing else in it stays blank
            for c in range(c0, min(c1 + 1, len(line))):
                line[c] = value


# What a 合计 or signature line below a ledger's hazards starts with (spaces and width folded)
_FOOTER_WORDS = re.compile(
    r"(合计|小计|总计|共计|共\d+条|填表人|填报人|制表人|制表|审核人|审核|复核人|负责人|单位负责人|"
    r"联系人|联系电话|电话|填表日期|填报日期|报送日期|以下空白|以下无|注[:：]|说明[:：])"
)
_FOOTER_FIRST = frozenset("合小总共填制审复负单联电报以注说")  # the words' first characters


def _footer_rows(
    form: LedgerForm,
    found: dict[str, list[Any]],
    lines: list[list[Any]],
    columns: dict[str, int],
    keep: list[int],
) -> dict[int, tuple[int, str]]:
    """The rows (line index -> (column, its text)) that are a 合计 or signature line, not a
    hazard: the first cell with anything in it (in any column: a 合计 may sit in an inserted
    序号 column) starts with _FOOTER_WORDS, and fewer than half the ledger's columns read a
    value. A hazard number never starts so; a real row fills most columns."""
    order = sorted((c, key) for key, c in columns.items() if key in found)
    if not order:
        return {}
    first = found[order[0][1]]
    out: dict[int, tuple[int, str]] = {}
    for i in keep:
        value = first[i]
        # the usual row, at a glance: its first cell is a hazard number, no such word
        if value is not None and not (isinstance(value, str) and value[:1] in _FOOTER_FIRST):
            continue
        if 2 * sum(1 for _c, key in order if found[key][i] is not None) >= len(form.columns):
            continue
        line = lines[i]
        c = next((c for c, v in enumerate(line) if not is_blank(v)), None)
        if c is None:
            continue
        text = display(line[c]).strip()
        if _FOOTER_WORDS.match(fold(text)):
            out[i] = (c, text)
    return out


def _column(lines: list[list[Any]], c: int) -> list[Any]:
    """Column `c` of `lines` as Grid.get reads it: None for an empty or absent cell."""
    return [None if c >= len(line) or (value := line[c]) == "" else value for line in lines]


@functools.lru_cache(maxsize=64)
def _ledger_converter(kind: str, choices: tuple[str, ...]) -> Callable[[Any], Any]:
    return functools.partial(_ledger_value, kind, choices)


def _ledger_value(kind: str, choices: tuple[str, ...], value: Any) -> Any:
    if kind == "date":
        return to_date(value)
    if kind == "money":
        number: Decimal | None = to_number(value, money=True)
        return number
    if kind == "choice":
        return to_choice(value, choices)
    if kind == "bool":
        return to_choice(value, ("是", "否"))
    if kind == "credit_code":
        if isinstance(value, int | float) and not isinstance(value, bool):
            # an all-digit code typed into a number cell: Excel keeps 15 digits, the rest is lost
            raise NormalizeError(
                "ledger-credit-code-invalid",
                "被表格存成了数字，末几位已丢失；请把该单元格设为文本格式后重新输入",
            )
        return to_credit_code(value)
    return clean_text(value)
