"""The one budget parser (hashbench.nets.schedules): every form a user may write, the values
it refuses (bools among them: ``True`` is an int to Python), and each caller using it."""

import pytest

from hashbench.errors import InputError
from hashbench.nets.schedules import SCHEDULES, budget_tag, get_schedule, parse_budget


@pytest.mark.parametrize("value, parsed", [
    ("quick", "quick"), ("paper", "paper"), ("paper:700", "paper:700"), (800, 800), ("800", 800), (1, 1),
])
def test_parse_budget_accepts_the_four_forms(value, parsed):
    got = parse_budget(value)
    assert got == parsed and type(got) is type(parsed)


@pytest.mark.parametrize("value", [True, False, 0, -3, "0", "paper:0", "paper:", "paper:x", "fast", 2.0, None, ""])
def test_parse_budget_refuses_with_the_name(value):
    with pytest.raises(InputError,
                       match=r"^--schedule must be one of 'quick', 'paper' or 'paper:N' or an integer >= 1, got "):
        parse_budget(value, "--schedule")


def test_get_schedule_of_each_form():
    assert get_schedule("quick") == SCHEDULES["quick"] and get_schedule("paper") is SCHEDULES["paper"]
    assert get_schedule("paper", finetune=True) is SCHEDULES["paper-finetune"]
    short = get_schedule("800")
    assert (short.optimizer, short.iterations, short.milestones) == ("adam", 800, (686, 743))
    sgd = get_schedule("paper:7000")  # the release's solver, a tenth as long
    assert (sgd.optimizer, sgd.iterations, sgd.milestones, sgd.weight_decay) == ("sgd", 7000, (6000, 6500), 0.004)
    ft = get_schedule(800, finetune=True)
    assert (ft.iterations, ft.step) == (800, round(457 * 800 / 3429))
    with pytest.raises(InputError, match="schedule"):
        get_schedule(True)


def test_budget_tag_names_files_apart():
    assert [budget_tag(b) for b in ("quick", "paper", 500, "500", "paper:500")] == [
        "quick", "paper", "it500", "it500", "paper-it500"]


def test_library_callers_refuse_a_bool_budget(tmp_path):
    from hashbench.figures import plan_show
    from hashbench.reproduce import print_config, reproduce

    with pytest.raises(InputError, match="--budget"):
        reproduce("table2", dataset="digits", budget=True, out_dir=tmp_path)
    with pytest.raises(InputError, match="--budget"):
        print_config("table2", dataset="digits", budget=0)
    with pytest.raises(InputError, match="--budget"):
        plan_show([], budget=True)
    assert list(tmp_path.iterdir()) == []
    config = print_config("table2", dataset="digits", budget="paper:40")  # the release's SGD, shortened
    assert 'schedule = "paper:40"' in config
