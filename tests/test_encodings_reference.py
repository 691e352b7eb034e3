"""Reference checks for the built-in encodings: formulas, parameter counts, draws, sides.

Formulas are checked against hand-written tables or plain-loop oracles on tiny sizes.
"""

from __future__ import annotations

import math

import pytest
import torch

from che_bench.encodings import build_encoding
from che_bench.encodings.absolute import sinusoid
from che_bench.encodings.alibi import alibi_bias, alibi_slopes
from che_bench.encodings.rope import rope_frequencies, rotate
from che_bench.encodings.t5 import t5_bucket
from che_bench.errors import ConfigError
from che_bench.model import Encoder, count_parameters

CPU = torch.device("cpu")
H, D = 8, 8


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def bias(name: str, length: int, *, layer: int = 0, causal: bool = False, **options):
    enc = build_encoding(name, causal=causal, options=options)
    return enc, enc.bias(layer, length, CPU, gen(0))


# -- parameter counts -------------------------------------------------------------------
COUNTS = {
    "nope": (0, 0),
    "sinusoidal": (0, 0),
    "learned": (131_072, 131_072),
    "rope": (0, 0),
    "relative": (21_120, 21_120),
    "alibi": (0, 0),
    "kerple": (160, 80),
    "kerple-power": (160, 80),
    "fire": (3_300, 1_650),
    "t5": (512, 256),
    "cope": (5_120, 2_560),
    "rand-sinusoidal": (0, 0),
    "rand-learned": (131_072, 131_072),
    "rand-rope": (0, 0),
    "rand-alibi": (0, 0),
    "rand-relative": (21_120, 21_120),
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts(name):
    bidirectional, causal = COUNTS[name]
    assert count_parameters(build_encoding(name)) == bidirectional
    assert count_parameters(build_encoding(name, causal=True)) == causal


# -- relative ---------------------------------------------------------------------------
def relative_oracle(enc, layer, q, k, signed_positions):
    """Plain loop over (i, j): [(q_i + u)·k_j + (q_i + v)·r(position of j - i)] / √d."""
    batch, heads, length, d = q.shape
    u, v, w_r = enc.u[layer], enc.v[layer], enc.w_r[layer]
    out = torch.empty(batch, heads, length, length, dtype=q.dtype)
    for i in range(length):
        for j in range(length):
            s = sinusoid(signed_positions[j - i + length - 1].reshape(1), 64).to(q.dtype)
            r = (s @ w_r.T).view(heads, d)
            for h in range(heads):
                content = ((q[:, h, i] + u[h]) * k[:, h, j]).sum(-1)
                term = content + (q[:, h, i] + v[h]) @ r[h]
                out[:, h, i, j] = term / math.sqrt(d)
    return out


def test_relative_rel_shift_uses_j_minus_i():
    enc = build_encoding("relative").double()
    length = 4
    with torch.no_grad():
        enc.u.zero_()
        enc.v.zero_()
        enc.w_r[0].copy_(torch.eye(64))
    ctx = enc.prepare(0, length, CPU, None)
    q = torch.zeros(1, H, length, D, dtype=torch.float64)
    q[:, 0, :, 0] = 1.0  # head 0, dim 0 reads sin(δ·ω_0) = sin(δ)
    k = torch.zeros_like(q)
    logits = enc.scores(0, ctx, q, k, slice(None))[0, 0] * math.sqrt(D)
    rows = torch.tensor([[j - i for j in range(length)] for i in range(length)])
    assert rows[0].tolist() == [0, 1, 2, 3] and rows[3].tolist() == [-3, -2, -1, 0]
    torch.testing.assert_close(logits, torch.sin(rows.double()), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["relative", "rand-relative"])
def test_relative_matches_loop_oracle_and_rows(name):
    torch.manual_seed(0)
    enc = build_encoding(name).double()
    length = 5
    q, k = torch.randn(2, 2, H, length, D, dtype=torch.float64)
    ctx = enc.prepare(1, length, CPU, gen(3))
    full = enc.scores(1, ctx, q, k, slice(None))
    torch.testing.assert_close(full, relative_oracle(enc, 1, q, k, ctx.positions))
    torch.testing.assert_close(enc.scores(1, ctx, q, k, slice(1, 4)), full[:, :, 1:4])
    if name == "rand-relative":  # sinusoid at sign(δ)·p_|δ|, p drawn as for rand-alibi
        p = ctx.positions[length - 1 :]
        assert p[0] == 0 and bool((p[1:].diff() > 0).all())
        torch.testing.assert_close(ctx.positions, torch.cat([-p[1:].flip(0), p]))


# -- rope -------------------------------------------------------------------------------
def test_rope_frequencies_and_interleaved_pairs():
    torch.testing.assert_close(
        rope_frequencies(8), torch.tensor([1.0, 1e-1, 1e-2, 1e-3], dtype=torch.float64)
    )
    positions = torch.tensor([0, 1, 5, 37])
    for m, theta in enumerate([1.0, 0.1, 0.01, 0.001]):
        even = torch.zeros(len(positions), 8, dtype=torch.float64)
        even[:, 2 * m] = 1.0
        angle = positions.double() * theta
        out = rotate(even, positions)
        torch.testing.assert_close(out[:, 2 * m], torch.cos(angle))
        torch.testing.assert_close(out[:, 2 * m + 1], torch.sin(angle))
        odd = torch.zeros_like(even)
        odd[:, 2 * m + 1] = 1.0
        out = rotate(odd, positions)
        torch.testing.assert_close(out[:, 2 * m], -torch.sin(angle))
        torch.testing.assert_close(out[:, 2 * m + 1], torch.cos(angle))
        others = [c for c in range(8) if c not in (2 * m, 2 * m + 1)]
        assert out[:, others].abs().max() == 0


# -- alibi and rand-alibi -----------------------------------------------------------------
def test_alibi_slopes():
    torch.testing.assert_close(alibi_slopes(8), 2.0 ** -torch.arange(1.0, 9.0))
    expected = [2.0**-e for e in range(1, 9)] + [2.0**-e for e in (0.5, 1.5, 2.5, 3.5)]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(expected))


