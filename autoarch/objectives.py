"""What a search optimises, as values resolved once from their names (no dependencies: the CLI and the reports
read them without scikit-learn or torch).

A metric objective is named as in scikit-learn's scorers: a metric (``accuracy``, ``f1_macro``, ``r2``) or an error
with ``neg_`` (``neg_rmse`` maximises ``-rmse``). Metric dictionaries (:func:`autoarch.metrics.compute_metrics`,
the ``cv_<metric>_mean`` trial attributes, the stage rows) hold every metric under its plain name
(:attr:`Objective.metric`: ``rmse``, positive), and the study holds :meth:`Objective.value`. A search has a tuple
of objectives (:func:`resolve_objectives`); the study gets one direction per objective.

A cost objective (:data:`COSTS`: ``latency``, ``int8_size``, ``params``, ``macs``) does not depend on the weights:
a search measures it before training (the untrained candidate exported and quantized to int8, calibrated on a few
training inputs, timed with onnxruntime) and minimises it; its value is read from the same dictionary, under its name.

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

__all__ = ["Objective", "COSTS", "resolve_objectives", "check_objectives", "directions"]

ERROR_PREFIX = "neg_"
COSTS = {
    "latency": "ms",  # the int8 model's onnxruntime latency per inference at --latency-batch, 1 thread
    "int8_size": "KB",  # the int8 ONNX file (1 KB = 1024 bytes)
    "params": "parameters",
    "macs": "multiply-accumulates per sample",
}
"""The cost objectives and their units."""


@dataclass(frozen=True)
class Objective:
    """One objective of a search.

    Attributes:
        name: as the user gives it (``--metric``): ``accuracy``, ``neg_rmse``, ...
    """

    name: str

    @property
    def is_cost(self) -> bool:
        """A cost of the model measured before training (:data:`COSTS`), minimised as it is."""
        return self.name in COSTS

    @property
    def metric(self) -> str:
        """The key of a metrics dictionary: the name without ``neg_`` (``rmse`` for ``neg_rmse``)."""
        return self.name[len(ERROR_PREFIX):] if self.lower_is_better and not self.is_cost else self.name

    @property
    def lower_is_better(self) -> bool:
        """An error (``neg_*``, its value in the study negated) or a cost: the metric itself is better lower."""
        return self.is_cost or self.name.startswith(ERROR_PREFIX)

    @property
    def direction(self) -> str:
        """The optuna direction of :meth:`value`: a metric objective is maximised (errors are negated), a cost
        minimised."""
        return "minimize" if self.is_cost else "maximize"

    @property
    def unit(self) -> str:
        """A cost's unit (:data:`COSTS`), empty for a metric."""
        return COSTS.get(self.name, "")

    @property
    def drop_unit(self) -> str:
        """The unit of :meth:`drop`: points of a 0..1 score, or percent of an error."""
        return "% of the error" if self.lower_is_better else "points"

    def value(self, scores: Mapping[str, float]) -> float:
        """The value the study optimises: ``scores[metric]``, negated for an error."""
        score = scores[self.metric]
        return -score if self.lower_is_better and not self.is_cost else score

    def plain(self, value: float) -> float:
        """The metric (or cost) itself from a study value: the inverse of :meth:`value` (``rmse`` from
        ``-rmse``)."""
        return -value if self.lower_is_better and not self.is_cost else value

    def within(self, value: float, bound: float) -> bool:
        """Whether the study value ``value`` meets ``bound`` (a limit on :meth:`plain`): at most ``bound`` for a
        cost or an error, at least ``bound`` for a score."""
        plain = self.plain(value)
        return plain <= bound if self.lower_is_better else plain >= bound

    def drop(self, baseline: float, value: float) -> float:
        """The loss from ``baseline`` to ``value`` (both plain metric values): in points for a 0..1 score
        (x100), in percent of the baseline error for an error metric."""
        if self.lower_is_better:
            return 100.0 * (value - baseline) / max(abs(baseline), 1e-12)
        return 100.0 * (baseline - value)

    def to_dict(self) -> dict[str, str]:
        """How a report records it."""
        return {"name": self.name, "metric": self.metric, "direction": self.direction,
                **({"unit": self.unit} if self.is_cost else {})}


def resolve_objectives(names: str | Sequence[str]) -> tuple[Objective, ...]:
    """The objectives of a search from a name, a comma-separated list or a sequence of names (the first is the
    primary one: the compression budget, the early stopping and the reports' single-objective columns follow
    it)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return tuple(Objective(n) for n in names)


def check_objectives(objectives: Sequence[Objective], metrics: Sequence[str]) -> None:
    """ValueError unless ``objectives`` is a non-empty list of distinct names whose first is one of ``metrics``
    (the task's) and the others are metrics or :data:`COSTS`."""
    names = [o.name for o in objectives]
    allowed = ", ".join([*metrics, *COSTS])
    if not names:
        raise ValueError(f"--objectives needs at least one name, from: {allowed}")
    for name in names:
        if name not in metrics and name not in COSTS:
            raise ValueError(f"unknown objective {name!r}; --objectives takes: {allowed}")
    if names[0] not in metrics:
        raise ValueError(f"the first of --objectives must be a metric of the model ({', '.join(metrics)}), not the "
                         f"cost {names[0]!r}: e.g. --objectives {metrics[0]},{names[0]}")
    if len(set(names)) < len(names):
        raise ValueError(f"--objectives names an objective twice: {','.join(names)}")


def directions(objectives: Sequence[Objective]) -> list[str]:
    """The optuna ``directions`` of a study of ``objectives``."""
    return [o.direction for o in objectives]
