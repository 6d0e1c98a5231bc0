"""A small consolidation fixture built from model.Return objects, with totals computed by hand.

Four units report 2023-05 … 2023-07; the period consolidated is 2023-07. Every anomaly rule is
planted once, checklist-major-exceeds-ledger twice (附件2 and 附件3), see PLANTED; the
hand-computed city totals are in CITY_2023_07.

    unit     2023-05          2023-06                 2023-07
    鼓楼区   accepted         accepted + ledger        two returns (the later wins) + ledger
                                                        + 附件2 with 2 major hazards
    台江区   accepted         accepted                 rejected only -> carried from 06
    仓山区   accepted         accepted                 accepted, received late; ledger;
                                                        B1 falls 6 -> 5; A1 4 vs ledger 3;
                                                        附件3 with 1 hazard (major by the form)
    马尾区   accepted         accepted                 identical to 06, no ledger ever
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.forms import Unit, ledger_form, progress_form, unit_by_name
from pipeline.layout import a1, checklist_layout, progress_layout
from pipeline.model import Inspection, Issue, Return

PERIOD = "2023-07"
GL, TJ, CS, MW = "鼓楼区", "台江区", "仓山区", "马尾区"


def fixture_units() -> tuple[Unit, ...]:
    units = tuple(unit_by_name(n) for n in (GL, TJ, CS, MW))
    assert all(units)
    return units  # type: ignore[return-value]


# Cumulative 附件4 figures, only the non-zero codes; every other code is 0.
FIGURES: dict[tuple[str, str], dict[str, str]] = {
    (GL, "2023-05"): {"A1": "1", "A3": "1", "B1": "10", "C3a": "1", "C3b": "0.1", "D3": "10", "D5a": "0.05"},
    (GL, "2023-06"): {
        "A1": "2", "A2": "1", "A3": "1", "A4": "1", "A5": "1", "A6": "1", "B1": "15",
        "C3a": "2", "C3b": "0.3", "D3": "20", "D5a": "0.05",
    },
    (GL, "2023-07"): {
        "A1": "3", "A2": "2", "A3": "2", "A4": "1", "A5": "1", "A6": "1", "B1": "20",
        "C3a": "3", "C3b": "0.7001", "D3": "520", "D5a": "0.15",
    },
    (TJ, "2023-05"): {"A1": "1", "B1": "5", "C3a": "1", "C3b": "0.2"},
    (TJ, "2023-06"): {"A1": "2", "A2": "1", "B1": "8", "C3a": "1", "C3b": "0.2", "D5a": "0.1"},
    (CS, "2023-05"): {"A1": "1", "B1": "3"},
    (CS, "2023-06"): {"A1": "3", "A2": "2", "B1": "6"},
    (CS, "2023-07"): {"A1": "4", "A2": "3", "B1": "5", "C3a": "1", "C3b": "0.7", "D5a": "0.2"},
    (MW, "2023-05"): {"A1": "1", "B1": "4", "D3": "5"},
    (MW, "2023-06"): {"A1": "2", "A2": "1", "B1": "4", "C3a": "1", "C3b": "0.0001", "D3": "5"},
    (MW, "2023-07"): {"A1": "2", "A2": "1", "B1": "4", "C3a": "1", "C3b": "0.0001", "D3": "5"},
}  # fmt: skip

# City totals for 2023-07, by hand: 台江区 enters with its 2023-06 figures.
#   A1 3+2+4+2=11  A2 2+1+3+1=7  A3 2  A4 1  A5 1  A6 1  B1 20+8+5+4=37  C3a 3+1+1+1=6
#   C3b 0.7001+0.2+0.7+0.0001=1.6002 (float: 1.6001999999999998)  D3 520+0+0+5=525  D5a 0.15+0.1+0.2+0=0.45
CITY_2023_07 = {
    "A1": Decimal("11"), "A2": Decimal("7"), "A3": Decimal("2"), "A4": Decimal("1"),
    "A5": Decimal("1"), "A6": Decimal("1"), "B1": Decimal("37"), "C3a": Decimal("6"),
    "C3b": Decimal("1.6002"), "D3": Decimal("525"), "D5a": Decimal("0.45"),
}  # fmt: skip
# 2023-06 city: A1 2+2+3+2=9, so the city's 本月新增 for A1 is 2.
CITY_2023_06_A1 = Decimal("9")
# 本月新增 per unit for 2023-07 (A1, B1, C3b):
INCREMENTS_2023_07 = {
    GL: {"A1": Decimal("1"), "B1": Decimal("5"), "C3b": Decimal("0.4001")},
    TJ: {"A1": Decimal("0"), "B1": Decimal("0"), "C3b": Decimal("0")},
    CS: {"A1": Decimal("1"), "B1": Decimal("-1"), "C3b": Decimal("0.7")},
    MW: {"A1": Decimal("0"), "B1": Decimal("0"), "C3b": Decimal("0")},
}

# (rule, unit, item) of every flag the fixture plants, and nothing else.
PLANTED = {
    ("unit-not-reported", TJ, ""),  # only a rejected 2023-07 return
    ("ledger-not-reported", TJ, ""),
    ("ledger-not-reported", MW, ""),
    ("cumulative-decreased", CS, "B1"),  # 6 -> 5
    ("return-identical", MW, ""),
    ("increment-outlier", GL, "D3"),  # +10, +10, then +500
    ("ledger-mismatch", CS, "A1"),  # 附件4 says 4, ledger has 3 企业自查 rows
    ("ledger-overdue", GL, "G-003"),  # 整改期限 2023-07-20, still 整改中 at 07-31
    ("ledger-row-vanished", GL, "G-007"),
    ("ledger-status-regressed", GL, "G-002"),  # 已验收销号 -> 已整改待验收
    ("return-late", CS, ""),  # received 2023-08-02 00:00:00, due 08-01 inclusive
    ("checklist-major-exceeds-ledger", GL, ""),  # 2 major hazards vs 1 部门检查 row in July
    # 附件3 has no 是否重大隐患 column (its hazards are 重大隐患描述): its one hazard is major,
    # and 仓山区's July ledger has no 部门检查 row
    ("checklist-major-exceeds-ledger", CS, ""),
}


def _received(period: str, day_offset: int = 0, hour: int = 10) -> dt.datetime:
    """A receipt time relative to the period's due day (2023-07 -> 2023-08-01)."""
    year, month = int(period[:4]), int(period[5:])
    due = dt.date(year + month // 12, month % 12 + 1, 1)
    return dt.datetime.combine(due + dt.timedelta(days=day_offset), dt.time(hour))


def progress_return(
    unit: str,
    period: str,
    values: dict[str, str],
    *,
    rel: str | None = None,
    received: dt.datetime | None = None,
    status: str = "accepted",
) -> Return:
    form = progress_form()
    cells = progress_layout(form).value_cells
    u = unit_by_name(unit)
    assert u is not None
    ret = Return(
        path=Path("/inbox") / (rel or f"{unit}_{period}_附件4.xlsx"),
        rel=rel or f"{period}/{unit}_附件4.xlsx",
        sha256=f"sha-{unit}-{period}-{rel or 'a4'}",
        mtime=received or _received(period, -1),
        received=received or _received(period, -1),
        received_source="log",
        fmt="xlsx",
        form_id="annex4_progress",
        unit_code=u.code,
        unit_name=unit,
        period=period,
        identified_by="metadata",
        status=status,  # type: ignore[arg-type]
    )
    if status == "accepted":
        ret.progress = {c: Decimal(values.get(c, "0")) for c in form.value_codes}
        ret.progress_cells = {c: (form.sheet_name, cells[c].a1) for c in form.value_codes}
    return ret


def hazard(
    hid: str,
    found_by: str,
    status: str,
    *,
    found: str,
    deadline: str,
    supervised: str = "否",
    enterprise: str = "某建设有限公司",
    row: int = 4,
) -> dict[str, Any]:
    rectified = status != "整改中"
    return {
        "hazard_id": hid,
        "domain": "建筑施工",
        "enterprise": enterprise,
        "credit_code": None,
        "site": "某项目",
        "description": "高支模未按方案搭设",
        "basis": "附件2第10项",
        "found_by": found_by,
        "found_date": dt.date.fromisoformat(found),
        "measures": "停工整改",
        "responsible": "张三",
        "funds": Decimal("1.5"),
        "deadline": dt.date.fromisoformat(deadline),
        "emergency_plan": "有",
        "supervised": supervised,
        "supervision_level": "市" if supervised == "是" else None,
        "status": status,
        "rectified_date": dt.date.fromisoformat(found) if rectified else None,
        "accepted_by": "李四" if status == "已验收销号" else None,
        "closed_date": dt.date.fromisoformat(found) if status == "已验收销号" else None,
        "remarks": None,
        "_sheet": ledger_form().sheet_name,
        "_row": row,
    }


def ledger_return(
    unit: str, period: str, rows: list[dict[str, Any]], *, received: dt.datetime | None = None
) -> Return:
    u = unit_by_name(unit)
    assert u is not None
    for i, row in enumerate(rows):
        row["_row"] = 4 + i
    keys = [c.key for c in ledger_form().columns]
    frame = pd.DataFrame(rows, columns=[*keys, "_sheet", "_row"])
    return Return(
        path=Path("/inbox") / f"{unit}_{period}_台账.xlsx",
        rel=f"{period}/{unit}_台账.xlsx",
        sha256=f"sha-{unit}-{period}-ledger",
        mtime=received or _received(period, -1),
        received=received or _received(period, -1),
        received_source="log",
        fmt="xlsx",
        form_id="ledger",
        unit_code=u.code,
        unit_name=unit,
        period=period,
        identified_by="metadata",
        ledger=frame,
    )


def annex2_inspection(
    sheet: str, project: str, date: str, answers: dict[int, tuple[str, str]]
) -> Inspection:
    """answers: item no -> (tick, major) for the items that differ from '否'/no hazard."""
    from pipeline.forms import load_forms

    form = load_forms()["annex2_construction"]
    layout = checklist_layout(form)  # type: ignore[arg-type]
    insp = Inspection(sheet=sheet)
    for item in form.items:  # type: ignore[union-attr]
        tick, major = answers.get(item.no, ("否" if item.hazard_answer == "是" else "是", ""))
        insp.answers[item.no] = tick
        insp.item_cells[item.no] = a1(layout.item_row(item.no), layout.tick_col("是"))
        if tick == item.hazard_answer:
            insp.details[item.no] = {
                "description": "发现隐患",
                "requirement": "立即整改",
                "deadline": dt.date(2023, 8, 15),
                "major": major or "否",
            }
    insp.footer = {
        "project": project,
        "project_manager": "王五",
        "chief_supervisor": "赵六",
        "inspectors": "钱七",
        "inspection_date": dt.date.fromisoformat(date),
    }
    return insp


def annex3_inspection(sheet: str, subject: str, date: str, hazards: set[int]) -> Inspection:
    insp = Inspection(sheet=sheet)
    for no in range(1, 8):
        insp.answers[no] = "否" if no in hazards else "是"
        insp.item_cells[no] = f"D{5 + no}"
        if no in hazards:
            insp.details[no] = {
                "description": "未建立台账",
                "requirement": "建立台账",
                "deadline": dt.date(2023, 8, 10),
                "major": None,
            }
    insp.footer = {
        "inspected_unit": subject,
        "inspectors": "检查员",
        "inspection_date": dt.date.fromisoformat(date),
    }
    return insp


def checklist_return(
    unit: str, period: str, form_id: str, name: str, inspections: list[Inspection],
    *, received: dt.datetime | None = None,
) -> Return:  # fmt: skip
    u = unit_by_name(unit)
    assert u is not None
    return Return(
        path=Path("/inbox") / name,
        rel=f"{period}/{name}",
        sha256=f"sha-{name}",
        mtime=received or _received(period, -1),
        received=received or _received(period, -1),
        received_source="mtime",
        fmt="xlsx",
        form_id=form_id,
        unit_code=u.code,
        unit_name=unit,
        period=period,
        identified_by="metadata",
        inspections=inspections,
    )


def build_returns() -> list[Return]:
    """Every file of the fixture inbox, as the validation stage would hand them over."""
    rets: list[Return] = []
    for (unit, period), values in FIGURES.items():
        if (unit, period) == (GL, "2023-07"):
            continue
        received = None
        if (unit, period) == (CS, "2023-07"):
            received = dt.datetime(2023, 8, 2, 0, 0, 0)  # one second past the due day
        rets.append(progress_return(unit, period, values, received=received))
    # 鼓楼区 sends 2023-07 twice; the later one (last second of the due day) wins.
    first = dict(FIGURES[(GL, "2023-07")], A1="9")
    rets.append(
        progress_return(
            GL, "2023-07", first, rel="2023-07/鼓楼区_附件4_初稿.xlsx",
            received=dt.datetime(2023, 8, 1, 9, 0),
        )
    )  # fmt: skip
    rets.append(
        progress_return(
            GL, "2023-07", FIGURES[(GL, "2023-07")], rel="2023-07/鼓楼区_附件4_修改.xlsx",
            received=dt.datetime(2023, 8, 1, 23, 59, 59),
        )
    )  # fmt: skip
    # 台江区's only 2023-07 return was rejected by validation.
    rejected = progress_return(TJ, "2023-07", {}, status="rejected")
    rejected.issues = [
        Issue("a4-a2-gt-a1", "error", "A2 大于 A1", file=rejected.rel, sheet="调度表", cell="E6"),
        Issue("a4-b-gt-b1", "error", "B6 大于 B1", file=rejected.rel, sheet="调度表", cell="E14"),
    ]
    rets.append(rejected)

    # 鼓楼区 ledgers: 2023-06 and 2023-07.
    rets.append(
        ledger_return(
            GL,
            "2023-06",
            [
                hazard("G-001", "企业自查", "整改中", found="2023-06-02", deadline="2023-08-15"),
                hazard("G-002", "企业自查", "已验收销号", found="2023-06-05", deadline="2023-06-20"),
                hazard("G-004", "部门检查", "已验收销号", found="2023-06-12", deadline="2023-06-30", supervised="是"),
                hazard("G-007", "企业自查", "整改中", found="2023-06-20", deadline="2023-09-30"),
            ],
        )
    )  # fmt: skip
    rets.append(
        ledger_return(
            GL,
            "2023-07",
            [
                hazard("G-001", "企业自查", "已验收销号", found="2023-06-02", deadline="2023-08-15"),
                hazard("G-002", "企业自查", "已整改待验收", found="2023-06-05", deadline="2023-06-20"),
                hazard("G-003", "企业自查", "整改中", found="2023-07-05", deadline="2023-07-20", enterprise="=HYPERLINK(\"http://x\")"),
                hazard("G-004", "部门检查", "已验收销号", found="2023-06-12", deadline="2023-06-30", supervised="是"),
                hazard("G-005", "部门检查", "整改中", found="2023-07-10", deadline="2023-08-31"),
                hazard("G-006", "举报", "整改中", found="2023-07-12", deadline="2023-07-31"),
            ],
        )
    )  # fmt: skip
    rets.append(
        ledger_return(
            CS,
            "2023-07",
            [
                hazard("C-001", "企业自查", "已验收销号", found="2023-05-10", deadline="2023-05-30"),
                hazard("C-002", "企业自查", "已验收销号", found="2023-06-10", deadline="2023-06-30"),
                hazard("C-003", "企业自查", "已验收销号", found="2023-07-10", deadline="2023-07-30"),
            ],
        )
    )  # fmt: skip
    # Checklists. 鼓楼区 2023-07: items 5 and 33 major hazards, item 42 answered 是 (no hazard).
    rets.append(
        checklist_return(
            GL, "2023-07", "annex2_construction", "鼓楼区_附件2_某项目.xlsx",
            [annex2_inspection("附件2", "某项目", "2023-07-15", {5: ("是", "是"), 33: ("是", "是"), 42: ("是", "")})],
        )
    )  # fmt: skip
    # A June checklist of 鼓楼区 with a major hazard: other period, must not count for July.
    rets.append(
        checklist_return(
            GL, "2023-06", "annex2_construction", "鼓楼区_附件2_六月.xlsx",
            [annex2_inspection("附件2", "六月项目", "2023-06-15", {7: ("是", "是")})],
        )
    )  # fmt: skip
    # 仓山区: a non-major construction hazard, and a confined-space inspection with one hazard
    # (answer 否 to item 2), resubmitted: the second file replaces the first.
    rets.append(
        checklist_return(
            CS, "2023-07", "annex2_construction", "仓山区_附件2.xlsx",
            [annex2_inspection("附件2", "仓山项目", "2023-07-08", {10: ("是", "否")})],
        )
    )  # fmt: skip
    rets.append(
        checklist_return(
            CS, "2023-07", "annex3_confined_space", "仓山区_附件3_初稿.xlsx",
            [annex3_inspection("附件3", "某污水处理厂", "2023-07-09", {2, 5})],
            received=dt.datetime(2023, 7, 30, 8, 0),
        )
    )  # fmt: skip
    rets.append(
        checklist_return(
            CS, "2023-07", "annex3_confined_space", "仓山区_附件3_更正.xlsx",
            [annex3_inspection("附件3", "某污水处理厂", "2023-07-09", {2})],
            received=dt.datetime(2023, 7, 31, 8, 0),
        )
    )  # fmt: skip
    # A lock file the validator ignored: never listed in the submissions.
    rets.append(Return(path=Path("/inbox/~$x.xlsx"), rel="~$x.xlsx", status="ignored"))
    return rets
