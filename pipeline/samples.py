"""Seeded generator of `sample_inputs/`: a realistic multi-month inbox of county returns with planted mess.

`build_scenario(params, seed)` makes the whole campaign as data (ledgers, 附件4 figures, inspections,
which file goes where, when it was received, what was planted); `write_inbox(scenario, out)` fills
our own templates with it the way clerks do and adds the mess (an .xls and an .ods made by
LibreOffice, a renamed file, a resubmission, a `~$` lock file, a pasted copy without metadata …),
the receipt log 收文登记.csv and the Chinese description 样例说明.md. The machine-readable manifest
(every file, every planted case, the expected city totals) goes to tests/data/sample_planted.json.

    python -m pipeline.samples --out sample_inputs [--seed N]

The scale is a parameter (`ScenarioParams`), so the province-scale benchmark reuses the generator.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from copy import copy
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.forms import (
    ChecklistForm,
    Unit,
    checklist_forms,
    load_calendar,
    load_units,
    parse_period,
    period_end,
    progress_form,
)
from pipeline.fsutil import temp_dir
from pipeline.model import Inspection

DEFAULT_SEED = 20230520
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = REPO_ROOT / "tests" / "data" / "sample_planted.json"
RECEIPT_LOG = "收文登记.csv"
RECEIPT_COLUMNS = ("文件名", "收到时间")
README_NAME = "样例说明.md"
TIME_FORMAT = "%Y-%m-%d %H:%M"

# --- GB 32100 unified social credit code / GB 11714 organisation code ------------------------

CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def credit_check_char(first17: str) -> str:
    """The 18th character of a GB 32100 code, from the first 17."""
    total = sum(CREDIT_CHARSET.index(ch) * w for ch, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def org_check_char(first8: str) -> str:
    """The 9th character of a GB 11714 organisation code, from the first 8 (digits here)."""
    total = sum(int(ch, 36) * w for ch, w in zip(first8, ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def make_credit_code(rng: random.Random, division: str) -> str:
    """A well-formed 18-character code of an enterprise (登记管理部门 9, 类别 1) in `division`."""
    org8 = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = "91" + division + org8 + org_check_char(org8)
    return first17 + credit_check_char(first17)


# --- text pools --------------------------------------------------------------------------------

SURNAMES = "林陈黄郑王张李吴刘杨翁游魏蔡许朱潘詹江苏卓池"
GIVEN_NAMES = [
    "建华",
    "志强",
    "明辉",
    "秀英",
    "丽萍",
    "国平",
    "晓东",
    "文彬",
    "海燕",
    "振宇",
    "宏伟",
    "少华",
    "丽娟",
    "家明",
    "春生",
    "金水",
    "永福",
    "美玲",
    "宇航",
    "志勇",
    "榕生",
    "闽生",
    "伟",
    "斌",
    "婷",
    "军",
    "峰",
    "磊",
    "静",
    "敏",
    "晓燕",
    "德明",
    "承志",
    "雅琴",
    "锦华",
    "仁杰",
]
BRANDS = [
    "榕信",
    "闽鑫",
    "福盛",
    "鑫泰",
    "恒达",
    "宏建",
    "永安",
    "海联",
    "闽越",
    "瑞达",
    "鼎盛",
    "嘉禾",
    "安泰",
    "元洪",
    "长兴",
    "新榕",
    "建兴",
    "金鼎",
    "华宇",
    "中闽",
    "闽辉",
    "润丰",
    "宏福",
    "泰禾川",
    "三江",
    "旗山",
    "乌山",
    "屏山",
    "冠城",
    "融汇",
]
BUILDER_SUFFIXES = (
    "建设工程有限公司",
    "建筑工程有限公司",
    "建工集团有限公司",
    "市政工程有限公司",
    "建设发展有限公司",
    "建筑安装工程有限公司",
)
PROJECT_KINDS = (
    "安置房项目（{n}期）",
    "保障性租赁住房工程",
    "中学教学综合楼工程",
    "人民医院门诊楼改扩建工程",
    "商住楼工程{n}#地块",
    "老旧小区改造项目",
    "道路提升改造工程",
    "污水管网建设工程",
    "标准厂房工程（{n}期）",
    "人才公寓项目",
    "市政综合管廊工程",
    "小学扩建工程",
    "体育中心项目",
)
METRO_KIND = "地铁{n}号线{town}站主体结构工程"
RESTAURANTS = ("福满楼", "闽味坊", "鼎边糊", "佛跳墙酒家", "海鲜大排档", "老福州面馆", "鱼丸店")

# Real street and town names, so projects look local; units outside this table use their name.
PLACES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "鼓楼区": (
        ("温泉街道", "五凤街道", "鼓东街道", "洪山镇"),
        ("五四路", "杨桥路", "湖东路", "西二环"),
    ),
    "台江区": (
        ("茶亭街道", "瀛洲街道", "后洲街道", "上海街道"),
        ("八一七中路", "江滨大道", "工业路"),
    ),
    "仓山区": (("城门镇", "盖山镇", "建新镇", "金山街道"), ("浦上大道", "金山大道", "则徐大道")),
    "马尾区": (("亭江镇", "琅岐镇", "罗星街道", "马尾镇"), ("江滨东大道", "儒江西路", "君竹路")),
    "晋安区": (("新店镇", "岳峰镇", "鼓山镇", "宦溪镇"), ("福新路", "岳峰路", "连江北路")),
    "长乐区": (("吴航街道", "航城街道", "文岭镇", "潭头镇"), ("吴航路", "郑和路", "首占大道")),
    "闽侯县": (("甘蔗街道", "上街镇", "南屿镇", "青口镇"), ("乌龙江大道", "甘洪路", "学府路")),
    "连江县": (("凤城镇", "琯头镇", "敖江镇", "筱埕镇"), ("丹凤路", "江南路", "贵安路")),
    "罗源县": (("凤山镇", "松山镇", "起步镇", "碧里乡"), ("凤山路", "罗川路", "滨海大道")),
    "闽清县": (("梅城镇", "白樟镇", "坂东镇", "云龙乡"), ("梅溪路", "台山路", "白金路")),
    "永泰县": (("樟城镇", "城峰镇", "嵩口镇", "梧桐镇"), ("城峰路", "环城路", "东门路")),
    "福清市": (
        ("玉屏街道", "龙山街道", "江阴镇", "龙田镇", "音西街道"),
        ("清昌大道", "福耀路", "融侨路"),
    ),
    "福州高新区": (("南屿镇", "上街镇", "建平村"), ("高新大道", "创新路", "乌龙江大道")),
}

# Hazard text per checklist item: (description, 整改要求, 整改措施). {bldg}, {crane}, {floor},
# {depth}, {ent} and {site} are filled in per hazard. Only these items are ever answered as a hazard.
HAZARD_TEXT: dict[str, dict[int, tuple[tuple[str, str, str], ...]]] = {
    "annex2_construction": {
        5: (
            (
                "{bldg}塔吊司机、信号司索工各1名无特种作业操作资格证书上岗",
                "立即停止无证人员作业，更换持证人员",
                "清退无证人员，更换持证司机和司索工，建立特种作业人员持证登记台账",
            ),
        ),
        6: (
            (
                "{bldg}高大模板支撑体系专项施工方案未组织专家论证即施工",
                "立即停止模板支设，组织专家论证后按方案实施",
                "停工，重新编制专项方案并组织专家论证，按论证方案整改支撑体系",
            ),
        ),
        8: (
            (
                "基坑东侧局部超挖约1.5米，未采取加固措施",
                "立即停止开挖，回填反压并按方案加固",
                "回填反压超挖部位，增设锚索，加密监测频率",
            ),
        ),
        9: (
            (
                "开挖深度{depth}米的深基坑未委托第三方监测",
                "委托有资质单位开展第三方监测",
                "委托第三方监测单位进场，补设监测点并出具初始值报告",
            ),
        ),
        10: (
            (
                "基坑北侧冠梁水平位移超过设计控制值，未及时处置",
                "立即启动应急预案，采取加固措施",
                "坑内回填反压，增设钢支撑，监测频率加密至每日两次",
            ),
        ),
        17: (
            (
                "{bldg}落地式脚手架立杆基础积水下沉，未做排水处理",
                "立即整改脚手架基础并设置排水沟",
                "硬化脚手架基础，设置排水沟，更换变形立杆",
            ),
        ),
        18: (
            (
                "{bldg}外脚手架第{floor}层连墙件整层缺失",
                "立即停止架体上作业，按方案补设连墙件",
                "按方案补设连墙件，经验收合格后恢复使用",
            ),
        ),
        22: (
            (
                "{crane}号塔式起重机未办理使用登记即投入使用",
                "立即停止使用，办理使用登记",
                "停止使用，完成检测验收并办理使用登记",
            ),
        ),
        23: (
            (
                "{crane}号塔式起重机最高附着以上悬高超过说明书要求",
                "立即停止使用，增设附着装置",
                "增设一道附着，复测垂直度，验收合格后使用",
            ),
        ),
        26: (
            (
                "{crane}号施工升降机防坠安全器失效，上限位被拆除",
                "立即停止使用，修复安全装置",
                "更换防坠安全器，恢复限位装置，经检测合格后使用",
            ),
        ),
        31: (
            (
                "{bldg}悬挑式卸料平台拉结点设置在脚手架上，未与主体结构可靠连接",
                "立即停止使用，按方案重新设置拉结",
                "拆除违规平台，按方案在主体结构上设置拉结点并验收",
            ),
        ),
        32: (
            (
                "地下室集水井有限空间作业未办理审批，未进行通风检测",
                "立即停止作业，落实审批和“先通风、再检测、后作业”",
                "补办作业审批，配备气体检测仪和通风设备，开展专项培训",
            ),
        ),
        33: (
            (
                "污水检查井内作业时井口无专人监护",
                "立即停止作业，安排专人监护",
                "设置专职监护人员，作业前进行安全技术交底",
            ),
        ),
        34: (
            (
                "地下室潮湿作业区照明未使用安全电压",
                "更换为36V及以下安全电压照明",
                "更换安全电压照明灯具及变压器，排查其他作业面",
            ),
        ),
        38: (
            (
                "项目部未建立消防安全责任制和考核奖惩制度",
                "建立消防安全责任制度并落实考核",
                "制定消防安全责任制及考核奖惩办法，明确各级责任人",
            ),
        ),
        40: (
            (
                "项目未组织开展全员安全警示教育活动",
                "组织开展1次全员安全警示教育",
                "组织全员观看事故警示片并开展警示教育，留存签到记录",
            ),
        ),
        41: (
            (
                "{bldg}动火作业未办理动火审批，电焊工未持证作业",
                "立即停止动火作业，落实动火审批，持证上岗",
                "停止动火作业，清退无证电焊工，建立动火审批台账",
            ),
        ),
        42: (
            (
                "{bldg}动火作业无监护人员，未配备灭火器材",
                "落实消防安全措施检查和作业过程监督",
                "配备动火监护人和灭火器材，落实作业全过程监督",
            ),
        ),
        43: (
            (
                "现场使用的电焊机一次侧电源线破损，接地不良",
                "立即停用并检修或更换电焊机",
                "更换破损电源线，重做接地，建立电焊设备检查台账",
            ),
        ),
        44: (
            (
                "{bldg}施工楼层未按规定设置消防竖管和灭火器",
                "按规定设置消防设施并配备消防器材",
                "增设临时消防竖管、消火栓和灭火器，设置防火警示标识",
            ),
        ),
    },
    "annex1_gas": {
        1: (
            (
                "{ent}未按规定配备专职安全管理人员，管网监测设备部分失效",
                "配足安全管理人员，修复或更换失效监测设备",
                "增配专职安全员2名，更换失效的可燃气体探测器",
            ),
            (
                "{ent}隐患排查治理未形成闭环，应急预案演练流于形式",
                "建立隐患排查治理闭环台账，按预案组织实战演练",
                "建立隐患整改销号台账，组织开展燃气泄漏实战演练",
            ),
        ),
        2: (
            (
                "{site}气瓶间设置在地下室，未安装燃气泄漏报警器",
                "将气瓶间移出地下室，安装燃气泄漏报警器",
                "搬迁气瓶间至地面独立房间，安装燃气泄漏报警装置",
            ),
            (
                "{site}使用不合格连接软管，私接“三通”",
                "更换合格软管，拆除私接三通",
                "更换金属波纹连接管，拆除私接三通，开展入户安检复查",
            ),
        ),
        3: (
            (
                "{site}中压燃气管道被违章建筑占压",
                "拆除占压建筑，恢复管道保护范围",
                "协调拆除占压建筑物，设置管道警示标志",
            ),
            (
                "{site}燃气调压站与周边建筑安全间距不足",
                "采取防护措施，制定迁改方案",
                "设置防撞隔离设施，编制调压站迁改方案并报批",
            ),
        ),
    },
    "annex3_confined_space": {
        1: (
            (
                "{ent}未对有限空间开展辨识，未建立有限空间管理台账",
                "全面辨识有限空间，建立管理台账，设置警示标志",
                "开展有限空间全面辨识，建立台账并设置安全告知牌",
            ),
        ),
        2: (
            (
                "{ent}有限空间作业合同未报县级主管部门备查",
                "补报作业合同备查",
                "补报有限空间作业合同，建立合同报备登记制度",
            ),
        ),
        3: (
            (
                "{ent}未建立有限空间作业队伍和人员台账",
                "建立作业队伍和人员台账",
                "建立作业队伍和人员台账并每月更新",
            ),
        ),
        4: (
            (
                "{ent}有限空间作业人员未开展专项安全培训",
                "组织专项安全培训并留存签字记录",
                "组织作业、监护及救援人员专项培训，考核合格后上岗",
            ),
        ),
        5: (
            (
                "{ent}未制定有限空间作业应急预案，未开展演练",
                "制定专项应急预案并组织演练",
                "编制有限空间作业专项应急预案，组织开展应急演练",
            ),
        ),
        6: (
            (
                "{ent}未配备气体检测仪和正压式空气呼吸器",
                "按作业特点配齐检测、防护和救援设备",
                "采购四合一气体检测仪、正压式空气呼吸器和三脚架，实行清单式管理",
            ),
        ),
        7: (
            (
                "{site}有限空间作业未执行审批，未先通风检测即作业",
                "严格执行作业审批和“先通风、再检测、后作业”",
                "补办作业审批，作业前强制通风30分钟以上并检测合格",
            ),
        ),
    },
}
OTHER_HAZARDS = (
    (
        "{site}装饰装修工程现场违规交叉作业，消防措施不到位",
        "调整作业计划，落实消防措施",
        "错开交叉作业时段，增配灭火器材并安排专人巡查",
        "方案三(二)",
    ),
    (
        "{site}既有建筑改造擅自拆改承重墙",
        "立即停止施工，委托原设计单位复核",
        "停止拆改，委托原设计单位出具加固方案并实施",
        "方案三(二)",
    ),
)
TIPOFF_PREFIX = "群众举报："

# Which items a project of each stage can be asked about (others are 不涉及).
STAGE_NOT_APPLICABLE: dict[str, frozenset[int]] = {
    "基础施工": frozenset({16, 19, 20, 21, 29, 30, 35, 36, 37}),
    "主体施工": frozenset({7, 8, 9, 10, 11, 12, 13, 35, 36, 37}),
    "装饰装修": frozenset({7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 21, 29, 30, 35, 36, 37}),
    "地铁施工": frozenset({19, 20, 21, 29, 30, 35}),
}

# --- parameters and the scenario as data -------------------------------------------------------


@dataclass(frozen=True)
class ScenarioParams:
    """Scale and shape of a generated inbox. Defaults: the committed city-scale sample."""

    units: tuple[Unit, ...]
    periods: tuple[str, ...]
    # new 企业自查 ledger rows per unit and month (before the unit's size factor)
    self_found_per_month: tuple[int, int] = (2, 5)
    # when set, pad each unit's new ledger rows per month to this many (province-scale bench)
    ledger_rows_per_month: int | None = None
    # checklist workbooks per unit and period (at least one of each checklist form when ≥ 3)
    checklist_workbooks: tuple[int, int] = (3, 4)
    # share of checklist workbooks that hold two inspections (two sheets)
    two_sheet_share: float = 0.3
    plants: bool = True
    # where a unit's files of a period go inside the inbox, as a city clerk saves mail attachments
    folder: str = "{year}年{month}月/{unit}"

    @classmethod
    def city(cls, n_periods: int = 3) -> ScenarioParams:
        """13 units, the calendar's first `n_periods` periods: the committed sample."""
        cal = load_calendar()
        return cls(units=load_units(), periods=cal.periods[:n_periods])


