"""``rand-relative --pe-opt lookup=released``: the randomized Transformer-XL encoding as the
released RPE code computes it (Ruoss et al. 2023; RPE issue #2), checked against a table
built by hand at small L and against that code's procedure written out in numpy.

The released code, for T tokens and range L:
  1. draws p_1 < … < p_{T-1} from {1..L-1} (the same draw as the intended form);
  2. lays out 2T signed indices [0, -p_{T-1}, …, -p_1, 0, p_1, …, p_{T-1}] and adds L;
  3. reads a sinusoid table that has rows for positions 0..L-1 only, and JAX clamps any
     index ≥ L to L-1;
  4. rel-shifts the [T, 2T] logits so that (i, j) reads column T + (j - i).
So the query itself (δ = 0) and every key to its right (δ > 0, index L + p_δ) get s(L-1),
and a left key at distance d (column T - d, index L - p_d) gets s(L - p_d).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from che_bench.config import resolve
from che_bench.encodings import build_encoding
from che_bench.errors import ConfigError
from che_bench.model import Encoder

CPU = torch.device("cpu")
H, D, LIMIT, T = 8, 8, 16, 5


def drawn(seed: int) -> list[int]:
    """[0, p_1, …, p_{T-1}]: what rand-relative draws from a generator seeded ``seed``."""
    enc = build_encoding("rand-relative", options={"max_length": LIMIT})
    return enc.draw_distances(T, CPU, torch.Generator().manual_seed(seed)).tolist()


def test_released_positions_equal_the_hand_built_table():
    enc = build_encoding("rand-relative", options={"max_length": LIMIT, "lookup": "released"})
    p = drawn(3)
    ctx = enc.prepare(0, T, CPU, torch.Generator().manual_seed(3))
    # index δ + T - 1 for δ = -4..4: left keys read s(L - p_d), the rest s(L - 1) = s(15)
    expected = [LIMIT - p[4], LIMIT - p[3], LIMIT - p[2], LIMIT - p[1], 15, 15, 15, 15, 15]
    assert ctx.positions.tolist() == expected
    intended = build_encoding("rand-relative", options={"max_length": LIMIT})
    same_draw = intended.prepare(0, T, CPU, torch.Generator().manual_seed(3)).positions
    assert same_draw.tolist() == [-p[4], -p[3], -p[2], -p[1], 0, p[1], p[2], p[3], p[4]]


def reference_logits(enc, layer: int, q: np.ndarray, k: np.ndarray, p: list[int]) -> np.ndarray:
    """The released procedure, step by step, in float32 as JAX runs it; [B, H, T, T]."""
    right = np.array(p[1:])
    indexes = np.concatenate([[0], -right[::-1], [0], right]) + LIMIT  # 2T of them
    freqs = np.arange(0, 64, 2)
    angles = np.einsum("i,j->ij", np.arange(LIMIT), 1e4 ** (-freqs / 64))
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=-1).astype(np.float32)
    encodings = table[np.clip(indexes, 0, LIMIT - 1)]  # JAX gathers clamp
    w_r = enc.w_r[layer].detach().numpy()
    u, v = enc.u[layer].detach().numpy(), enc.v[layer].detach().numpy()
    relative_keys = (encodings @ w_r.T).reshape(2 * T, H, D)
    content = np.einsum("bhtd,bhTd->bhtT", q + u[:, None], k)
    by_column = np.einsum("bhtd,Thd->bhtT", q + v[:, None], relative_keys)  # [B, H, T, 2T]
    shifted = np.empty_like(content)
    for i in range(T):  # the rel-shift: (i, j) reads column T + j - i
        shifted[:, :, i] = by_column[:, :, i, T - i : 2 * T - i]
    return (content + shifted) / math.sqrt(D)


def test_released_logits_equal_the_reference_procedure():
    torch.manual_seed(0)
    enc = build_encoding("rand-relative", options={"max_length": LIMIT, "lookup": "released"})
    q, k = torch.randn(2, 2, H, T, D)
    for layer in (0, 3):
        ctx = enc.prepare(layer, T, CPU, torch.Generator().manual_seed(11))
        ours = enc.scores(layer, ctx, q, k).detach().numpy()
        theirs = reference_logits(enc, layer, q.numpy(), k.numpy(), drawn(11))
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
        # δ >= 0 share one vector: the positional part of the upper triangle is constant
        # along each row once the content term is removed
        content = torch.einsum("bhtd,bhsd->bhts", q + enc.u[layer][:, None], k) / math.sqrt(D)
        positional = (enc.scores(layer, ctx, q, k) - content).detach()
        for i in range(T):
            row = positional[:, :, i, i:]
            torch.testing.assert_close(row, row[..., :1].expand_as(row), atol=1e-6, rtol=0)


def test_released_lookup_differs_from_the_intended_one_and_trains():
    torch.manual_seed(0)
    q, k = torch.randn(2, 1, H, T, D)
    logits = {}
    for lookup in ("intended", "released"):
        torch.manual_seed(1)
        enc = build_encoding("rand-relative", options={"lookup": lookup})
        ctx = enc.prepare(0, T, CPU, torch.Generator().manual_seed(2))
        logits[lookup] = enc.scores(0, ctx, q, k)
    assert (logits["intended"] - logits["released"]).abs().max() > 1e-3
    torch.manual_seed(0)
    enc = build_encoding("rand-relative", options={"lookup": "released"})
    model = Encoder(3, 2, enc)
    out = model(torch.randint(0, 3, (4, 400)), 1, generator=torch.Generator().manual_seed(0))
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_lookup_option_is_validated_and_hashed_only_when_released():
    with pytest.raises(ConfigError, match="lookup.*intended|released"):
        resolve("even_pairs", "rand-relative", preset="smoke",
                encoding_options={"lookup": "clamped"})  # fmt: skip
    default = resolve("even_pairs", "rand-relative", preset="smoke")
    explicit = resolve("even_pairs", "rand-relative", preset="smoke",
                       encoding_options={"lookup": "intended"})  # fmt: skip
    released = resolve("even_pairs", "rand-relative", preset="smoke",
                       encoding_options={"lookup": "released"})  # fmt: skip
    assert default.encoding_options["lookup"] == "intended"  # recorded in the row
    assert default.config_hash == explicit.config_hash != released.config_hash
    without = {k: v for k, v in default.encoding_options.items() if k != "lookup"}
    older = type(default).from_dict({**default.to_dict(), "encoding_options": without})
    assert older.config_hash == default.config_hash  # rows stored before the option
