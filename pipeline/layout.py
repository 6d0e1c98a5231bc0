"""Where every label and input cell of each form sits in its template, derived from the form data.

The template writer places cells here and the reader looks for them here first, so the two can
never drift apart. All rows and columns are 0-based; `a1()` gives the address a clerk sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.forms import (
    TICKS,
    ChecklistForm,
    Form,
    LedgerForm,
    ProgressForm,
)

META_SHEET = "_meta"
INSTRUCTIONS_SHEET = "填表说明"
META_KEYS = (
    "form_id",
    "form_version",
    "form_title",
    "unit_code",
    "unit_name",
    "period",
    "generator",
    "generator_version",
)
UNIT_LABEL = "填报单位："
PERIOD_LABEL = "报送期间："


def col_letter(col: int) -> str:
    """0 -> 'A', 25 -> 'Z', 26 -> 'AA'."""
    out = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        out = chr(65 + rem) + out
    return out


def a1(row: int, col: int) -> str:
    return f"{col_letter(col)}{row + 1}"


@dataclass(frozen=True)
class Cell:
    row: int
    col: int

    @property
    def a1(self) -> str:
        return a1(self.row, self.col)


@dataclass(frozen=True)
class Merge:
    first: Cell
    last: Cell


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    width: float
    sub_header: str = ""
    group: str = ""


@dataclass(frozen=True)
class ChecklistLayout:
    """附件1–3: title, 填报单位/报送期间, a two-row header, one row per item, then the footer."""

    form: ChecklistForm
    columns: tuple[Column, ...]
    annex_cell: Cell = Cell(0, 0)
    title_row: int = 1
    info_row: int = 2
    header_rows: tuple[int, int] = (3, 4)
    first_item_row: int = 5

    @property
    def last_col(self) -> int:
        return len(self.columns) - 1

    def col(self, key: str) -> int:
        for i, c in enumerate(self.columns):
            if c.key == key:
                return i
        raise KeyError(key)

    @property
    def unit_label_cell(self) -> Cell:
        return Cell(self.info_row, 0)

    @property
    def unit_cell(self) -> Cell:
        return Cell(self.info_row, 1)

    @property
    def period_label_cell(self) -> Cell:
        return Cell(self.info_row, self.last_col - 2)

    @property
    def period_cell(self) -> Cell:
        return Cell(self.info_row, self.last_col - 1)

    def item_row(self, no: int) -> int:
        for i, it in enumerate(self.form.items):
            if it.no == no:
                return self.first_item_row + i
        raise KeyError(no)

    @property
    def last_item_row(self) -> int:
        return self.first_item_row + len(self.form.items) - 1

    def tick_col(self, answer: str) -> int:
        return self.col(f"tick_{TICKS.index(answer)}")

    def major_col(self, answer: str) -> int:
        return self.col("major_yes" if answer == "是" else "major_no")

    def footer_label_cell(self, key: str) -> Cell:
        return Cell(self._footer_row(key), 0)

    def footer_cell(self, key: str) -> Cell:
        return Cell(self._footer_row(key), 2)

    def _footer_row(self, key: str) -> int:
        for i, f in enumerate(self.form.footer):
            if f.key == key:
                return self.last_item_row + 2 + i
        raise KeyError(key)

    @property
    def notes_row(self) -> int:
        return self.last_item_row + 2 + len(self.form.footer) + 1


def checklist_layout(form: ChecklistForm) -> ChecklistLayout:
    cols: list[Column] = [
        Column("no", "序号", 5),
        Column("category", "检查类别", 9),
        Column("matter", "重点检查事项", 14 if form.has_content_column else 52),
    ]
    if form.has_content_column:
        cols.append(Column("content", "检查内容", 44))
    cols += [
        Column("tick_0", "检查结果", 5, "是", "result"),
        Column("tick_1", "检查结果", 5, "否", "result"),
        Column("tick_2", "检查结果", 6, "不涉及", "result"),
        Column("description", form.description_label, 22),
    ]
    if form.has_major_column:
        cols += [
            Column("major_yes", "是否重大隐患", 5, "是", "major"),
            Column("major_no", "是否重大隐患", 5, "否", "major"),
        ]
    cols += [Column("requirement", "整改要求", 20), Column("deadline", "整改时限", 12)]
    return ChecklistLayout(form=form, columns=tuple(cols))


@dataclass(frozen=True)
class ProgressItemCells:
    code: str
    no_cell: Cell
    label_cell: Cell
    label_merge: Merge
    # value code -> (caption cell, input cell, input merge or None). The caption sits on the
    # item's top row: the sub-label (次/万元, or the unit for one-value items; merged over both
    # value columns then), or last month's accepted figure in a prefilled template.
    inputs: tuple[tuple[str, Cell, Cell, Merge | None], ...]


@dataclass(frozen=True)
class ProgressLayout:
    """附件4: items in pairs as in the seed; each item takes two rows (captions, then inputs)."""

    form: ProgressForm
    items: tuple[ProgressItemCells, ...]
    section_merges: tuple[tuple[str, Merge], ...]
    columns: tuple[Column, ...]
    first_table_row: int
    last_table_row: int
    annex_cell: Cell = Cell(0, 0)
    title_row: int = 1
    unit_label_cell: Cell = Cell(2, 0)
    unit_cell: Cell = Cell(2, 2)
    date_label_cell: Cell = Cell(2, 6)
    date_cell: Cell = Cell(2, 7)
    period_label_cell: Cell = Cell(3, 0)
    period_cell: Cell = Cell(3, 2)
    value_cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def last_col(self) -> int:
        return len(self.columns) - 1

    @property
    def footnote_rows(self) -> tuple[int, ...]:
        return tuple(self.last_table_row + 1 + i for i in range(len(self.form.footnotes)))


def progress_layout(form: ProgressForm) -> ProgressLayout:
    columns = (
        Column("section", "", 11),
        Column("no_l", "", 4),
        Column("label_l", "", 30),
        Column("a_l", "", 9),
        Column("b_l", "", 9),
        Column("no_r", "", 4),
        Column("label_r", "", 30),
        Column("a_r", "", 9),
        Column("b_r", "", 9),
    )
    first = 4
    row = first
    items: list[ProgressItemCells] = []
    sections: list[tuple[str, Merge]] = []
    value_cells: dict[str, Cell] = {}
    for section in form.sections:
        start = row
        for pair_start in range(0, len(section.items), 2):
            for side, item in enumerate(section.items[pair_start : pair_start + 2]):
                base = 1 + 4 * side  # B or F
                top, bottom = row, row + 1
                inputs: list[tuple[str, Cell, Cell, Merge | None]] = []
                if len(item.values) == 1:
                    # caption (unit, or last month's figure) spans both value columns on top,
                    # the input spans them below
                    inputs.append(
                        (
                            item.values[0].code,
                            Cell(top, base + 2),
                            Cell(bottom, base + 2),
                            Merge(Cell(bottom, base + 2), Cell(bottom, base + 3)),
                        )
                    )
                else:
                    for k, v in enumerate(item.values):
                        inputs.append(
                            (v.code, Cell(top, base + 2 + k), Cell(bottom, base + 2 + k), None)
                        )
                for code, _sub, cell, _m in inputs:
                    value_cells[code] = cell
                items.append(
                    ProgressItemCells(
                        code=item.code,
                        no_cell=Cell(top, base),
                        label_cell=Cell(top, base + 1),
                        label_merge=Merge(Cell(top, base + 1), Cell(bottom, base + 1)),
                        inputs=tuple(inputs),
                    )
                )
            row += 2
        sections.append((section.code, Merge(Cell(start, 0), Cell(row - 1, 0))))
    return ProgressLayout(
        form=form,
        items=tuple(items),
        section_merges=tuple(sections),
        columns=columns,
        first_table_row=first,
        last_table_row=row - 1,
        value_cells=value_cells,
    )


# A template prefilled with a unit's accepted ledger leaves room for the hazards it finds next:
# at least `form.rows` input rows, and at least the prefilled rows plus LEDGER_SPARE_MIN, or plus
# half as many again for a long ledger (a unit with 2,000 hazards may add hundreds in a month).
LEDGER_SPARE_MIN = 200
LEDGER_SPARE_SHARE = 0.5


def ledger_input_rows(form: LedgerForm, prefilled: int = 0) -> int:
    """How many data rows a ledger template prefilled with `prefilled` rows formats for input."""
    spare = max(LEDGER_SPARE_MIN, math.ceil(prefilled * LEDGER_SPARE_SHARE))
    return max(form.rows, prefilled + spare) if prefilled > 0 else form.rows


@dataclass(frozen=True)
class LedgerLayout:
    """台账: title, 填报单位/报送期间, one header row, then the data rows: `form.rows` of them, or
    more in a template prefilled with a long ledger (`input_rows`, see ledger_input_rows). The
    reader reads on past them, so a return is read the same whichever template it was filled in."""

    form: LedgerForm
    title_row: int = 0
    unit_label_cell: Cell = Cell(1, 0)
    unit_cell: Cell = Cell(1, 1)
    period_label_cell: Cell = Cell(1, 4)
    period_cell: Cell = Cell(1, 5)
    header_row: int = 2
    first_data_row: int = 3
    input_rows: int = 0  # 0: form.rows

    @property
    def last_col(self) -> int:
        return len(self.form.columns) - 1

    @property
    def data_rows(self) -> int:
        return self.input_rows or self.form.rows

    @property
    def last_data_row(self) -> int:
        return self.first_data_row + self.data_rows - 1

    def col(self, key: str) -> int:
        for i, c in enumerate(self.form.columns):
            if c.key == key:
                return i
        raise KeyError(key)


Layout = ChecklistLayout | ProgressLayout | LedgerLayout


def layout_for(form: Form) -> Layout:
    if isinstance(form, ChecklistForm):
        return checklist_layout(form)
    if isinstance(form, ProgressForm):
        return progress_layout(form)
    return LedgerLayout(form=form)
