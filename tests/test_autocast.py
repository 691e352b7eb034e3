"""bf16 autocast, registry-driven: every registered encoding (plugins included) runs forward
and backward under ``torch.autocast(dtype=torch.bfloat16)``, as ``precision: bf16`` runs it,
and agrees with its fp32 self to bf16 precision (bf16 keeps 8 significant bits).

Until the DAPE mixer (Zheng et al., arXiv 2405.14722) ran in the logits' dtype, every DAPE
variant failed here ("Expected out tensor to have dtype float, but got BFloat16").
"""

from __future__ import annotations

import pytest
import torch
from test_encodings_registry import NAMES, gen, make_model, tokens
from torch.nn import functional as F

COSINE = 0.95  # bf16 gradients vs fp32 (measured ≥ 0.979 over the registry)


def logits_and_grads(model, inputs, weights, bf16: bool) -> tuple[torch.Tensor, dict]:
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(inputs, 4, generator=gen(1))
    (out.float() * weights).sum().backward()
    return out, {n: p.grad for n, p in model.named_parameters()}


def cosine(a: dict, b: dict, names: list[str]) -> float:
    flat = [torch.cat([g[n].flatten() for n in names]) for g in (a, b)]
    return F.cosine_similarity(*flat, dim=0).item()


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_forward_backward(name: str, causal: bool) -> None:
    model = make_model(name, causal=causal).eval()  # no dropout: fp32 and bf16 comparable
    inputs, weights = tokens(2, 12), torch.randn(2, 4, 3, generator=gen(2))
    reference, grads32 = logits_and_grads(model, inputs, weights, bf16=False)
    out, grads = logits_and_grads(model, inputs, weights, bf16=True)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    scale = reference.abs().max().item()
    assert (out.float() - reference).abs().max().item() <= 0.08 * scale + 0.01
    for pname, grad in grads.items():
        assert grad is not None and grad.dtype == torch.float32, pname
        assert torch.isfinite(grad).all(), pname
    # Whole-model and encoding-only directions (a single tensor's can be pure rounding: a
    # mixer's output bias shifts every logit of a head, which the softmax ignores).
    assert cosine(grads32, grads, list(grads)) >= COSINE
    own = [n for n in grads if n.startswith("encoding.")]
    if own:
        assert cosine(grads32, grads, own) >= COSINE, name
