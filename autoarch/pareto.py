"""Pareto fronts of a multi-objective search: non-dominated sorting, crowding distance, the knee, and the
``--pick`` rules that choose the point a search ships (numpy only).

Values are compared as *gains*: each objective's value signed so that larger is better (``+v`` to maximise,
``-v`` to minimise). optuna keeps these functions private (``optuna.study._multi_objective``), so the few lines
are here rather than through the compatibility module.

Example:
    >>> import numpy as np
    >>> gains = np.array([[0.9, -2.0], [0.8, -1.0], [0.7, -3.0]])  # (accuracy, -latency)
    >>> nondominated_rank(gains).tolist()
    [0, 0, 1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autoarch.objectives import Objective

__all__ = ["gains", "nondominated_rank", "crowding_distance", "knee_index", "PickRule", "parse_pick",
           "front_trials", "pick_point", "among_best", "pareto_stop", "STOPPED_AT"]


def gains(values: Sequence[Sequence[float]], directions: Sequence[Any]) -> np.ndarray:
    """``values`` (one row per point) signed so that every column is better larger; ``directions`` are
    ``"maximize"`` / ``"minimize"`` or optuna's ``StudyDirection``."""
    signs = np.array([1.0 if getattr(d, "name", d).lower() == "maximize" else -1.0 for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(signs)) * signs


def nondominated_rank(g: np.ndarray) -> np.ndarray:
    """The non-domination rank of each row of the gains ``g``: 0 for the front, 1 for the front of the rest, ..."""
    n = len(g)
    ge = (g[:, None, :] >= g[None, :, :]).all(axis=2)
    gt = (g[:, None, :] > g[None, :, :]).any(axis=2)
    dominates = ge & gt  # dominates[i, j]: i dominates j
    count = dominates.sum(axis=0)  # how many points dominate each one
    rank = np.full(n, -1)
    current, level = np.flatnonzero(count == 0), 0
    while current.size:
        rank[current] = level
        count = count - dominates[current].sum(axis=0)
        count[rank >= 0] = -1
        current, level = np.flatnonzero(count == 0), level + 1
    return rank


def crowding_distance(g: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row of ``g`` (one front): the extremes of each objective are infinite,
    the others the sum over objectives of the gap between their neighbours, scaled by the objective's range."""
    n, m = g.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(g[:, k], kind="stable")
        span = g[order[-1], k] - g[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (g[order[2:], k] - g[order[:-2], k]) / span
    return distance


STOPPED_AT = "pareto_stopped_at"
"""User attribute of a multi-objective trial that ``--early-stop`` stopped: ``{"step": s, "values": [...]}``, its
objective values (as the study's) after ``s`` epochs. optuna keeps no values for a pruned multi-objective trial;
the evolution controller ranks such a trial by them, below every complete one (multi-fidelity)."""
PARETO_STARTUP = 5
"""``--early-stop median`` with several objectives stops no candidate before this many trials completed (as
optuna's ``MedianPruner(n_startup_trials=5)`` of a single objective)."""
REDUCTION = 3
"""``--early-stop halving`` with several objectives: a candidate goes on past a rung (epoch 1, 3, 9, ...) when it
is among the best ``1 / REDUCTION`` of the candidates that reached the rung (as ``SuccessiveHalvingPruner``)."""


def among_best(own: Sequence[float], others: Sequence[Sequence[float]], keep: int) -> bool:
    """Whether the point ``own`` (a row of gains) is among the ``keep`` best of itself and ``others`` in
    NSGA-II's order: the lower non-domination rank first, then the larger crowding distance in its front. A point
    tied with the ``keep``-th (both ends of a front have an infinite distance) is among them."""
    own = np.asarray(own, dtype=float).reshape(1, -1)
    g = np.vstack([own, np.asarray(others, dtype=float).reshape(len(others), own.shape[1])])
    rank = nondominated_rank(g)
    crowding = np.zeros(len(g))
    members = np.flatnonzero(rank == rank[0])
    crowding[members] = crowding_distance(g[members])
    ahead = (rank < rank[0]).sum() + ((rank == rank[0]) & (crowding > crowding[0])).sum()
    return bool(ahead < keep)


def pareto_stop(rule: str, step: int, own: Sequence[float], started: Sequence[Sequence[float]],
                completed: Sequence[Sequence[float]]) -> str | None:
    """Why a candidate of a multi-objective search stops after ``step`` epochs under ``--early-stop rule``, or
    None to go on. optuna's pruners follow one objective; these rules are theirs with Pareto ranks
    (:func:`among_best`) in place of values, the cost objectives (measured before training) beside the metrics
    at ``step`` (``own`` and each other trial's, as gains):

    * ``halving`` (and ``hyperband``, one bracket): at the rungs 1, 3, 9, ... epochs, go on when among the best
      ``1 / REDUCTION`` (at least one) of the candidates that reached the rung, ``started`` (multi-objective
      successive halving: Schmucker et al., 2021);
    * ``median``: at every step, once :data:`PARETO_STARTUP` trials completed, go on when in the better half of
      the ``completed`` trials' values at that step and itself;
    * ``none``: never stop.
    """
    if rule in ("halving", "hyperband"):
        rung = 1
        while rung < step:
            rung *= REDUCTION
        keep = max(1, (len(started) + 1) // REDUCTION)
        if rung != step or among_best(own, started, keep):
            return None
        return f"not among the best {keep} of {len(started) + 1} candidates at epoch {step} by Pareto rank"
    if rule == "median":
        keep = math.ceil((len(completed) + 1) / 2)
        if len(completed) < PARETO_STARTUP or among_best(own, completed, keep):
            return None
        return f"not in the better half of {len(completed) + 1} candidates at epoch {step} by Pareto rank"
    return None


def knee_index(g: np.ndarray) -> int:
    """The knee of a front (rows of gains): the point nearest the ideal point once every objective is scaled to
    [0, 1] over the front (ties: the first)."""
    low, high = g.min(axis=0), g.max(axis=0)
    scaled = (g - low) / np.where(high > low, high - low, 1.0)
    return int(np.argmin(np.linalg.norm(1.0 - scaled, axis=1)))


@dataclass(frozen=True)
class PickRule:
    """How a multi-objective search chooses the point it ships (``--pick``).

    Attributes:
        kind: ``knee`` (:func:`knee_index` of the front), ``best`` (the best first objective) or ``best-under``
            (the best first objective among the points within every bound of ``bounds``).
        bounds: ``(objective name, limit)`` pairs of ``best-under``, each a limit on the plain metric or cost
            (:meth:`~autoarch.objectives.Objective.within`: at most for a cost or an error, at least for a
            score).
    """

    kind: str
    bounds: tuple[tuple[str, float], ...] = ()

    def __str__(self) -> str:
        if self.kind != "best-under":
            return self.kind
        return "best-under:" + ",".join(f"{name}={bound:g}" for name, bound in self.bounds)


def parse_pick(text: str) -> PickRule:
    """``knee``, ``best`` or ``best-under:NAME=VALUE[,NAME=VALUE...]``; ValueError names what is wrong."""
    kind, _, rest = text.strip().partition(":")
    if kind in ("knee", "best") and not rest:
        return PickRule(kind)
    if kind != "best-under" or not rest:
        raise ValueError(f"--pick must be knee, best or best-under:NAME=VALUE (e.g. best-under:latency=0.5), "
                         f"but got {text!r}")
    bounds = []
    for part in rest.split(","):
        name, eq, value = part.partition("=")
        try:
            bound = float(value)
        except ValueError:
            bound = None
        if not eq or not name.strip() or bound is None:
            raise ValueError(f"--pick best-under takes NAME=VALUE pairs (e.g. best-under:latency=0.5,"
                             f"int8_size=40), but got {part!r}")
        bounds.append((name.strip(), bound))
    return PickRule("best-under", tuple(bounds))


def front_trials(trials: Sequence[Any], objectives: Sequence[Objective]) -> list[Any]:
    """The non-dominated trials among the complete ``trials`` (optuna FrozenTrials) with finite values, best first
    objective first (ties: the lower trial number)."""
    done = [t for t in trials if t.state.name == "COMPLETE" and t.values is not None
            and len(t.values) == len(objectives) and all(np.isfinite(t.values))]
    if not done:
        return []
    g = gains([t.values for t in done], [o.direction for o in objectives])
    front = [t for t, r in zip(done, nondominated_rank(g), strict=True) if r == 0]
    sign = 1.0 if objectives[0].direction == "maximize" else -1.0
    return sorted(front, key=lambda t: (-sign * t.values[0], t.number))


def pick_point(front: Sequence[Any], objectives: Sequence[Objective], rule: PickRule) -> tuple[Any, str]:
    """The point of ``front`` (:func:`front_trials`) that ``rule`` picks, and why, in words for the log and the
    report. ``best-under`` with no point within its bounds picks the point nearest to them (the smallest largest
    violation, each relative to its bound) and says so."""
    names = [o.name for o in objectives]
    if rule.kind == "best":
        return front[0], f"the best {names[0]} of the {len(front)}-point front"
    if rule.kind == "knee":
        g = gains([t.values for t in front], [o.direction for o in objectives])
        return front[knee_index(g)], (f"the knee of the {len(front)}-point front (nearest the ideal point, every "
                                      "objective scaled to [0, 1] over the front)")
    index = {name: i for i, name in enumerate(names)}

    def violation(t: Any) -> float:
        worst = 0.0
        for name, bound in rule.bounds:
            o = objectives[index[name]]
            plain = o.plain(t.values[index[name]])
            over = plain - bound if o.lower_is_better else bound - plain
            worst = max(worst, over / max(abs(bound), 1e-12))
        return worst

    inside = [t for t in front if all(objectives[index[name]].within(t.values[index[name]], bound)
                                      for name, bound in rule.bounds)]
    if inside:  # front is sorted best first objective first
        return inside[0], f"the best {names[0]} of the {len(inside)} front point(s) within {rule}"
    nearest = min(front, key=lambda t: (violation(t), t.number))
    seen = []
    for name, _ in rule.bounds:
        o, values = objectives[index[name]], [objectives[index[name]].plain(t.values[index[name]]) for t in front]
        seen.append(f"smallest {name} on the front: {min(values):.4g}" if o.lower_is_better
                    else f"largest {name} on the front: {max(values):.4g}")
    return nearest, (f"no front point is within {rule} ({'; '.join(seen)}); trial {nearest.number}, the nearest, "
                     "instead")
