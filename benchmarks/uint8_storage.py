"""Memory of the Fashion-MNIST training set and the time of one ``fit`` epoch, for a before/after comparison of
how ``Dataset.X`` holds image pixels (float32 before branch ``uint8``, uint8 since).

    python benchmarks/uint8_storage.py

Prints the dtype and ``X.nbytes`` of ``load_dataset("fashion-mnist")``, the process RSS before and after
loading, and the peak RSS. Then it prints the seconds of one ``fit`` epoch on the first 10,000 images: the
LeNet-5-like warm start of the cnn space, Adam 1e-3, batch 128, constant lr, one thread, torch seed 0. It ends
with a checksum of the trained weights, which must be the same for both storages. Run it on two checkouts, one
after the other; the machine's load changes the seconds.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import torch


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    torch.set_num_threads(1)
    from autoarch.evaluate import build_model
    from autoarch.loaders import load_dataset
    from autoarch.search_spaces import get_space
    from autoarch.trainer import TrainConfig, fit

    before = _rss_mb()
    start = time.perf_counter()
    data = load_dataset("fashion-mnist")
    load_s = time.perf_counter() - start
    after = _rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"X dtype={data.X.dtype} shape={data.X.shape} nbytes={data.X.nbytes / 1e6:.1f} MB; RSS {before:.0f} -> "
          f"{after:.0f} MB (+{after - before:.0f}); peak RSS {peak:.0f} MB; load {load_s:.2f} s")
    sub = data.subset(np.arange(10_000))
    space = get_space("cnn", "image")
    arch = dict(space.warm_starts()[0][1])
    torch.manual_seed(0)
    model = build_model(space, arch, sub)
    cfg = TrainConfig(optimizer="adam", lr=1e-3, batch_size=128, schedule="constant")
    start = time.perf_counter()
    fit(model, sub.X, sub.y, sub.task, cfg, seed=0, epochs=1)
    epoch_s = time.perf_counter() - start
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    print(f"one fit epoch, 10,000 images, lenet5-like, batch 128, 1 thread: {epoch_s:.2f} s; weight checksum "
          f"{weights.double().sum().item():.10f}")


if __name__ == "__main__":
    main()
