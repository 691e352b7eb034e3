"""Registry-driven checks: every registered encoding (built-ins, DAPE variants, plugins).

The names come from ``list_encodings()`` at collection time, so a new ``@register_encoding``
is covered without touching this file. The model is the 5×64 reference; sizes stay small.
Flags are read from built encodings (a generated DAPE entry's follow its base). An encoding
may list parameter names that legitimately get no gradient in a class attribute
``params_without_grad`` (a tuple of names as in ``named_parameters()``).
"""

from __future__ import annotations

import typing

import pytest
import torch

from che_bench.encodings import Encoding, build_encoding, get_encoding, list_encodings
from che_bench.errors import ConfigError, UnknownNameError
from che_bench.model import Encoder, ModelConfig

NAMES = list_encodings()
CPU = torch.device("cpu")


def flagged(flag: str, value: bool = True) -> list[str]:
    """The registered names whose built encoding has ``flag`` equal to ``value``."""
    return [n for n in NAMES if getattr(build_encoding(n), flag) is value]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tokens(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 3, (batch, length), generator=gen(seed))


def make_model(name: str, *, causal: bool = False, seed: int = 0, **options) -> Encoder:
    torch.manual_seed(seed)
    return Encoder(3, 3, build_encoding(name, causal=causal, options=options))


def test_registry_lists_the_built_ins():
    builtin = {"nope", "sinusoidal", "learned", "rope", "relative", "alibi", "kerple", "t5"}
    builtin |= {"kerple-power", "fire", "cope", "rand-sinusoidal", "rand-learned", "rand-rope"}
    builtin |= {"rand-alibi", "rand-relative"}
    assert builtin <= set(NAMES)


# (a) forward + backward ---------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward(name, causal):
    model = make_model(name, causal=causal).train()
    out = model(tokens(2, 8), 4, generator=gen(1))
    assert out.shape == (2, 4, 3) and torch.isfinite(out).all()
    weights = torch.randn(out.shape, generator=gen(2))
    (out * weights).sum().backward()
    exempt = set(getattr(model.encoding, "params_without_grad", ()))
    for pname, param in model.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
    for pname, param in model.encoding.named_parameters():
        if pname not in exempt:
            assert param.grad.abs().sum() > 0, f"{name}: {pname} receives no gradient"


# (b) evaluation beyond the training length -----------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_eval_at_ten_times_the_training_length(name):
    model = make_model(name).eval()
    with torch.no_grad():
        out = model(tokens(2, 100), 20, generator=gen(3))  # T = 120, 10× the T = 12 above
    assert out.shape == (2, 20, 3) and torch.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_eval_at_length_1500(name):
    model = make_model(name).eval()
    with torch.no_grad():
        out = model(tokens(1, 1496), 4, generator=gen(4), query_chunk=256)
    assert out.shape == (1, 4, 3) and torch.isfinite(out).all()


# (c) determinism ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_same_seeds_give_identical_outputs(name):
    x = tokens(2, 8)
    first = make_model(name, seed=5).train()(x, 4, generator=gen(6))
    second = make_model(name, seed=5).train()(x, 4, generator=gen(6))
    assert torch.equal(first, second)


# (d) query chunking -------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_query_chunking_is_exact(name):
    model = make_model(name).double().eval()
    x = tokens(2, 9)  # T = 13: chunks of 3 leave a ragged last block
    with torch.no_grad():
        full = model(x, 4, generator=gen(7))
        chunked = model(x, 4, generator=gen(7), query_chunk=3)
    torch.testing.assert_close(chunked, full, atol=1e-5, rtol=0)


# (e) shift invariance at the attention level -------------------------------------------------
def attention_scores(enc: Encoding, content: torch.Tensor, projections, layer: int = 1):
    """Scores [B, H, T, T] as the encoder computes them from content [B, T, 64].

    The absolute embedding (if any) is added to the content first, so absolute encodings are
    exposed to the check too; q, k come from fixed projections of the result.
    """
    batch, length, width = content.shape
    heads = enc.dims.num_heads
    position = enc.embed(length, CPU, gen(0))
    h = content if position is None else content + position.to(content.dtype)
    q, k = ((h @ w).view(batch, length, heads, -1).transpose(1, 2) for w in projections)
    ctx = enc.prepare(layer, length, CPU, gen(0))
    q, k = enc.qk(layer, ctx, q, k)
    with torch.no_grad():
        return enc.scores(layer, ctx, q, k)


def shift_check(enc: Encoding, length: int = 20, shift: int = 7) -> bool:
    """Scores of the last T rows/cols of a (T+s)-context equal those of the T-context."""
    enc = enc.double()
    g = gen(11)
    content = torch.randn(2, length + shift, 64, generator=g, dtype=torch.float64)
    projections = [torch.randn(64, 64, generator=g, dtype=torch.float64) / 8 for _ in range(2)]
    longer = attention_scores(enc, content, projections)[..., shift:, shift:]
    shorter = attention_scores(enc, content[:, shift:], projections)
    return torch.allclose(longer, shorter, rtol=0, atol=1e-9)


