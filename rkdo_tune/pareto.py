"""Non-domination over several objectives, each with its own direction (pure Python).

Point a dominates point b when a is at least as good as b on every objective and
strictly better on one, "better" read per objective by its mode (max or min).
Equal points do not dominate each other, so ties stay on the front together. A
point with a non-finite value takes no part: it dominates nothing, nothing
dominates it, and it is not on the front.

    dominators([(0.9, 0.5), (0.8, 0.6), (0.8, 0.4)], ("max", "max"))  # [(), (), (0,)]
    pareto_front(points, modes)                                       # [True, True, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MODES = ("max", "min")


def _oriented(point: Sequence[float], modes: Sequence[str]) -> tuple[float, ...]:
    """The point with every objective turned so that larger is better."""
    return tuple(v if mode == "max" else -v for v, mode in zip(point, modes, strict=True))


def dominates(a: Sequence[float], b: Sequence[float], modes: Sequence[str]) -> bool:
    """Whether `a` is at least as good as `b` on every objective and better on one."""
    x, y = _oriented(a, modes), _oriented(b, modes)
    return all(p >= q for p, q in zip(x, y, strict=True)) and x != y


def _check(points: Sequence[Sequence[float]], modes: Sequence[str]) -> None:
    if not modes or any(mode not in MODES for mode in modes):
        raise ValueError(f"modes must be a non-empty sequence of {MODES}, got {list(modes)}")
    if any(len(p) != len(modes) for p in points):
        raise ValueError(f"every point needs {len(modes)} values, one per mode")


def dominators(points: Sequence[Sequence[float]], modes: Sequence[str]) -> list[tuple[int, ...]]:
    """For each point, the indexes of the points that dominate it (empty: not dominated)."""
    _check(points, modes)
    finite = [all(math.isfinite(v) for v in p) for p in points]
    return [
        tuple(
            j
            for j, other in enumerate(points)
            if finite[i] and finite[j] and j != i and dominates(other, point, modes)
        )
        for i, point in enumerate(points)
    ]


def pareto_front(points: Sequence[Sequence[float]], modes: Sequence[str]) -> list[bool]:
    """For each point, whether it is on the front: finite, and dominated by no other point."""
    found = dominators(points, modes)
    return [
        all(math.isfinite(v) for v in point) and not by
        for point, by in zip(points, found, strict=True)
    ]
