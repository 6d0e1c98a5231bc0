"""Province-scale benchmark (`python -m pipeline.bench`, `make bench`): generate once, then measure.

The inbox is generated once per scale (seeded, by pipeline.samples' scenario) and cached under
`.bench/` (outside git); it is reused while its parameters, BENCH_VERSION, the form definitions
and the code that writes it (forms, layout, templates, samples) are unchanged. Writing the 4,000
checklists and 100 ledgers with openpyxl would take a quarter of an hour, so the benchmark writes
them the fast way: each form's template is written once per period by pipeline.templates for a
placeholder unit, and every return is that template with the unit's name and code substituted
and the clerk's values put into the input cells of the sheet XML (Excel's "move or copy sheet"
for a second inspection). The values are the scenario's, so every return is a valid, different
return and validation does its real work.

Each measured stage runs in a fresh subprocess, so its wall time, CPU time (the process and every
worker it waited for, via wait4) and peak memory are its own. Memory is the proportional set
size (PSS) of the whole process tree, sampled every 10 ms: a page that forked workers share
with their parent is counted once, not once per process as summed resident sets would (where
/proc/<pid>/smaps_rollup is missing, the resident set); never less than the largest single
process's resident set:

- the end-to-end `python -m pipeline consolidate` and `validate` commands, writing their outputs;
- the bare parse: python-calamine reading every sheet of every file into Python values;
- `pandas.read_excel(engine="openpyxl", sheet_name=None)`, what a user would write, on a seeded
  sample of files per form, extrapolated to the whole inbox (and said so in the table);
- the city-scale campaign (13 units × 8 months) end to end.

Generation and every stage get FZ_SCHEMAS_DIR pointing at the cache's copy of schemas/ whose
units.csv lists the benchmark's units (and whose ledger template is long enough for its rows).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = REPO_ROOT / "schemas"
DEFAULT_CACHE = REPO_ROOT / ".bench"
# Bump when the generated inbox changes for the same parameters (the cache is then rebuilt).
BENCH_VERSION = 1
DEFAULT_SEED = 20230520
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
RECEIPT_LOG = "收文登记.csv"
MANIFEST = "bench.json"

# The unit a template is written for once; every return substitutes its own name and code.
PLACEHOLDER_NAME = "〈基准占位单位〉"
PLACEHOLDER_CODE = "PLACEHOLDERUNITCODE"

# Excel's 1900 date system (pipeline.normalize reads serial numbers back the same way).
EXCEL_EPOCH = dt.date(1899, 12, 30)
SHEET_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
SHEET_REL_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"


# --- scales -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """One generated inbox: how many units, months, ledger rows and checklist files.

    `ledger_rows` / `checklists` None keep the sample generator's city-scale defaults
    (2–5 new ledger rows and 3–4 checklist workbooks per unit and month). `real_units` uses the
    first `units` units of schemas/units.csv; otherwise units are generated (基准县001 …).
    """

    name: str
    units: int
    periods: int
    ledger_rows: int | None = None
    checklists: int | None = None
    real_units: bool = False
    seed: int = DEFAULT_SEED

    @property
    def label(self) -> str:
        return f"{self.units} 个单位 × {self.periods} 个月"

    def cache_name(self) -> str:
        parts = [self.name, f"u{self.units}", f"p{self.periods}"]
        if self.ledger_rows is not None:
            parts.append(f"r{self.ledger_rows}")
        if self.checklists is not None:
            parts.append(f"c{self.checklists}")
        if self.seed != DEFAULT_SEED:
            parts.append(f"s{self.seed}")
        return "-".join(parts)


def province_scale(
    units: int = 100, ledger_rows: int = 2000, checklists: int = 40, seed: int = DEFAULT_SEED
) -> Scale:
    return Scale("province", units, 1, ledger_rows, checklists, real_units=False, seed=seed)


def city_scale(units: int = 13, periods: int = 8, seed: int = DEFAULT_SEED) -> Scale:
    return Scale("city", units, periods, real_units=True, seed=seed)


# --- the cache ----------------------------------------------------------------------------------


@dataclass
class Inbox:
    """A generated inbox in the cache, as its manifest describes it."""

    root: Path
    scale: Scale
    files: list[dict[str, Any]]  # {"rel", "form", "rows"} per spreadsheet file
    last_period: str
    generated_seconds: float

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def schemas(self) -> Path:
        return self.root / "schemas"

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def ledger_rows(self) -> int:
        return sum(int(f["rows"]) for f in self.files if f["form"] == "ledger")

    @property
    def size_bytes(self) -> int:
        return sum(int(f["bytes"]) for f in self.files)


def schemas_digest(schemas: Path = SCHEMAS) -> str:
    """A digest of the form definitions, calendar and units: templates change with them."""
    digest = hashlib.sha256()
    for path in sorted(p for p in schemas.rglob("*") if p.is_file()):
        digest.update(path.relative_to(schemas).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# The inbox is written with these modules (and this one's writer, versioned by BENCH_VERSION):
# a change to any of them regenerates it.
GENERATOR_SOURCES = ("forms.py", "layout.py", "templates.py", "samples.py")


def generator_digest() -> str:
    digest = hashlib.sha256()
    for name in GENERATOR_SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_key(scale: Scale) -> dict[str, Any]:
    return {
        "bench_version": BENCH_VERSION,
        "scale": asdict(scale),
        "schemas": schemas_digest(),
        "generator": generator_digest(),
    }


def bench_units(scale: Scale) -> list[dict[str, str]]:
    """The benchmark's reporting units as rows of units.csv."""
    if scale.real_units:
        with (SCHEMAS / "units.csv").open(encoding="utf-8-sig", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if (r.get("code") or "").strip()]
        if scale.units > len(rows):
            raise SystemExit(f"units.csv 只有 {len(rows)} 个单位，不够 {scale.units} 个")
        return rows[: scale.units]
    # 99xxxx is no real division code (the first two digits are a province's)
    return [
        {"code": f"99{n:04d}", "name": f"基准县{n:03d}", "kind": "县"}
        for n in range(1, scale.units + 1)
    ]


