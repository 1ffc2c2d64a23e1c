"""An NNI model space as an autoarch search space (issue #16).

A class written for NNI 3.0's NAS API (a subclass of ``nni.nas.nn.pytorch.ModelSpace`` with ``LayerChoice``,
``InputChoice``, ``Repeat``, ``nni.choice`` / ``nni.uniform`` / ... inside ``Mutable*`` layers) is searched by
autoarch like any other space: ``autoarch search digits --space mymodule:MySpace`` or
``autoarch.search(data, space=NNISpace(MySpace))``. Every controller, k-fold CV, resume, workers, pruning,
int8 and ONNX export then apply to the network NNI freezes.

How NNI's mutables become optuna parameters (the architecture dict holds exactly the optuna parameters, so it is
plain JSON and the grid controller can enumerate it):

=====================================================  ==========================================================
NNI mutable                                             optuna parameter (name = the mutable's label)
=====================================================  ==========================================================
``Categorical`` (``nni.choice``, ``LayerChoice``,        ``suggest_categorical`` over its values when they are plain
``Repeat`` depth, ``nni.randint``)                      (None, bool, int, float, str), else over their indices
``CategoricalMultiple`` with ``n_chosen=k``             ``suggest_categorical`` over every k-subset, as the chosen
(``InputChoice``)                                       positions ``"0,2"`` (at most :data:`MAX_SUBSETS` subsets)
``CategoricalMultiple`` without ``n_chosen``            one bool per value, ``label/0``, ``label/1``, ... (NNI's own
                                                        categorical format)
``Numerical`` with finite ``low`` / ``high``            ``suggest_float`` (``log`` when log-distributed); a
(``nni.uniform``, ``loguniform``, ``quniform``, ...)    ``quantize`` is applied as NNI does: clip(round(v / q) * q)
=====================================================  ==========================================================

Conditional choices follow NNI's own freezing: :meth:`NNISpace.suggest` builds the network under NNI's
``model_context`` and asks optuna for a label only when building it reads that label, so the blocks a ``Repeat``
depth leaves out are never suggested. (NNI builds every candidate of a ``LayerChoice`` before it picks one, so
a choice inside a candidate that is not picked is suggested, and has no effect.) What is not mapped, with one line
naming it: a ``Numerical`` without bounds (``nni.normal``), NNI constraints (``ExpressionConstraint``), any other
mutable type. The training hyperparameters are autoarch's own (the trainer's); a mutable a space registers but
its network never reads (an evaluator's learning rate, say) is not searched.

The class must build with no arguments (NNI's dry run); where its ``__init__`` takes ``input_shape`` and / or
``n_outputs``, the data's are passed when a network is built. The labels and choices must not depend on them. The
network's output layer is its ``.head`` attribute, or else the last ``nn.Linear`` with ``n_outputs`` outputs
(compression never prunes it).

This module imports NNI; the core imports it only when it is given an NNI model space
(:func:`autoarch.search_spaces.get_space`). Install: ``pip install -c constraints-nni.txt "autoarch[nni]"``.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import optuna
import torch
from torch import nn

from autoarch import _compat
from autoarch.data import INPUT_KINDS
from autoarch.exceptions import SpaceError
from autoarch.search_spaces._base import Architecture, SearchSpace

try:
    with warnings.catch_warnings():  # NNI 3.0 warns at import about torch classes newer than itself: harmless
        warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning)
        import nni  # noqa: F401  (the package; mutables and spaces below)
        from nni.mutable import Categorical, CategoricalMultiple, LabeledMutable, Numerical, SampleMissingError
        from nni.nas.nn.pytorch import ModelSpace
        from nni.nas.space import model_context
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise SpaceError(f"an NNI model space needs NNI ({exc}); install it with "
                     "pip install -c constraints-nni.txt \"autoarch[nni]\" (README: NNI model spaces).") from None

__all__ = ["NNISpace", "is_nni_space", "MAX_SUBSETS"]

MAX_SUBSETS = 256
"""The most k-subsets an ``InputChoice(n_chosen=k)`` may have (one optuna categorical over all of them)."""

_PLAIN = (type(None), bool, int, float, str)


def is_nni_space(obj: object) -> bool:
    """Whether ``obj`` is an NNI ``ModelSpace`` subclass."""
    return isinstance(obj, type) and issubclass(obj, ModelSpace)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """NNI logs an error for every missing label while :meth:`NNISpace.suggest` discovers them: silence it."""
    logger = logging.getLogger("nni")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Param:
    """One NNI mutable and the optuna parameter(s) it becomes."""

    def __init__(self, mutable: LabeledMutable) -> None:
        self.mutable = mutable
        self.label = str(mutable.label)  # NNI labels are a str subclass, which must not reach a saved file
        if isinstance(mutable, Categorical):
            self.kind = "choice"
            self.plain = all(type(v) in _PLAIN for v in mutable.values)
            self.choices = list(mutable.values) if self.plain else list(range(len(mutable.values)))
        elif isinstance(mutable, CategoricalMultiple):
            n, k = len(mutable.values), mutable.n_chosen
            if k is None:
                self.kind = "subset"
                self.choices = [True, False]
            else:
                self.kind = "k_subset"
                if math.comb(n, k) > MAX_SUBSETS:
                    raise SpaceError(f"NNI mutable {self.label!r}: choosing {k} of {n} values gives "
                                     f"{math.comb(n, k)} subsets, more than the {MAX_SUBSETS} autoarch maps to one "
                                     "choice; choose from fewer inputs.")
                self.choices = [",".join(map(str, c)) for c in itertools.combinations(range(n), k)]
        elif isinstance(mutable, Numerical):
            self.kind = "float"
            if not (math.isfinite(mutable.low) and math.isfinite(mutable.high)):
                raise SpaceError(f"NNI mutable {self.label!r} ({mutable!r}) has no finite low and high; autoarch "
                                 "maps bounded numerical mutables only (nni.uniform, loguniform, quniform, "
                                 "qloguniform), so give it bounds.")
            if mutable.mu is not None or mutable.sigma is not None:
                raise SpaceError(f"NNI mutable {self.label!r} is normally distributed ({mutable!r}); autoarch maps "
                                 "bounded uniform and log-uniform mutables only; use nni.uniform or nni.loguniform.")
            self.choices = []
        else:
            raise SpaceError(f"NNI mutable {self.label!r} is a {type(mutable).__name__}, which autoarch does not "
                             "map to a search parameter (it maps Categorical / nni.choice / LayerChoice / Repeat, "
                             "CategoricalMultiple / InputChoice and bounded Numerical).")

    def names(self) -> list[str]:
        if self.kind == "subset":
            return [f"{self.label}/{i}" for i in range(len(self.mutable.values))]
        return [self.label]

    def suggest(self, trial: optuna.Trial, arch: Architecture) -> None:
        """Ask ``trial`` for this mutable's parameter(s) and put them in ``arch``."""
        if self.kind == "float":
            m = self.mutable
            arch[self.label] = trial.suggest_float(self.label, float(m.low), float(m.high),
                                                   log=bool(m.log_distributed))
        else:
            for name in self.names():
                arch[name] = trial.suggest_categorical(name, self.choices)

    def value(self, arch: Mapping[str, Any]) -> Any:
        """The NNI sample value of this mutable in ``arch``."""
        missing = [n for n in self.names() if n not in arch]
        if missing:
            raise KeyError(missing[0])
        m = self.mutable
        if self.kind == "choice":
            raw = arch[self.label]
            return raw if self.plain else m.values[int(raw)]
        if self.kind == "k_subset":
            return [m.values[int(i)] for i in str(arch[self.label]).split(",")]
        if self.kind == "subset":
            return [v for v, name in zip(m.values, self.names(), strict=True) if arch[name]]
        value = float(arch[self.label])
        if m.quantize:
            value = min(max(round(value / m.quantize) * m.quantize, m.low), m.high)
        return value

    def grid(self) -> dict[str, list[Any]]:
        if self.kind != "float":
            return {name: list(self.choices) for name in self.names()}
        m = self.mutable
        low, high = float(m.low), float(m.high)
        mid = math.sqrt(low * high) if m.log_distributed else (low + high) / 2
        return {self.label: [low, mid, high]}