@dataclass
class Project:
    """A construction project (附件2) or a gas / confined-space site (附件1 / 附件3)."""

    domain: str
    enterprise: str
    credit_code: str
    site: str
    stage: str = ""
    manager: str = ""
    chief: str = ""


@dataclass
class Hazard:
    """One ledger row; its status in any month follows from its dates."""

    seq: int
    unit: str
    domain: str
    enterprise: str
    credit_code: str
    site: str
    description: str
    basis: str
    found_by: str
    found_date: dt.date
    measures: str
    responsible: str
    funds: Decimal
    deadline: dt.date
    supervised: str
    supervision_level: str
    rectified_date: dt.date | None
    closed_date: dt.date | None
    accepted_by: str
    remarks: str = ""
    hazard_id: str = ""

    def status_at(self, day: dt.date) -> str:
        if self.closed_date is not None and self.closed_date <= day:
            return "已验收销号"
        if self.rectified_date is not None and self.rectified_date <= day:
            return "已整改待验收"
        return "整改中"

    def row_at(self, period: str) -> dict[str, Any]:
        """The ledger row as the unit reports it at the end of `period` (keys: ledger column keys)."""
        end = period_end(period)
        status = self.status_at(end)
        rectified = status != "整改中"
        closed = status == "已验收销号"
        return {
            "hazard_id": self.hazard_id,
            "domain": self.domain,
            "enterprise": self.enterprise,
            "credit_code": self.credit_code or None,
            "site": self.site,
            "description": self.description,
            "basis": self.basis or None,
            "found_by": self.found_by,
            "found_date": self.found_date,
            "measures": self.measures,
            "responsible": self.responsible,
            "funds": self.funds,
            "deadline": self.deadline,
            "emergency_plan": "有",
            "supervised": self.supervised,
            "supervision_level": self.supervision_level or None,
            "status": status,
            "rectified_date": self.rectified_date if rectified else None,
            "accepted_by": self.accepted_by if closed else None,
            "closed_date": self.closed_date if closed else None,
            "remarks": self.remarks or None,
        }


