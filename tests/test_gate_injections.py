"""The ci gate has teeth: deliberately broken encodings fail it by score on the shipped ci
grid, while a harmless change of float reduction order passes it (at most a drift warning).

Each case re-runs one encoding's ci slice (3 seeds, in-process) with the breakage patched
in and judges it against the committed baseline, exactly as ``che-bench check --pe NAME``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from che_bench.encodings.absolute import Sinusoidal
from che_bench.encodings.alibi import ALiBi
from che_bench.encodings.kerple import KerpleLog
from che_bench.presets import data_dir
from che_bench.results import check
from che_bench.running.runner import execute

BASELINE = data_dir("leaderboards") / "baseline-ci.jsonl"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gate(encoding: str) -> check.CheckReport:
    rows = [r for r in check.load_baseline(BASELINE) if r.encoding == encoding]
    assert len(rows) >= 3, f"{BASELINE.name} has no 3-seed slice of {encoding}"
    current = {r.run_key: r for r in (execute(check.rebuild(b), run_dir=None) for b in rows)}
    return check.compare(rows, current)


def scaled_alibi(monkeypatch) -> None:
    original = ALiBi.bias
    monkeypatch.setattr(ALiBi, "bias", lambda self, *args: 0.1 * original(self, *args))


def zeroed_kerple(monkeypatch) -> None:
    original = KerpleLog.begin_forward

    def zeroed(self) -> None:
        self.p.data.zero_()
        self.a.data.zero_()
        original(self)  # clamped to the floor, 0.01: the bias all but vanishes

    monkeypatch.setattr(KerpleLog, "begin_forward", zeroed)


def dape_without_bias(monkeypatch) -> None:
    """DAPE-Kerple fed B = 0: logits' = A + f(A, 0), DAPE over nothing. (Dropping the
    residual A + B instead is no breakage on this grid: f learns it back, the loss falls.)"""

    def no_bias(self, layer, length, device, generator):
        return torch.zeros(self.dims.num_heads, length, length, device=device)

    monkeypatch.setattr(KerpleLog, "bias", no_bias)


def positionless_sinusoidal(monkeypatch) -> None:
    """Sinusoidal adding nothing: no position at all. Its test score (below chance at this
    budget, as absolute encodings extrapolate) rises to nope's, so only its in-distribution
    accuracy and training loss can show the breakage, and the gate must judge them anyway."""
    original = Sinusoidal.embed
    monkeypatch.setattr(Sinusoidal, "embed", lambda self, *args: 0 * original(self, *args))


@pytest.mark.parametrize(
    ("encoding", "breakage"),
    [("alibi", scaled_alibi), ("kerple", zeroed_kerple), ("dape-kerple", dape_without_bias),
     ("sinusoidal", positionless_sinusoidal)],
)  # fmt: skip
def test_a_broken_encoding_fails_the_gate_by_score(encoding, breakage, monkeypatch):
    breakage(monkeypatch)
    outcome = gate(encoding)
    (slice_,) = outcome.slices
    print(slice_.line())
    assert slice_.status == "regressed", slice_.line()
    assert not outcome.ok and outcome.failing() == [slice_]


def test_a_reduction_order_change_passes_with_at_most_a_drift_warning(monkeypatch):
    original = F.cross_entropy

    def reordered(logits, targets, *args, **kwargs):
        if kwargs.get("reduction", "mean") != "mean" or args:
            return original(logits, targets, *args, **kwargs)
        losses = original(logits, targets, reduction="none")
        return losses.flip(0).sum() / losses.numel()  # the same mean, summed the other way

    monkeypatch.setattr(F, "cross_entropy", reordered)
    outcome = gate("alibi")
    (slice_,) = outcome.slices
    print(slice_.line())
    assert slice_.status in ("same", "drifted"), slice_.line()
    assert outcome.ok
