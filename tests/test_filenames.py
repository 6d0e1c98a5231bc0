"""What a returned file's name and folders say about its unit and period (pipeline.filenames)."""

from __future__ import annotations

import pytest

from pipeline.filenames import claims, forms_named, periods_in_path, periods_named, units_named
from pipeline.forms import load_forms, load_units

UNITS = [u.name for u in load_units()]


@pytest.mark.parametrize(
    ("name", "periods"),
    [
        ("附件4_进展情况调度表_鼓楼区_2023年7月", {"2023-07"}),
        ("鼓楼区 2023 年 07 月 进展", {"2023-07"}),
        ("鼓楼区２０２３年７月", {"2023-07"}),  # full-width digits, as typed in an IME
        ("调度表2023-07", {"2023-07"}),
        ("调度表_2023.7_v2", {"2023-07"}),
        ("台账202307", {"2023-07"}),
        ("鼓楼区7月份", {"2023-07"}),  # no year: the return's own
        ("6月、7月合并", {"2023-06", "2023-07"}),
        ("附件4 7月", {"2023-07"}),
        ("附件4 2023 7月", {"2023-07"}),  # spaces part the numbers
        ("附件4 修订2 7月", {"2023-07"}),
        ("附件4_2023年7月-2", {"2023-07"}),  # a copy's number, not a day
        ("附件4 2023年07月-1", {"2023-07"}),
        ("鼓楼区 6、7月", {"2023-06", "2023-07"}),  # a list names each month
        ("2023年1、3-4月", {"2023-01", "2023-03", "2023-04"}),
        # a range names every month in it
        ("2023年5-6月", {"2023-05", "2023-06"}),
        ("1-3月累计", {"2023-01", "2023-02", "2023-03"}),
        ("2023年1—2月", {"2023-01", "2023-02"}),
        # a date (a deadline, the day it was sent) names no period
        ("台账 2023-06-05 更新", set()),
        ("附件4_鼓楼区_2023-07-01", set()),
        ("台账（截至2023年7月1日）", set()),
        ("鼓楼区附件4（7月1日前报送）", set()),
        ("6月30日报送", set()),
        ("附件4月报", set()),  # the annex number is no month
        ("附件 4 进展情况调度表", set()),
        ("台账20230705", set()),  # eight digits: not a year and month
        ("鼓楼区2023_1", set()),  # a version number, not January
        ("2023年13月", set()),
        ("第2期", set()),
        ("上半年", set()),
    ],
)
def test_periods_named(name: str, periods: set[str]) -> None:
    assert periods_named(name, 2023) == periods


@pytest.mark.parametrize(
    ("name", "units"),
    [
        ("附件4_进展情况调度表_鼓楼区_2023年7月", {"鼓楼区"}),
        ("鼓楼7月", {"鼓楼区"}),
        ("高新区台账", {"福州高新区"}),
        ("福州高新区台账", {"福州高新区"}),
        ("长乐、福清_汇总", {"长乐区", "福清市"}),
        ("鼓楼 附件4", {"鼓楼区"}),
        ("福州鼓楼_附件4", {"鼓楼区"}),
        ("进展情况调度表", set()),
        # a short form inside a longer run of Chinese is another word
        ("高新技术企业隐患台账", set()),
        ("长乐路项目台账", set()),
        ("连江路施工", set()),
        ("鼓楼附件4", set()),  # a miss, rather than a false alarm on a word
        # a short name before its bureau, or after 福州市
        ("鼓楼住建局附件4", {"鼓楼区"}),
        ("台江建设局_附件4_7月", {"台江区"}),
        ("晋安城建_7月", {"晋安区"}),
        ("福州市台江", {"台江区"}),
        ("长乐机场项目", set()),
        ("鼓楼西路", set()),
    ],
)
def test_units_named(name: str, units: set[str]) -> None:
    assert units_named(name, UNITS) == units


def test_the_file_name_speaks_first_then_the_nearest_folder() -> None:
    rel = "2023年7月/鼓楼区/附件4_进展情况调度表_台江区_2023年7月.xlsx"
    assert claims(rel, UNITS, 2023) == (frozenset({"2023-07"}), frozenset({"台江区"}), "文件名")
    # the period comes from the file name only: folders are often by the month received
    rel = "2023年7月/仓山区/晋安区/附件4.xlsx"
    assert claims(rel, UNITS, 2023) == (frozenset(), frozenset({"晋安区"}), "所在文件夹“晋安区”")
    assert claims("附件4.xlsx", UNITS, 2023) == (frozenset(), frozenset(), "文件名")


FORM_WORDS = [(f.id, (f.annex, f.title, f.short_name, f.sheet_name)) for f in load_forms().values()]


@pytest.mark.parametrize(
    ("name", "forms"),
    [
        ("附件4_进展情况调度表_鼓楼区_2023年7月", {"annex4_progress"}),
        ("附件 4 鼓楼", {"annex4_progress"}),
        ("鼓楼区7月调度表", {"annex4_progress"}),
        ("台账_重大事故隐患台账_鼓楼区", {"ledger"}),
        ("鼓楼区台账", {"ledger"}),
        ("燃气检查清单（杨桥路）", {"annex1_gas"}),
        ("附件1、附件3", {"annex1_gas", "annex3_confined_space"}),
        ("附件4及台账", {"annex4_progress", "ledger"}),
        ("附件41", set()),  # no annex of ours
        ("现场照片", set()),
    ],
)
def test_forms_named(name: str, forms: set[str]) -> None:
    assert forms_named(name, FORM_WORDS) == forms


def test_periods_in_path_fall_back_to_the_nearest_folder() -> None:
    assert periods_in_path("2023年7月/鼓楼区/现场照片.xlsx", 2023) == {"2023-07"}
    assert periods_in_path("2023年7月/鼓楼区/附件4_2023年6月.xlsx", 2023) == {"2023-06"}
    assert periods_in_path("鼓楼区/现场照片.xlsx", 2023) == set()


def test_a_units_aliases_name_it_in_file_and_folder_names() -> None:
    # an alias from units.csv (as 高新区 for 福州高新区) names its unit in a path too; a bare
    # name list knows none
    from pipeline.forms import Unit

    units = [Unit("350102", "鼓楼区"), Unit("350199", "福州高新区", aliases=("高新园区", "旗山"))]
    assert units_named("旗山_附件4_7月", units) == {"福州高新区"}
    assert units_named("高新园区台账", units) == {"福州高新区"}
    assert units_named("旗山_附件4_7月", [u.name for u in units]) == set()
    assert claims("2023年7月/旗山/附件4.xlsx", units, 2023)[1:] == (
        frozenset({"福州高新区"}),
        "所在文件夹“旗山”",
    )
