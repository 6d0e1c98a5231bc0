"""Console helpers for the CLI: a progress bar on stderr, Chinese tables on stdout, JSON output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# re-exported: the CLI takes them from here; they live in messages, which worker processes load
from pipeline.messages import os_error_text as os_error_text
from pipeline.messages import safe_text as safe_text

# Chinese tables fold badly at rich's default 80 columns when output is piped or captured.
MIN_PIPED_WIDTH = 120


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
