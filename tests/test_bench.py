"""The benchmark runs end to end at a tiny scale, and its fast writer makes the same returns."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline import bench
from pipeline.forms import load_calendar, load_units
from pipeline.read import read_return
from pipeline.samples import ScenarioParams, _fill_one, build_scenario


def test_tiny_benchmark_runs_and_reports_every_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    args = ["--units", "2", "--ledger-rows", "6", "--checklists", "2", "--jobs", "2"]
    args += ["--city-units", "0", "--no-validate", "--openpyxl-sample", "1"]
    args += ["--cache", str(tmp_path / "cache"), "--json", str(report)]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "端到端 ÷ 纯解析" in out and "openpyxl 逐个读 ÷ 端到端" in out
    assert "按每种表随机抽取的 4 个文件（种子 20230520）外推" in out
    data = json.loads(report.read_text(encoding="utf-8"))
    measures = {m["label"].split("（")[0]: m for m in data["province"]["measures"]}
    assert set(measures) == {
        "端到端 consolidate",
        "纯解析 python-calamine",
        'pandas.read_excel(engine="openpyxl")',
    }
    for m in measures.values():
        assert m["wall"] > 0 and m["cpu"] > 0 and m["peak_memory"] > 10 * 2**20
        assert m["files"] == 2 * (2 + 2)  # 附件4, ledger and two checklists per unit
    assert measures["纯解析 python-calamine"]["detail"]["cells"] > 0
    assert data["province"]["ratios"]["e2e_over_bare"] > 0
    assert data["province"]["ratios"]["openpyxl_over_e2e"] > 0
    phases = [p["phase"] for p in data["province"]["phases"]]
    assert phases[0] == "导入模块" and phases[1] == "读取（2 个进程）" and len(phases) == 6
    assert "端到端分解" in out

    # the cached inbox is found again (same parameters, same generator) and is a clean inbox
    scale = bench.province_scale(2, 6, 2)
    inbox = bench.load_inbox(tmp_path / "cache" / scale.cache_name(), scale)
    assert inbox is not None and inbox.n_files == 8 and inbox.ledger_rows == 2 * 6
    assert bench.load_inbox(tmp_path / "cache" / scale.cache_name(), replace(scale, seed=1)) is None
    units = (inbox.schemas / "units.csv").read_text(encoding="utf-8")
    assert "基准县001" in units and "基准县002" in units

    # --openpyxl-sample 0 leaves the openpyxl path out, and its ratio with it
    args = [*args[: args.index("--openpyxl-sample")], "--openpyxl-sample", "0", "--no-phases"]
    args += ["--cache", str(tmp_path / "cache"), "--json", str(report)]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert "端到端 ÷ 纯解析" in out and "openpyxl" not in out.split("省级规模")[1]
    data = json.loads(report.read_text(encoding="utf-8"))
    assert set(data["province"]["ratios"]) == {"e2e_over_bare"}


def test_fast_writer_gives_the_returns_that_filling_the_template_gives(tmp_path: Path) -> None:
    params = ScenarioParams(units=load_units()[:1], periods=load_calendar().periods[:1])
    params = replace(params, plants=False, checklist_workbooks=(3, 3), two_sheet_share=1.0)
    scenario = build_scenario(params, seed=7)
    # 附件4, the ledger and a two-sheet 附件2: every way the writer fills cells
    files = [f for f in scenario.files if f.form_id in ("annex4_progress", "ledger")]
    files.append(next(f for f in scenario.files if f.form_id == "annex2_construction"))
    for planned in files:
        filled = tmp_path / "filled" / planned.rel
        _fill_one((planned, tmp_path / "template.xlsx", filled))  # openpyxl, as clerks do
        fast = tmp_path / "fast" / planned.rel
        fast.parent.mkdir(parents=True, exist_ok=True)
        fast.write_bytes(bench.render_return(planned))
        a = read_return(filled, tmp_path / "filled")
        b = read_return(fast, tmp_path / "fast")
        assert b.status == "accepted" and not b.issues, (planned.rel, b.issues)
        assert (a.form_id, a.unit_name, a.period, a.status) == (
            b.form_id,
            b.unit_name,
            b.period,
            b.status,
        )
        assert a.progress == b.progress and a.report_date == b.report_date
        assert [(i.sheet, i.answers, i.footer) for i in a.inspections] == [
            (i.sheet, i.answers, i.footer) for i in b.inspections
        ]
        assert [i.details for i in a.inspections] == [i.details for i in b.inspections]
        if a.ledger is not None:
            assert b.ledger is not None
            assert a.ledger.to_dict("records") == b.ledger.to_dict("records")
    assert len(files) == 3 and len(files[-1].inspections) == 2
    assert any(d for i in files[-1].inspections for d in i.details.values())  # hazards filled


@pytest.mark.skipif(
    not Path("/proc/self/smaps_rollup").exists(), reason="PSS needs Linux /proc smaps_rollup"
)
def test_memory_of_a_forked_tree_counts_shared_pages_once() -> None:
    from pipeline.bench import _children, _tree_memory

    block = bytearray(os.urandom(1024)) * (64 * 1024)  # 64 MiB, resident and shared on fork
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child only holds the inherited pages until the parent has measured
        os.close(writer)
        os.read(reader, 1)
        os._exit(0)
    os.close(reader)
    try:
        time.sleep(0.05)
        page = os.sysconf("SC_PAGE_SIZE")
        tree, stack = [], [os.getpid()]
        while stack:  # this process and its descendants: the child, any reading sandbox
            tree.append(stack.pop())
            stack += _children(tree[-1])
        assert pid in tree
        rss = sum(int(Path(f"/proc/{p}/statm").read_text().split()[1]) * page for p in tree)
        pss = _tree_memory(os.getpid())
        assert len(block) == 64 * 2**20
        # summed resident sets count the shared 64 MiB twice; PSS once
        assert rss - pss > 48 * 2**20
    finally:
        os.write(writer, b"x")
        os.close(writer)
        os.waitpid(pid, 0)
