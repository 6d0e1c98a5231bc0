"""Returns sent inside a .zip: list an archive's files and read one of them, never extracting.

Counties often email their month's workbooks as one compressed package. The reader treats a
.zip in the inbox as a folder: each spreadsheet in it is read from memory as a return of its
own, named "<archive>/<name inside>", and the archive itself is left untouched. Names are
decoded as the archivers that write them mean them: UTF-8 when flagged, the Info-ZIP Unicode
Path field when present, else UTF-8 if the bytes are valid UTF-8, else GB18030 (WinRAR, 360压缩
and Windows' own "compressed folder" write GBK names on a Chinese Windows).

Limits: the archive's size (MAX_ARCHIVE_BYTES, FZ_MAX_ARCHIVE_MB), its number of entries
(safety.MAX_ZIP_ENTRIES), and each file in it is held to safety.MAX_FILE_BYTES however its
directory entry declares its size. A file in it is then checked and parsed like any other.
.rar, .7z and other archives are not read (no well-kept reader without an external program):
the city clerk is told to extract them.
"""

from __future__ import annotations

import atexit
import os
import posixpath
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import safety

ARCHIVE_EXTENSIONS = (".zip",)
# archives a clerk may save from an email that are not read (the message says to extract them)
OTHER_ARCHIVES = {
    ".rar": "RAR",
    ".7z": "7z",
    ".tar": "tar",
    ".gz": "gzip",
    ".tgz": "tar.gz",
    ".bz2": "bzip2",
    ".xz": "xz",
    ".cab": "CAB",
}
MAX_ARCHIVE_BYTES = int(safety.limit_from_env("FZ_MAX_ARCHIVE_MB") * safety.MB)
# A directory entry is 46 bytes, a name and extra fields: 1 KB each is generous (a 255-byte
# name, a Unicode Path field, timestamps). zipfile parses a directory to its end whatever the
# entry count says, so the directory's size is what bounds its work
DIRECTORY_BYTES_PER_ENTRY = 1024
_EOCD_SIZE = 22
_ZIP64_LOCATOR = 20
_ZIP64_RECORD = 56
_LOCAL_HEADER = 30  # the fixed part of an entry's local header, before its name and data
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_FIELD = 0x7075
# what zipfile can inflate; others (Deflate64 from Windows, PPMd, ...) are refused by name
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_METHOD_NAMES = {9: "Deflate64", 98: "PPMd", 99: "AES 加密", 93: "Zstandard", 95: "XZ"}


@dataclass
class Member:
    """One file in an archive: its index in the directory, its name (decoded, a relative POSIX
    path), and why it cannot be read (a rule code and its fields), if it cannot."""

    index: int
    name: str
    size: int
    refused: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Listing:
    """What a .zip in the inbox holds: its files, or `workbook` when it is a workbook renamed
    (an .xlsx or .ods: then read as the workbook it is, not opened as an archive of files)."""

    files: list[Member] = field(default_factory=list)
    workbook: bool = False


def members(path: Path) -> Listing:
    """The files (not folders) of the .zip at `path`, in directory order. Raises
    safety.Refused when the archive as a whole is not read (too big, damaged, or built to
    exhaust the reader: too many entries, a directory too large, entries overlapping or
    inflating beyond the limits), OSError when the file cannot be read at all."""
    infos = _directory(path)
    names = {i.filename for i in infos}
    if ("[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)) or (
        "mimetype" in names and "content.xml" in names
    ):
        return Listing(workbook=True)
    out: list[Member] = []
    for index, info in enumerate(infos):
        if info.is_dir():
            continue
        name = member_name(info)
        if not name:
            continue
        member = Member(index, name, info.file_size)
        if info.flag_bits & _ENCRYPTED_FLAG:
            member.refused = "archive-member-encrypted"
        elif info.compress_type not in _METHODS:
            method = _METHOD_NAMES.get(info.compress_type, f"编号 {info.compress_type}")
            member.refused, member.fields = "archive-member-unsupported", {"method": method}
        out.append(member)
    return Listing(out)


def _refused(reason: str) -> safety.Refused:
    return safety.Refused("archive-unreadable", reason=reason)


