from __future__ import annotations

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from torch import nn

from autoarch.search_spaces import cnn
from autoarch.search_spaces.augment import AUGMENT_KEYS, Augment
from autoarch.search_spaces.cnn import CNN, CNNSpace

_OLD_ARCH = {"n_stages": 2, "channels_0": 8, "n_convs_0": 1, "kernel_0": 3, "channels_1": 32, "n_convs_1": 1,
             "kernel_1": 3, "connectivity": "plain", "pooling": "max", "activation": "relu", "dropout": 0.0,
             "batch_norm": False}


def _warm(space: CNNSpace) -> dict[str, dict]:
    return dict(space.warm_starts())


def _suggest(space: CNNSpace, seed: int = 0, fixed: dict | None = None) -> tuple[dict, optuna.trial.Trial]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    if fixed is not None:
        study.enqueue_trial(fixed)
    trial = study.ask()
    return space.suggest(trial), trial


def test_warm_start_names_and_order() -> None:
    assert [name for name, _ in CNNSpace().warm_starts()] == ["lenet5-like", "vgg-like", "small-resnet"]


@pytest.mark.parametrize("input_shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
@pytest.mark.parametrize("n_outputs", [2, 10])
def test_every_warm_start_builds_and_runs(input_shape: tuple[int, int, int], n_outputs: int) -> None:
    space = CNNSpace()
    for name, arch in space.warm_starts():
        net = space.build(arch, input_shape, n_outputs).eval()
        with torch.no_grad():
            out = net(torch.rand(2, *input_shape))
        assert out.shape == (2, n_outputs), name
        assert torch.isfinite(out).all(), name


@pytest.mark.parametrize("input_shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_lenet_head_flattens_a_4x4_grid_into_a_hidden_layer(input_shape: tuple[int, int, int]) -> None:
    space = CNNSpace()
    net = space.build(_warm(space)["lenet5-like"], input_shape, 10)
    assert isinstance(net, CNN)
    assert net.pool.output_size == 4
    assert isinstance(net.hidden, nn.Sequential)
    assert net.hidden[0].in_features == 16 * 4 * 4
    assert net.hidden[0].out_features == 128
    assert isinstance(net.hidden[1], nn.ReLU)
    assert net.head.in_features == 128 and net.head.out_features == 10
    convs = [m for m in net.features.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (input_shape[0], 8, (5, 5)), (8, 16, (5, 5))]


def test_small_resnet_has_a_global_pool_head_without_hidden_layer() -> None:
    space = CNNSpace()
    arch = _warm(space)["small-resnet"]
    net = space.build(arch, (3, 32, 32), 10)
    assert net.pool.output_size == 1
    assert isinstance(net.hidden, nn.Identity)
    assert net.head.in_features == 64
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert isinstance(net.drop, nn.Dropout) and net.drop.p == pytest.approx(0.1)
    aug = space.augmentation(arch)
    assert isinstance(aug, Augment)
    assert (aug.flip, aug.shift, aug.rotate, aug.color) == (False, 0.0625, 0.0, 0.0)  # no flips: digits
    assert space.augmentation(_warm(space)["lenet5-like"]) is None


def test_vgg_like_doubles_channels_with_bn_a_4x4_head_and_flips() -> None:
    space = CNNSpace()
    arch = _warm(space)["vgg-like"]
    net = space.build(arch, (1, 28, 28), 10)
    convs = [m for m in net.features.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 16, (3, 3)), (16, 32, (3, 3)), (32, 32, (3, 3)), (32, 64, (3, 3)), (64, 64, (3, 3))]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 5
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 2
    assert net.pool.output_size == 4 and isinstance(net.hidden, nn.Identity) and isinstance(net.drop, nn.Identity)
    assert net.head.in_features == 64 * 4 * 4
    aug = space.augmentation(arch)
    assert isinstance(aug, Augment) and (aug.flip, aug.shift, aug.rotate, aug.color) == (True, 0.0, 0.0, 0.0)
    assert CNNSpace(augment=False).augmentation(_warm(CNNSpace(augment=False))["vgg-like"]) is None


def test_head_pool_is_clamped_to_the_feature_map() -> None:
    space = CNNSpace()
    lenet = _warm(space)["lenet5-like"]
    # 2x2 input: one pooling to 1x1, so a 4x4 head pool reads a 1x1 map
    net = space.build(lenet, (1, 2, 2), 3)
    assert net.hidden[0].in_features == 16
    # 6x6 input: pooled to 3x3, so the head reads 3x3
    net = space.build(lenet, (1, 6, 6), 3)
    assert net.hidden[0].in_features == 16 * 3 * 3
    with torch.no_grad():
        assert net.eval()(torch.rand(2, 1, 6, 6)).shape == (2, 3)


@pytest.mark.parametrize(("head_pool", "head_units", "in_features", "head_in"),
                         [(1, 0, 32, 32), (2, 0, 128, 128), (4, 0, 512, 512), (2, 64, 128, 64), (1, 256, 32, 256)])
def test_head_pool_and_units(head_pool: int, head_units: int, in_features: int, head_in: int) -> None:
    arch = {**_OLD_ARCH, "head_pool": head_pool, "head_units": head_units}
    net = CNNSpace().build(arch, (1, 16, 16), 5)
    if head_units:
        assert net.hidden[0].in_features == in_features and net.hidden[0].out_features == head_units
    else:
        assert isinstance(net.hidden, nn.Identity)
    assert net.head.in_features == head_in
    with torch.no_grad():
        assert net.eval()(torch.rand(2, 1, 16, 16)).shape == (2, 5)


def test_old_architecture_without_head_keys_builds_with_a_global_pool_head() -> None:
    net = CNNSpace().build(_OLD_ARCH, (1, 12, 12), 4)
    assert net.pool.output_size == 1
    assert isinstance(net.hidden, nn.Identity)
    assert net.head.in_features == 32  # the last stage's channels
    with torch.no_grad():
        assert net.eval()(torch.rand(2, 1, 12, 12)).shape == (2, 4)
    assert CNNSpace().augmentation(_OLD_ARCH) is None


def test_suggest_has_head_keys_and_aug_keys_only_with_augment() -> None:
    for seed in range(5):
        arch, _ = _suggest(CNNSpace(), seed)
        assert arch["head_pool"] in cnn.HEAD_POOL and arch["head_units"] in cnn.HEAD_UNITS
        assert set(AUGMENT_KEYS) <= set(arch)
        plain, _ = _suggest(CNNSpace(augment=False), seed)
        assert {"head_pool", "head_units"} <= set(plain)
        assert not [k for k in plain if k.startswith("aug_")]


def test_augmentation_follows_the_aug_keys() -> None:
    space = CNNSpace()
    off = {**_OLD_ARCH, "aug_flip": False, "aug_shift": 0.0, "aug_rotate": 0.0, "aug_color": 0.0}
    assert space.augmentation(off) is None
    aug = space.augmentation({**off, "aug_rotate": 20.0, "aug_color": 0.4})
    assert isinstance(aug, Augment)
    assert (aug.flip, aug.shift, aug.rotate, aug.color) == (False, 0.0, 20.0, 0.4)
    arch, _ = _suggest(space, 0, fixed={"aug_flip": True, "aug_shift": 0.125, "aug_rotate": 0.0, "aug_color": 0.0})
    aug = space.augmentation(arch)
    assert isinstance(aug, Augment) and aug.flip and aug.shift == 0.125


@pytest.mark.parametrize("augment", [True, False])
def test_warm_starts_are_points_of_the_space(augment: bool) -> None:
    space = CNNSpace(augment=augment)
    for name, arch in space.warm_starts():
        assert all(arch[f"channels_{i}"] in space.channels for i in range(arch["n_stages"])), name
        assert arch["head_pool"] in cnn.HEAD_POOL and arch["head_units"] in cnn.HEAD_UNITS, name
        if augment:
            assert arch["aug_shift"] in cnn.AUG_SHIFT and arch["aug_rotate"] in cnn.AUG_ROTATE, name
            assert arch["aug_color"] in cnn.AUG_COLOR and arch["aug_flip"] in (False, True), name
        else:
            assert not [k for k in arch if k.startswith("aug_")], name
        # suggest() with the warm start enqueued reproduces it exactly: every value is in its distribution
        suggested, trial = _suggest(space, fixed=arch)
        assert suggested == arch, name
        for key, value in arch.items():
            dist = trial.distributions[key]
            if isinstance(dist, CategoricalDistribution):
                assert value in dist.choices, (name, key)
            else:
                assert dist._contains(dist.to_internal_repr(value)), (name, key)


def test_warm_starts_round_channels_to_the_space() -> None:
    space = CNNSpace(channels=(8, 16))
    warm = _warm(space)
    assert set(warm) == {"lenet5-like", "vgg-like", "small-resnet"}
    for name, arch in warm.items():
        channels = [arch[f"channels_{i}"] for i in range(arch["n_stages"])]
        assert set(channels) <= {8, 16}, name
    assert [warm["small-resnet"][f"channels_{i}"] for i in range(3)] == [16, 16, 16]
    assert [warm["lenet5-like"][f"channels_{i}"] for i in range(2)] == [8, 16]
    net = space.build(warm["small-resnet"], (1, 8, 8), 2)
    assert net.head.in_features == 16
    wide = _warm(CNNSpace(channels=(32, 64, 128)))
    assert [wide["lenet5-like"][f"channels_{i}"] for i in range(2)] == [32, 32]


def test_warm_starts_outside_a_narrow_space_are_left_out() -> None:
    assert list(_warm(CNNSpace(max_stages=2))) == ["lenet5-like"]
    assert list(_warm(CNNSpace(max_convs=1))) == ["lenet5-like"]
    assert _warm(CNNSpace(activations=("gelu", "tanh"))) == {}


def test_a_3x3_only_space_keeps_the_small_resnet_warm_start() -> None:
    assert [name for name, _ in CNNSpace(kernels=(3,)).warm_starts()] == ["vgg-like", "small-resnet"]
