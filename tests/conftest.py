from __future__ import annotations

import logging
import os
import warnings

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
