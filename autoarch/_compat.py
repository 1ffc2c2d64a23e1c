"""Every private name of a dependency that autoarch uses, in one place (issue #12).

optuna, torch-pruning, torch and onnxruntime are used through their public APIs everywhere else. What only a
private name gives us (a study's storage and ids, the search-space transform of optuna's own samplers, torch-
pruning's channel rounding, ...) is reached through the functions below, each importing its dependency lazily
(``autoarch predict`` imports this module with only onnxruntime and numpy installed). ``pyproject.toml`` bounds
these dependencies from above (optuna and torch-pruning below their next minor release, torch and onnxruntime
below their next major; :data:`TESTED` is what ``constraints.txt`` pins), and ``tests/test_compat.py`` exercises
every name here, so that an upstream release that renames or removes one fails that test, loudly, instead of a
search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["TESTED", "search_space_transform", "distribution_contains", "storage_of", "study_id", "trial_id",
           "set_trial_system_attr", "fail_trial", "heartbeat_enabled",
           "overrides_round_to", "batch_norm_base", "rnn_dynamic_steps", "onnxruntime_errors",
           "nni_missing_label"]

TESTED = {"optuna": "5.0.0", "torch-pruning": "1.6.1", "torch": "2.13.0", "onnxruntime": "1.32.0"}
"""The versions this module was checked against (the pins of ``constraints.txt``)."""


# optuna ---------------------------------------------------------------------------------------------------------

def search_space_transform(search_space: dict[str, Any], **kwargs: Any) -> Any:
    """``optuna._transform._SearchSpaceTransform``: the map between distributions and a continuous box that
    optuna's own samplers use (``transform``, ``untransform``, ``bounds``)."""
    from optuna._transform import _SearchSpaceTransform

    return _SearchSpaceTransform(search_space, **kwargs)


def distribution_contains(dist: Any, internal: float) -> bool:
    """``BaseDistribution._contains``: whether an internal representation lies in a numerical distribution."""
    return bool(dist._contains(internal))


def storage_of(study: Any) -> Any:
    """``Study._storage``: the storage object behind a study (optuna exposes no public accessor)."""
    return study._storage


def study_id(study: Any) -> int:
    """``Study._study_id``."""
    return int(study._study_id)


def trial_id(trial: Any) -> int:
    """``Trial._trial_id`` / ``FrozenTrial._trial_id``: the storage's id of a trial (not its ``number``)."""
    return int(trial._trial_id)


def set_trial_system_attr(study: Any, trial: Any, key: str, value: Any) -> None:
    """A system attribute of a running trial, written by a sampler (optuna's own samplers do the same)."""
    storage_of(study).set_trial_system_attr(trial_id(trial), key, value)


def fail_trial(study: Any, trial: Any) -> None:
    """Mark a RUNNING trial FAIL in the storage (an interrupted run's leftover)."""
    from optuna.trial import TrialState

    storage_of(study).set_trial_state_values(trial_id(trial), state=TrialState.FAIL)


def heartbeat_enabled(study: Any) -> bool:
    """``optuna.storages._heartbeat.is_heartbeat_enabled`` of a study's storage."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return bool(is_heartbeat_enabled(storage_of(study)))


# torch-pruning --------------------------------------------------------------------------------------------------

ROUND_TO_METHOD = "_round_to"
"""torch-pruning's ``BasePruner._round_to(n_pruned, current_channels, round_to) -> n_pruned``, the hook that
rounds the channels a step removes; autoarch overrides it so that rounding never empties a layer."""


def overrides_round_to(cls: type) -> type:
    """Class decorator for a subclass of ``torch_pruning.pruner.BasePruner``: its ``round_channels`` method becomes
    torch-pruning's private ``_round_to`` hook. Raises ImportError when the installed torch-pruning has no such
    hook (the override would silently do nothing)."""
    import torch_pruning as tp

    base = getattr(tp.pruner.BasePruner, ROUND_TO_METHOD, None)
    if not callable(base):
        raise ImportError(f"torch-pruning {getattr(tp, '__version__', '?')} has no BasePruner.{ROUND_TO_METHOD}; "
                          f"autoarch was tested with {TESTED['torch-pruning']}")
    setattr(cls, ROUND_TO_METHOD, cls.round_channels)  # type: ignore[attr-defined]
    return cls


# torch ----------------------------------------------------------------------------------------------------------

def batch_norm_base() -> type:
    """``torch.nn.modules.batchnorm._BatchNorm``, the base class of BatchNorm1d/2d/3d (and SyncBatchNorm)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    return _BatchNorm


def rnn_dynamic_steps() -> Any:
    """A context in which ``torch.onnx.export(dynamo=True)`` keeps an LSTM's or GRU's time axis dynamic:
    ``torch.export._patches.register_lstm_while_loop_decomposition`` and its GRU twin, held around the *whole*
    export. torch 2.13's exporter holds them around the capture step only, and its decomposition step then
    specialises the time axis to the example's length (fixed upstream in pytorch/pytorch#193192, after 2.13).
    Plain ``nn.RNN`` has no such decomposition: it is unrolled, at a fixed length, either way."""
    import contextlib

    from torch.export._patches import register_gru_while_loop_decomposition, register_lstm_while_loop_decomposition

    stack = contextlib.ExitStack()
    stack.enter_context(register_lstm_while_loop_decomposition())
    stack.enter_context(register_gru_while_loop_decomposition())
    return stack


# onnxruntime ----------------------------------------------------------------------------------------------------

def onnxruntime_errors() -> tuple[type[BaseException], ...]:
    """The errors ``InferenceSession.run`` raises for input the graph rejects (``InvalidArgument``, ``Fail``),
    which onnxruntime exposes only from its private ``capi`` module."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument

    return (InvalidArgument, Fail)


# nni (the optional extra; only autoarch.integrations.nni calls this) -------------------------------------------

def nni_missing_label(exc: BaseException, labels: Any) -> str | None:
    """The label an NNI 3.0 ``SampleMissingError`` is about, which NNI gives only inside its message ("Label L
    is missing from sample. Existing keys are: [...]"): the longest of ``labels`` named that way, or None."""
    text = str(exc)
    named = [label for label in labels if f"Label {label} is missing" in text]
    return max(named, key=len) if named else None


def names() -> dict[str, Callable[..., Any]]:
    """Every accessor of this module by name (the compatibility test walks them)."""
    return {name: globals()[name] for name in __all__ if callable(globals()[name])}
