"""Training schedules of the DSH network family, and the one parser of a training budget.

Torch-free, so the CLI and the planners (``reproduce``, ``show``) check ``--budget`` without
loading torch. A budget is what a user writes: ``"quick"`` (default, fits a CPU),
``"paper"`` (the release's solver), an iteration count N (quick, shortened) or
``"paper:N"`` (the release's SGD, shortened); :func:`parse_budget` is the one place it is
read and checked, :data:`BUDGET` its constraint (a hasher's ``schedule`` parameter declares
it), :func:`get_schedule` turns it into a :class:`Schedule`.
"""

from dataclasses import dataclass, replace

from ..params import Interval, Options, Pattern, check

BUDGET = [Options("quick", "paper"), Pattern(r"paper:[1-9][0-9]*", "'paper:N'"), Interval(int, 1, None)]
BUDGET_HELP = ("quick (default, Adam, fits a 2-core CPU), paper (the released 70k-iteration SGD), an iteration "
               "count N (quick shortened to N iterations) or paper:N (the released SGD shortened to N iterations)")


def parse_budget(value, name: str = "--budget"):
    """``"quick"``, ``"paper"``, ``"paper:N"`` or an int N >= 1, from a value or its command-line
    string (``"800"`` -> 800); anything else (a bool, 0, ``"paper:0"``) is an InputError
    naming ``name``."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return check(value, name, BUDGET)


def budget_tag(budget) -> str:
    """A budget as a file-name part: ``quick``, ``paper``, ``it<N>``, ``paper-it<N>``."""
    budget = parse_budget(budget)
    if isinstance(budget, int):
        return f"it{budget}"
    return budget.replace(":", "-it")


@dataclass(frozen=True)
class Schedule:
    """An optimiser and its lr policy (Caffe's "multistep" with ``milestones``, or "step"
    with ``step``: lr * gamma^(it // step)). lr multipliers: weights x1, biases x2 (no weight
    decay), a fine-tuned new output layer x10 / x20, as in the released prototxts."""

    optimizer: str
    lr: float
    iterations: int
    milestones: tuple = ()
    step: int = 0
    gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0

    def lr_at(self, it: int) -> float:
        if self.step:
            return self.lr * self.gamma ** (it // self.step)
        return self.lr * self.gamma ** sum(it >= m for m in self.milestones)


SCHEDULES = {
    # solver.prototxt of the release: 70k iterations of batch 200 (280 epochs).
    "paper": Schedule("sgd", 1e-3, 70_000, milestones=(60_000, 65_000), weight_decay=0.004),
    # finetune_solver.prototxt of the release.
    "paper-finetune": Schedule("sgd", 1e-4, 30_000, step=4_000, gamma=0.6, weight_decay=0.004),
    # Deviation, chosen by measurement (README, "The quick schedule"): the released SGD needs
    # its 70k iterations, so Adam, lr 1e-3, no weight decay, 8,000 iterations, with the
    # release's multistep shape scaled to that length (x0.1 at 6,857 and 7,429).
    "quick": Schedule("adam", 1e-3, 8_000, milestones=(6_857, 7_429)),
    # The release's fine-tuning shape (lr 1e-4, x0.6 every 4k of 30k) scaled by the same
    # 8,000 / 70,000.
    "quick-finetune": Schedule("adam", 1e-4, 3_429, step=457, gamma=0.6),
}


def get_schedule(budget, finetune: bool = False) -> Schedule:
    """The :class:`Schedule` of a budget (:func:`parse_budget`), its fine-tuning form when
    ``finetune``. A shortened schedule scales its lr steps along."""
    budget = parse_budget(budget, "schedule")
    suffix = "-finetune" if finetune else ""
    if isinstance(budget, int):
        return _shortened(SCHEDULES["quick" + suffix], budget)
    if budget.startswith("paper:"):
        return _shortened(SCHEDULES["paper" + suffix], int(budget.removeprefix("paper:")))
    return SCHEDULES[budget + suffix]


def _shortened(base: Schedule, iterations: int) -> Schedule:
    f = iterations / base.iterations
    return replace(
        base,
        iterations=iterations,
        milestones=tuple(max(1, round(m * f)) for m in base.milestones),
        step=max(1, round(base.step * f)) if base.step else 0,
    )
