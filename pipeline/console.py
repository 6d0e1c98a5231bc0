"""Console helpers for the CLI: a progress bar on stderr, Chinese tables on stdout, JSON output."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Chinese tables fold badly at rich's default 80 columns when output is piped or captured.
MIN_PIPED_WIDTH = 120


def safe_text(value: object) -> str:
    """`str(value)` with anything that cannot be encoded as UTF-8 (a file name's stray bytes,
    which Python carries as lone surrogates) replaced, so printing and writing never fail."""
    text = "" if value is None else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


# What the operating system's error codes mean, in words a clerk reads (its own strerror text
# is English). Codes not listed are shown by their symbolic name (e.g. ESTALE).
_ERRNO_NAMES: dict[str, str] = {
    "ENOENT": "文件或文件夹不存在",
    "ENOTDIR": "路径中的某一级是文件，不是文件夹",
    "EISDIR": "是文件夹，不是文件",
    "EEXIST": "已有同名的文件或文件夹",
    "EACCES": "没有权限",
    "EPERM": "没有权限（操作不被允许）",
    "EROFS": "只读文件系统，无法写入",
    "ENOSPC": "磁盘已满",
    "EDQUOT": "超出磁盘配额",
    "ENAMETOOLONG": "文件名或路径过长",
    "ENOTEMPTY": "文件夹不是空的",
    "EBUSY": "文件或文件夹正被占用",
    "ETXTBSY": "文件正被占用",
    "EMFILE": "打开的文件过多",
    "ENFILE": "系统打开的文件过多",
    "EIO": "磁盘读写出错",
    "ELOOP": "符号链接层数过多（可能是循环链接）",
    "EXDEV": "不能跨磁盘移动文件",
    "EINVAL": "参数无效（文件名可能含有不允许的字符）",
    "EFBIG": "文件过大",
    "ENOMEM": "内存不足",
    "ETIMEDOUT": "连接超时",
    "ECONNREFUSED": "连接被拒绝",
    "ECONNRESET": "连接被对方重置",
    "EHOSTUNREACH": "无法访问该主机",
    "ENETUNREACH": "网络不可达",
}
# by code; a name this platform's errno module lacks is skipped
_ERRNO_TEXT: dict[int, str] = {
    getattr(errno, name): text for name, text in _ERRNO_NAMES.items() if hasattr(errno, name)
}


def os_error_text(exc: OSError) -> str:
    """Why an OSError happened, in Chinese: the meaning of its error code, else the code's
    symbolic name (never the English strerror)."""
    if exc.errno is not None:
        return _ERRNO_TEXT.get(exc.errno) or f"系统错误 {errno.errorcode.get(exc.errno, exc.errno)}"
    if isinstance(exc, TimeoutError):
        return "超时"
    text = str(exc)
    if any(ord(ch) > 0x2E7F for ch in text):  # our own code's OSError with a Chinese message
        return safe_text(text)
    return f"系统错误（{type(exc).__name__}）"


def stdout_console() -> Console:
    """A console on the current stdout: no colour guessing on numbers, no emoji codes."""
    console = Console(file=sys.stdout, highlight=False, emoji=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = max(console.width, MIN_PIPED_WIDTH)
    return console


def stderr_console() -> Console:
    """A console on the current stderr, for progress and notes that must stay off stdout."""
    return Console(file=sys.stderr, highlight=False, emoji=False)


def count_files(root: Path) -> int:
    """How many regular files lie under `root` (symlinks not followed): the progress total."""
    total = 0
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_symlink():
                    total += 1  # the reader lists a link too (as ignored or read)
                elif entry.is_dir():
                    stack.append(entry)
                elif entry.is_file():
                    total += 1
            except OSError:
                continue
    return total


@contextmanager
def file_progress(total: int | None, description: str) -> Iterator[Progress]:
    """A progress bar on stderr for reading files; `advance(progress, name)` moves it on.

    It never writes to stdout, so a `--json` document there stays the only thing printed.
    """
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[name]}", markup=False),
        console=stderr_console(),
        transient=True,
    )
    progress.add_task(description, total=total or None, name="")
    with progress:
        yield progress


def advance(progress: Progress, name: str) -> None:
    """Count one more file done and show its name."""
    for task in progress.tasks:
        progress.update(task.id, advance=1, name=safe_text(name)[-60:])
        # the pre-count can fall short when files appear during the run
        if task.total is not None and task.completed > task.total:
            progress.update(task.id, total=task.completed)


def echo_json(document: Any) -> None:
    """Print one JSON document on stdout (UTF-8, Chinese kept readable)."""
    click.echo(safe_text(json.dumps(document, ensure_ascii=False, indent=2, default=safe_text)))


def error_document(exit_code: int, message: str) -> dict[str, Any]:
    """What `--json` prints on stdout when a command stops with an error (the same Chinese
    message also goes to stderr): `{"error": {"exit_code": 2, "message": "…"}}`."""
    return {"error": {"exit_code": exit_code, "message": safe_text(message)}}


def note(message: str) -> None:
    """A one-line note for the clerk on stderr (used when stdout carries JSON)."""
    click.echo(safe_text(message), err=True)


class OutputError(click.ClickException):
    """The outputs cannot be written (or the inbox cannot be read): a usage problem, exit 2."""

    exit_code = 2
