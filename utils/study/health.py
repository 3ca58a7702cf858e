"""Whether a baseline works: a cure's gain counts only against a baseline that beats fine-tuning (`sgd`, the floor of
the same dataset and protocol) beyond noise. A baseline is healthy when its mean final Class-IL is above the floor's
and Welch's p of the difference is below 0.05 (one test per baseline, uncorrected: a flag that errs toward
warning); the floor is the best `sgd` group of the same protocol among all the runs read (before --where) that
fine-tunes with no cure (no mask, no calibration, its own head): a masked `sgd` is a cure's row, not the floor."""
from typing import NamedTuple

from utils.study.statistics import welch

PROTOCOL = ("dataset", "n_epochs", "batch_size", "class_order", "nf", "stream", "blurry_disjoint", "blurry_mix",
            "transition_width", "passes")  # what makes two runs' streams comparable
FLOOR_MODEL = "sgd"
NO_CURE = {"mask": (None, "none"), "calibration": (None, "none"), "head": (None, "linear")}
HEALTHY_P = 0.05


class Health(NamedTuple):
    """A baseline against its floor: healthy (None: no floor among the runs, or too few seeds to test), the floor's
    group, the difference of means and Welch's p."""
    healthy: object
    floor: object = None
    difference: float = None
    p: float = None

    def text(self):
        if self.healthy is None and self.difference is None and self.floor is not None:
            return "the fine-tuning floor itself"
        if self.floor is None:
            return "no sgd runs of this protocol: health unchecked"
        mean, std = self.floor.mean_std("class_il_final_avg")
        floor = f"sgd {mean:.2f}" + ("" if std is None else f" ± {std:.2f}")
        if self.healthy is None:
            return f"too few seeds to test against {floor}"
        p = "n/a" if self.p is None else f"{self.p:.2g}"
        return f"{'above' if self.healthy else 'NOT above'} {floor} ({self.difference:+.2f}, p {p})"


def protocol_of(group):
    """The flags of PROTOCOL, a flag absent from lines written before it existed read at its default."""
    from utils.plumbing.identity import LATER_FLAG_DEFAULTS

    return tuple(LATER_FLAG_DEFAULTS.get(name) if group.flags.get(name) is None else group.flags.get(name)
                 for name in PROTOCOL)


def floor_of(group, groups):
    """The fine-tuning group of `group`'s protocol with the highest mean final Class-IL, or None."""
    floors = [g for g in groups if g.flags.get("model") == FLOOR_MODEL and protocol_of(g) == protocol_of(group)
              and all(g.flags.get(name) in plain for name, plain in NO_CURE.items())
              and g.values("class_il_final_avg") is not None]
    return max(floors, key=lambda g: g.mean_std("class_il_final_avg")[0], default=None)


def health(group, groups):
    """Health of a baseline `group` against the floor found among `groups` (every group read)."""
    if group.flags.get("model") == FLOOR_MODEL and all(group.flags.get(n) in p for n, p in NO_CURE.items()):
        return Health(None, group)
    floor = floor_of(group, groups)
    if floor is None:
        return Health(None)
    difference, p = welch(group.values("class_il_final_avg"), floor.values("class_il_final_avg"))
    if p is None:
        return Health(None, floor, difference)
    return Health(difference > 0 and p < HEALTHY_P, floor, difference, p)