def test_alibi_matrix():
    enc, b = bias("alibi", 4)
    table = torch.tensor([[0, 1, 2, 3], [0.5, 0, 1, 2], [1.5, 0.5, 0, 1], [2.5, 1.5, 0.5, 0]])
    m = alibi_slopes(8)[:, None, None]
    torch.testing.assert_close(-b / m, table.expand(8, 4, 4))
    _, causal = bias("alibi", 4, causal=True)
    lower = torch.tensor([[0.0, 0, 0, 0], [1, 0, 0, 0], [2, 1, 0, 0], [3, 2, 1, 0]])
    torch.testing.assert_close(-causal / m, lower.expand(8, 4, 4))


def test_rand_alibi_matrix_for_fixed_distances():
    table = torch.tensor(
        [[0, -3, -8, -20], [-2.5, 0, -3, -8], [-7.5, -2.5, 0, -3], [-19.5, -7.5, -2.5, 0]]
    )
    m = alibi_slopes(8)[:, None, None]
    b = alibi_bias(torch.tensor([0.0, 3, 8, 20]), alibi_slopes(8), causal=False)
    torch.testing.assert_close(b / m, table.expand(8, 4, 4))
    enc = build_encoding("rand-alibi")
    ctx = enc.prepare(2, 6, CPU, gen(1))  # the hook uses its own draw the same way
    torch.testing.assert_close(ctx.bias, alibi_bias(ctx.positions.float(), enc.slopes, False))


# -- t5 ---------------------------------------------------------------------------------
FIRST_IN_BUCKET = {16: 16, 17: 19, 18: 21, 19: 24, 20: 27, 21: 31, 22: 35, 23: 40}
FIRST_IN_BUCKET |= {24: 46, 25: 52, 26: 59, 27: 67, 28: 77, 29: 87, 30: 99, 31: 113}


def test_t5_bucket_boundaries():
    n = torch.arange(16)
    assert t5_bucket(n).tolist() == n.tolist()
    for bucket, first in FIRST_IN_BUCKET.items():
        assert t5_bucket(torch.tensor([first - 1, first])).tolist() == [bucket - 1, bucket]
    assert bool((t5_bucket(torch.arange(113, 3000)) == 31).all())


@pytest.mark.parametrize("causal", [False, True])
def test_t5_bias_formula(causal):
    enc, b = bias("t5", 40, causal=causal)
    for i in range(40):
        for j in range(40):
            side, n = (0, i - j) if j <= i else ((0, 0) if causal else (1, j - i))
            expected = math.sqrt(D) * enc.tables[side][t5_bucket(torch.tensor(n))]
            torch.testing.assert_close(b[:, i, j], expected)
    other_layer = enc.bias(3, 40, CPU, None)  # one table shared by all layers
    torch.testing.assert_close(other_layer, b)


