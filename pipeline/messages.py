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
    # (helpers add the anomaly rules here)
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
