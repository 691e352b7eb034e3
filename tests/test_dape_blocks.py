"""The DAPE mixer's block size changes how it runs, never its numbers: cache-sized blocks on
the CPU, one block per layer on a GPU where memory allows (Zheng et al., arXiv 2405.14722
and 2410.04798 define f([A‖B]) per pair, so any partition of the pairs is exact)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from test_encodings_registry import gen, make_model, tokens

from che_bench.encodings.dape import mixer

BATCH, INPUT, OUTPUT = 8, 60, 10  # T = 70: 8·70² = 39,200 pairs per layer > 2**15
TINY = 3 * (INPUT + OUTPUT)  # 23 blocks of 3 query rows, then one of 1 (one sample each)
WHOLE = 1 << 30


def run(name: str, causal: bool, pairs: int, monkeypatch) -> tuple[list[torch.Tensor], int]:
    """Logits and every parameter's gradient with ``pairs`` per block, and the blocks used."""
    blocks, seen = mixer._blocks, []

    def spy(*args: int) -> list[tuple[slice, slice]]:
        seen.append(len(blocks(*args)))
        return blocks(*args)

    monkeypatch.setattr(mixer, "block_pairs", lambda device: pairs)
    monkeypatch.setattr(mixer, "_blocks", spy)
    model = make_model(name, causal=causal).eval()
    out = model(tokens(BATCH, INPUT), OUTPUT)
    (out * torch.randn(out.shape, generator=gen(2))).sum().backward()
    return [out.detach()] + [p.grad for p in model.parameters()], max(seen)


@pytest.mark.parametrize(
    ("name", "causal"), [("dape-kerple", False), ("dapev2-kerple", False), ("dapev2-kerple", True)]
)  # causal V2 masks A per block (``keep``)
def test_every_block_size_gives_the_same_numbers(name: str, causal: bool, monkeypatch) -> None:
    default, count = run(name, causal, mixer.BLOCK_PAIRS, monkeypatch)
    assert count == 2  # 2**15 pairs: samples 0-5, then 6-7
    for pairs, expected in ((TINY, BATCH * 24), (WHOLE, 1)):
        other, count = run(name, causal, pairs, monkeypatch)
        assert count == expected
        assert len(other) == len(default)
        for a, b in zip(default, other):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_blocks_cover_every_pair_once() -> None:
    for batch, rows, length, pairs in ((8, 70, 70, 1 << 15), (3, 70, 70, 210), (2, 5, 9, 7)):
        cover = torch.zeros(batch, rows, dtype=torch.long)
        for samples, query_rows in mixer._blocks(batch, rows, length, pairs):
            cover[samples, query_rows] += 1
            assert cover[samples, query_rows].numel() * length <= max(pairs, length)
        assert (cover == 1).all()


def test_gpu_blocks_follow_the_gpu_memory(monkeypatch) -> None:
    """A GPU's block holds a tenth of its memory, capped at a whole training layer and never
    below the CPU's size. Its total memory, not the free memory: the gradients sum over
    blocks, so a size that followed other runs' allocations would change the numbers."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 1)
    assert mixer.block_pairs(cpu) == mixer.BLOCK_PAIRS == 1 << 15
    asked, free = [], iter(range(1, 100))

    def memory(gib: float):
        def properties(device=None) -> SimpleNamespace:
            asked.append(device)
            return SimpleNamespace(total_memory=int(gib * 2**30))

        return properties

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (next(free) << 20, 1 << 40))
    monkeypatch.setattr(torch.cuda, "get_device_properties", memory(200))
    assert mixer.block_pairs(cuda) == mixer.GPU_MAX_PAIRS  # capped: a whole training layer
    assert mixer.GPU_MAX_PAIRS >= 128 * 80 * 80  # B = 128, N = 40 (T = 80) in one block
    assert mixer.block_pairs(cuda) == mixer.GPU_MAX_PAIRS  # whatever is free now
    monkeypatch.setattr(torch.cuda, "get_device_properties", memory(1))
    assert mixer.block_pairs(cuda) == 2**30 // 10 // mixer.GPU_BYTES_PER_PAIR  # a tenth of it
    monkeypatch.setattr(torch.cuda, "get_device_properties", memory(2**-10))
    assert mixer.block_pairs(cuda) == mixer.BLOCK_PAIRS  # never below the CPU's size
    assert asked == [cuda] * 4  # the block's own device