def _directory(path: Path) -> list[zipfile.ZipInfo]:
    """The archive's directory entries, once its size, its entry count and the size of its
    directory (read from the end record, before zipfile parses anything) are within bounds,
    and its entries neither overlap nor inflate past the limits."""
    with open(path, "rb") as fh:
        return _checked_directory(fh)


def _checked_directory(fh: Any) -> list[zipfile.ZipInfo]:
    """_directory of an archive open as `fh` (left open; its position is not kept)."""
    size = os.fstat(fh.fileno()).st_size
    if size > MAX_ARCHIVE_BYTES:
        shown, limit = safety.human_size(size), safety.human_size(MAX_ARCHIVE_BYTES)
        raise _refused(f"文件大小 {shown}，超过上限 {limit}")
    count, directory_size, directory_start = _end_record(fh, size)
    if count > safety.MAX_ZIP_ENTRIES:
        raise _refused(f"其中有 {count} 个条目，超过上限 {safety.MAX_ZIP_ENTRIES} 个")
    if directory_size > safety.MAX_ZIP_ENTRIES * DIRECTORY_BYTES_PER_ENTRY:
        raise _refused("目录过大，疑似恶意构造的文件")
    try:
        with zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
            # where the directory starts, as zipfile placed it (data prepended to the
            # archive, as in a self-extracting one, shifts every offset alike)
            directory_start = getattr(zf, "start_dir", directory_start)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, OSError):
        raise _refused("文件已损坏或不是 zip 压缩包") from None
    if len(infos) > safety.MAX_ZIP_ENTRIES:
        raise _refused(f"其中有 {len(infos)} 个条目，超过上限 {safety.MAX_ZIP_ENTRIES} 个")
    total = sum(i.file_size for i in infos)
    if total > safety.MAX_UNCOMPRESSED_BYTES:
        shown = safety.human_size(total)
        raise _refused(
            f"解压后共 {shown}，超过上限 {safety.human_size(safety.MAX_UNCOMPRESSED_BYTES)}"
        )
    for info in infos:
        if safety.ratio_exceeded(info.file_size, info.compress_size):
            raise _refused(f"其中 {member_name(info)} 的压缩比异常，疑似“压缩炸弹”")
    # each entry's data lies before the next one's header and before the directory: entries
    # sharing or overlapping their data (one deflated block listed a thousand times) are a bomb
    spans = sorted((i.header_offset, i.compress_size) for i in infos)
    bounds = [start for start, _ in spans[1:]] + [directory_start] if spans else []
    ends = zip(spans, bounds, strict=True)
    if any(start + length + _LOCAL_HEADER > end for (start, length), end in ends):
        raise _refused("条目相互重叠，疑似恶意构造的文件")
    return infos


def _end_record(fh: Any, size: int) -> tuple[int, int, int]:
    """(entry count, directory size, directory offset) from the end-of-central-directory
    record, read from the file's tail as zipfile will read it: when a ZIP64 locator lies right
    before the record, zipfile takes the ZIP64 record right before the locator (whatever the
    locator or the plain record say), so that one is checked."""
    tail_size = min(size, _EOCD_SIZE + 0xFFFF)  # the record, then a comment of up to 64 KB
    fh.seek(size - tail_size)
    tail = fh.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD_SIZE > len(tail):
        raise _refused("文件已损坏或不是 zip 压缩包")
    count, directory_size, directory_start = struct.unpack_from("<10xHII", tail, at)
    locator = size - tail_size + at - _ZIP64_LOCATOR  # as an offset in the file
    if locator >= 0:
        fh.seek(locator)
        if fh.read(4) == b"PK\x06\x07":
            record = locator - _ZIP64_RECORD
            if record < 0:
                raise _refused("文件已损坏或不是 zip 压缩包")
            fh.seek(record)
            head = fh.read(_ZIP64_RECORD)
            if len(head) < _ZIP64_RECORD or head[:4] != b"PK\x06\x06":
                raise _refused("文件已损坏或不是 zip 压缩包")
            count, directory_size, directory_start = struct.unpack_from("<QQQ", head, 32)
    return count, directory_size, directory_start


