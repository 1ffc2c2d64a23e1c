from __future__ import annotations

import pytest
import torch

from autoarch.exceptions import SpaceError
from autoarch.search_spaces import ACTIVATIONS, CNNSpace, MLPSpace, get_space
from autoarch.search_spaces.testing import SearchSpaceContract, sample_architectures


def _mlp(n_layers: int, width: int, connectivity: str, **kw: object) -> dict:
    arch = {"n_layers": n_layers, **{f"width_{i}": width for i in range(n_layers)}, "connectivity": connectivity,
            "activation": "relu", "dropout": 0.1, "batch_norm": True}
    arch.update(kw)
    return arch


def _cnn(n_stages: int, channels: int, n_convs: int, connectivity: str, **kw: object) -> dict:
    arch: dict = {"n_stages": n_stages}
    for i in range(n_stages):
        arch.update({f"channels_{i}": channels, f"n_convs_{i}": n_convs, f"kernel_{i}": 3})
    arch.update({"connectivity": connectivity, "pooling": "max", "activation": "gelu", "dropout": 0.0,
                 "batch_norm": True})
    arch.update(kw)
    return arch


class TestMLPSpace(SearchSpaceContract):
    @pytest.fixture
    def space(self) -> MLPSpace:
        return MLPSpace()

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        return (7,)

    @pytest.fixture
    def extremes(self) -> list[dict]:
        return [_mlp(1, 16, "plain"), _mlp(1, 512, "dense"), _mlp(4, 512, "dense"), _mlp(4, 16, "residual"),
                _mlp(4, 16, "dense", batch_norm=False, dropout=0.5, activation="sigmoid"),
                *[_mlp(2, 32, "residual", activation=a) for a in ACTIVATIONS]]


class TestMLPOnImages(SearchSpaceContract):
    """The MLP space also takes images (flattened)."""

    @pytest.fixture
    def space(self) -> MLPSpace:
        return MLPSpace(max_layers=2, widths=(8, 32))

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        return (1, 8, 8)


class TestCNNSpace(SearchSpaceContract):
    @pytest.fixture
    def space(self) -> CNNSpace:
        return CNNSpace()

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        return (1, 8, 8)

    @pytest.fixture
    def extremes(self) -> list[dict]:
        return [_cnn(1, 8, 1, "plain"), _cnn(3, 64, 2, "dense"), _cnn(3, 64, 2, "residual", pooling="none"),
                _cnn(3, 8, 2, "dense", pooling="avg", batch_norm=False, dropout=0.5),
                {**_cnn(2, 16, 2, "residual"), "channels_1": 32, "kernel_1": 5}]


class TestCNNOnRGB(SearchSpaceContract):
    """Three channels and an odd, non-square image size."""

    @pytest.fixture
    def space(self) -> CNNSpace:
        return CNNSpace(max_stages=3, channels=(4, 8))

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        return (3, 7, 5)


def test_auto_space_picks_by_input_kind() -> None:
    assert get_space("auto", "image").name == "cnn"
    assert get_space("auto", "tabular").name == "mlp"


def test_unknown_space_suggests_the_closest_name() -> None:
    with pytest.raises(SpaceError, match="Did you mean 'cnn'"):
        get_space("cnnn", "image")


def test_cnn_rejects_tabular_input() -> None:
    with pytest.raises(SpaceError, match="--space auto"):
        get_space("cnn", "tabular")
    with pytest.raises(SpaceError, match="image input"):
        CNNSpace().build(_cnn(1, 8, 1, "plain"), (10,), 2)


def test_build_names_missing_keys() -> None:
    arch = _mlp(3, 16, "plain")
    del arch["width_2"]
    with pytest.raises(SpaceError, match="width_2"):
        MLPSpace().build(arch, (4,), 2)


def test_unknown_activation_is_a_clear_error() -> None:
    with pytest.raises(SpaceError, match="Did you mean 'gelu'"):
        MLPSpace().build(_mlp(1, 8, "plain", activation="gelu2"), (4,), 2)