# -- kerple, kerple-power, fire: formulas -------------------------------------------------
def kerple_value(name, p, a, n):
    return -p * math.log1p(a * n) if name == "kerple" else -a * n**p


@pytest.mark.parametrize("name", ["kerple", "kerple-power"])
@pytest.mark.parametrize("causal", [False, True])
def test_kerple_formulas(name, causal):
    enc, b = bias(name, 6, layer=2, causal=causal)
    p, a = enc.p.detach()[:, 2], enc.a.detach()[:, 2]
    for h in range(H):
        for i in range(6):
            for j in range(6):
                side = 0 if j <= i else 1
                want = (
                    0.0
                    if causal and side
                    else kerple_value(name, p[side, h], a[side, h], abs(i - j))
                )
                assert b[h, i, j].item() == pytest.approx(float(want), rel=1e-5, abs=1e-6)


def fire_oracle(enc, layer, length, causal):
    out = torch.empty(H, length, length)
    l0 = float(enc.l0)
    for i in range(length):
        for j in range(length):
            fn = enc.sides[0 if (causal or j <= i) else 1][layer]
            c, lam = float(fn.c), float(fn.lam)

            def psi(x: float, c: float = c) -> float:
                return math.log(abs(c * x) + 1)

            norm = psi(max(i if causal else length, abs(lam * l0))) + 1e-6
            x = torch.tensor([[psi(max(i - j, 0) if causal else abs(i - j)) / norm]])
            out[:, i, j] = fn.mlp(x)[0]
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("l0", [512.0, 2.0])
def test_fire_formula(causal, l0):
    torch.manual_seed(1)
    enc, b = bias("fire", 7, layer=1, causal=causal, l0=l0)
    with torch.no_grad():
        torch.testing.assert_close(b, fire_oracle(enc, 1, 7, causal))


def test_fire_leaky_relu_option():
    enc = build_encoding("fire", options={"mlp_activation": "leaky_relu"})
    assert isinstance(enc.sides[1][4].mlp[1], torch.nn.LeakyReLU)


# -- translation invariance and left/right sides --------------------------------------------
OFFSET_ONLY = [(n, c) for n in ("alibi", "kerple", "kerple-power", "t5") for c in (False, True)]


@pytest.mark.parametrize(("name", "causal"), [*OFFSET_ONLY, ("fire", False)])  # fire: fixed T
def test_bias_depends_only_on_offset(name, causal):
    _, b = bias(name, 30, causal=causal, **({"l0": 4.0} if name == "fire" else {}))
    torch.testing.assert_close(b[:, 1:, 1:], b[:, :-1, :-1], rtol=0, atol=0)


def test_causal_fire_is_not_offset_only_below_l0():
    _, b = bias("fire", 30, causal=True, l0=4.0)  # negative control for the check above
    assert not torch.allclose(b[:, 1:, 1:], b[:, :-1, :-1])


SIDED = ["kerple", "kerple-power", "fire", "t5"]


def off_diagonal_symmetric(b):
    eye = torch.eye(b.shape[-1], dtype=torch.bool)
    return torch.allclose(b.masked_fill(eye, 0), b.transpose(-1, -2).masked_fill(eye, 0))


@pytest.mark.parametrize("name", SIDED)
def test_tie_init_gives_symmetric_start(name):
    torch.manual_seed(0)
    _, tied = bias(name, 9, tie_init=True)
    _, free = bias(name, 9)
    assert off_diagonal_symmetric(tied)
    assert not off_diagonal_symmetric(free)


def copy_left_side(bidirectional, causal):
    """Copy the left parameter set of a bidirectional encoding into its causal twin."""
    with torch.no_grad():
        for name, param in causal.named_parameters():
            source = dict(bidirectional.named_parameters())[name]
            if name.startswith("sides."):
                param.copy_(source)  # fire: the causal module list holds only side 0
            else:
                param.copy_(source[:1])


@pytest.mark.parametrize("name", SIDED)
def test_left_half_equals_causal_form(name):
    torch.manual_seed(0)
    bidirectional = build_encoding(name)
    causal = build_encoding(name, causal=True)
    copy_left_side(bidirectional, causal)
    length = 150  # beyond T5's max_distance; below FIRE's L0 so both normalisers agree
    lower = torch.ones(length, length, dtype=torch.bool).tril()
    with torch.no_grad():
        for layer in (0, 4):
            b = bidirectional.bias(layer, length, CPU, None)
            c = causal.bias(layer, length, CPU, None)
            torch.testing.assert_close(b[:, lower], c[:, lower])