def prepare_schemas(dest: Path, scale: Scale) -> None:
    """A copy of schemas/ with the benchmark's units and a ledger template long enough."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(SCHEMAS, dest)
    units = bench_units(scale)
    with (dest / "units.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh, ["code", "name", "kind", "contact_name", "contact_email", "aliases"]
        )
        writer.writeheader()
        for row in units:
            writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
    if scale.ledger_rows is not None:
        # a province whose units keep 2,000 hazards sends out a template with room for them
        ledger = dest / "forms" / "ledger.toml"
        text = ledger.read_text(encoding="utf-8")
        rows = max(int(m.group(1)) if (m := re.search(r"(?m)^rows = (\d+)", text)) else 0, 0)
        wanted = scale.ledger_rows * scale.periods + 100
        if wanted > rows:
            text = re.sub(r"(?m)^rows = \d+", f"rows = {wanted}", text)
            ledger.write_text(text, encoding="utf-8")


def load_inbox(root: Path, scale: Scale) -> Inbox | None:
    """The cached inbox under `root` when its manifest matches `scale` and this generator."""
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("key") != cache_key(scale) or not (root / "inbox").is_dir():
        return None
    return Inbox(
        root=root,
        scale=scale,
        files=data["files"],
        last_period=data["last_period"],
        generated_seconds=float(data.get("generated_seconds", 0)),
    )


def ensure_inbox(scale: Scale, cache: Path, jobs: int, log: Callable[[str], None]) -> Inbox:
    """The cached inbox for `scale`, generated first (in a subprocess) when missing or stale."""
    root = cache / scale.cache_name()
    found = load_inbox(root, scale)
    if found is not None:
        return found
    log(f"生成{scale.label}的收件箱（缓存于 {root}，只需生成一次）……")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    prepare_schemas(root / "schemas", scale)
    cmd = [
        sys.executable,
        "-m",
        "pipeline.bench",
        "--generate",
        str(root),
        "--scale-json",
        json.dumps(asdict(scale)),
        "--jobs",
        str(jobs),
    ]
    started = time.perf_counter()
    subprocess.run(cmd, env=_env(root / "schemas"), check=True, cwd=REPO_ROOT)
    inbox = load_inbox(root, scale)
    if inbox is None:
        raise RuntimeError(f"generating {root} left no usable manifest")
    log(f"  已生成 {inbox.n_files} 个文件，用时 {time.perf_counter() - started:.1f} 秒")
    return inbox


def _env(schemas: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["FZ_SCHEMAS_DIR"] = str(schemas)
    env.setdefault("PYTHONHASHSEED", "0")
    return env


# --- the fast writer (runs in the generating subprocess, FZ_SCHEMAS_DIR set) -------------------


@dataclass
class _Template:
    """One form's template for one period, written once for the placeholder unit."""

    entries: dict[str, bytes]  # zip entry name -> bytes, in the template's order
    sheet_part: str  # the zip entry of the form's sheet
    sheet_name: str


_TEMPLATES: dict[tuple[str, str], _Template] = {}


def _template(form_id: str, period: str) -> _Template:
    """Write (once per process) the template of `form_id` for `period` and the placeholder."""
    key = (form_id, period)
    if key not in _TEMPLATES:
        from pipeline.forms import Unit, load_forms
        from pipeline.templates import write_template

        form = load_forms()[form_id]
        with tempfile.TemporaryDirectory(prefix="bench-template-") as tmp:
            path = Path(tmp) / "template.xlsx"
            write_template(form, path, unit=Unit(PLACEHOLDER_CODE, PLACEHOLDER_NAME), period=period)
            with zipfile.ZipFile(path) as zf:
                entries = {info.filename: zf.read(info.filename) for info in zf.infolist()}
        _TEMPLATES[key] = _Template(entries, _sheet_part(entries, form.sheet_name), form.sheet_name)
    return _TEMPLATES[key]


