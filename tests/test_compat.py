"""Every private name of a dependency that autoarch reaches (autoarch._compat) still exists and does what the
callers need; the pins CI installs are the versions the module names, and pyproject admits them."""

from __future__ import annotations

import inspect
import re
from importlib.metadata import version
from pathlib import Path

import optuna
import pytest
import torch
import torch_pruning as tp
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from autoarch import _compat

ROOT = Path(__file__).resolve().parents[1]


def test_the_tested_versions_are_the_ci_pins_and_pyproject_admits_them() -> None:
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().split()
                if "==" in line and not line.startswith("#"))
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+; autoarch supports 3.10)
    deps = re.findall(r'^\s+"([^"]+)",', text.split("dependencies = [", 1)[1].split("]", 1)[0], re.M)
    for name, tested in _compat.TESTED.items():
        assert pins[name].split("+")[0] == tested, name
        spec = next(d for d in deps if re.match(rf"{re.escape(name)}[<>=~!]", d))
        upper = re.search(r"<([\d.]+)", spec)
        assert upper is not None, f"{spec}: a private name of {name} is used, so it needs an upper bound"
        as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
        assert as_tuple(tested) < as_tuple(upper.group(1)), spec
    for name in _compat.TESTED:
        assert version(name).split("+")[0] == _compat.TESTED[name], f"installed {name} is not the tested one"


def test_search_space_transform_round_trips_a_numerical_distribution() -> None:
    dist = FloatDistribution(1e-4, 1e-1, log=True)
    trans = _compat.search_space_transform({"lr": dist}, transform_0_1=True)
    x = trans.transform({"lr": 1e-2})
    assert trans.bounds.shape == (1, 2) and 0.0 <= float(x[0]) <= 1.0
    assert trans.untransform(x)["lr"] == pytest.approx(1e-2)
    assert _compat.distribution_contains(IntDistribution(1, 3), 2.0)
    assert not _compat.distribution_contains(IntDistribution(1, 3), 7.0)


def test_study_storage_ids_system_attrs_and_failing_a_trial() -> None:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial = study.ask()
    assert isinstance(_compat.storage_of(study), optuna.storages.BaseStorage)
    assert _compat.study_id(study) == study._study_id and _compat.trial_id(trial) >= 0
    _compat.set_trial_system_attr(study, trial, "autoarch:test", 3)
    assert study.trials[0].system_attrs["autoarch:test"] == 3
    _compat.fail_trial(study, trial)
    assert study.trials[0].state == TrialState.FAIL
    assert _compat.heartbeat_enabled(study) is False


def test_heartbeat_is_seen_on_an_rdb_storage(tmp_path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=60)
    assert _compat.heartbeat_enabled(optuna.create_study(storage=storage)) is True


def test_torch_prunings_round_to_hook_exists_and_is_called() -> None:
    hook = getattr(tp.pruner.BasePruner, _compat.ROUND_TO_METHOD)
    assert list(inspect.signature(hook).parameters) == ["self", "n_pruned", "current_channels", "round_to"]
    calls: list[tuple[int, int, int]] = []

    @_compat.overrides_round_to
    class Spy(tp.pruner.BasePruner):
        def round_channels(self, n_pruned: int, current_channels: int, round_to: int) -> int:
            calls.append((n_pruned, current_channels, round_to))
            return n_pruned

    model = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    pruner = Spy(model, torch.randn(2, 4), importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=0.25,
                 ignored_layers=[model[2]], round_to=8)
    pruner.step()
    assert calls and model[0].out_features == 24


def test_batch_norm_base_and_onnxruntime_errors() -> None:
    assert all(isinstance(m, _compat.batch_norm_base())
               for m in (torch.nn.BatchNorm1d(3), torch.nn.BatchNorm2d(3)))
    assert not isinstance(torch.nn.LayerNorm(3), _compat.batch_norm_base())
    errors = _compat.onnxruntime_errors()
    assert len(errors) == 2 and all(issubclass(e, Exception) for e in errors)


def test_rnn_dynamic_steps_keeps_an_lstm_s_time_axis_dynamic_in_onnx(tmp_path) -> None:
    import onnxruntime as ort

    lstm = torch.nn.LSTM(3, 4, batch_first=True)

    class Last(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return lstm(x)[0][:, -1]

    dims = ({0: torch.export.Dim("batch"), 1: torch.export.Dim("steps")},)
    with _compat.rnn_dynamic_steps():
        program = torch.onnx.export(Last().eval(), (torch.randn(2, 5, 3),), dynamo=True, dynamic_shapes=dims)
    sess = ort.InferenceSession(program.model_proto.SerializeToString())
    x = torch.randn(2, 9, 3)  # another length than the example's
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.as_tensor(got), Last()(x), atol=1e-5, rtol=1e-5)


def test_every_accessor_is_exercised_here() -> None:
    source = Path(__file__).read_text()
    untested = [name for name in _compat.names() if name != "names" and f"_compat.{name}" not in source]
    assert not untested, untested


PRIVATE = re.compile(r"\._storage\b|\._study_id\b|\._trial_id\b|optuna\._|storages\._|_SearchSpaceTransform|"
                     r"\._contains\(|_raise_error_if_multi_objective|def _round_to\b|batchnorm\._BatchNorm|\.capi\b|"
                     r"export\._patches")


def test_no_private_name_of_a_dependency_outside_the_compat_module() -> None:
    hits = [f"{path.relative_to(ROOT)}:{i}" for folder in ("autoarch", "search_spaces", "compress")
            for path in sorted((ROOT / folder).rglob("*.py")) if path.name != "_compat.py"
            for i, line in enumerate(path.read_text().splitlines(), 1) if PRIVATE.search(line)]
    assert not hits, hits


def test_the_nni_extra_pins_are_the_ci_pins_but_filelock() -> None:
    """constraints-nni.txt (the nni extra's venv) is constraints.txt with filelock below NNI 3.0's <3.12 bound,
    plus NNI and what it brings; nothing else may drift apart."""
    def pins(name: str) -> dict[str, str]:
        lines = (ROOT / name).read_text().splitlines()
        return {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in
                (line.split("==") for line in lines if "==" in line and not line.startswith("#"))}

    core, extra = pins("constraints.txt"), pins("constraints-nni.txt")
    assert {k: v for k, v in core.items() if k != "filelock"} == \
           {k: v for k, v in extra.items() if k in core and k != "filelock"}
    assert tuple(int(x) for x in extra["filelock"].split(".")[:2]) < (3, 12) and extra["nni"] == "3.0"
    assert "pytorch-lightning" in extra


def test_nni_names_the_missing_label_only_in_its_message() -> None:
    """The nni extra (skipped without it: the core never imports NNI)."""
    nni = pytest.importorskip("nni")
    choice = nni.choice("xdepth", [1, 2])
    with pytest.raises(nni.mutable.SampleMissingError) as info:
        choice.freeze({})
    assert _compat.nni_missing_label(info.value, ["xdept", "xdepth", "y"]) == "xdepth"
    assert _compat.nni_missing_label(ValueError("other"), ["xdepth"]) is None