@dataclass
class PlannedFile:
    """One file of the inbox: what goes in it, where it goes, when it was received."""

    rel: str  # path relative to the inbox, POSIX separators
    unit: Unit
    period: str
    form_id: str
    received: dt.datetime | None
    fmt: str = "xlsx"  # xlsx | xls | ods | lock
    progress: dict[str, Any] = field(default_factory=dict)
    ledger_rows: list[dict[str, Any]] = field(default_factory=list)
    inspections: list[Inspection] = field(default_factory=list)
    # the tick a clerk types in checklists (√ ✓ ✔ …), and 附件4's 时间 cell
    mark: str = "√"
    report_date: dt.date | None = None
    # planted edits: ("typed", code, text) types a value as text, ("two-ticks", sheet index,
    # item no) adds a 不涉及 tick to an answered item, ("no-metadata",) pastes the filled sheet
    # into a fresh workbook
    edits: list[tuple[Any, ...]] = field(default_factory=list)
    expect: str = "accepted"  # what validate says: accepted | rejected | ignored
    submission: str = (
        "accepted"  # what consolidate says: accepted | rejected | superseded | ignored
    )
    late: bool = False
    plant: str = ""  # the planted case this file carries, if any


@dataclass
class Plant:
    kind: str
    unit: str
    period: str
    form: str
    file: str
    expect: str
    rules: tuple[str, ...]
    item: str = ""
    detail: str = ""  # Chinese, for 样例说明.md


@dataclass
class Scenario:
    params: ScenarioParams
    seed: int
    files: list[PlannedFile]
    plants: list[Plant]
    # period -> unit -> value code -> figure as it enters the city total (Decimal)
    expected_units: dict[str, dict[str, dict[str, Decimal]]]
    ledgers: dict[str, list[Hazard]]

    @property
    def periods(self) -> tuple[str, ...]:
        return self.params.periods

    def city_totals(self, period: str) -> dict[str, Decimal]:
        codes = progress_form().value_codes
        units = self.expected_units[period]
        return {c: sum((u[c] for u in units.values()), Decimal(0)) for c in codes}


# Expected rule codes per planted kind (anomalies from consolidate; validation codes from validate).
# Kept here, next to the planting, so the manifest says what the pipeline must report.
PLANT_RULES: dict[str, tuple[str, ...]] = {
    "xls-return": (),
    "ods-return": (),
    "renamed-file": (),
    "resubmission": (),
    "lock-file": ("file-ignored-lock",),
    "late-return": ("return-late",),
    "unit-missing": ("unit-not-reported", "ledger-not-reported"),
    "cumulative-decrease": ("cumulative-decreased",),
    "ledger-mismatch": ("ledger-mismatch",),
    "overdue-hazard": ("ledger-overdue",),
    "rejected-return": ("checklist-multiple-ticks",),
    "clerk-typed-value": (),
    "metadata-lost": (),
}
PLANT_KINDS = tuple(PLANT_RULES)


# --- the scenario -------------------------------------------------------------------------------


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)


def _money(rng: random.Random, low: float, high: float) -> Decimal:
    """An amount in 万元 as clerks write it: mostly one decimal, sometimes two or four."""
    places = rng.choices((1, 2, 4), weights=(6, 3, 1))[0]
    scale = 10**places
    return Decimal(rng.randint(int(low * scale), int(high * scale))) / Decimal(scale)


def _day_in(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, max(0, (last - first).days)))


def _period_start(period: str) -> dt.date:
    year, month = parse_period(period)
    return dt.date(year, month, 1)


def _places(unit: Unit) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if unit.name in PLACES:
        return PLACES[unit.name]
    return ((f"{unit.name}城区", f"{unit.name}开发区"), (f"{unit.name}大道", f"{unit.name}中路"))


def _division(unit: Unit) -> str:
    return unit.code if unit.code.isdigit() and len(unit.code) == 6 else "350121"


class _UnitWorld:
    """One unit's enterprises, projects and staff, drawn once and reused every month."""

    def __init__(self, rng: random.Random, unit: Unit, size: float) -> None:
        self.unit = unit
        self.size = size
        towns, roads = _places(unit)
        short = unit.name[:-1] if len(unit.name) == 3 else unit.name[:2]
        self.staff = [_person(rng) for _ in range(5)]
        # the tick this unit's clerk types in checklists
        self.mark = rng.choices(("√", "✓", "✔"), weights=(10, 2, 1))[0]
        self.towns = towns
        self.roads = roads
        used: set[str] = set()

        def company(suffixes: Sequence[str], local: bool) -> str:
            while True:
                prefix = rng.choice((f"福州{short}" if local else "福建省", "福建", "福州"))
                name = prefix + rng.choice(BRANDS) + rng.choice(suffixes)
                if name not in used:
                    used.add(name)
                    return name

        def code(share: float) -> str:
            return make_credit_code(rng, _division(unit)) if rng.random() < share else ""

        self.projects: list[Project] = []
        kinds = rng.sample(PROJECT_KINDS, 6)
        for i, kind in enumerate(kinds):
            town = rng.choice(towns)
            stage = rng.choice(("基础施工", "主体施工", "主体施工", "装饰装修"))
            site = town + kind.format(n=rng.randint(1, 3), town=town)
            if i == 0 and unit.name in ("鼓楼区", "台江区", "仓山区", "晋安区", "长乐区"):
                site = METRO_KIND.format(n=rng.choice((4, 5, 6)), town=town.removesuffix("街道"))
                stage = "地铁施工"
            self.projects.append(
                Project(
                    domain="建筑施工",
                    enterprise=company(BUILDER_SUFFIXES, local=False),
                    credit_code=code(0.7),
                    site=site,
                    stage=stage,
                    manager=_person(rng),
                    chief=_person(rng),
                )
            )
        gas_company = company(("燃气有限公司", "燃气发展有限公司"), local=True)
        gas_code = code(0.8)
        self.gas_sites = [
            Project("燃气", gas_company, gas_code, f"{rng.choice(towns)}燃气门站"),
            Project("燃气", gas_company, gas_code, f"{rng.choice(roads)}中压燃气管道"),
            Project(
                "燃气",
                company(("液化气有限公司", "液化石油气有限公司"), local=True),
                code(0.6),
                f"{rng.choice(towns)}液化气供应站",
            ),
            Project(
                "燃气",
                company(("餐饮管理有限公司", "餐饮有限公司"), local=True),
                code(0.4),
                f"{rng.choice(RESTAURANTS)}（{rng.choice(roads)}店）",
            ),
        ]
        water = company(("水务有限公司", "污水处理有限公司"), local=True)
        water_code = code(0.8)
        self.confined_sites = [
            Project("有限空间作业", water, water_code, f"{rng.choice(towns)}污水处理厂"),
            Project("有限空间作业", water, water_code, f"{rng.choice(roads)}污水管网"),
            Project(
                "有限空间作业",
                company(("环卫服务有限公司", "环境工程有限公司"), local=False),
                code(0.6),
                f"{rng.choice(towns)}垃圾转运站",
            ),
            Project(
                "有限空间作业",
                company(("市政养护有限公司", "园林绿化工程有限公司"), local=False),
                code(0.5),
                f"{rng.choice(roads)}绿化管养项目",
            ),
        ]
        self.other_sites = [
            Project("其他", company(("装饰工程有限公司",), local=False), code(0.5), site)
            for site in (f"{rng.choice(roads)}商业综合体", f"{rng.choice(towns)}文体中心")
        ]


