"""Training-step time of three CNN-space networks on Fashion-MNIST-sized batches, NCHW against channels_last.

    python benchmarks/channels_last.py 1   # one torch thread (a search worker)
    python benchmarks/channels_last.py 2   # two threads

Random inputs (128 x 1 x 28 x 28), Adam, 3 warm-up steps, the mean of 15; prints ms per batch and the seconds
an epoch of 54,000 images would take.
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from autoarch.search_spaces.cnn import CNNSpace

_BASE = {"kernel_0": 3, "kernel_1": 3, "kernel_2": 3, "n_stages": 3, "pooling": "max", "activation": "relu",
         "batch_norm": True}
ARCHS = {
    "fmnist-run2-winner": {**_BASE, "channels_0": 16, "n_convs_0": 1, "kernel_0": 5, "channels_1": 16,
                           "n_convs_1": 2, "channels_2": 64, "n_convs_2": 1, "connectivity": "dense",
                           "pooling": "avg", "dropout": 0.2, "head_pool": 4, "head_units": 0},
    "small-resnet": dict(CNNSpace(augment=False).warm_starts())["small-resnet"],
    "vgg-like": dict(CNNSpace(augment=False).warm_starts())["vgg-like"],
}


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    torch.set_num_threads(threads)
    space = CNNSpace(augment=False)
    for name, arch in ARCHS.items():
        for channels_last in (False, True):
            net = space.build(arch, (1, 28, 28), 10)
            opt = torch.optim.Adam(net.parameters(), 1e-3)
            x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)
            for i in range(18):
                if i == 3:
                    start = time.perf_counter()
                loss = nn.functional.cross_entropy(net(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            dt = (time.perf_counter() - start) / 15
            print(f"{threads} thread(s) {name:19s} channels_last={channels_last!s:5s} {dt * 1000:6.1f} ms/batch "
                  f"-> {54000 / 128 * dt:5.1f} s/epoch", flush=True)


if __name__ == "__main__":
    main()
