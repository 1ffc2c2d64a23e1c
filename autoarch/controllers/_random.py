from __future__ import annotations

from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from autoarch._compat import search_space_transform


class TrialSeededRandomSampler(RandomSampler):
    """Random search whose draws for trial ``n`` depend only on ``(seed, n)``.

    optuna's :class:`~optuna.samplers.RandomSampler` draws from one stream per sampler, so with several workers
    (each with its own sampler) or after a resume the candidates differ from a single uninterrupted run. Here
    trial ``n`` gets the same parameters however many workers run and wherever a run was resumed, which makes
    runs with different ``--workers`` compare the same candidates. Without a seed it is plain random search.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._seed = seed
        self._streams: dict[int, np.random.RandomState] = {}

    def _stream(self, trial: FrozenTrial) -> np.random.RandomState:
        if trial.number not in self._streams:
            self._streams.clear()  # one trial at a time per worker: keep only the current stream
            entropy = np.random.SeedSequence([self._seed, trial.number]).generate_state(1)[0]
            self._streams[trial.number] = np.random.RandomState(entropy)
        return self._streams[trial.number]

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if self._seed is None:
            return super().sample_independent(study, trial, param_name, param_distribution)
        trans = search_space_transform({param_name: param_distribution})
        x = self._stream(trial).uniform(trans.bounds[:, 0], trans.bounds[:, 1])
        return trans.untransform(x)[param_name]