# -- kerple clamping ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["kerple", "kerple-power"])
def test_kerple_clamp_is_seen_by_forward_without_gradient(name):
    enc = build_encoding(name).double()
    with torch.no_grad():
        enc.p.fill_(0.001)
        enc.a.fill_(0.005)
        if name == "kerple-power":
            enc.p[:, 1].fill_(5.0)  # above the power kernel's upper clamp of 2
    enc.begin_forward()  # the encoder calls it at the start of every forward
    b0 = enc.bias(0, 5, CPU, None)
    b1 = enc.bias(1, 5, CPU, None)
    enc.begin_forward()  # the next forward's clamp must not break this one's graph
    (b0.sum() + b1.sum()).backward()
    assert torch.all(enc.p.detach()[:, 0] == 0.01) and torch.all(enc.a.detach() == 0.01)
    if name == "kerple-power":
        assert torch.all(enc.p.detach()[:, 1] == 2.0)
    assert torch.all(enc.p.detach()[:, 2] == 0.01)  # every layer clamped at the start
    n = torch.arange(5.0, dtype=torch.float64)
    d = (n[None, :] - n[:, None]).abs()
    p1 = 0.01 if name == "kerple" else 2.0
    want = (lambda p: -p * torch.log1p(0.01 * d)) if name == "kerple" else (lambda p: -0.01 * d**p)
    torch.testing.assert_close(b0[0], want(0.01))
    torch.testing.assert_close(b1[0], want(p1))
    # A clamp inside autograd would give zero gradient below the bound; this one passes it.
    assert torch.all(enc.p.grad[:, :2] != 0) and torch.all(torch.isfinite(enc.p.grad))
    assert torch.all(enc.p.grad[:, 2:] == 0)


def test_kerple_power_zero_distance_gradient_is_finite():
    enc = build_encoding("kerple-power")
    b = enc.bias(0, 4, CPU, None)
    diagonal = b.diagonal(dim1=-2, dim2=-1)
    diagonal.sum().backward(retain_graph=True)
    assert torch.all(enc.p.grad == 0) and torch.all(torch.isfinite(enc.a.grad))
    enc.zero_grad()
    b.sum().backward()
    assert torch.all(torch.isfinite(enc.p.grad)) and torch.all(enc.p.grad[:, 0] != 0)


# -- learned --------------------------------------------------------------------------------
def test_learned_longer_than_table_is_a_config_error():
    enc = build_encoding("learned", options={"max_length": 16})
    assert enc.max_length == 16 and enc.embed(16, CPU, None).shape == (16, 64)
    with pytest.raises(ConfigError, match="max_length"):
        enc.embed(17, CPU, None)
    model = Encoder(3, 3, enc)
    with pytest.raises(ConfigError):
        model(torch.zeros(1, 14, dtype=torch.long), 3)


def test_learned_table_init_is_truncated_normal():
    table = build_encoding("learned").table.detach()
    assert table.abs().max() <= 2.0 and 0.8 < table.std() < 0.95  # ≈ 0.88σ, not renormalised


# -- randomized draws -------------------------------------------------------------------------
def draws(enc, layer, length, generator):
    """The draw behind one hook call: positions (π) or distances ([0, p_1, …])."""
    if enc.absolute:
        return enc.draw(length, CPU, generator)
    ctx = enc.prepare(layer, length, CPU, generator)
    return ctx.positions[length - 1 :] if enc.name == "rand-relative" else ctx.positions


RANDOMIZED = ["rand-sinusoidal", "rand-learned", "rand-rope", "rand-alibi", "rand-relative"]


@pytest.mark.parametrize("name", RANDOMIZED)
def test_randomized_draws(name):
    enc = build_encoding(name)
    length, limit = 40, 2048
    assert enc.randomized and not enc.shift_invariant and enc.max_length == limit
    g = gen(7)
    first = draws(enc, 0, length, g)
    second_layer = draws(enc, 1, length, g)
    for d in (first, second_layer):
        assert d.shape == (length,) and bool((d.diff() > 0).all()) and d.max() < limit
        assert d.min() >= 0 and (enc.absolute or name == "rand-rope" or d[0] == 0)
    assert not torch.equal(first, second_layer)  # layers and successive calls differ
    torch.manual_seed(123)  # global RNG is never used
    assert torch.equal(draws(enc, 0, length, gen(7)), first)
    assert not torch.equal(draws(enc, 0, length, gen(8)), first)
    enc.eval()
    assert torch.equal(draws(enc, 0, length, gen(7)), first)


