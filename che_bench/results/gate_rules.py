"""The regression gate's rules for one slice, beyond its mean score: the band it prints,
the same test on the in-distribution accuracy, and what counts as drift."""

from __future__ import annotations

import math
from collections.abc import Sequence

from che_bench.results.record import RunRecord
from che_bench.results.welch import mean_var, p_lower, t_quantile


def significant_drop(before: Sequence[float], level: float, min_drop: float) -> float:
    """The smallest drop of the mean that the gate calls a regression, for the printed band:
    ``min_drop``, or the drop Welch's test needs at ``level`` if the current seeds spread
    as the baseline's do, whichever is larger."""
    n = len(before)
    if n < 2:
        return min_drop
    _, variance = mean_var(before)
    return max(min_drop, -t_quantile(level, 2 * (n - 1)) * math.sqrt(2 * variance / n))


def in_distribution_drop(
    pairs: list[tuple[RunRecord, RunRecord | None]], min_drop: float, level: float
) -> str | None:
    """The same rule applied to the accuracy at the training lengths, where both sides
    measured it: an encoding that never extrapolates (learned, sinusoidal) scores at chance
    on the test lengths, so only this can see it break. Why it regressed, or None."""
    seen = [(b.train_score, n.train_score) for b, n in pairs if n is not None]
    if not seen or any(b is None or n is None for b, n in seen):
        return None
    before, after = [b for b, _ in seen], [n for _, n in seen]
    drop = (sum(before) - sum(after)) / len(seen)
    p = p_lower(before, after)
    if drop > min_drop and (p is None or p < level):
        where = "" if p is None else f", p {p:.2g}"
        return f"in-distribution accuracy {100 * drop:+.1f} points down{where}"
    return None


def drift(base: RunRecord, now: RunRecord, loss_rtol: float) -> list[str]:
    """What changed in a run whose score the gate accepts: its final loss beyond
    ``loss_rtol`` (relative), and how many per-length accuracies moved and by how much."""
    notes = []
    seed = f"seed {base.seed}"
    old, new = base.final_loss, now.final_loss
    if old is not None and new is not None and abs(new - old) > loss_rtol * abs(old):
        change = (new - old) / abs(old) if old else math.inf
        notes.append(f"{seed}: training loss drifted {old:.6g} → {new:.6g} ({change:+.2e})")
    moved = {
        k: (now.accuracy_by_length.get(k) or 0.0) - (v or 0.0)
        for k, v in base.accuracy_by_length.items()
        if now.accuracy_by_length.get(k) != v
    }
    if moved:
        largest = max(moved.values(), key=abs)
        notes.append(
            f"{seed}: accuracy changed at {len(moved)} of {len(base.accuracy_by_length)} "
            f"lengths (largest {100 * largest:+.1f} points)"
        )
    return notes


def loss_rise(
    pairs: list[tuple[RunRecord, RunRecord | None]], min_rise: float, level: float
) -> str | None:
    """The rule on the final training loss: up by more than ``min_rise`` (relative to the
    baseline's mean) and a one-sided Welch p < ``level``. Seeds' final losses spread far
    less than their scores, so this sees an encoding that trains worse (ALiBi with a tenth
    of its slopes) while its score is still inside the score's band. Why, or None."""
    losses = [(b.final_loss, n.final_loss) for b, n in pairs if n is not None]
    if not losses or any(b is None or n is None for b, n in losses):
        return None
    before, after = [b for b, _ in losses], [n for _, n in losses]
    mean_before = sum(before) / len(before)
    rise = (sum(after) / len(after) - mean_before) / abs(mean_before or 1.0)
    p = p_lower([-b for b in before], [-a for a in after])
    if rise > min_rise and (p is None or p < level):
        where = "" if p is None else f", p {p:.2g}"
        return f"final training loss {100 * rise:+.1f}% up{where}"
    return None
