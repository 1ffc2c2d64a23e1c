from __future__ import annotations

import logging
import warnings

import optuna
import pytest
import torch

# One thread per test process: the CI machine has 2 cores, and results must not depend on thread timing.
torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
logging.getLogger("torch_pruning").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
