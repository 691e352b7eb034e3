"""The reference encoder: parameter count, wrapper, init, equivariance, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from che_bench.encodings import build_encoding
from che_bench.model import Encoder, ModelConfig, count_parameters, dropout, query_blocks
from che_bench.seeding import isolated_init_seed


def make(input_size: int = 2, output_size: int = 2, pe: str = "nope", seed: int = 0) -> Encoder:
    with isolated_init_seed(seed):
        return Encoder(input_size, output_size, build_encoding(pe))


def test_parameter_count_duplicate_string_nope():
    assert count_parameters(make(2, 2)) == 248_962


@pytest.mark.parametrize(("inputs", "outputs"), [(2, 2), (9, 5), (11, 5), (5, 3), (3, 3)])
def test_parameter_count_formula(inputs, outputs):
    assert count_parameters(make(inputs, outputs)) == 64 * (inputs + 1) + 248_640 + 65 * outputs


@pytest.mark.parametrize("pe", ["sinusoidal", "alibi"])
def test_parameter_free_encodings_add_nothing(pe):
    assert count_parameters(make(pe=pe)) == 248_962


def test_output_shape_reads_last_k_positions():
    model = make().eval()
    x = torch.tensor([[0, 1], [1, 1]])
    assert model(x, 4).shape == (2, 4, 2)
    assert model(x, 1).shape == (2, 1, 2)


def test_placeholder_is_one_hot_index_input_size():
    """The placeholder embeds as row I of the (I+1)-row table, scaled by √64."""
    model = make(2, 2).eval()
    captured = {}

    def grab(module, args):
        captured["h"] = args[0]

    model.layers[0].register_forward_pre_hook(grab)
    model(torch.tensor([[0, 1]]), 3)
    expected = model.embedding.weight[[0, 1, 2, 2, 2]] * 8
    torch.testing.assert_close(captured["h"][0], expected)


def test_init_follows_haiku_truncated_normal():
    model = make(2, 2)
    emb = model.embedding.weight
    assert emb.abs().max() <= 0.04 + 1e-7
    q = model.layers[0].attention.q.weight
    assert q.abs().max() <= 2 / math.sqrt(64) + 1e-7
    assert 0.7 / 8 < q.std() < 1.0 / 8  # truncation is not re-normalised (≈0.88σ)
    assert torch.count_nonzero(model.layers[0].ffn_in.bias) == 0
    assert torch.all(model.layers[0].norm1.weight == 1)


def test_nope_is_permutation_equivariant_and_placeholders_identical():
    model = make(2, 2, seed=3).eval()
    x = torch.tensor([[0, 1, 1, 0, 1, 0, 0]])
    out = model(x, 7)
    torch.testing.assert_close(out[0], out[0, :1].expand(7, -1), rtol=1e-5, atol=1e-5)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model(x[:, perm], 7), out, rtol=1e-5, atol=1e-5)


def test_positional_encoding_breaks_the_symmetry():
    model = make(2, 2, pe="sinusoidal", seed=3).eval()
    out = model(torch.tensor([[0, 1, 1, 0]]), 4)
    assert not torch.allclose(out[0, 0], out[0, 1])


def test_eval_mode_is_deterministic_and_train_mode_uses_the_generator():
    model = make(pe="sinusoidal")
    x = torch.randint(0, 2, (4, 6), generator=torch.Generator().manual_seed(1))
    model.eval()
    torch.testing.assert_close(model(x, 6), model(x, 6))
    model.train()
    a = model(x, 6, generator=torch.Generator().manual_seed(5))
    b = model(x, 6, generator=torch.Generator().manual_seed(5))
    c = model(x, 6, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_same_seed_same_init_and_global_rng_untouched():
    before = torch.random.get_rng_state()
    a, b, c = make(seed=7), make(seed=7), make(seed=8)
    assert torch.equal(torch.random.get_rng_state(), before)
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_query_chunking_is_exact():
    model = make(pe="alibi").double().eval()
    x = torch.randint(0, 2, (3, 9), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(x, 9), model(x, 9, query_chunk=4), rtol=0, atol=1e-12)


def test_query_blocks_cover_every_row_once():
    blocks = query_blocks(10, 4)
    assert [(b.start, b.stop) for b in blocks] == [(0, 4), (4, 8), (8, 10)]
    assert query_blocks(10, None) == [slice(None)] == query_blocks(10, 10)
    assert [(b.start, b.stop) for b in query_blocks(10, 4, first=3)] == [(3, 7), (7, 10)]
    assert query_blocks(10, None, first=6) == [slice(6, 10)] == query_blocks(10, 4, first=6)


def test_dropout_rate_and_scaling():
    x = torch.ones(200_000)
    y = dropout(x, 0.1, True, torch.Generator().manual_seed(0))
    assert abs((y == 0).float().mean().item() - 0.1) < 0.005
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.9))
    assert torch.equal(dropout(x, 0.1, False, None), x)


def test_custom_model_config_is_respected():
    config = ModelConfig(num_layers=2, d_model=32, num_heads=4)
    encoding = build_encoding("alibi", config.dims)
    model = Encoder(3, 3, encoding, config)
    assert len(model.layers) == 2
    assert model(torch.zeros(1, 5, dtype=torch.long), 2).shape == (1, 2, 3)
    with pytest.raises(ValueError):
        Encoder(3, 3, build_encoding("alibi"), config)