def _fill_text(rng: random.Random, text: str, project: Project) -> str:
    return text.format(
        bldg=f"{rng.randint(1, 12)}#楼",
        crane=f"{rng.randint(1, 4)}#",
        floor=rng.randint(3, 18),
        depth=rng.choice(("5.5", "6.2", "7.8", "9.5", "11.3")),
        ent=project.enterprise,
        site=project.site,
    )


# Engineering works (excavations, formwork, scaffolds, cranes, pipelines) cost more to put right
# than paperwork and training.
ENGINEERING = frozenset(
    {f"附件2第{n}项" for n in range(7, 32)} | {"附件1第3项", "附件2第36项", "附件2第37项"}
)


def _funds_range(basis: str) -> tuple[float, float]:
    return (3.0, 30.0) if basis in ENGINEERING else (0.2, 5.0)


def _new_hazard(
    rng: random.Random,
    world: _UnitWorld,
    project: Project,
    *,
    description: str,
    measures: str,
    basis: str,
    found_by: str,
    found_date: dt.date,
) -> Hazard:
    supervised = rng.random() < (0.3 if found_by == "部门检查" else 0.08)
    days_to_fix = rng.randint(3, 45)
    rectified = found_date + dt.timedelta(days=days_to_fix)
    closed = rectified + dt.timedelta(days=rng.randint(2, 20))
    deadline = max(
        found_date + dt.timedelta(days=rng.randint(7, 30)),
        rectified + dt.timedelta(rng.randint(0, 10)),
    )
    return Hazard(
        seq=0,
        unit=world.unit.name,
        domain=project.domain,
        enterprise=project.enterprise,
        credit_code=project.credit_code,
        site=project.site,
        description=description,
        basis=basis,
        found_by=found_by,
        found_date=found_date,
        measures=measures,
        responsible=project.manager or _person(rng),
        funds=_money(rng, *_funds_range(basis)),
        deadline=deadline,
        supervised="是" if supervised else "否",
        supervision_level=rng.choices(("县", "市", "省"), weights=(7, 3, 1))[0]
        if supervised
        else "",
        rectified_date=rectified,
        closed_date=closed,
        accepted_by=rng.choice(world.staff),
        remarks=rng.choice(("", "", "", "已落实临时管控措施", "整改期间停工")),
    )


@dataclass
class _Inspection:
    form: ChecklistForm
    project: Project
    date: dt.date
    answers: dict[int, str]
    hazards: dict[
        int, tuple[str, str, str, bool]
    ]  # no -> (description, requirement, measures, major)
    inspectors: str
    ledger: dict[int, Hazard] = field(default_factory=dict)  # majors, as ledger rows


def _non_hazard(answer: str) -> str:
    return "否" if answer == "是" else "是"


def _inspect(
    rng: random.Random, world: _UnitWorld, form: ChecklistForm, day: dt.date
) -> _Inspection:
    texts = HAZARD_TEXT[form.id]
    if form.id == "annex2_construction":
        project = rng.choice(world.projects)
        not_applicable = STAGE_NOT_APPLICABLE[project.stage]
        n_hazards = rng.choices((0, 1, 2, 3), weights=(3, 4, 2, 1))[0]
    elif form.id == "annex1_gas":
        project = rng.choice(world.gas_sites)
        not_applicable = frozenset({3}) if "餐饮" in project.enterprise else frozenset({2})
        n_hazards = rng.choices((0, 1), weights=(3, 2))[0]
    else:
        project = rng.choice(world.confined_sites)
        not_applicable = frozenset({2}) if "污水处理厂" in project.site else frozenset()
        n_hazards = rng.choices((0, 1, 2), weights=(4, 3, 1))[0]
    candidates = [no for no in texts if no not in not_applicable]
    hazard_nos = sorted(rng.sample(candidates, min(n_hazards, len(candidates))))
    answers: dict[int, str] = {}
    hazards: dict[int, tuple[str, str, str, bool]] = {}
    for item in form.items:
        if item.no in hazard_nos:
            answers[item.no] = item.hazard_answer
            desc, req, measures = rng.choice(texts[item.no])
            major = form.id != "annex2_construction" or rng.random() < 0.5
            hazards[item.no] = (_fill_text(rng, desc, project), req, measures, major)
        elif item.no in not_applicable:
            answers[item.no] = "不涉及"
        else:
            answers[item.no] = _non_hazard(item.hazard_answer)
    inspectors = "、".join(rng.sample(world.staff, 2))
    return _Inspection(form, project, day, answers, hazards, inspectors)


def _to_model_inspection(insp: _Inspection, sheet: str) -> Inspection:
    details: dict[int, dict[str, Any]] = {}
    for no, (desc, req, _measures, major) in insp.hazards.items():
        hazard = insp.ledger.get(no)
        deadline = hazard.deadline if hazard else insp.date + dt.timedelta(days=7)
        details[no] = {
            "description": desc,
            "requirement": req,
            "deadline": deadline,
            "major": ("是" if major else "否") if insp.form.has_major_column else None,
        }
    footer: dict[str, Any] = {}
    for f in insp.form.footer:
        if f.key == "inspection_date":
            footer[f.key] = insp.date
        elif f.key == "inspectors":
            footer[f.key] = insp.inspectors
        elif f.key == "project":
            footer[f.key] = insp.project.site
        elif f.key == "project_manager":
            footer[f.key] = insp.project.manager
        elif f.key == "chief_supervisor":
            footer[f.key] = insp.project.chief
        elif f.key == "inspected_unit":
            footer[f.key] = (
                insp.project.enterprise
                if insp.form.id == "annex3_confined_space"
                else f"{insp.project.enterprise}（{insp.project.site}）"
            )
        else:
            footer[f.key] = ""
    return Inspection(sheet=sheet, answers=dict(insp.answers), details=details, footer=footer)


# Monthly increments of the 附件4 items other than A1–A6: (low, high) before the unit's size.
INCREMENTS: dict[str, tuple[int, int]] = {
    "C1": (1, 2),
    "C2": (3, 6),
    "C4": (0, 1),
    "C5": (0, 1),
    "C6": (0, 1),
    "C7": (1, 2),
    "C9": (0, 1),
    "C10": (0, 1),
    "D1": (1, 3),
    "D2": (2, 5),
    "D3": (15, 30),
    "D4": (6, 14),
    "D6": (1, 2),
    "D7": (0, 1),
    "D8": (1, 3),
}
B_SHARES = {"B2": 0.15, "B3": 0.12, "B4": 0.2, "B5": 0.1, "B6": 0.15, "B7": 0.08, "B8": 0.15}


def _progress_increment(
    rng: random.Random, size: float, n_inspections: int, month_index: int
) -> dict[str, Decimal]:
    inc: dict[str, Decimal] = {}
    b1 = max(n_inspections + 2, round(rng.randint(8, 12) * size))
    inc["B1"] = Decimal(b1)
    for code, share in B_SHARES.items():
        inc[code] = Decimal(min(b1, round(b1 * share * rng.uniform(0.6, 1.4))))
    for code, (low, high) in INCREMENTS.items():
        inc[code] = Decimal(round(rng.randint(low, high) * size))
    # the training of enforcement staff happens mostly in the self-check stage (seed 四(二))
    if month_index > 1:
        inc["D3"] = Decimal(round(inc["D3"] / 3))
    cases = rng.choice((0, 1, 1, 2))
    inc["C3a"] = Decimal(cases)
    inc["C3b"] = sum((_money(rng, 0.5, 6) for _ in range(cases)), Decimal(0))
    inc["C8a"] = Decimal(rng.choice((0, 0, 1)))
    inc["C8b"] = Decimal(1 if inc["C8a"] and rng.random() < 0.3 else 0)
    rewards = rng.choice((0, 1, 1, 2))
    amounts = [_money(rng, 0.05, 0.5) for _ in range(rewards)]
    inc["D5a"] = sum(amounts, Decimal(0))
    inc["D5b"] = sum((a for a in amounts if rng.random() < 0.5), Decimal(0))
    return inc


def derive_a_items(rows: Iterable[dict[str, Any]]) -> dict[str, Decimal]:
    """A1–A6 as the ledger rows of one unit and month count them (DESIGN §6, §7)."""
    done = ("已整改待验收", "已验收销号")
    a = dict.fromkeys(("A1", "A2", "A3", "A4", "A5", "A6"), 0)
    for r in rows:
        fixed = r["status"] in done
        if r["found_by"] == "企业自查":
            a["A1"] += 1
            a["A2"] += fixed
        elif r["found_by"] == "部门检查":
            a["A3"] += 1
            a["A4"] += fixed
        if r["supervised"] == "是":
            a["A5"] += 1
            a["A6"] += fixed
    return {k: Decimal(v) for k, v in a.items()}