class NNINetwork(nn.Module):
    """The network NNI froze, with its output layer as ``.head`` (the module at ``head_name`` inside it)."""

    def __init__(self, body: nn.Module, head_name: str) -> None:
        super().__init__()
        self.body = body
        self.head_name = head_name

    @property
    def head(self) -> nn.Module:
        return self.body.get_submodule(self.head_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class NNISpace(SearchSpace):
    """An NNI ``ModelSpace`` class as a :class:`~autoarch.search_spaces.SearchSpace`.

    Args:
        model_space: the NNI ``ModelSpace`` subclass (not an instance: each network is the class built under a
            sample, as NNI freezes it).
        ref: how a run records the space (``module:Class``, which :func:`autoarch.search_spaces.get_space`
            imports again); by default the class's own import path.
        input_kinds: the input kinds the space takes (all by default: the space's own layers decide).
        **kwargs: further arguments for the class's ``__init__``.
    """

    name = "nni"

    def __init__(self, model_space: type, ref: str | None = None, input_kinds: Sequence[str] = INPUT_KINDS,
                 **kwargs: Any) -> None:
        if not is_nni_space(model_space):
            raise SpaceError(f"{model_space!r} is not an NNI ModelSpace subclass (nni.nas.nn.pytorch.ModelSpace).")
        self.model_space = model_space
        self.import_path = ref or f"{model_space.__module__}:{model_space.__qualname__}"
        self.name = model_space.__name__
        self.input_kinds = tuple(input_kinds)
        self.kwargs = dict(kwargs)
        # NNI wraps a ModelSpace's __init__ (*args, **kwargs) and keeps the user's as _init_wrapped
        parameters = inspect.signature(getattr(model_space, "_init_wrapped", None) or model_space.__init__).parameters
        self._shape_args = [p for p in ("input_shape", "n_outputs") if p in parameters]
        try:
            with _quiet():
                dry_run = model_space(**self.kwargs)
        except Exception as exc:
            raise SpaceError(f"NNI space {self.import_path}: building it with no arguments failed "
                             f"({type(exc).__name__}: {exc}); give its __init__ parameters defaults.") from None
        self.params = {str(label): _Param(m) for label, m in dry_run.simplify().items()}

    # Every network is the class built under a sample; a label NNI misses is suggested, then the build retried.
    def _build(self, sample: dict[str, Any], kwargs: dict[str, Any]) -> nn.Module:
        with _quiet(), model_context(sample):
            return self.model_space(**kwargs)

    def _missing(self, exc: Exception) -> _Param:
        label = _compat.nni_missing_label(exc, self.params)
        if label is None:
            raise SpaceError(f"NNI space {self.import_path}: {exc}") from None
        return self.params[label]

    def suggest(self, trial: optuna.Trial) -> Architecture:
        arch: Architecture = {}
        sample: dict[str, Any] = {}
        for _ in range(len(self.params) + 1):
            try:
                self._build(sample, self.kwargs)
                return arch
            except SampleMissingError as exc:
                param = self._missing(exc)
                param.suggest(trial, arch)
                sample[param.label] = param.value(arch)
        raise SpaceError(f"NNI space {self.import_path}: the sample did not settle after {len(self.params)} labels.")

    def sample(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The NNI sample (label -> value) of ``arch``: the dict ``ModelSpace.freeze`` takes."""
        sample = {}
        for label, param in self.params.items():
            with contextlib.suppress(KeyError):
                sample[label] = param.value(arch)
        return sample

    def build(self, arch: Mapping[str, Any], input_shape: Sequence[int], n_outputs: int) -> nn.Module:
        given = {"input_shape": tuple(int(d) for d in input_shape), "n_outputs": int(n_outputs)}
        kwargs = {**self.kwargs, **{k: given[k] for k in self._shape_args}}
        try:
            body = self._build(self.sample(arch), kwargs)
        except SampleMissingError as exc:
            param = self._missing(exc)
            raise SpaceError(f"the {self.name} architecture misses NNI label {param.label!r}; got keys "
                             f"{sorted(arch)}.") from None
        return NNINetwork(body, _head_name(body, n_outputs, self.import_path))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (for worker processes) by import path: unpickling then imports NNI through this module,
        with NNI's import-time warnings about newer torch classes silenced."""
        return (_rebuild, (self.import_path, self.input_kinds, self.kwargs))

    def grid(self) -> dict[str, list[Any]]:
        grid: dict[str, list[Any]] = {}
        for param in self.params.values():
            grid.update(param.grid())
        return grid


def _rebuild(ref: str, input_kinds: Sequence[str], kwargs: dict[str, Any]) -> NNISpace:
    from autoarch.search_spaces import _import_space

    return NNISpace(_import_space(ref), ref=ref, input_kinds=input_kinds, **kwargs)


def _head_name(body: nn.Module, n_outputs: int, ref: str) -> str:
    head = getattr(body, "head", None)
    if isinstance(head, nn.Module):
        return next(name for name, module in body.named_modules() if module is head)
    linear = [name for name, module in body.named_modules()
              if isinstance(module, nn.Linear) and module.out_features == n_outputs]
    if not linear:
        raise SpaceError(f"NNI space {ref}: the network has no .head and no nn.Linear with {n_outputs} outputs; "
                         "name its output layer self.head so that compression leaves it alone.")
    return linear[-1]
