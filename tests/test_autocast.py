"""bf16 autocast, registry-driven: every registered encoding (plugins included) runs forward
and backward under ``torch.autocast(dtype=torch.bfloat16)``, as ``precision: bf16`` runs it.

Until the DAPE mixer ran in the logits' dtype, every DAPE variant failed here ("Expected out
tensor to have dtype float, but got BFloat16").
"""

from __future__ import annotations

import pytest
import torch
from test_encodings_registry import NAMES, gen, make_model, tokens


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_forward_backward(name: str, causal: bool) -> None:
    model = make_model(name, causal=causal).eval()  # no dropout: fp32 and bf16 comparable
    inputs = tokens(2, 12)
    with torch.no_grad():
        reference = model(inputs, 4, generator=gen(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(inputs, 4, generator=gen(1))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    scale = reference.abs().max().item()
    assert (out.float() - reference).abs().max().item() <= 0.1 * scale + 0.05
    (out.float() * torch.randn(out.shape, generator=gen(2))).sum().backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None and param.grad.dtype == torch.float32, pname
        assert torch.isfinite(param.grad).all(), pname