def member_name(info: zipfile.ZipInfo) -> str:
    """The name a file has in an archive, as its archiver meant it, as a clean relative path
    ("a/b.xlsx": no drive, no leading slash, no "." or ".." parts, NFC)."""
    name = info.filename
    if not info.flag_bits & _UTF8_FLAG:
        name = _unicode_path(info) or _redecode(name)
    parts = [
        p
        for p in name.replace("\\", "/").split("/")
        if p not in ("", ".", "..") and not (len(p) == 2 and p[1] == ":")
    ]
    return unicodedata.normalize("NFC", posixpath.join(*parts)) if parts else ""


def _redecode(name: str) -> str:
    """zipfile decoded an unflagged name as CP437: its bytes again, decoded as UTF-8 if they
    are that, else as GB18030."""
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return name


def _unicode_path(info: zipfile.ZipInfo) -> str:
    """The Info-ZIP Unicode Path extra field (0x7075) of an entry, if it has a valid one."""
    extra, pos = info.extra, 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if tag != _UNICODE_PATH_FIELD or len(body) < 5 or body[0] != 1:
            continue
        try:
            original = info.filename.encode("cp437")
        except UnicodeEncodeError:
            original = info.filename.encode("utf-8")
        if struct.unpack_from("<I", body, 1)[0] != zlib.crc32(original):
            continue  # the name was changed after the field was written: the field is stale
        try:
            return body[5:].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return ""


def source_bytes(
    path: Path, member: int | None, cap: int, size: int | None = None, name: str = ""
) -> bytes:
    """The bytes a return was read from, at most `cap` of them: the file at `path`, or the file
    at index `member` inside the .zip at `path` (named `name` when listed). `size`, the file's
    size if known, spares allocating a `cap`-sized buffer for a small file (one grown since is
    read on to the cap). Raises OSError, and safety.Refused for a file inside a .zip that
    cannot be inflated."""
    if member is not None:
        return read_member(path, member, cap, name)
    with open(path, "rb") as fh:
        if size is None:
            return fh.read(cap)
        data = fh.read(min(size + 1, cap))
        if len(data) == size + 1 < cap:
            data += fh.read(cap - len(data))
        return data


def read_member(path: Path, index: int, cap: int, name: str = "") -> bytes:
    """The bytes of the file at `index` in the .zip at `path`, at most `cap` of them (a file
    longer than that is cut there: the caller refuses it as too large). Raises OSError, and
    safety.Refused when the archive changed since it was listed (no file at `index`, or one
    not named `name`) or the file cannot be inflated. The archive's directory is checked and
    parsed once per process (its files are read one after another)."""
    try:
        zf = _opened(path)
        infos = zf.infolist()
        if index >= len(infos) or (name and member_name(infos[index]) != name):
            raise _refused("压缩包在读取过程中被改动，请重新运行")
        info = infos[index]
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise safety.Refused("archive-member-encrypted")
        with zf.open(info) as fh:
            return fh.read(cap)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError):
        raise _refused("文件已损坏") from None


_OPEN: dict[tuple[int, str, int, int], tuple[zipfile.ZipFile, Any]] = {}  # with its file


@atexit.register
def _close_all() -> None:
    """Close the archive kept open (a forked child closes only its own copy of the file)."""
    for zf, fh in _OPEN.values():
        zf.close()
        fh.close()
    _OPEN.clear()


def _opened(path: Path) -> zipfile.ZipFile:
    """The archive at `path`, opened after the checks of _directory; kept open for the next
    file read from it (one archive at a time: the previous one is closed). Keyed by process
    too: a forked worker must not share its parent's file offset."""
    st = path.stat()
    key = (os.getpid(), str(path), st.st_size, st.st_mtime_ns)
    if key not in _OPEN:
        _close_all()
        fh = open(path, "rb")  # noqa: SIM115 - kept open in _OPEN with the ZipFile reading it
        try:
            _checked_directory(fh)  # the file checked is the file then read
            _OPEN[key] = (zipfile.ZipFile(fh), fh)
        except BaseException:
            fh.close()
            raise
    return _OPEN[key][0]