def _sheet_part(entries: dict[str, bytes], sheet_name: str) -> str:
    """The zip entry holding the sheet named `sheet_name` (workbook.xml, then its rels)."""
    book = entries["xl/workbook.xml"].decode("utf-8")
    rels = entries["xl/_rels/workbook.xml.rels"].decode("utf-8")
    m = re.search(rf'<sheet name="{re.escape(escape(sheet_name))}"[^>]*?r:id="(rId\d+)"', book)
    if not m:
        raise ValueError(f"template has no sheet {sheet_name!r}")
    target = re.search(rf'<Relationship Id="{m.group(1)}"[^>]*?Target="([^"]+)"', rels)
    if not target:
        raise ValueError(f"template has no relationship {m.group(1)}")
    return "xl/" + target.group(1).lstrip("/").removeprefix("xl/")


def _serial(day: dt.date) -> int:
    return (day - EXCEL_EPOCH).days


class _Strings:
    """The workbook's shared strings, extended with what the clerk typed."""

    def __init__(self, sst: bytes) -> None:
        self.sst = sst.decode("utf-8")
        self.count = len(re.findall(r"<si>", self.sst))
        self.added: list[str] = []
        self.index: dict[str, int] = {}
        self.refs = 0

    def ref(self, text: str) -> int:
        self.refs += 1
        if text not in self.index:
            self.index[text] = self.count + len(self.added)
            self.added.append(text)
        return self.index[text]

    def xml(self) -> bytes:
        items = "".join(
            f'<si><t xml:space="preserve">{escape(s)}</t></si>'
            if s != s.strip()
            else f"<si><t>{escape(s)}</t></si>"
            for s in self.added
        )
        text = self.sst.replace("</sst>", items + "</sst>")
        total = self.count + len(self.added)

        def counts(m: re.Match[str]) -> str:
            tag = m.group(0)
            tag = re.sub(r'uniqueCount="\d+"', f'uniqueCount="{total}"', tag)
            return re.sub(
                r' count="(\d+)"', lambda c: f' count="{int(c.group(1)) + self.refs}"', tag
            )

        return re.sub(r"<sst\b[^>]*>", counts, text, count=1).encode("utf-8")


_CELL = re.compile(rb'<c r="([A-Z]+[0-9]+)"([^>]*?)(?:/>|>(.*?)</c>)', re.DOTALL)
_STYLE = re.compile(rb'\ss="(\d+)"')


def _cell_xml(ref: bytes, style: bytes, value: Any, strings: _Strings) -> bytes:
    """One <c> element holding `value` as a clerk's spreadsheet stores it."""
    s = b' s="' + style + b'"' if style else b""
    head = b'<c r="' + ref + b'"' + s
    if value is None:
        return head + b"/>"
    if isinstance(value, bool):
        return head + b' t="b"><v>' + (b"1" if value else b"0") + b"</v></c>"
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return head + b"><v>" + str(_serial(value)).encode() + b"</v></c>"
    if isinstance(value, Decimal):
        value = float(value)  # what Excel keeps: a double (15 significant digits)
    if isinstance(value, int | float):
        return head + b"><v>" + repr(value).encode() + b"</v></c>"
    index = strings.ref(str(value))
    return head + b' t="s"><v>' + str(index).encode() + b"</v></c>"


def set_cells(sheet: bytes, values: dict[str, Any], strings: _Strings) -> bytes:
    """Put `values` ({A1: value}) into the existing cells of a sheet's XML, keeping their style.

    Every address must already be a cell of the sheet (the template formats all input cells).
    """
    wanted = {k.encode("ascii"): v for k, v in values.items()}
    done: set[bytes] = set()

    def put(m: re.Match[bytes]) -> bytes:
        ref = m.group(1)
        if ref not in wanted:
            return m.group(0)
        done.add(ref)
        style = _STYLE.search(m.group(2))
        return _cell_xml(ref, style.group(1) if style else b"", wanted[ref], strings)

    out = _CELL.sub(put, sheet)
    missing = set(wanted) - done
    if missing:
        shown = ", ".join(sorted(r.decode() for r in missing)[:5])
        raise ValueError(f"the template has no cell {shown}")
    return out


def _copy_sheet(entries: dict[str, bytes], source_part: str, after: str, name: str) -> str:
    """Excel's "move or copy … create a copy": a new sheet `name` right after sheet `after`,
    with the source sheet's content, protection and validations. Returns the new zip entry."""
    n = 1
    while f"xl/worksheets/sheet{n}.xml" in entries:
        n += 1
    part = f"xl/worksheets/sheet{n}.xml"
    entries[part] = entries[source_part].replace(b' tabSelected="1"', b"")
    rels = entries["xl/_rels/workbook.xml.rels"].decode("utf-8")
    ids = [int(i) for i in re.findall(r'Id="rId(\d+)"', rels)]
    rid = f"rId{max(ids, default=0) + 1}"
    rels = rels.replace(
        "</Relationships>",
        f'<Relationship Id="{rid}" Type="{SHEET_REL_TYPE}" Target="worksheets/sheet{n}.xml"/>'
        "</Relationships>",
    )
    entries["xl/_rels/workbook.xml.rels"] = rels.encode("utf-8")
    types = entries["[Content_Types].xml"].decode("utf-8")
    types = types.replace(
        "</Types>",
        f'<Override PartName="/{part}" ContentType="{SHEET_CONTENT_TYPE}"/></Types>',
    )
    entries["[Content_Types].xml"] = types.encode("utf-8")
    book = entries["xl/workbook.xml"].decode("utf-8")
    sheets = re.findall(r"<sheet [^>]*/>", book)
    position = next(i for i, s in enumerate(sheets) if f'name="{escape(after)}"' in s)
    sheet_ids = [int(i) for i in re.findall(r'sheetId="(\d+)"', book)]
    new = f'<sheet name="{escape(name)}" sheetId="{max(sheet_ids) + 1}" r:id="{rid}"/>'
    book = book.replace(sheets[position], sheets[position] + new, 1)

    # sheet-local defined names (print areas) of the sheets after the copy move along
    def shift(m: re.Match[str]) -> str:
        index = int(m.group(1))
        return f'localSheetId="{index + 1 if index > position else index}"'

    book = re.sub(r'localSheetId="(\d+)"', shift, book)
    entries["xl/workbook.xml"] = book.encode("utf-8")
    return part


