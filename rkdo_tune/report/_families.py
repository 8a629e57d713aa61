"""The report's Holm families, each defined once: its name, what one test of it is, its size.

Every p-value the report prints belongs to exactly one family; the family's
p-values are adjusted together (Holm, family-wise error at `ALPHA_LEVEL`), and
the family's size (its tests with a p-value) is printed beside its results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rkdo_tune import metrics as m
from rkdo_tune.inference import family_size
from rkdo_tune.verdict import DEFAULTS_FAMILY as DEFAULTS
from rkdo_tune.verdict import FAMILY as VERDICT

TIES = "ties with the best"
CONFIRMED = "other confirmed configurations"
MATCHED = "matched settings"
NAMES = (VERDICT, DEFAULTS, CONFIRMED, TIES, MATCHED)  # the order the report lists them in

_VERDICT_MEASURES = ", ".join(m.LABEL_OF[name] for name in m.VERDICT_METRICS)
MEMBERS = {
    VERDICT: "the best RKDO configuration against its I-Con control, one paired t-test per "
    f"secondary metric: the verdict's measures ({_VERDICT_MEASURES}) "
    "but the primary endpoint when the sweep names one, which is judged alone",
    DEFAULTS: "RKDO's default against I-Con's (a tuned baseline's sweep), one paired t-test "
    "per secondary metric of the verdict's measures",
    CONFIRMED: "each other confirmed RKDO configuration against the control's confirmation "
    "run, one paired t-test on the monitored metric over the fresh seeds",
    TIES: "each other search configuration against the leaderboard's best, one paired t-test "
    "on the monitored metric over the search seeds both share",
    MATCHED: "every (RKDO trial, I-Con trial, metric) test of the matched-settings tables",
}


@dataclass(frozen=True)
class HolmFamily:
    name: str
    members: str  # what one test of the family is
    size: int  # how many tests have a p-value

    def label(self) -> str:
        """ "Holm family 'verdict', 6 tests" for the line beside the family's results."""
        return f"Holm family '{self.name}', {self.size} test{'' if self.size == 1 else 's'}"


def family(name: str, pvalues: Sequence[float]) -> HolmFamily:
    """The family `name` holding these raw p-values (NaN ones are no test)."""
    return HolmFamily(name, MEMBERS[name], family_size(pvalues))