@pytest.mark.parametrize(("act", "batch_norm"), [("relu", False), ("gelu", True), ("tanh", False)])
def test_cnn_convolutions_start_at_he_or_xavier_scale(act: str, batch_norm: bool) -> None:
    arch = {"n_stages": 2, "channels_0": 64, "n_convs_0": 2, "kernel_0": 5, "channels_1": 64, "n_convs_1": 2,
            "kernel_1": 3, "connectivity": "plain", "pooling": "max", "activation": act, "dropout": 0.0,
            "batch_norm": batch_norm}
    torch.manual_seed(0)
    net = CNNSpace().build(arch, (1, 8, 8), 10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    for conv in convs[1:]:  # 64 input channels: enough weights for a close estimate
        fan_in = conv.weight[0].numel()
        fan_out = conv.weight.shape[0] * conv.weight[0, 0].numel()
        expected = (5 / 3) * (2 / (fan_in + fan_out)) ** 0.5 if act == "tanh" else (2 / fan_in) ** 0.5
        assert conv.weight.std().item() == pytest.approx(expected, rel=0.05)
        if conv.bias is not None:
            assert torch.all(conv.bias == 0)


def test_the_builtin_spaces_are_registered_once_by_import_path() -> None:
    from autoarch import config
    from autoarch.search_spaces import SPACES

    assert {name: f"{cls.__module__}:{cls.__qualname__}" for name, cls in SPACES.items()} == config.SPACES
    assert config.SearchConfig.__dataclass_fields__["space"].metadata["metavar"] == \
        "{auto," + ",".join(config.SPACES) + ",MODULE:CLASS}"
    assert set(config.AUTO_SPACE.values()) <= set(SPACES)


def _token_ids(input_shape: tuple[int, ...]):
    """Right-padded token ids (0 = padding) below the smallest vocabulary, every text at least one token long."""
    generator = torch.Generator().manual_seed(0)

    def make(n: int) -> torch.Tensor:
        ids = torch.randint(1, 2002, (n, *input_shape), generator=generator)
        lengths = torch.randint(1, input_shape[0] + 1, (n, 1), generator=generator)
        return torch.where(torch.arange(input_shape[0]) < lengths, ids, 0).float()

    return make


def _masked_sequences(input_shape: tuple[int, ...]):
    """(n, T, channels + 1): standard normal channels, then the validity mask (1 for the first 1..T steps)."""
    generator = torch.Generator().manual_seed(0)

    def make(n: int) -> torch.Tensor:
        steps, width = input_shape
        x = torch.randn(n, steps, width, generator=generator)
        lengths = torch.randint(1, steps + 1, (n, 1), generator=generator)
        valid = (torch.arange(steps) < lengths).float()
        x[:, :, -1] = valid
        return x * torch.cat([valid.unsqueeze(-1).expand(-1, -1, width - 1), torch.ones(n, steps, 1)], dim=2)

    return make


def _rnn(cell: str, hiddens: list[int], bidirectional: bool, connectivity: str, pooling: str, **kw: object) -> dict:
    arch: dict = {"cell": cell, "n_layers": len(hiddens), **{f"hidden_{i}": h for i, h in enumerate(hiddens)},
                  "bidirectional": bidirectional, "connectivity": connectivity, "dropout": 0.2, "pooling": pooling,
                  "head_width": 32, "head_activation": "gelu", "grad_clip": 1.0}
    arch.update(kw)
    return arch


@pytest.mark.slow  # about 4 minutes (36 recurrent networks exported to ONNX, pruned in steps and fine-tuned)
class TestRNNOnText(SearchSpaceContract):
    """Token ids: every cell, direction, connectivity and pooling among the sampled and extreme architectures."""

    @pytest.fixture
    def space(self):
        from autoarch.search_spaces import RNNSpace

        return RNNSpace()

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        return (12,)

    @pytest.fixture
    def make_inputs(self, input_shape):
        return _token_ids(input_shape)

    @pytest.fixture
    def statistics(self) -> tuple[float, float]:
        return (0.0, 1.0)

    @pytest.fixture
    def extremes(self) -> list[dict]:
        text = {"embedding_dim": 32, "vocab_size": 2000}
        return [_rnn(cell, [32, 128], bi, conn, pool, **text)
                for cell, bi, conn, pool in [("lstm", True, "dense", "max"), ("gru", True, "residual", "last"),
                                             ("rnn", False, "plain", "mean"), ("gru", False, "dense", "mean"),
                                             ("lstm", False, "residual", "last"), ("rnn", True, "residual", "max")]]


@pytest.mark.slow  # about 3 minutes
class TestRNNOnSequences(SearchSpaceContract):
    """Numeric sequences (two channels and the mask): no embedding."""

    @pytest.fixture
    def space(self):
        from autoarch.search_spaces import RNNSpace

        return RNNSpace(input_kind="sequence")

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        return (9, 3)

    @pytest.fixture
    def make_inputs(self, input_shape):
        return _masked_sequences(input_shape)

    @pytest.fixture
    def statistics(self) -> tuple[float, float]:
        return (0.0, 1.0)

    @pytest.fixture
    def extremes(self) -> list[dict]:
        return [_rnn("gru", [64, 32], True, "dense", "max"), _rnn("lstm", [32, 32], True, "residual", "mean")]


class TestConv1DOnSequences(SearchSpaceContract):
    """Numeric sequences (two channels and the mask) through 1-D convolutions."""

    @pytest.fixture
    def space(self):
        from autoarch.search_spaces import Conv1DSpace

        return Conv1DSpace()

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        return (11, 3)

    @pytest.fixture
    def make_inputs(self, input_shape):
        return _masked_sequences(input_shape)

    @pytest.fixture
    def statistics(self) -> tuple[float, float]:
        return (0.0, 1.0)

    @pytest.fixture
    def extremes(self, space) -> list[dict]:  # the FCN warm start, without its training hyperparameters
        return [{k: v for k, v in arch.items() if k != "lr"} for _, arch in space.warm_starts()]


def test_conv1d_output_ignores_padding_and_auto_takes_it_for_long_sequences() -> None:
    """A padded series gives the same output as the series alone (eval mode), whatever the padding holds;
    ``--space auto`` picks conv1d above LONG_SEQUENCE steps and rnn up to it."""
    from autoarch.config import LONG_SEQUENCE
    from autoarch.search_spaces import Conv1DSpace, RNNSpace, get_space

    space = Conv1DSpace()
    for arch in [a for _, a in space.warm_starts()] + sample_architectures(space, 6, seed=1):
        torch.manual_seed(0)
        net = space.build(arch, (20, 3), 4).eval()
        series = torch.randn(1, 12, 3)
        series[:, :, -1] = 1.0
        padded = torch.cat([series, torch.randn(1, 8, 3)], dim=1)
        padded[:, 12:, -1] = 0.0
        with torch.no_grad():
            torch.testing.assert_close(net(padded), net(series), atol=1e-5, rtol=1e-5, msg=space.describe(arch))
    assert isinstance(get_space("auto", "sequence", input_shape=(LONG_SEQUENCE + 1, 2)), Conv1DSpace)
    assert isinstance(get_space("auto", "sequence", input_shape=(LONG_SEQUENCE, 2)), RNNSpace)
    assert isinstance(get_space("auto", "sequence"), RNNSpace)