def _inspection_cells(form: Any, insp: Any, mark: str) -> dict[str, Any]:
    """The cells a clerk fills for one inspection (what pipeline.fill writes with openpyxl)."""
    from pipeline.layout import Cell, checklist_layout

    lay = checklist_layout(form)
    cells: dict[str, Any] = {}
    for no, answer in insp.answers.items():
        cells[Cell(lay.item_row(no), lay.tick_col(answer)).a1] = mark
    for no, details in insp.details.items():
        row = lay.item_row(no)
        for key in ("description", "requirement", "deadline"):
            if key in details:
                cells[Cell(row, lay.col(key)).a1] = details[key]
        if details.get("major") is not None:
            cells[Cell(row, lay.major_col(details["major"])).a1] = mark
    for key, value in insp.footer.items():
        cells[lay.footer_cell(key).a1] = value
    return cells


def render_return(planned: Any) -> bytes:
    """The bytes of one filled return of the scenario (a pipeline.samples.PlannedFile)."""
    from pipeline.forms import ChecklistForm, LedgerForm, ProgressForm, load_forms
    from pipeline.layout import Cell, LedgerLayout, progress_layout

    form = load_forms()[planned.form_id]
    template = _template(planned.form_id, planned.period)
    entries = {
        name: data.replace(PLACEHOLDER_NAME.encode(), planned.unit.name.encode()).replace(
            PLACEHOLDER_CODE.encode(), planned.unit.code.encode()
        )
        for name, data in template.entries.items()
    }
    strings = _Strings(entries["xl/sharedStrings.xml"])
    sheets: list[tuple[str, dict[str, Any]]] = []
    if isinstance(form, ProgressForm):
        pl = progress_layout(form)
        cells = {pl.value_cells[code].a1: value for code, value in planned.progress.items()}
        if planned.report_date is not None:
            cells[pl.date_cell.a1] = planned.report_date
        sheets.append((template.sheet_part, cells))
    elif isinstance(form, LedgerForm):
        ll = LedgerLayout(form=form)
        cells = {}
        for i, row in enumerate(planned.ledger_rows):
            for key, value in row.items():
                cells[Cell(ll.first_data_row + i, ll.col(key)).a1] = value
        sheets.append((template.sheet_part, cells))
    elif isinstance(form, ChecklistForm):
        previous = template.sheet_name
        for i, insp in enumerate(planned.inspections):
            part = template.sheet_part
            if i > 0:
                part = _copy_sheet(entries, template.sheet_part, previous, insp.sheet)
                previous = insp.sheet
            sheets.append((part, _inspection_cells(form, insp, planned.mark)))
    for part, cells in sheets:
        entries[part] = set_cells(entries[part], cells, strings)
    entries["xl/sharedStrings.xml"] = strings.xml()
    stamp = planned.received or dt.datetime.combine(dt.date(2023, 1, 1), dt.time(12))
    when = stamp.timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def _write_one(job: tuple[Any, Path]) -> tuple[str, str, int, int]:
    planned, dest = job
    data = render_return(planned)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    if planned.received is not None:
        stamp = planned.received.timestamp()
        os.utime(dest, (stamp, stamp))
    return planned.rel, planned.form_id, len(planned.ledger_rows), len(data)