def _fmt_money(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _template_name(form_id: str, unit: Unit, period: str) -> str:
    from pipeline.templates import template_filename

    forms = _all_forms()
    return template_filename(forms[form_id], unit, period)


def _all_forms() -> dict[str, Any]:
    from pipeline.forms import load_forms

    return dict(load_forms())


def build_scenario(params: ScenarioParams, seed: int = DEFAULT_SEED) -> Scenario:
    """The whole campaign as data: nothing is written. Same params and seed, same scenario."""
    rng = random.Random(seed)
    cal = load_calendar()
    periods = params.periods
    last = periods[-1]
    units = params.units
    forms_by_id = {f.id: f for f in checklist_forms()}
    worlds = {u.code: _UnitWorld(rng, u, rng.uniform(0.8, 1.25)) for u in units}

    # planted cases go to distinct units, drawn by the seed
    plant_unit: dict[str, Unit] = {}
    if params.plants:
        kinds = [k for k in PLANT_KINDS if k not in ("lock-file",)]
        if len(units) < len(kinds) or len(periods) < 3:
            raise ValueError("planted cases need at least 12 units and 3 periods")
        for kind, unit in zip(kinds, rng.sample(list(units), len(kinds)), strict=True):
            plant_unit[kind] = unit
        # the lock file sits beside a file that is itself clean
        plant_unit["lock-file"] = plant_unit["clerk-typed-value"]
    missing = plant_unit.get("unit-missing")

    hazards: dict[str, list[Hazard]] = {u.code: [] for u in units}
    inspections: dict[tuple[str, str], list[list[_Inspection]]] = {}
    increments: dict[tuple[str, str], dict[str, Decimal]] = {}
    last_day = period_end(last)
    for pi, period in enumerate(periods):
        first_day = max(_period_start(period), cal.start_date + dt.timedelta(days=7))
        end = period_end(period)
        for unit in units:
            world = worlds[unit.code]
            new: list[Hazard] = []
            # checklist workbooks: one of each form, then more construction/gas ones
            n_books = rng.randint(*params.checklist_workbooks)
            book_forms = [f.id for f in forms_by_id.values()]
            while len(book_forms) < n_books:
                book_forms.append(
                    rng.choice(("annex2_construction", "annex2_construction", "annex1_gas"))
                )
            book_forms = book_forms[:n_books]
            books: list[list[_Inspection]] = []
            for form_id in book_forms:
                form = forms_by_id[form_id]
                n_sheets = 2 if rng.random() < params.two_sheet_share else 1
                days = sorted(
                    _day_in(rng, first_day, end - dt.timedelta(days=2)) for _ in range(n_sheets)
                )
                book = [_inspect(rng, world, form, d) for d in days]
                for insp in book:
                    for no, (desc, _req, measures, major) in insp.hazards.items():
                        if not major:
                            continue
                        h = _new_hazard(
                            rng,
                            world,
                            insp.project,
                            description=desc,
                            measures=measures,
                            basis=f"{form.annex}第{no}项",
                            found_by="部门检查",
                            found_date=insp.date,
                        )
                        insp.ledger[no] = h
                        new.append(h)
                books.append(book)
            inspections[(unit.code, period)] = books
            # enterprise self-checks, and now and then a tip-off
            n_self = round(rng.randint(*params.self_found_per_month) * world.size)
            n_tip = 1 if rng.random() < 0.15 else 0
            if params.ledger_rows_per_month is not None:
                n_self = max(0, params.ledger_rows_per_month - len(new) - n_tip)
            for k in range(n_self + n_tip):
                found_by = "企业自查" if k < n_self else "举报"
                domain = rng.choices(
                    ("annex2_construction", "annex1_gas", "annex3_confined_space", "other"),
                    weights=(14, 3, 2, 1),
                )[0]
                day = _day_in(rng, first_day, end)
                if domain == "other":
                    project = rng.choice(world.other_sites)
                    desc, _req, measures, basis = rng.choice(OTHER_HAZARDS)
                else:
                    form = forms_by_id[domain]
                    project = rng.choice(
                        world.projects
                        if domain == "annex2_construction"
                        else world.gas_sites
                        if domain == "annex1_gas"
                        else world.confined_sites
                    )
                    no = rng.choice(list(HAZARD_TEXT[domain]))
                    desc, _req, measures = rng.choice(HAZARD_TEXT[domain][no])
                    basis = f"{form.annex}第{no}项"
                text = _fill_text(rng, desc, project)
                if found_by == "举报":
                    text = TIPOFF_PREFIX + text
                new.append(
                    _new_hazard(
                        rng,
                        world,
                        project,
                        description=text,
                        measures=measures,
                        basis=basis,
                        found_by=found_by,
                        found_date=day,
                    )
                )
            new.sort(key=lambda h: (h.found_date, h.description))
            for h in new:
                h.seq = len(hazards[unit.code]) + 1
                h.hazard_id = f"GL-{period[:4]}-{h.seq:03d}"
                hazards[unit.code].append(h)
            n_insp = sum(len(b) for b in books)
            increments[(unit.code, period)] = _progress_increment(rng, world.size, n_insp, pi)

    # a unit that does not report in the last period: nothing of its ledger may look overdue
    # there either, should its last ledger be carried forward
    if missing is not None:
        prev_end = period_end(periods[-2])
        for h in hazards[missing.code]:
            if h.status_at(prev_end) == "整改中" and h.found_date <= prev_end:
                h.deadline = max(h.deadline, last_day + dt.timedelta(days=rng.randint(3, 20)))

    plants: list[Plant] = []
    if "overdue-hazard" in plant_unit:
        unit = plant_unit["overdue-hazard"]
        prev_end = period_end(periods[-2])
        open_before = [
            h
            for h in hazards[unit.code]
            if h.found_date <= prev_end
            and h.status_at(prev_end) == "整改中"
            and h.found_by != "举报"
        ]
        if not open_before:
            raise RuntimeError(f"no open hazard to make overdue in {unit.name}")
        h = rng.choice(open_before)
        h.rectified_date = None
        h.closed_date = None
        h.deadline = _period_start(last) + dt.timedelta(days=rng.randint(9, 19))
        h.remarks = "整改资金未到位，整改滞后"
        overdue_hazard = h
    # checklist 整改时限 follow the ledger's 整改期限 (set above), so build them now

    # --- 附件4 figures, cumulative ----------------------------------------------------------
    progress_codes = progress_form().value_codes
    true_progress: dict[tuple[str, str], dict[str, Decimal]] = {}
    for unit in units:
        running = dict.fromkeys(progress_codes, Decimal(0))
        for period in periods:
            inc = increments[(unit.code, period)]
            for code, v in inc.items():
                running[code] += v
            rows = [
                h.row_at(period) for h in hazards[unit.code] if h.found_date <= period_end(period)
            ]
            figures = dict(running)
            figures.update(derive_a_items(rows))
            true_progress[(unit.code, period)] = figures

    # --- files ---------------------------------------------------------------------------------
    files: list[PlannedFile] = []
    taken: set[str] = set()

    def unique(rel: str) -> str:
        stem, ext = rel.rsplit(".", 1)
        k = 1
        while rel in taken:
            k += 1
            rel = f"{stem}({k}).{ext}"
        taken.add(rel)
        return rel

    expected: dict[str, dict[str, dict[str, Decimal]]] = {p: {} for p in periods}
    for period in periods:
        due = cal.due_date(period)
        end = period_end(period)
        year, month = parse_period(period)
        window_start = dt.datetime.combine(end, dt.time(14, 0))
        window = int((dt.datetime.combine(due, dt.time(17, 30)) - window_start).total_seconds())
        for unit in units:
            if missing is not None and unit.code == missing.code and period == last:
                expected[period][unit.name] = dict(expected[periods[-2]][unit.name])
                continue
            # the unit's monthly mail: sometime between the last afternoon and the due day
            mail = window_start + dt.timedelta(minutes=rng.randint(0, window // 60))
            base = params.folder.format(year=year, month=month, period=period, unit=unit.name)
            figures = dict(true_progress[(unit.code, period)])
            expected[period][unit.name] = figures
            files.append(
                PlannedFile(
                    rel=unique(f"{base}/{_template_name('annex4_progress', unit, period)}"),
                    unit=unit,
                    period=period,
                    form_id="annex4_progress",
                    received=mail,
                    progress=dict(figures),
                    report_date=mail.date(),
                )
            )
            files.append(
                PlannedFile(
                    rel=unique(f"{base}/{_template_name('ledger', unit, period)}"),
                    unit=unit,
                    period=period,
                    form_id="ledger",
                    received=mail,
                    ledger_rows=[
                        h.row_at(period) for h in hazards[unit.code] if h.found_date <= end
                    ],
                )
            )
            for book in inspections[(unit.code, period)]:
                form = book[0].form
                stem, ext = _template_name(form.id, unit, period).rsplit(".", 1)
                # several inspections of one form a month: the clerk adds the site to the name
                site = book[0].project.site.split("（")[0]
                # a checklist goes out soon after the inspection, or with the monthly mail
                sent = book[-1].date + dt.timedelta(days=rng.randint(1, 4))
                received = min(
                    mail,
                    dt.datetime.combine(sent, dt.time(rng.randint(8, 17), rng.randint(0, 59))),
                )
                sheets = [form.sheet_name] + [
                    f"{form.sheet_name} ({k})" for k in range(2, len(book) + 1)
                ]
                files.append(
                    PlannedFile(
                        rel=unique(f"{base}/{stem}（{site}）.{ext}"),
                        unit=unit,
                        period=period,
                        form_id=form.id,
                        received=received,
                        mark=worlds[unit.code].mark,
                        inspections=[
                            _to_model_inspection(i, s) for i, s in zip(book, sheets, strict=True)
                        ],
                    )
                )

    def find(kind: str, form_id: str, period: str) -> PlannedFile:
        unit = plant_unit[kind]
        for f in files:
            if (
                f.unit.code == unit.code
                and f.form_id == form_id
                and f.period == period
                and not f.plant
            ):
                return f
        raise RuntimeError(f"no {form_id} of {unit.name} in {period} for {kind}")

    def add_plant(kind: str, f: PlannedFile, detail: str, item: str = "", expect: str = "") -> None:
        f.plant = f.plant or kind
        plants.append(
            Plant(
                kind=kind,
                unit=f.unit.name,
                period=f.period,
                form=f.form_id,
                file=f.rel,
                expect=expect or f.expect,
                rules=PLANT_RULES[kind],
                item=item,
                detail=detail,
            )
        )

    if params.plants:
        prev = periods[-2]
        # an .xls return (附件4, middle period) and an .ods return (ledger, last period)
        f = find("xls-return", "annex4_progress", prev)
        f.fmt = "xls"
        f.rel = f.rel.rsplit(".", 1)[0] + ".xls"
        add_plant(
            "xls-return", f, "用 WPS/旧版 Excel 另存为 .xls 格式报送的附件4，应正常读取并采用。"
        )
        f = find("ods-return", "ledger", last)
        f.fmt = "ods"
        f.rel = f.rel.rsplit(".", 1)[0] + ".ods"
        add_plant(
            "ods-return", f, "用 LibreOffice 保存为 .ods 格式报送的隐患台账，应正常读取并采用。"
        )
        # a renamed file, as the mail client saved it
        f = find("renamed-file", "annex4_progress", prev)
        month = parse_period(prev)[1]
        f.rel = f"{f.rel.rsplit('/', 1)[0]}/{f.unit.name}{month}月报表(1).xlsx"
        add_plant("renamed-file", f, "文件被改名（邮件附件另存），应凭隐藏的元数据表识别为附件4。")
        # a resubmission: the first return had A3 off by one, the correction came the next day
        f = find("resubmission", "annex4_progress", last)
        wrong = replace(
            f,
            rel=f.rel,
            progress=dict(f.progress),
            received=dt.datetime.combine(period_end(last), dt.time(9, 40)),
            submission="superseded",
            plant="resubmission",
        )
        wrong.progress["A3"] += 1
        files.insert(files.index(f), wrong)
        stem, ext = f.rel.rsplit(".", 1)
        f.rel = f"{stem}（更正）.{ext}"
        f.received = dt.datetime.combine(cal.due_date(last), dt.time(10, 25))
        add_plant(
            "resubmission",
            wrong,
            f"同一单位、同一期间、同一表报送两次：先报的附件4中 A3 多填 1（{wrong.progress['A3']}），"
            f"次日报送更正件。以收文登记中较晚的一份为准，先报的一份列为“已被替代”。",
            item="A3",
            expect="accepted",
        )
        add_plant("resubmission", f, "更正后重报的附件4（收文较晚，应被采用）。", item="A3")
        # a late return: 附件4 received two days after the due day
        f = find("late-return", "annex4_progress", last)
        f.received = dt.datetime.combine(cal.due_date(last) + dt.timedelta(days=2), dt.time(9, 12))
        f.late = True
        add_plant(
            "late-return",
            f,
            f"附件4 于 {f.received:%Y-%m-%d %H:%M} 收到，晚于报送截止日 {cal.due_date(last)}（含当日）。",
        )
        # a unit that sent nothing in the last period
        unit = plant_unit["unit-missing"]
        plants.append(
            Plant(
                kind="unit-missing",
                unit=unit.name,
                period=last,
                form="annex4_progress",
                file="",
                expect="missing",
                rules=PLANT_RULES["unit-missing"],
                detail="本期未报送任何报表：附件4 沿用上期累计数并标记未报送。",
            )
        )
        # a cumulative that falls: the clerk typed a figure lower than last month's
        f = find("cumulative-decrease", "annex4_progress", last)
        before = true_progress[(f.unit.code, prev)]["D2"]
        fallen = before - rng.randint(1, 3)
        f.progress["D2"] = fallen
        expected[last][f.unit.name]["D2"] = fallen
        add_plant(
            "cumulative-decrease",
            f,
            f"附件4 D2（辖区部门负责同志到企业宣讲）累计数 {fallen}，低于上月的 {before}。",
            item="D2",
        )
        # 附件4 A1 disagrees with the same unit's ledger
        f = find("ledger-mismatch", "annex4_progress", last)
        derived = f.progress["A1"]
        f.progress["A1"] = derived + 2
        expected[last][f.unit.name]["A1"] = derived + 2
        add_plant(
            "ledger-mismatch",
            f,
            f"附件4 A1 填 {derived + 2}，而同单位本期隐患台账中“企业自查”的隐患为 {derived} 个。",
            item="A1",
        )
        # an overdue hazard in a ledger
        f = find("overdue-hazard", "ledger", last)
        add_plant(
            "overdue-hazard",
            f,
            f"隐患台账 {overdue_hazard.hazard_id} 整改期限 {overdue_hazard.deadline}，"
            f"期末仍为“整改中”。",
            item=overdue_hazard.hazard_id,
        )
        # a rejected return: a checklist item ticked twice
        f = find("rejected-return", "annex2_construction", last)
        sheet = f.inspections[0]
        no = next(
            no for no, a in sorted(sheet.answers.items()) if a == "否" and no not in sheet.details
        )
        f.edits.append(("two-ticks", 0, no))
        f.expect = "rejected"
        f.submission = "rejected"
        add_plant(
            "rejected-return",
            f,
            f"附件2 第{no}项同时勾选了“否”和“不涉及”，应退回修改。",
            item=str(no),
        )
        # a value typed as a clerk types it
        f = find("clerk-typed-value", "annex4_progress", last)
        typed = f"{f.progress['A1']}个"
        f.edits.append(("typed", "A1", typed))
        add_plant(
            "clerk-typed-value",
            f,
            f"附件4 A1 填成“{typed}”（数字后带单位），应规范为 {f.progress['A1']} 并采用。",
            item="A1",
        )
        # the lock file Excel leaves beside the file it has open
        lock = PlannedFile(
            rel=f"{f.rel.rsplit('/', 1)[0]}/~${f.rel.rsplit('/', 1)[1]}",
            unit=f.unit,
            period=last,
            form_id="annex4_progress",
            received=None,
            fmt="lock",
            expect="ignored",
            submission="ignored",
            plant="lock-file",
        )
        files.append(lock)
        add_plant("lock-file", lock, "Excel 打开文件时留下的 ~$ 锁定文件，应忽略。")
        # a 附件4 pasted into a fresh workbook: no metadata sheet, identified from its labels
        f = find("metadata-lost", "annex4_progress", last)
        f.edits.append(("no-metadata",))
        month = parse_period(last)[1]
        f.rel = f"{f.rel.rsplit('/', 1)[0]}/附件4调度表（{f.unit.name}{month}月）.xlsx"
        add_plant(
            "metadata-lost",
            f,
            "整表复制粘贴到新建工作簿（无隐藏元数据表，工作表名 Sheet1），应凭标签识别单位、期间和表别。",
        )

    for f in files:
        if f.received is not None and f.received.date() > cal.due_date(f.period):
            f.late = True
    files.sort(key=lambda f: f.rel)
    return Scenario(
        params=params,
        seed=seed,
        files=files,
        plants=plants,
        expected_units=expected,
        ledgers={u.name: hazards[u.code] for u in units},
    )


# --- writing the inbox ------------------------------------------------------------------------

LOCK_USER = "Administrator"


def lock_file_bytes(user: str = LOCK_USER) -> bytes:
    """What Excel writes to ~$name.xlsx while the workbook is open: 165 bytes naming the user."""
    name = user.encode("ascii", "replace")[:53]
    head = bytes([len(name)]) + name.ljust(53, b" ")
    wide = user[:54]
    body = bytes([len(wide), 0]) + wide.encode("utf-16-le") + b" \x00" * (54 - len(wide))
    return (head + body).ljust(165, b"\x00")[:165]


def _inspection_spec(insp: Inspection, mark: str, extra_ticks: dict[int, str]) -> dict[str, Any]:
    """pipeline.fill's mapping for one inspection sheet; `extra_ticks` adds a second tick."""
    answers: dict[int, Any] = dict(insp.answers)
    for no, tick in extra_ticks.items():
        answers[no] = [answers[no], tick]
    return {
        "sheet": insp.sheet,
        "answers": answers,
        "details": {no: dict(d) for no, d in insp.details.items()},
        "footer": dict(insp.footer),
        "mark": mark,
    }


def _fill_one(job: tuple[PlannedFile, Path, Path]) -> str:
    """Write the unit's template, fill it as a clerk would with the planted edits, and pin the
    zip's timestamps. `job` is (file, where to put the template, where to put the return)."""
    from pipeline.fill import fill_workbook
    from pipeline.forms import load_forms
    from pipeline.templates import write_template

    planned, template, dest = job
    write_template(
        load_forms()[planned.form_id], template, unit=planned.unit, period=planned.period
    )
    progress: dict[str, Any] = dict(planned.progress)
    extra: dict[int, dict[int, str]] = {}
    for edit in planned.edits:
        if edit[0] == "typed":
            progress[edit[1]] = edit[2]
        elif edit[0] == "two-ticks":
            extra.setdefault(edit[1], {})[edit[2]] = "不涉及"
    inspections = [
        _inspection_spec(insp, planned.mark, extra.get(i, {}))
        for i, insp in enumerate(planned.inspections)
    ]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fill_workbook(
        template,
        dest,
        planned.form_id,
        progress=progress or None,
        inspections=inspections or None,
        ledger_rows=planned.ledger_rows or None,
        report_date=planned.report_date,
    )
    if any(edit[0] == "no-metadata" for edit in planned.edits):
        _paste_into_fresh_workbook(dest, load_forms()[planned.form_id].sheet_name)
    saved = planned.received or dt.datetime.combine(period_end(planned.period), dt.time(12, 0))
    _pin_zip(dest, saved - dt.timedelta(minutes=7))
    return planned.rel


def _paste_into_fresh_workbook(path: Path, sheet_name: str) -> None:
    """What a clerk gets by copying the whole sheet into a new workbook: values, formats, merges
    and widths on "Sheet1"; no metadata sheet, no instructions, no protection, no validations."""
    import openpyxl

    source: Any = openpyxl.load_workbook(path)[sheet_name]
    wb = openpyxl.Workbook()
    target: Any = wb.active
    target.title = "Sheet1"
    for row in source.iter_rows():
        for cell in row:
            if cell.value is None and not cell.has_style:
                continue
            new = target.cell(row=cell.row, column=cell.column, value=cell.value)
            if cell.has_style:
                new.font = copy(cell.font)
                new.border = copy(cell.border)
                new.fill = copy(cell.fill)
                new.alignment = copy(cell.alignment)
                new.number_format = cell.number_format
    for merged in source.merged_cells.ranges:
        target.merge_cells(str(merged))
    for key, dim in source.column_dimensions.items():
        target.column_dimensions[key].width = dim.width
    for key, rdim in source.row_dimensions.items():
        if rdim.height:
            target.row_dimensions[key].height = rdim.height
    wb.save(path)


def _pin_zip(path: Path, when: dt.datetime) -> None:
    """Rewrite an .xlsx with fixed entry dates and document dates, so regenerating gives the same
    bytes (openpyxl stamps the time of saving into both)."""
    import re

    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                for tag in ("dcterms:created", "dcterms:modified"):
                    text = re.sub(
                        rf"(<{tag}[^>]*>)[^<]*(</{tag}>)",
                        lambda m: m.group(1) + stamp + m.group(2),
                        text,
                    )
                data = text.encode("utf-8")
            entry = zipfile.ZipInfo(info.filename, date_time=(2023, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, data)
    path.write_bytes(buffer.getvalue())


def find_soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert_with_soffice(paths: Sequence[Path], fmt: str, out_dir: Path, soffice: str) -> None:
    """Convert .xlsx files to `fmt` (xls | ods) in one LibreOffice run with a private profile."""
    if not paths:
        return
    filters = {"xls": "xls:MS Excel 97", "ods": "ods"}
    with tempfile.TemporaryDirectory(prefix="samples-lo-") as profile:
        cmd = [
            soffice,
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            filters[fmt],
            "--outdir",
            str(out_dir),
            *map(str, paths),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    for p in paths:
        if not (out_dir / f"{p.stem}.{fmt}").is_file():
            raise RuntimeError(
                f"LibreOffice did not convert {p.name} to .{fmt}: {proc.stdout}{proc.stderr}"
            )


def write_inbox(
    scenario: Scenario,
    out_dir: Path,
    *,
    manifest: Path | None = None,
    soffice: str | None = None,
    jobs: int | None = None,
) -> list[Path]:
    """Write the scenario's inbox to `out_dir` (replacing a previous generated inbox there).

    The .xls/.ods returns need LibreOffice (`soffice`, found on PATH when not given). Writes the
    manifest JSON to `manifest` when given. Returns the paths written, in name order.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / RECEIPT_LOG).exists():
        raise FileExistsError(f"{out_dir} holds files that this generator did not write")
    needs_office = any(f.fmt in ("xls", "ods") for f in scenario.files)
    soffice = soffice or find_soffice()
    if needs_office and soffice is None:
        raise RuntimeError("LibreOffice (soffice) is needed for the .xls and .ods returns")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # a staging folder with the normal mode: it becomes the inbox folder that colleagues open
    staging = temp_dir(out_dir.parent, prefix=f".{out_dir.name}-")
    try:
        with tempfile.TemporaryDirectory(prefix="samples-") as tmp:
            work = Path(tmp)
            jobs_list: list[tuple[PlannedFile, Path, Path]] = []
            to_convert: dict[str, list[tuple[PlannedFile, Path]]] = {"xls": [], "ods": []}
            for i, f in enumerate(scenario.files):
                if f.fmt == "lock":
                    continue
                template = work / "templates" / f"{i:04d}.xlsx"
                if f.fmt in to_convert:
                    # the clerk filled the .xlsx and saved it as .xls/.ods
                    src = work / "convert" / f"{i:04d}" / (Path(f.rel).stem + ".xlsx")
                    to_convert[f.fmt].append((f, src))
                    jobs_list.append((f, template, src))
                else:
                    jobs_list.append((f, template, staging / f.rel))
            _run_jobs(jobs_list, jobs)
            for fmt, pairs in to_convert.items():
                if not pairs:
                    continue
                converted = work / f"converted-{fmt}"
                converted.mkdir()
                # one LibreOffice run per format; stems are unique within a run
                batch = []
                for k, (_f, src) in enumerate(pairs):
                    flat = work / f"batch-{fmt}" / f"{k:04d}.xlsx"
                    flat.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, flat)
                    batch.append(flat)
                assert soffice is not None
                convert_with_soffice(batch, fmt, converted, soffice)
                for k, (f, _src) in enumerate(pairs):
                    dest = staging / f.rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(converted / f"{k:04d}.{fmt}", dest)
        for f in scenario.files:
            if f.fmt == "lock":
                dest = staging / f.rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(lock_file_bytes())
        _write_receipt_log(scenario, staging / RECEIPT_LOG)
        (staging / README_NAME).write_text(describe(scenario), encoding="utf-8")
        for f in scenario.files:
            if f.received is not None:
                stamp = f.received.timestamp()
                os.utime(staging / f.rel, (stamp, stamp))
        if out_dir.exists():
            _keep_unchanged_conversions(scenario, out_dir, staging)
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if manifest is not None:
        write_manifest(scenario, manifest, inbox_name=out_dir.name)
    return sorted(p for p in out_dir.rglob("*") if p.is_file())


def sheet_values(path: Path) -> dict[str, list[list[Any]]]:
    """Every sheet's cell values as python-calamine reads them."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def _keep_unchanged_conversions(scenario: Scenario, old: Path, new: Path) -> None:
    """LibreOffice never writes the same bytes twice; keep the previous .xls/.ods when its values
    are unchanged, so regenerating the committed inbox does not churn binaries in git."""
    for f in scenario.files:
        if f.fmt not in ("xls", "ods"):
            continue
        before, after = old / f.rel, new / f.rel
        if before.is_file() and sheet_values(before) == sheet_values(after):
            shutil.copyfile(before, after)
            if f.received is not None:
                stamp = f.received.timestamp()
                os.utime(after, (stamp, stamp))


def _run_jobs(jobs_list: Sequence[tuple[PlannedFile, Path, Path]], jobs: int | None) -> None:
    workers = jobs if jobs is not None else min(4, os.cpu_count() or 1)
    if workers <= 1 or len(jobs_list) < 8:
        for job in jobs_list:
            _fill_one(job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: no fork of a possibly threaded parent (pytest, rich), same behaviour on every OS
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for _ in pool.map(_fill_one, jobs_list, chunksize=4):
            pass


def _write_receipt_log(scenario: Scenario, path: Path) -> None:
    """The city clerk's receipt log: one line per received attachment, in order of arrival.
    UTF-8 with BOM, as Excel saves "CSV UTF-8"."""
    rows = sorted((f.received, f.rel) for f in scenario.files if f.received is not None)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(RECEIPT_COLUMNS)
    for received, rel in rows:
        writer.writerow((rel, received.strftime(TIME_FORMAT)))
    path.write_text(buffer.getvalue(), encoding="utf-8-sig", newline="")


def _json_figures(figures: dict[str, Decimal]) -> dict[str, int | str]:
    form = progress_form()
    out: dict[str, int | str] = {}
    for v in form.values:
        value = figures[v.code]
        out[v.code] = _fmt_money(value) if v.is_money else int(value)
    return out


def manifest_data(scenario: Scenario, inbox_name: str = "sample_inputs") -> dict[str, Any]:
    """The machine-readable manifest: every file, every planted case, the expected figures."""
    return {
        "generator": "python -m pipeline.samples",
        "seed": scenario.seed,
        "inbox": inbox_name,
        "periods": list(scenario.periods),
        "units": [u.name for u in scenario.params.units],
        "receipt_log": RECEIPT_LOG,
        "support_files": [README_NAME, RECEIPT_LOG],
        "files": [
            {
                "file": f.rel,
                "unit": f.unit.name,
                "period": f.period,
                "form": f.form_id,
                "format": f.fmt,
                "received": f.received.strftime(TIME_FORMAT) if f.received else None,
                "late": f.late,
                "validate": f.expect,
                "submission": f.submission,
                "plant": f.plant,
            }
            for f in scenario.files
        ],
        "plants": [
            {
                "kind": p.kind,
                "unit": p.unit,
                "period": p.period,
                "form": p.form,
                "file": p.file,
                "expect": p.expect,
                "rules": list(p.rules),
                "item": p.item,
                "detail": p.detail,
            }
            for p in scenario.plants
        ],
        "expected": {
            period: {
                "city": _json_figures(scenario.city_totals(period)),
                "units": {u: _json_figures(v) for u, v in scenario.expected_units[period].items()},
            }
            for period in scenario.periods
        },
    }


def write_manifest(scenario: Scenario, path: Path, inbox_name: str = "sample_inputs") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest_data(scenario, inbox_name), ensure_ascii=False, indent=1)
    path.write_text(text + "\n", encoding="utf-8")


KIND_TITLES = {
    "xls-return": ".xls 格式报送",
    "ods-return": ".ods 格式报送",
    "renamed-file": "文件被改名",
    "resubmission": "重复报送（以后收到的为准）",
    "lock-file": "~$ 锁定文件",
    "late-return": "逾期报送",
    "unit-missing": "单位未报送",
    "cumulative-decrease": "累计数减少",
    "ledger-mismatch": "调度表与台账不符",
    "overdue-hazard": "隐患逾期未整改",
    "rejected-return": "应退回的报表",
    "clerk-typed-value": "数字带单位",
    "metadata-lost": "元数据表丢失",
}


def describe(scenario: Scenario) -> str:
    """样例说明.md: what the sample inbox holds and where each planted case is (Chinese)."""
    periods = scenario.periods
    n_units = len(scenario.params.units)
    counts: dict[str, int] = {}
    for f in scenario.files:
        counts[f.form_id] = counts.get(f.form_id, 0) + 1
    from pipeline.forms import load_forms

    forms = load_forms()
    lines = [
        "# 样例报表说明",
        "",
        "本文件夹是 `make consolidate` 的默认输入：模拟市建设局收件箱中各县（市）区回收的报表，"
        f"共 {n_units} 个填报单位、{len(periods)} 个月"
        f"（{'、'.join(period_label_short(p) for p in periods)}）。",
        f"由 `python -m pipeline.samples --out sample_inputs --seed {scenario.seed}` 生成"
        "（`make samples`），用本项目的模板按区县经办人的方式填写；请勿手工修改，重新生成即可。",
        "",
        "## 内容",
        "",
        "- 每个单位每月报送：附件4 进展情况调度表、重大事故隐患台账，以及若干份检查清单"
        "（附件1 燃气、附件2 建筑施工、附件3 有限空间作业；部分清单一个文件含两次检查，即两个工作表）。",
        "- 附件4 为自专项行动开始的累计数，逐月增长；第一部分（A1–A6）与同单位同期台账按口径统计的数一致。",
        "- 台账自专项行动开始累计，隐患编号（如 GL-2023-001）逐月不变，整改状态逐月推进；"
        "部门检查清单中判定为重大隐患的，均列入台账（发现方式“部门检查”）。",
        f"- `{RECEIPT_LOG}` 是收文登记（文件名为相对本文件夹的路径，收到时间精确到分钟），"
        "汇总时以此作为收到时间（Git 不保存文件修改时间）。",
        "- 文件数："
        + "，".join(f"{forms[fid].annex} {counts[fid]} 个" for fid in forms if fid in counts)
        + "。",
        "",
    ]
    if not scenario.plants:
        lines += ["本样例未设置任何问题：全部报表均应通过校验并被采用，汇总时不应出现警告。", ""]
        return "\n".join(lines)
    lines += [
        "## 有意设置的问题（每类一处）",
        "",
        "| 类别 | 单位 | 期间 | 文件 | 说明 | 预期结果 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    outcome = {
        "accepted": "采用",
        "rejected": "退回",
        "ignored": "忽略",
        "missing": "未报送",
        "superseded": "被替代",
    }
    for p in scenario.plants:
        result = outcome.get(p.expect, p.expect)
        if p.kind == "resubmission" and p.expect == "accepted":
            first = next(f for f in scenario.files if f.rel == p.file)
            result = "被替代" if first.submission == "superseded" else "采用"
        rules = "、".join(f"`{r}`" for r in p.rules)
        lines.append(
            f"| {KIND_TITLES[p.kind]} | {p.unit} | {period_label_short(p.period)} | "
            f"{'`' + p.file + '`' if p.file else '—'} | {p.detail} | {result}"
            f"{'（' + rules + '）' if rules else ''} |"
        )
    lines += [
        "",
        "除上述情形外，其余报表均应通过校验并被采用，汇总时不应出现其他警告。",
        "机器可读的清单（每个文件、每处设置及各期应得的汇总数）见 `tests/data/sample_planted.json`。",
        "",
    ]
    return "\n".join(lines)


def period_label_short(period: str) -> str:
    year, month = parse_period(period)
    return f"{year}年{month}月"


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.samples",
        description="生成样例收件箱（各单位多月报表，含有意设置的问题），供 make consolidate 使用。",
    )
    parser.add_argument("--out", type=Path, default=Path("sample_inputs"), help="输出文件夹")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="随机种子")
    parser.add_argument("--periods", type=int, default=3, help="月数（自专项行动第一个月起）")
    parser.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="机器可读清单的路径（默认：输出到 sample_inputs 时为 tests/data/sample_planted.json）",
    )
    parser.add_argument("--jobs", type=int, default=None, help="并行进程数")
    scale = parser.add_argument_group("规模（默认即提交的样例）")
    scale.add_argument("--units", type=int, default=None, help="只用单位表中的前 N 个单位")
    scale.add_argument("--ledger-rows", type=int, default=None, help="每单位每月新增台账行数")
    scale.add_argument("--checklists", type=int, default=None, help="每单位每月检查清单文件数")
    scale.add_argument("--no-plants", action="store_true", help="不设置任何问题（全部干净）")
    scale.add_argument(
        "--folder", default=None, help="单位文件夹格式，如 {unit} 或 {year}年{month}月/{unit}"
    )
    args = parser.parse_args(argv)
    manifest = args.manifest
    if manifest is None and args.out.resolve() == (REPO_ROOT / "sample_inputs").resolve():
        manifest = DEFAULT_MANIFEST
    params = ScenarioParams.city(args.periods)
    if args.units is not None:
        params = replace(params, units=params.units[: args.units])
    if args.ledger_rows is not None:
        params = replace(params, ledger_rows_per_month=args.ledger_rows)
    if args.checklists is not None:
        params = replace(params, checklist_workbooks=(args.checklists, args.checklists))
    if args.no_plants:
        params = replace(params, plants=False)
    if args.folder is not None:
        params = replace(params, folder=args.folder)
    scenario = build_scenario(params, args.seed)
    written = write_inbox(scenario, args.out, manifest=manifest, jobs=args.jobs)
    size = sum(p.stat().st_size for p in written)
    print(
        f"已生成 {len(written)} 个文件（{size / 1e6:.1f} MB），位于 {args.out}"
        + (f"；清单 {manifest}" if manifest else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
