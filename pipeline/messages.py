"""The one catalogue of rule codes, severities and Chinese message templates.

Every issue and anomaly flag the pipeline reports is made with `make_issue(code, ...)`, so a
message is worded in exactly one place. Codes are stable kebab-case ASCII; never rename one.
Templates use str.format fields; `{value}` is the offending value as the clerk typed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.model import Issue, Severity


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    title: str  # short Chinese name, for report columns and summaries
    template: str  # Chinese message with {fields}


_RULES: list[Rule] = [
    # --- files: opening and identifying (reading stage) -------------------------------------
    Rule(
        "file-ignored-lock",
        "info",
        "锁定文件",
        "这是 Office/WPS 打开文件时留下的临时锁定文件（~$ 开头），已忽略。",
    ),
    Rule("file-ignored-hidden", "info", "隐藏或系统文件", "隐藏文件或系统文件，已忽略。"),
    Rule(
        "file-ignored-not-spreadsheet",
        "info",
        "非表格文件",
        "不是 Excel/WPS/LibreOffice 表格文件（扩展名 {value}），已忽略。",
    ),
    # --- validation (reading and validating stages) -----------------------------------------
    # (helpers add the reading/validation rules here)
    # --- anomalies (consolidation stage) -----------------------------------------------------
    # Flags never block a return; they ask the city to check something. Fields are filled by
    # pipeline.consolidate; {unit} is the unit's name, {period_label} e.g. 2023年7月.
    Rule(
        "unit-not-reported",
        "warning",
        "未报送（沿用上期）",
        "{unit}{period_label}的进展情况调度表未报送{reason}，汇总时沿用其{source}；请督促补报。",
    ),
    Rule(
        "ledger-not-reported",
        "info",
        "台账未报送",
        "{unit}{period_label}的重大事故隐患台账未报送{reason}，{source}；请督促报送。",
    ),
    Rule(
        "cumulative-decreased",
        "warning",
        "累计数减少",
        "{unit}“{label}”（{item}）本月累计 {current}，比上月（{prev_period_label}）的 {previous} "
        "还少。调度表填的是自专项行动开始的累计数，只增不减；请核实是否填错，或上月数据需更正。",
    ),
    Rule(
        "return-identical",
        "warning",
        "与上月完全相同",
        "{unit}{period_label}调度表的全部 {count} 项数据与{prev_period_label}完全相同（且不全为0），"
        "可能误报了上月的表格；请核实本月是否确无新增。",
    ),
    Rule(
        "increment-outlier",
        "warning",
        "本月新增异常",
        "{unit}“{label}”（{item}）本月新增 {current}（上月累计 {previous}），远超常态：{basis}。"
        "判断方法：稳健 z 分数 = 0.6745 ×（本月新增 − 中位数）÷ MAD，MAD 是各值与中位数之差的绝对值的"
        "中位数（小于 {floor} 时按 {floor} 计，以免数字很小时误报）；与每个可比对象相比 z 都超过 "
        "{threshold} 才标记。请核实是否多填了数位或把累计数填成了新增。",
    ),
    Rule(
        "ledger-mismatch",
        "warning",
        "调度表与台账不符",
        "{unit}调度表“{label}”（{item}）填报 {current}，但同期台账（{ledger_file}）按口径统计为 "
        "{previous}。统计口径：{definition}（举报发现的隐患既不计入第1项也不计入第3项）。"
        "请核对调度表或台账。",
    ),
    Rule(
        "ledger-overdue",
        "warning",
        "隐患逾期未整改",
        "{unit}台账隐患 {hazard_id}（{enterprise}）整改期限为 {deadline}，至期末 {period_end} "
        "整改状态仍为“{status}”，已逾期 {days} 天；请督促整改。",
    ),
    Rule(
        "ledger-row-vanished",
        "warning",
        "台账隐患消失",
        "{unit}{prev_period_label}台账中的隐患 {hazard_id}（{enterprise}）在{period_label}台账中不见了。"
        "台账自专项行动开始累计填报，已销号的隐患也须保留；请核实是否误删。",
    ),
    Rule(
        "ledger-status-regressed",
        "warning",
        "整改状态倒退",
        "{unit}台账隐患 {hazard_id}（{enterprise}）的整改状态由{prev_period_label}的“{previous}”"
        "变为{period_label}的“{current}”，状态倒退；请核实。",
    ),
    Rule(
        "return-late",
        "info",
        "逾期报送",
        "{unit}{form_name}（{period_label}）应在 {due} 当天结束前报送，收到时间为 {received}"
        "（{received_source}），已逾期。",
    ),
    Rule(
        "checklist-major-exceeds-ledger",
        "warning",
        "检查发现的重大隐患多于台账",
        "{unit}{period_label}部门检查清单（附件2）中判定为重大隐患的共 {current} 项（{files}），"
        "但台账中发现方式为“部门检查”、发现日期在本月的隐患只有 {previous} 条。检查发现的重大隐患"
        "应100%列入台账；请补录台账。",
    ),
]

CATALOGUE: dict[str, Rule] = {}
for _rule in _RULES:
    if _rule.code in CATALOGUE:
        raise RuntimeError(f"duplicate rule code {_rule.code}")
    CATALOGUE[_rule.code] = _rule


def make_issue(
    code: str,
    *,
    file: str = "",
    sheet: str = "",
    cell: str = "",
    value: Any = "",
    severity: Severity | None = None,
    **fields: Any,
) -> Issue:
    """Render the catalogue entry `code` into an Issue. Unknown codes are a programming error."""
    rule = CATALOGUE[code]
    shown = "" if value is None else str(value)
    message = rule.template.format(value=shown, file=file, sheet=sheet, cell=cell, **fields)
    return Issue(
        rule=code,
        severity=severity or rule.severity,
        message=message,
        file=file,
        sheet=sheet,
        cell=cell,
        value=shown,
    )
