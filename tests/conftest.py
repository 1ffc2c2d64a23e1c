from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch

# --workers auto would start one worker process per core in every search with an --out directory (and in
# every CLI subprocess, which inherits the environment); tests ask for several workers explicitly.
os.environ["AUTOARCH_WORKERS"] = "1"
# One thread per test process: the CI machine has 2 cores, and results must not depend on thread timing.
torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
logging.getLogger("torch_pruning").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


BLOCKER = """
import sys

class _Unimportable:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (made unimportable by the test)")
        return None

sys.meta_path.insert(0, _Unimportable())
"""


@pytest.fixture
def env_without(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """``env_without("torch", ...)``: the environment of a child process in which those top-level packages cannot
    be imported (a ``sitecustomize`` on its ``PYTHONPATH`` refuses them), everything else as here."""

    def env(*packages: str) -> dict[str, str]:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(packages)))
        return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}

    return env
