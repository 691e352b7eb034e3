"""The DAPE mixer's block size changes how it runs, never its numbers: cache-sized blocks on
the CPU, one block per layer on a GPU where memory allows."""

from __future__ import annotations

import pytest
import torch
from test_encodings_registry import gen, make_model, tokens

from che_bench.encodings.dape import mixer


def outputs_and_grads(name: str, pairs: int, monkeypatch) -> list[torch.Tensor]:
    monkeypatch.setattr(mixer, "block_pairs", lambda device: pairs)
    model = make_model(name).eval()
    out = model(tokens(3, 30), 10)
    (out * torch.randn(out.shape, generator=gen(2))).sum().backward()
    return [out.detach()] + [p.grad for p in model.parameters()]


@pytest.mark.parametrize("name", ["dape-kerple", "dapev2-kerple"])
def test_every_block_size_gives_the_same_numbers(name: str, monkeypatch) -> None:
    default = outputs_and_grads(name, mixer.BLOCK_PAIRS, monkeypatch)
    for pairs in (7, 1 << 30):  # blocks inside one query row; the whole layer as one block
        other = outputs_and_grads(name, pairs, monkeypatch)
        for a, b in zip(default, other):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_gpu_blocks_follow_free_memory(monkeypatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert mixer.block_pairs(cpu) == mixer.BLOCK_PAIRS
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (200 * 2**30, 0))
    assert mixer.block_pairs(cuda) == mixer.GPU_MAX_PAIRS  # a whole training layer
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**30, 0))
    assert mixer.BLOCK_PAIRS < mixer.block_pairs(cuda) < mixer.GPU_MAX_PAIRS
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**20, 0))
    assert mixer.block_pairs(cuda) == mixer.BLOCK_PAIRS  # never below the CPU's size
