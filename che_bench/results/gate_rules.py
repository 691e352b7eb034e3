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


def paired(
    pairs: list[tuple[RunRecord, RunRecord | None]], field: str
) -> tuple[list[float], list[float]] | None:
    """``field`` of the baseline and of the current runs, seed by seed; None unless every
    run that finished has it on both sides."""
    values = [(getattr(b, field), getattr(n, field)) for b, n in pairs if n is not None]
    if not values or any(b is None or n is None for b, n in values):
        return None
    return [b for b, _ in values], [n for _, n in values]


def significant(shift: float, p: float | None, minimum: float, level: float) -> bool:
    """The gate's rule for one quantity: moved the bad way by more than ``minimum`` and
    Welch's p below ``level`` (the move alone decides when there is no test)."""
    return shift > minimum and (p is None or p < level)


def p_text(p: float | None) -> str:
    return "" if p is None else f", p {p:.2g}"


def in_distribution_drop(
    pairs: list[tuple[RunRecord, RunRecord | None]], min_drop: float, level: float
) -> str | None:
    """The same rule applied to the accuracy at the training lengths, where both sides
    measured it: an encoding that never extrapolates (learned, sinusoidal) scores at chance
    on the test lengths, so only this can see it break. Why it regressed, or None."""
    sides = paired(pairs, "train_score")
    if sides is None:
        return None
    before, after = sides
    drop = (sum(before) - sum(after)) / len(before)
    p = p_lower(before, after)
    if significant(drop, p, min_drop, level):
        return f"in-distribution accuracy down {100 * drop:.1f} points{p_text(p)}"
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
    sides = paired(pairs, "final_loss")
    if sides is None:
        return None
    before, after = sides
    mean_before = sum(before) / len(before)
    rise = (sum(after) / len(after) - mean_before) / abs(mean_before or 1.0)
    p = p_lower([-b for b in before], [-a for a in after])
    if significant(rise, p, min_rise, level):
        return f"final training loss {100 * rise:+.1f}% up{p_text(p)}"
    return None