def generate(root: Path, scale: Scale, jobs: int) -> None:
    """Build the scenario for `scale` and write its inbox and manifest under `root`.

    Runs with FZ_SCHEMAS_DIR = root/schemas (the benchmark's units)."""
    from dataclasses import replace

    from pipeline.forms import load_calendar, load_units
    from pipeline.samples import ScenarioParams, build_scenario

    started = time.perf_counter()
    params = ScenarioParams(units=load_units(), periods=load_calendar().periods[: scale.periods])
    if scale.ledger_rows is not None:
        params = replace(params, ledger_rows_per_month=scale.ledger_rows)
    if scale.checklists is not None:
        params = replace(params, checklist_workbooks=(scale.checklists, scale.checklists))
    params = replace(params, plants=False)
    scenario = build_scenario(params, scale.seed)
    inbox = root / "inbox"
    if inbox.exists():
        shutil.rmtree(inbox)
    inbox.mkdir(parents=True)
    work = [(f, inbox / f.rel) for f in scenario.files if f.fmt == "xlsx"]
    if len(work) != len(scenario.files):
        raise RuntimeError("the benchmark writes .xlsx returns only (no planted cases)")
    written: list[tuple[str, str, int, int]] = []
    if jobs > 1 and len(work) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            written = list(pool.map(_write_one, work, chunksize=16))
    else:
        written = [_write_one(job) for job in work]
    rows = sorted((f.received, f.rel) for f in scenario.files if f.received is not None)
    with (inbox / RECEIPT_LOG).open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(("文件名", "收到时间"))
        for received, rel in rows:
            writer.writerow((rel, received.strftime("%Y-%m-%d %H:%M")))
    manifest = {
        "key": cache_key(scale),
        "last_period": params.periods[-1],
        "generated_seconds": round(time.perf_counter() - started, 1),
        "files": [
            {"rel": rel, "form": form, "rows": rows, "bytes": size}
            for rel, form, rows, size in written
        ],
    }
    (root / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Measure:
    """What one stage cost: wall and CPU seconds, peak memory, files handled."""

    label: str
    wall: float
    cpu: float
    peak_memory: int  # bytes: the process tree's PSS (see the module docstring)
    files: int
    note: str = ""
    extrapolated: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def files_per_second(self) -> float:
        return self.files / self.wall if self.wall > 0 else float("inf")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
        except OSError:
            continue
    return out


def _process_memory(pid: int, page: int) -> int:
    """PSS of one process (Linux smaps_rollup), else its resident set (statm); 0 if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * page
    except (OSError, ValueError, IndexError):
        return 0


def _tree_memory(pid: int) -> int:
    """Memory of `pid` and all its descendants: the sum of their PSS (see the module
    docstring; 0 where /proc is missing)."""
    total = 0
    stack = [pid]
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    while stack:
        p = stack.pop()
        total += _process_memory(p, page)
        stack += _children(p)
    return total


def run_measured(
    cmd: Sequence[str], env: dict[str, str], *, stdout: Any = subprocess.DEVNULL
) -> tuple[float, float, int, int]:
    """Run `cmd`; return (wall s, CPU s of it and its waited-for descendants, peak tree memory
    bytes (PSS, see the module docstring), exit code). The tree is sampled every 10 ms; the
    peak is never below the largest single process that wait4 reports."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=env, cwd=REPO_ROOT, stdout=stdout)
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _tree_memory(proc.pid))
        time.sleep(0.01)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    largest = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return wall, cpu, max(peak, largest), proc.returncode


def _spreadsheets(inbox: Inbox) -> list[Path]:
    return [inbox.inbox / f["rel"] for f in inbox.files]


def measure_cli(inbox: Inbox, command: str, jobs: int, out: Path) -> Measure:
    """`python -m pipeline <command>` on the inbox as a clerk runs it, writing its outputs."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "pipeline", command, str(inbox.inbox), "--out", str(out)]
    if command == "consolidate":
        cmd += ["--period", inbox.last_period]
    cmd += ["--jobs", str(jobs)]
    wall, cpu, peak, code = run_measured(cmd, _env(inbox.schemas))
    ok = {"consolidate": (0,), "validate": (0, 1)}[command]
    if code not in ok:
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}")
    return Measure(f"端到端 {command}（CLI，写出结果）", wall, cpu, peak, inbox.n_files)


def _parse_file(path: str) -> int:
    """Every sheet of one file into Python values with python-calamine; the number of cells."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(path)
    cells = 0
    for name in book.sheet_names:
        rows = book.get_sheet_by_name(name).to_python()
        cells += sum(len(r) for r in rows)
    return cells


def _read_excel_file(path: str) -> tuple[float, float]:
    """pandas.read_excel(engine="openpyxl", sheet_name=None) of one file: (wall, CPU) seconds."""
    import pandas as pd

    wall, cpu = time.perf_counter(), time.process_time()
    frames = pd.read_excel(path, engine="openpyxl", sheet_name=None)
    del frames
    return time.perf_counter() - wall, time.process_time() - cpu