class AbsoluteBias(Encoding):
    """A negative control: a bias that depends on the absolute key index."""

    has_bias = True

    def bias(self, layer, length, device, generator):
        return torch.arange(length, dtype=torch.float64).expand(self.dims.num_heads, length, -1)


def test_shift_check_can_fail():
    assert not shift_check(build_encoding("sinusoidal"))
    assert not shift_check(build_encoding("learned"))
    assert not shift_check(AbsoluteBias(build_encoding("nope").dims))
    assert shift_check(build_encoding("alibi"))


SHIFT_INVARIANT = flagged("shift_invariant")


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", SHIFT_INVARIANT)
def test_shift_invariant_scores(name, causal):
    torch.manual_seed(0)
    assert shift_check(build_encoding(name, causal=causal))


# (f) causal forms ---------------------------------------------------------------------------
def hidden_states(model: Encoder, x: torch.Tensor) -> torch.Tensor:
    """Every row's state after the 4th of 5 layers (in eval, the last computes K rows only)."""
    captured = []
    handle = model.layers[-2].register_forward_hook(lambda m, i, out: captured.append(out))
    with torch.no_grad():
        model(x, 3, generator=gen(12))
    handle.remove()
    return captured[0]


@pytest.mark.parametrize("name", NAMES)
def test_causal_form_ignores_later_tokens(name):
    x = tokens(2, 9)
    y = x.clone()
    y[:, 5] = (y[:, 5] + 1) % 3  # perturb token 5 (T = 12 with the placeholders)
    causal = make_model(name, causal=True).eval()
    before, after = hidden_states(causal, x), hidden_states(causal, y)
    torch.testing.assert_close(after[:, :5], before[:, :5], rtol=0, atol=1e-6)
    assert not torch.allclose(after[:, 5:], before[:, 5:])
    bidirectional = make_model(name).eval()  # control: without the mask, earlier ones move
    assert not torch.allclose(
        hidden_states(bidirectional, y)[:, :5], hidden_states(bidirectional, x)[:, :5]
    )


@pytest.mark.parametrize("name", flagged("randomized", False))
def test_eval_computes_only_the_read_out_rows_of_the_last_layer(name):
    """Eval skips the last layer's input rows; without dropout, training mode computes every
    row of every layer, and the read-out must be the same (up to float64 rounding: a GEMM
    over fewer rows may sum in another order, as with query chunking)."""
    torch.manual_seed(0)
    model = Encoder(3, 3, build_encoding(name), ModelConfig(dropout=0.0)).double()
    x, states = tokens(2, 9), []
    model.layers[-1].register_forward_hook(lambda m, i, out: states.append(out.shape[1]))
    with torch.no_grad():
        full = model.train()(x, 3, generator=gen(14))
        skipped = model.eval()(x, 3, generator=gen(14))
    assert states == [12, 3]
    torch.testing.assert_close(skipped, full, rtol=0, atol=1e-12)


# (g) NoPE permutation equivariance ----------------------------------------------------------
def test_nope_is_permutation_equivariant():
    model = make_model("nope").eval()
    x = tokens(2, 8)
    perm = torch.randperm(8, generator=gen(13))
    h, h_perm = hidden_states(model, x), hidden_states(model, x[:, perm])
    torch.testing.assert_close(h_perm[:, :8], h[:, perm], rtol=0, atol=1e-5)
    torch.testing.assert_close(h_perm[:, 8:], h[:, 8:], rtol=0, atol=1e-5)
    with torch.no_grad():
        out = model(x, 4)
    torch.testing.assert_close(out, out[:, :1].expand_as(out), rtol=0, atol=1e-5)


# (h) option machinery -----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_lists_the_valid_ones(name):
    with pytest.raises(UnknownNameError) as error:
        build_encoding(name, options={"no_such_option": 1})
    for option in get_encoding(name).options:
        assert option in str(error.value)
    defaults = {key: spec.default for key, spec in get_encoding(name).options.items()}
    assert build_encoding(name).options == defaults


def typed_options(name: str) -> list[str]:
    kinds = (int, float, bool)
    return [
        key
        for key, spec in get_encoding(name).options.items()
        if spec.annotation in kinds or typing.get_origin(spec.annotation) is typing.Literal
    ]


@pytest.mark.parametrize("name", [n for n in NAMES if typed_options(n)])
def test_bad_option_value_is_a_config_error(name):
    for option in typed_options(name):
        with pytest.raises(ConfigError, match=option):
            build_encoding(name, options={option: "not-a-value"})