@pytest.mark.parametrize("name", ["rand-sinusoidal", "rand-learned"])
def test_randomized_embeddings_use_their_draw(name):
    enc = build_encoding(name)
    positions = enc.draw(12, CPU, gen(5))
    if name == "rand-sinusoidal":
        expected = sinusoid(positions, 64, exact=True)
    else:
        expected = enc.table[positions]
    torch.testing.assert_close(enc.embed(12, CPU, gen(5)), expected)


@pytest.mark.parametrize("name", RANDOMIZED)
def test_randomized_active_in_eval_and_shared_across_batch(name):
    torch.manual_seed(0)
    model = Encoder(3, 3, build_encoding(name)).double().eval()
    x = torch.randint(0, 3, (1, 6), generator=gen(0)).repeat(3, 1)
    with torch.no_grad():
        out = model(x, 3, generator=gen(1))
        again = model(x, 3, generator=gen(1))
        other = model(x, 3, generator=gen(2))
    assert torch.equal(out, again) and not torch.allclose(out, other)
    # float64 and a rounding-level tolerance: a GEMM's row blocking may round rows unalike
    torch.testing.assert_close(out[1:], out[:1].expand(2, 3, 3), rtol=0, atol=1e-12)


def test_randomized_draw_beyond_range_is_a_config_error():
    enc = build_encoding("rand-rope", options={"max_length": 10})
    with pytest.raises(ConfigError):
        enc.prepare(0, 11, CPU, gen(0))


# -- cope -----------------------------------------------------------------------------------
def cope_oracle(enc, layer, logits, q, causal):
    npos = enc.e.shape[-1]
    out = logits.clone()
    batch, heads, length, _ = logits.shape
    for b in range(batch):
        for h in range(heads):
            for i in range(length):
                for j in range(length):
                    if j <= i:
                        span, side = range(j, i + 1), 0
                    else:
                        span, side = (range(0) if causal else range(i, j + 1)), 1
                    p = min(sum(torch.sigmoid(logits[b, h, i, t]).item() for t in span), npos - 1)
                    z = q[b, h, i] @ enc.e[0 if causal else side, layer]
                    lo, hi = math.floor(p), math.ceil(p)
                    out[b, h, i, j] += (p - lo) * z[hi] + (1 - (p - lo)) * z[lo]
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_cope_matches_loop_oracle(causal):
    torch.manual_seed(0)
    enc = build_encoding("cope", causal=causal, options={"npos": 4}).double()
    with torch.no_grad():
        enc.e.normal_()
    length = 6
    logits = 3 * torch.randn(2, H, length, length, dtype=torch.float64)  # some p hit npos-1
    q = torch.randn(2, H, length, D, dtype=torch.float64)
    ctx = enc.prepare(2, length, CPU, None)
    out = enc.from_logits(2, ctx, logits, q, slice(None))
    torch.testing.assert_close(out, cope_oracle(enc, 2, logits, q, causal))
    rows = enc.from_logits(2, ctx, logits[:, :, 2:5], q, slice(2, 5))
    torch.testing.assert_close(rows, out[:, :, 2:5])
    k = torch.randn(2, H, length, D, dtype=torch.float64)  # scores = from_logits(q·kᵀ/√d)
    want = enc.from_logits(2, ctx, q @ k.transpose(-1, -2) / math.sqrt(D), q, slice(None))
    torch.testing.assert_close(enc.scores(2, ctx, q, k), want)


@pytest.mark.parametrize("name", ["sinusoidal", "rand-sinusoidal"])
def test_sinusoid_tables_are_built_in_float64(name):
    """The RPE reference builds its sin/cos tables in float64 (numpy) and casts once; a
    float32 build is up to 7e-5 off near position 2047. Both must match to float32 rounding."""
    import numpy as np

    enc = build_encoding(name)
    if name == "sinusoidal":
        positions = np.arange(2048)
        got = enc.embed(2048, CPU, None)
    else:
        drawn = enc.draw(64, CPU, gen(3))
        positions = drawn.numpy()
        got = enc.embed(64, CPU, gen(3))
    omega = 10000.0 ** (-2.0 * np.arange(32) / 64)
    angles = positions[:, None].astype(np.float64) * omega[None, :]
    want = torch.from_numpy(np.concatenate([np.sin(angles), np.cos(angles)], -1))
    assert (got.double() - want).abs().max().item() <= 1e-7