def stage_parse(paths: Sequence[str], jobs: int) -> dict[str, Any]:
    """The bare parse over `jobs` processes (run inside the measured subprocess)."""
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        chunk = max(1, min(32, len(paths) // (jobs * 4) or 1))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            cells = sum(pool.map(_parse_file, paths, chunksize=chunk))
    else:
        cells = sum(_parse_file(p) for p in paths)
    return {"cells": cells}


def stage_openpyxl(paths: Sequence[str]) -> dict[str, Any]:
    """read_excel each file in turn, one process, as a user's loop does."""
    times = [_read_excel_file(p) for p in paths]
    return {"wall": [t[0] for t in times], "cpu": [t[1] for t in times]}


def _cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def stage_phases(inbox: Path, period: str, out: Path, jobs: int) -> dict[str, Any]:
    """What `consolidate` does, phase by phase, with wall and CPU seconds (workers included)."""
    phases: list[dict[str, Any]] = []
    clock = [time.perf_counter(), _cpu_now()]

    def lap(name: str) -> None:
        wall, cpu = time.perf_counter(), _cpu_now()
        phases.append({"phase": name, "wall": wall - clock[0], "cpu": cpu - clock[1]})
        clock[:] = [wall, cpu]

    from pipeline.cli import annotated_copies
    from pipeline.consolidate import consolidate
    from pipeline.output import write_outputs
    from pipeline.read import read_inbox
    from pipeline.report import REPORT_NAME, write_validation_report
    from pipeline.validate import validate_returns

    lap("导入模块")
    returns = read_inbox(inbox, jobs=jobs)
    lap(f"读取（{jobs} 个进程）")
    validate_returns(returns)
    lap("校验")
    result = consolidate(returns, period)
    lap("汇总")
    write_outputs(result, out)
    lap("写出汇总表、CSV、JSON")
    copies = annotated_copies(returns, out, jobs, result.superseded_files())
    write_validation_report(returns, out / REPORT_NAME, copies=copies)
    lap("写出校验报告和退回修改副本")
    return {"phases": phases}


def openpyxl_sample(inbox: Inbox, per_form: int, seed: int) -> list[dict[str, Any]]:
    """A seeded random sample of `per_form` files of each form (all of them when fewer)."""
    rng = random.Random(seed)
    by_form: dict[str, list[dict[str, Any]]] = {}
    for f in inbox.files:
        by_form.setdefault(f["form"], []).append(f)
    sample: list[dict[str, Any]] = []
    for form in sorted(by_form):
        files = by_form[form]
        sample += files if len(files) <= per_form else rng.sample(files, per_form)
    return sample


def _stage_cmd(stage: str, result: Path, paths: Sequence[Path], jobs: int) -> list[str]:
    listing = result.with_suffix(".files")
    listing.write_text("\n".join(str(p) for p in paths), encoding="utf-8")
    return [
        sys.executable,
        "-m",
        "pipeline.bench",
        "--stage",
        stage,
        "--files",
        str(listing),
        "--result",
        str(result),
        "--jobs",
        str(jobs),
    ]


def measure_parse(inbox: Inbox, jobs: int, work: Path) -> Measure:
    result = work / "parse.json"
    cmd = _stage_cmd("parse", result, _spreadsheets(inbox), jobs)
    wall, cpu, peak, code = run_measured(cmd, _env(inbox.schemas))
    if code != 0:
        raise RuntimeError("the bare parse failed")
    cells = json.loads(result.read_text())["cells"]
    return Measure(
        f"纯解析 python-calamine（{jobs} 个进程）",
        wall,
        cpu,
        peak,
        inbox.n_files,
        detail={"cells": cells},
    )


def measure_phases(inbox: Inbox, jobs: int, work: Path) -> list[dict[str, Any]]:
    """The consolidate run split into its phases (one more run, in a fresh process)."""
    result = work / "phases.json"
    out = work / "out-phases"
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "pipeline.bench", "--stage", "phases", "--jobs", str(jobs)]
    cmd += ["--inbox", str(inbox.inbox), "--period", inbox.last_period, "--out", str(out)]
    cmd += ["--result", str(result)]
    _wall, _cpu, _peak, code = run_measured(cmd, _env(inbox.schemas))
    if code != 0:
        raise RuntimeError("the phase breakdown failed")
    phases: list[dict[str, Any]] = json.loads(result.read_text())["phases"]
    return phases


def phase_lines(phases: Sequence[dict[str, Any]]) -> list[str]:
    total = sum(p["wall"] for p in phases) or 1.0
    width = max(_width(p["phase"]) for p in phases)
    lines = [f"{_pad('阶段', width)}  墙钟 秒  CPU 秒  占墙钟"]
    for p in phases:
        lines.append(
            f"{_pad(p['phase'], width)}  {p['wall']:7.2f}  {p['cpu']:6.2f}"
            f"  {100 * p['wall'] / total:5.0f}%"
        )
    return lines


def measure_openpyxl(inbox: Inbox, per_form: int, seed: int, work: Path) -> Measure:
    """read_excel(openpyxl) on a per-form sample, extrapolated per form to the whole inbox."""
    sample = openpyxl_sample(inbox, per_form, seed)
    result = work / "openpyxl.json"
    cmd = _stage_cmd("openpyxl", result, [inbox.inbox / f["rel"] for f in sample], 1)
    wall, cpu, peak, code = run_measured(cmd, _env(inbox.schemas))
    if code != 0:
        raise RuntimeError("the openpyxl reading failed")
    data = json.loads(result.read_text())
    counts: dict[str, int] = {}
    for f in inbox.files:
        counts[f["form"]] = counts.get(f["form"], 0) + 1
    per: dict[str, list[tuple[float, float]]] = {}
    for f, w, c in zip(sample, data["wall"], data["cpu"], strict=True):
        per.setdefault(f["form"], []).append((w, c))
    est_wall = sum(counts[k] * sum(w for w, _ in v) / len(v) for k, v in per.items())
    est_cpu = sum(counts[k] * sum(c for _, c in v) / len(v) for k, v in per.items())
    whole = len(sample) == inbox.n_files
    if whole:
        # everything was read: the process's own figures, interpreter start included
        est_wall, est_cpu = wall, cpu
        note = "全部文件实测"
    else:
        note = f"按每种表随机抽取的 {len(sample)} 个文件（种子 {seed}）外推"
    return Measure(
        'pandas.read_excel(engine="openpyxl")（1 个进程）',
        est_wall,
        est_cpu,
        peak,
        inbox.n_files,
        note=note,
        extrapolated=not whole,
        detail={"sample": len(sample), "sample_wall": wall},
    )


# --- the report ----------------------------------------------------------------------------------


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kib = int(fh.readline().split()[1])
        memory = f"{kib / 1024**2:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    libs = []
    for name in ("python-calamine", "pandas", "pandera", "openpyxl", "xlsxwriter", "numpy"):
        try:
            libs.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return {
        "date": dt.date.today().isoformat(),
        "cpu": cpu,
        "cores": str(os.cpu_count() or 1),
        "memory": memory,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "libraries": ", ".join(libs),
    }


def table(measures: Sequence[Measure]) -> list[str]:
    head = ["阶段", "墙钟 秒", "CPU 秒", "峰值内存 MiB", "文件/秒"]
    rows = [
        [
            m.label + ("（外推）" if m.extrapolated else ""),
            f"{m.wall:.2f}",
            f"{m.cpu:.2f}",
            f"{m.peak_memory / 2**20:.0f}",
            f"{m.files_per_second:.0f}",
        ]
        for m in measures
    ]
    widths = [max(_width(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = []
    for r in [head, *rows]:
        cells = [_pad(r[0], widths[0])] + [
            _pad(c, w, right=True) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    for m in measures:
        if m.note:
            lines.append(f"  * {m.label}：{m.note}")
    return lines


def _verdict(ok: bool) -> str:
    return "达到" if ok else "未达到"


def describe_inbox(inbox: Inbox) -> str:
    counts: dict[str, int] = {}
    for f in inbox.files:
        counts[f["form"]] = counts.get(f["form"], 0) + 1
    parts = "，".join(f"{k} {v}" for k, v in sorted(counts.items()))
    return (
        f"{inbox.scale.label}：{inbox.n_files:,} 个文件（{parts}），"
        f"{inbox.size_bytes / 1e6:.0f} MB，台账共 {inbox.ledger_rows:,} 行"
    )


# --- command line --------------------------------------------------------------------------------


def _orchestrate(args: argparse.Namespace) -> int:
    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    jobs = args.jobs
    cache = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine(), "jobs": jobs}
    info = report["machine"]
    print(
        f"机器：{info['cpu']}，{info['cores']} 核，内存 {info['memory']}；{info['os']}；"
        f"Python {info['python']}；{info['libraries']}；{info['date']}"
    )
    province = province_scale(args.units, args.ledger_rows, args.checklists, args.seed)
    inbox = ensure_inbox(province, cache, jobs, log)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=cache))
    try:
        log("测量：端到端 consolidate ……")
        e2e = measure_cli(inbox, "consolidate", jobs, work / "out-consolidate")
        measures = [e2e]
        if not args.no_validate:
            log("测量：端到端 validate ……")
            measures.append(measure_cli(inbox, "validate", jobs, work / "out-validate"))
        log("测量：纯解析 ……")
        bare = measure_parse(inbox, jobs, work)
        measures.append(bare)
        slow = None
        if args.openpyxl_sample > 0:
            log("测量：pandas.read_excel(openpyxl) ……")
            slow = measure_openpyxl(inbox, args.openpyxl_sample, args.seed, work)
            measures.append(slow)
        print()
        print("省级规模  " + describe_inbox(inbox) + f"；读取进程数 --jobs {jobs}")
        for line in table(measures):
            print(line)
        ratio_bare = e2e.wall / bare.wall
        ratios: dict[str, float] = {"e2e_over_bare": ratio_bare}
        print()
        print(f"端到端 ÷ 纯解析 = {ratio_bare:.2f}（目标 ≤ 1.5，{_verdict(ratio_bare <= 1.5)}）")
        if slow is not None:
            # the openpyxl path is a user's loop, one file after another; the figure
            # as if that loop also used every core is shown beside it, for fairness
            ratio_slow = slow.wall / e2e.wall
            ratio_slow_parallel = slow.wall / max(1, jobs) / e2e.wall
            ratios.update(
                openpyxl_over_e2e=ratio_slow, openpyxl_parallel_over_e2e=ratio_slow_parallel
            )
            print(
                f"openpyxl 逐个读 ÷ 端到端 = {ratio_slow:.1f}（目标 ≥ 4，{_verdict(ratio_slow >= 4)}）；"
                f"若 openpyxl 也用 {jobs} 核理想并行：{ratio_slow_parallel:.1f}"
            )
        print(
            f"端到端峰值内存 {e2e.peak_memory / 2**20:.0f} MiB"
            f"（目标 < 1024 MiB，{_verdict(e2e.peak_memory < 2**30)}）"
        )
        phases: list[dict[str, Any]] = []
        if not args.no_phases:
            log("测量：端到端分解 ……")
            phases = measure_phases(inbox, jobs, work)
            print()
            print("端到端分解（同样的流程在一个进程内分段计时，CPU 含读取进程）")
            for line in phase_lines(phases):
                print(line)
        report["province"] = {
            "phases": phases,
            "inbox": describe_inbox(inbox),
            "measures": [asdict(m) for m in measures],
            "ratios": ratios,
        }
        if args.city_units > 0 and args.city_periods > 0:
            city = ensure_inbox(
                city_scale(args.city_units, args.city_periods, args.seed), cache, jobs, log
            )
            log("测量：市级规模端到端 ……")
            runs = [
                measure_cli(city, "consolidate", jobs, work / "out-city")
                for _ in range(max(1, args.city_runs))
            ]
            best = min(runs, key=lambda m: m.wall)
            print()
            print("市级规模  " + describe_inbox(city))
            for line in table([best]):
                print(line)
            print(
                f"整个专项行动（{city.scale.label}）端到端 {best.wall:.2f} 秒"
                f"（{len(runs)} 次中最快；目标 < 3 秒，{_verdict(best.wall < 3)}）"
            )
            report["city"] = {"inbox": describe_inbox(city), "measures": [asdict(best)]}
        if args.growth:
            report["growth"] = _growth(args, cache, jobs, work, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


def _growth(
    args: argparse.Namespace, cache: Path, jobs: int, work: Path, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """End to end and bare parse at several scales: by files, then by ledger rows."""
    scales = [province_scale(u, args.ledger_rows, args.checklists, args.seed) for u in (25, 50)]
    scales.append(province_scale(args.units, args.ledger_rows, args.checklists, args.seed))
    scales += [province_scale(args.units, r, 0, args.seed) for r in (500, 1000, 2000)]
    out = []
    print()
    print("规模与耗时（端到端 consolidate / 纯解析）")
    for scale in scales:
        inbox = ensure_inbox(scale, cache, jobs, log)
        log(f"测量：{inbox.scale.label}，{inbox.n_files} 个文件 ……")
        e2e = measure_cli(inbox, "consolidate", jobs, work / "out-growth")
        bare = measure_parse(inbox, jobs, work)
        line = (
            f"  {inbox.n_files:>5} 个文件，台账 {inbox.ledger_rows:>7,} 行，"
            f"{inbox.size_bytes / 1e6:>4.0f} MB：端到端 {e2e.wall:6.2f} 秒"
            f"（峰值 {e2e.peak_memory / 2**20:4.0f} MiB），纯解析 {bare.wall:6.2f} 秒"
        )
        print(line)
        out.append(
            {
                "files": inbox.n_files,
                "ledger_rows": inbox.ledger_rows,
                "bytes": inbox.size_bytes,
                "e2e": asdict(e2e),
                "bare": asdict(bare),
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench",
        description="省级规模性能测试：生成（并缓存）收件箱，测量端到端、纯解析和 openpyxl 读取。",
    )
    parser.add_argument("--units", type=int, default=100, help="省级规模的单位数")
    parser.add_argument("--ledger-rows", type=int, default=2000, help="每单位台账行数")
    parser.add_argument("--checklists", type=int, default=40, help="每单位检查清单文件数")
    parser.add_argument("--city-units", type=int, default=13, help="市级规模的单位数（0：不测）")
    parser.add_argument("--city-periods", type=int, default=8, help="市级规模的月数")
    parser.add_argument("--city-runs", type=int, default=3, help="市级规模重复次数（取最快）")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="读取进程数")
    parser.add_argument(
        "--openpyxl-sample", type=int, default=6, help="openpyxl 读取每种表抽取的文件数"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="随机种子")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="生成的收件箱的缓存文件夹"
    )
    parser.add_argument("--no-validate", action="store_true", help="不测端到端 validate")
    parser.add_argument("--no-phases", action="store_true", help="不做端到端分段计时")
    parser.add_argument("--growth", action="store_true", help="另测几种规模，看耗时如何增长")
    parser.add_argument("--json", type=Path, default=None, help="把全部结果另存为 JSON")
    # internal: the generating and measured subprocesses
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scale-json", help=argparse.SUPPRESS)
    parser.add_argument("--stage", choices=("parse", "openpyxl", "phases"), help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--inbox", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--period", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate is not None:
        generate(args.generate, Scale(**json.loads(args.scale_json)), args.jobs)
        return 0
    if args.stage == "phases":
        result = stage_phases(args.inbox, args.period, args.out, args.jobs)
        args.result.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
        return 0
    if args.stage is not None:
        paths = [p for p in args.files.read_text(encoding="utf-8").splitlines() if p]
        result = stage_parse(paths, args.jobs) if args.stage == "parse" else stage_openpyxl(paths)
        args.result.write_text(json.dumps(result), encoding="utf-8")
        return 0
    return _orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
