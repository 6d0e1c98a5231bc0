"""The one catalogue of rule codes, severities and Chinese message templates.

Every issue and anomaly flag the pipeline reports is made with `make_issue(code, ...)`, so a
message is worded in exactly one place. Codes are stable kebab-case ASCII; never rename one.
Templates use str.format fields; `{value}` is the offending value as the clerk typed it.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
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
        "这是 Office/WPS 或 LibreOffice 打开文件时留下的临时锁定文件（~$ 或 .~lock. 开头），已忽略。",
    ),
    Rule("file-ignored-hidden", "info", "隐藏或系统文件", "隐藏文件或系统文件，已忽略。"),
    Rule(
        "file-ignored-not-spreadsheet",
        "info",
        "非表格文件",
        "不是 Excel/WPS/LibreOffice 表格文件（扩展名 {value}），已忽略。",
    ),
    # --- validation (reading and validating stages) -----------------------------------------
    # Reading: which files are read, and why a file cannot be opened or identified.
    Rule(
        "file-ignored-symlink",
        "info",
        "符号链接",
        "这是符号链接（快捷方式），为安全起见不跟随读取，已忽略；请把文件本身放入收件夹。",
    ),
    Rule("file-ignored-special", "info", "特殊文件", "不是普通文件（设备、管道等），已忽略。"),
    Rule(
        "file-ignored-receipt-log",
        "info",
        "收文登记",
        "这是收文登记表，各文件的收到时间以它为准；它本身不是报表，已忽略。",
    ),
    Rule(
        "file-not-workbook",
        "error",
        "不是工作簿",
        "文件名看起来是一份报表，但它是{what}，不是表格工作簿，无法读取，没有计入汇总。"
        "请在下发的模板中填写后直接保存（.xlsx，或 .xls、.ods）报送，不要导出或另存为其他格式。",
    ),
    Rule(
        "file-archive-read",
        "info",
        "压缩包",
        "这是 .zip 压缩包：其中的 {read} 个表格文件已逐个读取{rest}，都列在“{name}/…”下；"
        "压缩包本身未改动。",
    ),
    Rule(
        "archive-unsupported",
        "error",
        "压缩包未读取",
        "这是 {kind} 压缩包，本工具只能直接读取 .zip 压缩包，其中的报表没有读取、也没有计入汇总。"
        "请把其中的表格文件解压到收件箱（可放在压缩包旁边），或把它另存为 .zip，然后重新运行。",
    ),
    Rule(
        "archive-unreadable",
        "error",
        "压缩包无法读取",
        "压缩包无法读取（{reason}），其中的报表没有计入汇总。请试着用 Windows 或 WinRAR/7-Zip "
        "解压后把表格文件放入收件箱；解压不了的，请报送单位重新压缩后发送，或直接发送表格文件。",
    ),
    Rule(
        "archive-member-encrypted",
        "error",
        "压缩包设有密码",
        "压缩包中的这个文件设置了解压密码，无法读取。请用密码解压后把表格文件放入收件箱"
        "（可放在压缩包旁边），或请报送单位发送不加密的文件。",
    ),
    Rule(
        "archive-member-unsupported",
        "error",
        "压缩方式不受支持",
        "压缩包中的这个文件采用的压缩方式（{method}）无法直接读取。请用 Windows 或 WinRAR/7-Zip "
        "解压后把表格文件放入收件箱（可放在压缩包旁边）。",
    ),
    Rule(
        "archive-nested",
        "error",
        "压缩包中的压缩包",
        "这是压缩包里的又一个压缩包，不再往下读取，其中的报表没有计入汇总。请把它解压后把表格文件"
        "放入收件箱（可放在压缩包旁边）。",
    ),
    Rule(
        "receipt-log-unreadable",
        "warning",
        "收文登记无法读取",
        "收文登记无法读取（{reason}），各文件的收到时间改以文件修改时间为准。",
    ),
    Rule(
        "receipt-log-unused",
        "warning",
        "另有收文登记",
        "收件箱中有多份收文登记，收到时间以“{used}”为准，本文件未使用；请删除不再使用的一份，"
        "以免登记在这里的收到时间被忽略。",
    ),
    Rule(
        "receipt-log-times-invalid",
        "warning",
        "收文登记时间无法识别",
        "收文登记中有 {count} 行的收到时间无法识别（第 {rows}行，如“{example}”），这些行未采用，"
        "相关文件的收到时间以文件修改时间为准。请把收到时间写成 2023-06-30 17:20 这样的格式"
        "（Excel 中可把这一列设为“日期时间”格式）。",
    ),
    Rule(
        "receipt-log-row-invalid",
        "warning",
        "收文登记有误",
        "收文登记第 {row} 行未采用：{reason}。相关文件的收到时间以文件修改时间为准。",
    ),
    Rule(
        "file-unreadable-os",
        "error",
        "文件无法读取",
        "文件无法读取（{reason}），请检查文件是否被占用或没有读取权限。",
    ),
    Rule(
        "file-empty",
        "error",
        "空文件",
        "文件为空（0 字节），可能是保存或下载附件时失败。请重新保存后报送。",
    ),
    Rule(
        "file-too-large",
        "error",
        "文件过大",
        "文件大小为 {size}，超过上限 {limit}。请删除无关的工作表和图片，另存后重新报送。",
    ),
    Rule(
        "file-not-spreadsheet-content",
        "error",
        "不是表格文件",
        "文件扩展名是表格，但实际内容是{what}，无法作为报表读取。请用 Excel/WPS 打开下发的模板填写，"
        "另存为 .xlsx 后报送。",
    ),
    Rule(
        "file-format-unsupported",
        "error",
        "格式不支持",
        "文件是{what}，暂不支持读取。请在 Excel/WPS 中“另存为”Excel 工作簿（.xlsx）后报送。",
    ),
    Rule(
        "file-truncated",
        "error",
        "文件不完整",
        "文件不完整（可能下载或复制时中断），无法打开。请重新保存，或重新下载邮件附件后报送。",
    ),
    Rule(
        "file-corrupt",
        "error",
        "文件已损坏",
        "文件已损坏，无法打开（{detail}）。请在 Excel/WPS 中打开检查后，另存为 .xlsx 重新报送。",
    ),
    Rule(
        "file-zip-limits",
        "error",
        "文件结构异常",
        "文件内部结构异常（{detail}），为安全起见拒绝打开。请在 Excel/WPS 中另存为 .xlsx 后重新报送。",
    ),
    Rule(
        "file-xml-dtd",
        "error",
        "文件含有危险声明",
        "文件内部部件 {part} 含有 DTD/实体声明，正常的 Excel/WPS 文件不会有，为安全起见拒绝打开。"
        "请在 Excel/WPS 中另存为 .xlsx 后重新报送。",
    ),
    Rule(
        "file-encrypted",
        "error",
        "文件已加密",
        "文件设置了打开密码（已加密），无法读取。请在 Excel/WPS 中取消打开密码后重新保存报送"
        "（Excel：文件→信息→保护工作簿→用密码进行加密，清空密码）。",
    ),
    Rule(
        "file-sheet-too-large",
        "error",
        "数据区域过大",
        "{detail}，超出读取上限，可能在表格以外很远的单元格误输入了内容。请删除多余的行和列后重新报送。",
    ),
    Rule(
        "file-unreadable",
        "error",
        "表格无法读取",
        "表格无法读取（{detail}）。请在 Excel/WPS 中打开确认无误后，另存为 .xlsx 重新报送。",
    ),
    Rule(
        "file-read-failed",
        "error",
        "读取出错",
        "读取本文件时程序出错（{detail}）。请将此文件转交市局技术人员处理。",
    ),
    Rule(
        "file-extension-mismatch",
        "info",
        "扩展名与格式不符",
        "文件扩展名是 {ext}，实际是 {fmt} 格式，已按实际格式读取。建议另存为 .xlsx。",
    ),
    Rule(
        "file-unidentified",
        "error",
        "无法识别报表",
        "无法识别这是哪张报表：既没有模板自带的隐藏信息表，也找不到附件1—4或台账的表格标题。"
        "请使用市局下发的模板填报，不要另建工作簿或删除标题。",
    ),
    Rule(
        "file-form-unknown",
        "error",
        "不是本次报表",
        "模板信息中的表单编号“{value}”不是本次专项行动的报表，可能用错了模板。请使用市局下发的模板。",
    ),
    Rule(
        "file-form-version",
        "warning",
        "模板版本不同",
        "本文件使用的模板版本为 {value}，当前版本为 {current}；已按当前格式读取。下期请使用新下发的模板。",
    ),
    Rule(
        "sheet-missing",
        "error",
        "缺少工作表",
        "找不到{form_name}的表格（工作表“{expected}”可能被删除，或表格标题被删改）。"
        "请使用市局下发的模板填报。",
    ),
    Rule(
        "sheet-skipped",
        "info",
        "工作表已跳过",
        "工作表“{sheet}”不是本报表的内容，未读取。如其中有需要报送的数据，请填入模板的表格中。",
    ),
    Rule(
        "sheet-other-form",
        "warning",
        "夹带其他报表",
        "工作表“{sheet}”是另一张报表（{other}），本文件按{form_name}读取，该表未读取。"
        "请把它另存为单独的文件报送。",
    ),
    Rule(
        "sheet-hidden",
        "warning",
        "工作表被隐藏",
        "工作表“{sheet}”被隐藏了，仍按其内容读取和校验。如该表不需报送，请删除它。",
    ),
    Rule(
        "sheet-duplicate",
        "error",
        "工作表重复",
        "工作簿中有两张同样的表（“{first}”和“{sheet}”），无法判断以哪张为准。请只保留一张后重新报送。",
    ),
    Rule(
        "label-missing",
        "error",
        "找不到栏目",
        "找不到“{label}”这一栏（所在行或列可能被删除或改动），无法读取。请使用市局下发的模板，"
        "不要删改表格结构。",
    ),
    Rule(
        "unit-missing",
        "error",
        "未填填报单位",
        "未填写填报单位。请在“填报单位：”后从下拉列表中选择本单位名称。",
    ),
    Rule(
        "unit-unknown",
        "error",
        "填报单位不在名单中",
        "填报单位“{value}”不在福州市填报单位名单中。请从下拉列表中选择本单位名称（如“鼓楼区”）。",
    ),
    Rule(
        "period-missing",
        "error",
        "未填报送期间",
        "未填写报送期间，无法判断是哪个月的报表。请在“报送期间：”后选择月份，如“2023年6月”。",
    ),
    Rule(
        "period-invalid",
        "error",
        "报送期间无法识别",
        "报送期间“{value}”无法识别（{reason}）。请写成“2023年6月”这样的月份。",
    ),
    Rule(
        "period-out-of-campaign",
        "error",
        "报送期间不在行动期内",
        "报送期间 {value} 不在专项行动的报送月份（{first}—{last}）之内。请核对月份。",
    ),
    Rule(
        "meta-unit-mismatch",
        "error",
        "填报单位与模板不符",
        "表中填报单位为“{value}”，但本模板是下发给{expected}的。请使用本单位的模板，或更正填报单位。",
    ),
    Rule(
        "meta-period-mismatch",
        "error",
        "报送期间与模板不符",
        "表中报送期间为“{value}”，但本文件是{expected}的报表。请使用本期模板，或更正报送期间。",
    ),
    # Reading: values a clerk typed that cannot be read without guessing.
    Rule(
        "value-not-number",
        "error",
        "不是数字",
        "{label}应填写数字，填写的是“{value}”（{reason}）。",
    ),
    Rule(
        "value-ambiguous",
        "error",
        "数字含义不明确",
        "{label}填写的“{value}”{reason}。",
    ),
    Rule(
        "value-unit-mismatch",
        "warning",
        "单位与本项不符",
        "{label}填写的是“{value}”，单位“{typed}”与本项的单位“{unit}”不一致，已按 {number} 读取。"
        "请核实是不是本项的数字（没有填到别的栏目），无误请只填数字。",
    ),
    Rule(
        "date-invalid",
        "error",
        "日期无法识别",
        "{label}应填写日期，填写的是“{value}”（{reason}）。",
    ),
    Rule(
        "tick-unrecognized",
        "error",
        "勾选符号无法识别",
        "{label}填写的是“{value}”，无法判断是否勾选。勾选请填“√”（{marks} 都算勾选），不选请留空。",
    ),
    Rule(
        "tick-cross",
        "error",
        "叉号不算勾选",
        "{label}填写的是“{value}”，叉号不算勾选（{marks} 才算），本行其他栏也没有勾选，"
        "无法判断是否选了这一栏。选这一栏请改为“√”，不选请清空该单元格。",
    ),
    Rule(
        "tick-cross-ignored",
        "warning",
        "叉号已忽略",
        "{label}填写的是“{value}”，叉号不算勾选（{marks} 才算）；本行已按勾选的“{ticked}”栏读取。"
        "如有误请更正，无误建议清空该单元格。",
    ),
    Rule(
        "value-formula-no-result",
        "error",
        "公式没有计算结果",
        "单元格中是公式，但文件里没有保存计算结果（常见于其他软件生成的文件），无法读取。"
        "请在 Excel/WPS 中打开、确认数值后保存，或直接填写数字。",
    ),
    Rule(
        "value-formula-error",
        "error",
        "公式计算出错",
        "单元格中的公式计算出错（{value}），无法读取。请改为直接填写数字或内容。",
    ),
    # Validation: 附件4 values ({label} names the item; the form's [[rules]] are added below).
    Rule(
        "progress-missing",
        "error",
        "未填写",
        "{label}未填写。本项没有发生的请填 0。",
    ),
    Rule(
        "value-not-integer",
        "error",
        "应为整数",
        "{label}是数量，应填整数，填写的是“{value}”。",
    ),
    Rule("value-negative", "error", "不能为负数", "{label}不能为负数，填写的是“{value}”。"),
    Rule(
        "value-too-many-decimals",
        "error",
        "小数位过多",
        "{label}以万元为单位，最多保留4位小数，填写的是“{value}”。",
    ),
    Rule(
        "value-too-large",
        "error",
        "数值大得不合常理",
        "{label}填写的 {value} 超过合理上限 {limit}，请核实是否多填了数位或把元当成了万元。",
    ),
    # Validation: 附件1–3 checklists ({no} is the item number).
    Rule(
        "checklist-item-missing",
        "error",
        "缺少检查事项",
        "找不到第 {no} 项检查事项所在的行（行可能被删除或序号被改动）。请使用下发的模板，不要删除检查事项。",
    ),
    Rule(
        "checklist-empty",
        "error",
        "检查表未填写",
        "检查表是空白的：没有勾选任何检查结果，也没有填写检查信息。请填写后重新报送。",
    ),
    Rule(
        "checklist-blank-sheet",
        "warning",
        "空白检查表",
        "工作表“{sheet}”是未填写的空白检查表，已跳过；如不需要请删除该工作表。",
    ),
    # A column's header not on the checklist's header row (deleted or renamed); {label} names
    # it, a grouped column as 检查结果（不涉及）. Without an input column the sheet is not read.
    Rule(
        "checklist-column-missing",
        "error",
        "检查表缺少栏目",
        "表头中找不到“{label}”列（应在 {cell} 处，可能被删除或改了名），本表无法读取。请把表格的列"
        "恢复成模板原样（或用市局下发的模板重新填写）后重新报送。",
    ),
    # Only the template's own text (检查类别 and the like): the items are still read by 序号.
    Rule(
        "checklist-text-column-missing",
        "warning",
        "检查表缺少说明栏目",
        "表头中找不到“{label}”列（应在 {cell} 处，可能被删除），本表仍按“序号”列逐项读取，检查结果不受影响。"
        "请核对各项的序号与模板一致；今后请使用市局下发的模板，不要删除表格的列。",
    ),
    # A row among or just below the items that is not a template item but holds answers.
    Rule(
        "checklist-extra-row",
        "error",
        "检查表中多出一行",
        "第 {row} 行（{cell}）不是本检查清单的检查事项，其中填写的内容（{cells}）不会被读取，"
        "也不会汇总。请删除该行：检查中发现的隐患请填入《重大事故隐患台账》，或写入对应检查事项的"
        "“{description}”栏，然后重新报送。",
    ),
    # A filled inspection sheet that repeats an earlier sheet of the same workbook word for word.
    Rule(
        "checklist-sheet-copy",
        "warning",
        "检查表页面重复",
        "工作表“{sheet}”与“{first}”页内容完全相同，只计一次；如是另一次检查，请填写该次检查的内容后"
        "重新报送。",
    ),
    Rule(
        "checklist-same-inspection",
        "warning",
        "两页是同一次检查？",
        "工作表“{sheet}”与“{first}”页的检查对象和检查时间相同（{subject}，{date}），但填写的检查结果"
        "不同；两页都已计入汇总。如是同一次检查，请删除多余的一页后重新报送；如是另一次检查，"
        "请核对并改正检查时间或检查对象。",
    ),
    Rule(
        "checklist-no-tick",
        "error",
        "未勾选检查结果",
        "第 {no} 项未勾选检查结果。请在“是”“否”“不涉及”三栏中勾选一栏。",
    ),
    Rule(
        "checklist-multiple-ticks",
        "error",
        "检查结果勾选多栏",
        "第 {no} 项同时勾选了{ticks}，只能勾选一栏。请保留正确的一栏。",
    ),
    Rule(
        "checklist-hazard-description-missing",
        "error",
        "未填隐患描述",
        "第 {no} 项勾选“{answer}”表示存在隐患，须填写{what}。",
    ),
    Rule(
        "checklist-hazard-requirement-missing",
        "error",
        "未填整改要求",
        "第 {no} 项勾选“{answer}”表示存在隐患，须填写整改要求。",
    ),
    Rule(
        "checklist-hazard-deadline-missing",
        "error",
        "未填整改时限",
        "第 {no} 项勾选“{answer}”表示存在隐患，须填写整改时限（日期，如 2023-07-15）。",
    ),
    Rule(
        "checklist-major-missing",
        "error",
        "未判定是否重大隐患",
        "第 {no} 项存在隐患，须在“是否重大隐患”的“是”“否”两栏中勾选一栏。",
    ),
    Rule(
        "checklist-major-multiple",
        "error",
        "是否重大隐患勾选两栏",
        "第 {no} 项“是否重大隐患”的“是”“否”两栏都勾选了，只能勾选一栏。",
    ),
    Rule(
        "checklist-footer-missing",
        "error",
        "表尾未填写",
        "未填写{label}（必填）。",
    ),
    Rule(
        "progress-date-implausible",
        "warning",
        "填报时间不合常理",
        "{label} {value} {when}，而本表报送的是{period_label}末的累计数；请核对年份和月份是否填错。",
    ),
    Rule(
        "checklist-date-before-campaign",
        "error",
        "检查时间早于行动开始",
        "{label} {value} 早于专项行动开始日期 {start}，请核对。",
    ),
    Rule(
        "checklist-date-after-period",
        "error",
        "检查时间晚于期末",
        "{label} {value} 晚于报送期间的期末 {end}。请核对日期，或换用检查时间所在月份的模板报送。",
    ),
    # Validation: 台账 ({row} is the Excel row number, {hazard_id} the row's 隐患编号).
    Rule(
        "ledger-column-missing",
        "error",
        "台账缺少栏目",
        "台账表头中找不到“{label}”列（可能被删除或改名）。请使用市局下发的台账模板。",
    ),
    # {header} is 表头“…” or 表头为空的这一列; {missing} the missing columns' labels, quoted
    Rule(
        "ledger-column-unknown",
        "error",
        "台账表头不对",
        "{header}不是台账的列名；台账缺少{missing}列。请把表头改回模板原样后重新报送，"
        "否则该列内容无法汇总。",
    ),
    Rule(
        "ledger-column-extra",
        "warning",
        "台账多出栏目",
        "{header}不是台账的列名，该列内容不会汇总到市局台账。序号之类的列可以删除；需要报给市局的内容，"
        "请写入“备注”列。",
    ),
    Rule(
        "ledger-column-duplicate",
        "warning",
        "台账栏目重复",
        "表头“{label}”出现了两次（{first} 和这里），只读取第一列；这一列的内容不会汇总到市局台账。"
        "请把两列的内容合并到一列、删除多出的一列后重新报送。",
    ),
    # A merged area over ledger rows: it shows one value on every row, the file holds it once.
    Rule(
        "ledger-merged-cells",
        "error",
        "台账中有合并单元格",
        "{area}（{labels}，第 {first} 至 {last} 行）是合并单元格。台账每行是一条隐患，各行须分别填写：请取消合并，"
        "在原来合并的每一行都填上内容后重新报送。",
    ),
    # A 合计 line or a signature line (填表人、审核人、联系电话) typed below the hazards.
    Rule(
        "ledger-footer-row",
        "error",
        "台账中有合计或签名行",
        "第 {row} 行（“{text}”）像是合计、签名或说明行，不是一条隐患。台账每行只填一条隐患：请删除该行"
        "后重新报送（合计由市局汇总时计算，填表人、联系电话等不需要写在表中）。",
    ),
    Rule(
        "ledger-required-missing",
        "error",
        "台账必填项未填",
        "第 {row} 行未填写{label}（必填）。",
    ),
    Rule(
        "ledger-choice-invalid",
        "error",
        "台账选项不对",
        "第 {row} 行{label}只能填{choices}之一，填写的是“{value}”。",
    ),
    Rule(
        "ledger-duplicate-id",
        "error",
        "隐患编号重复",
        "第 {row} 行的隐患编号“{value}”与第 {first_row} 行重复。每个隐患一个编号，本单位内不得重复。",
    ),
    Rule(
        "ledger-credit-code-invalid",
        "error",
        "统一社会信用代码有误",
        "第 {row} 行统一社会信用代码“{value}”{reason}。不清楚的可以留空。",
    ),
    Rule(
        "ledger-date-order",
        "error",
        "日期先后不对",
        "第 {row} 行{label} {value} 早于{other_label} {other}，日期先后不对，请核对。",
    ),
    Rule(
        "ledger-date-after-period",
        "error",
        "日期晚于期末",
        "第 {row} 行{label} {value} 晚于报送期间的期末 {end}。台账只填截至期末已发生的情况，请核对。",
    ),
    Rule(
        "ledger-date-before-campaign",
        "warning",
        "日期早于专项行动",
        "第 {row} 行{label} {value} 早于专项行动开始日期 {start}。如确是专项行动前发现、仍在整改的隐患可保留；"
        "否则多半是年份写错，请核对。",
    ),
    Rule(
        "ledger-open-incomplete",
        "error",
        "五落实不全",
        "第 {row} 行隐患 {hazard_id} 仍在整改中，须落实“五落实”（责任人、措施、资金、期限、应急预案），"
        "未填写{label}。",
    ),
    Rule(
        "ledger-open-no-plan",
        "error",
        "整改中无应急预案",
        "第 {row} 行隐患 {hazard_id} 仍在整改中，须有应急预案（应急预案应为“有”），填写的是“{value}”。",
    ),
    Rule(
        "ledger-status-needs-date",
        "error",
        "未填整改完成日期",
        "第 {row} 行隐患 {hazard_id} 整改状态为“{status}”，须填写整改完成日期。",
    ),
    Rule(
        "ledger-closed-needs-acceptor",
        "error",
        "未填验收人",
        "第 {row} 行隐患 {hazard_id} 已验收销号，须填写验收人。",
    ),
    Rule(
        "ledger-closed-needs-date",
        "error",
        "未填销号日期",
        "第 {row} 行隐患 {hazard_id} 已验收销号，须填写销号日期。",
    ),
    Rule(
        "ledger-supervision-level-missing",
        "error",
        "未填督办级别",
        "第 {row} 行隐患 {hazard_id} 已挂牌督办，须填写督办级别（省、市或县）。",
    ),
    Rule(
        "ledger-deadline-before-found",
        "error",
        "整改期限早于发现日期",
        "第 {row} 行隐患 {hazard_id} 的整改期限 {value} 早于发现日期 {other}，日期先后不对。"
        "请核对整改期限或发现日期。",
    ),
    Rule(
        "ledger-status-date-conflict",
        "error",
        "整改状态与日期矛盾",
        "第 {row} 行隐患 {hazard_id} 整改状态为“{status}”，却填写了{label} {value}，两者矛盾。"
        "如确已{done}，请把整改状态改为“{should}”；否则请清空{label}。",
    ),
    Rule(
        "ledger-supervision-level-unexpected",
        "error",
        "未挂牌督办却有督办级别",
        "第 {row} 行隐患 {hazard_id} 的是否挂牌督办为“否”，却填写了督办级别“{value}”，两者矛盾。"
        "如已挂牌督办，请把是否挂牌督办改为“是”；否则请清空督办级别。",
    ),
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
        "unit-never-reported",
        "warning",
        "未报送（从未报送，按0计入）",
        "{unit}{period_label}的进展情况调度表未报送{reason}，此前各期也没有已接收的调度表，"
        "汇总时该单位各项均按 0 计入；请督促补报。",
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
        "{unit}“{label}”（{item}）本月累计 {current}，比{before}的 {previous} "
        "还少。调度表填的是自专项行动开始的累计数，只增不减；请核实是否填错，或此前的数据需更正。",
    ),
    Rule(
        "return-identical",
        "warning",
        "与上月完全相同",
        "{unit}{period_label}调度表的全部 {count} 项数据与{prev_period_label}完全相同（且不全为0），"
        "可能误报了{prev_period_label}的表格；请核实本月是否确无新增。",
    ),
    Rule(
        "increment-outlier",
        "warning",
        "本月新增异常",
        "{unit}“{label}”（{item}）本月新增 {increment}（本月累计 {current}，上月累计 {previous}），"
        "远超常态：{basis}。"
        "判断方法：稳健 z 分数 = 0.6745 ×（本月新增 − 中位数）÷ MAD，MAD 是各值与中位数之差的绝对值的"
        "中位数（小于 {floor} 时按 {floor} 计，以免数字很小时误报）；与每个可比对象相比 z 都超过 "
        "{threshold} 才标记。请核实是否多填了数位或把累计数填成了新增。",
    ),
    Rule(
        "ledger-mismatch",
        "warning",
        "调度表与台账不符",
        "{unit}调度表“{label}”（{item}）填报 {current}，但同期台账（{ledger_file}）按口径统计为 "
        "{previous}。统计口径：{definition}。"
        "请核对调度表或台账。",
    ),
    Rule(
        "ledger-overdue",
        "warning",
        "隐患逾期未整改",
        "{unit}台账隐患 {hazard_id}（{enterprise}）整改期限为 {deadline}，至期末 {period_end} "
        "整改状态仍为“{status}”，已逾期 {days} 天；请督促整改。",
    ),
    # A unit without this period's ledger: its hazards' status is last month's, so an overdue
    # deadline is a question to ask, not a fact; one flag per unit, below the warnings.
    Rule(
        "ledger-overdue-unconfirmed",
        "info",
        "逾期待核实（本月未报台账）",
        "据{ledger_period_label}台账（本月未报送台账{reason}，沿用 {ledger_file}），{unit}有 "
        "{count} 条隐患至期末 {period_end} 已过整改期限、在该台账中整改状态为“整改中”：{hazards}。"
        "本月整改情况未报，暂不认定逾期；请督促报送本月台账后核实。",
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
    # The template's metadata decides a return's unit and period; a file name or folder saying
    # otherwise (last month's template reused, a neighbour's copied) is flagged, not rejected.
    Rule(
        "return-name-period-mismatch",
        "warning",
        "文件名与模板期间不符",
        "文件“{file}”的文件名写的是{named}，但它用的是{unit}{actual}的模板（表内报送期间和隐藏的元数据都是"
        "{actual}），已作为{actual}的{form_name}汇总{replaced}。如果这是{named}的数据，请让{unit}用"
        "{named}的模板重新填报；如果只是文件名写错，可不处理。",
    ),
    Rule(
        "return-name-unit-mismatch",
        "warning",
        "文件名与模板单位不符",
        "文件“{file}”的{where}写的是{named}，但它用的是下发给{unit}的模板，已作为{unit}{period_label}的"
        "{form_name}汇总{replaced}。如果这是{named}报送的，请让{named}用本单位的模板重新填报；"
        "如果只是名称写错，可不处理。",
    ),
    # A unit's correction that failed validation: its older accepted return still counts.
    Rule(
        "return-correction-rejected",
        "warning",
        "更正件被退回，沿用通过校验的一份",
        "{unit}{period_label}的{form_name}：“{rejected}”（收到时间不早于“{file}”）未通过校验、已退回修改，"
        "汇总仍采用通过校验的“{file}”。该单位可能是在更正数据，请督促其按退回意见修改后重报；"
        "重报前本表的数据以“{file}”为准。",
    ),
    # Two returns of one unit, period and form received at the same time (a receipt log kept
    # to the minute, files unpacked together): the file names' order decided.
    Rule(
        "return-receipt-tie",
        "warning",
        "收到时间相同，无法判断先后",
        "{unit}{period_label}的{form_name}有 {count} 份文件收到时间相同（{received}，"
        "{received_source}），无法判断哪一份在后；已按文件名顺序采用“{file}”，未采用“{others}”。"
        "请核实哪一份是最终版本；如不是“{file}”，请在收文登记中写明各份到秒的收到时间后重新汇总。",
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
        "{unit}{period_label}部门检查清单中的重大隐患共 {current} 项（{breakdown}；{files}），"
        "但台账中发现方式为“部门检查”、发现日期在本月的隐患只有 {previous} 条。计数口径：{definition}。"
        "检查发现的重大隐患应100%列入台账；请补录台账。",
    ),
]


def _progress_rules() -> list[Rule]:
    """One entry per [[rules]] of the 附件4 definition: the codes live in the TOML, so a rule
    added there gets its message here without a code change."""
    from pipeline.forms import DefinitionError, progress_form

    try:
        form = progress_form()
    except (DefinitionError, KeyError):
        return []  # the CLI reports the broken definition itself
    templates = {
        "le": (
            "逻辑关系不符",
            "{left_label}填了 {value}，大于{right_label}的 {right_value}；前者是后者的一部分，"
            "不能更多。请核对这两项。",
        ),
        "requires": (
            "缺少对应数据",
            "{left_label}填了 {value}，但{right_label}为 {right_value}；前者大于0时后者也应大于0。"
            "请核对这两项。",
        ),
    }
    return [Rule(r.code, "error", *templates[r.kind]) for r in form.rules]


_RULES += _progress_rules()

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


# --- units that did not report ---------------------------------------------------------------


def carried_groups(sources: Mapping[str, str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Units without this period's 附件4 (unit -> the period their figures are carried from, ""
    when they never reported), as the notes name them: (period, units) by period, earliest
    first, and the units that never reported; units keep their given order."""
    by_period: dict[str, list[str]] = {}
    for unit, period in sources.items():
        by_period.setdefault(period, []).append(unit)
    never = by_period.pop("", [])
    return sorted(by_period.items()), never


# --- text from outside: file names and the operating system's errors ---------------------------


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
