"""What a search optimises, as values resolved once from their names (no dependencies: the CLI and the reports
read them without scikit-learn or torch).

A metric objective is named as in scikit-learn's scorers: a metric (``accuracy``, ``f1_macro``, ``r2``) or an error
with ``neg_`` (``neg_rmse`` maximises ``-rmse``). Metric dictionaries (:func:`autoarch.metrics.compute_metrics`,
the ``cv_<metric>_mean`` trial attributes, the stage rows) hold every metric under its plain name
(:attr:`Objective.metric`: ``rmse``, positive), and the study holds :meth:`Objective.value`. A search has a tuple
of objectives (:func:`resolve_objectives`); the study gets one direction per objective.

Example:
    >>> error = Objective("neg_rmse")
    >>> error.metric, error.lower_is_better, error.value({"rmse": 0.5})
    ('rmse', True, -0.5)
    >>> round(error.drop(2.0, 2.1), 6)  # percent of the baseline error
    5.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Objective", "resolve_objectives", "directions"]

ERROR_PREFIX = "neg_"


@dataclass(frozen=True)
class Objective:
    """One objective of a search.

    Attributes:
        name: as the user gives it (``--metric``): ``accuracy``, ``neg_rmse``, ...
    """

    name: str

    @property
    def metric(self) -> str:
        """The key of a metrics dictionary: the name without ``neg_`` (``rmse`` for ``neg_rmse``)."""
        return self.name[len(ERROR_PREFIX):] if self.lower_is_better else self.name

    @property
    def lower_is_better(self) -> bool:
        """An error (``neg_*``): the metric itself is better lower; its value in the study is negated."""
        return self.name.startswith(ERROR_PREFIX)

    @property
    def direction(self) -> str:
        """The optuna direction of :meth:`value` (errors are negated, so a metric objective is maximised)."""
        return "maximize"

    @property
    def drop_unit(self) -> str:
        """The unit of :meth:`drop`: points of a 0..1 score, or percent of an error."""
        return "% of the error" if self.lower_is_better else "points"

    def value(self, scores: Mapping[str, float]) -> float:
        """The value the study optimises: ``scores[metric]``, negated for an error."""
        score = scores[self.metric]
        return -score if self.lower_is_better else score

    def drop(self, baseline: float, value: float) -> float:
        """The loss from ``baseline`` to ``value`` (both plain metric values): in points for a 0..1 score
        (x100), in percent of the baseline error for an error metric."""
        if self.lower_is_better:
            return 100.0 * (value - baseline) / max(abs(baseline), 1e-12)
        return 100.0 * (baseline - value)

    def to_dict(self) -> dict[str, str]:
        """How a report records it."""
        return {"name": self.name, "metric": self.metric, "direction": self.direction}


def resolve_objectives(names: str | Sequence[str]) -> tuple[Objective, ...]:
    """The objectives of a search from a name, a comma-separated list or a sequence of names (the first is the
    primary one: the winner, the compression budget and the reports' single-objective columns follow it)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return tuple(Objective(n) for n in names)


def directions(objectives: Sequence[Objective]) -> list[str]:
    """The optuna ``directions`` of a study of ``objectives``."""
    return [o.direction for o in objectives]
