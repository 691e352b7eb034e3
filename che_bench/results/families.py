"""Encoding families for figures: a stable order and a stable colour per family.

An encoding label (``dape-kerple``, ``rand-relative[lookup=intended]``) is read as a
*variant* of a *base* encoding: ``dape-``/``dapev2-`` are the DAPE forms of their base
(Zheng et al., 2024), ``rand-`` the randomized form (Ruoss et al., ACL 2023), and
``dape-rand-alibi`` the DAPE form of the randomized one. The family is the registry's
``family`` of the base (``kerple-power`` is a ``kerple``, ``sinusoidal`` an ``absolute``),
or the base name itself when the registry does not know it. Every figure gives one family
one hue, the same in every figure, and tells the variants apart by line style (curves).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

#: Families in the order figures show them: no position, absolute, rotary, relative
#: biases, then the learned/contextual ones; any other family follows, alphabetically.
FAMILY_ORDER = ("nope", "absolute", "rope", "relative", "t5", "alibi", "kerple", "fire", "cope")

#: One hue per known family (matplotlib's tab10), fixed so a family keeps its colour.
FAMILY_COLOURS = {
    "nope": "#7f7f7f",
    "absolute": "#8c564b",
    "rope": "#1f77b4",
    "relative": "#2ca02c",
    "t5": "#bcbd22",
    "alibi": "#d62728",
    "kerple": "#9467bd",
    "fire": "#ff7f0e",
    "cope": "#17becf",
}
#: Hues for families outside :data:`FAMILY_COLOURS`, picked by a hash of the name.
OTHER_COLOURS = ("#e377c2", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")

VARIANTS = ("plain", "rand", "dape", "dapev2", "dape-rand", "dapev2-rand")
#: Line style per variant (matplotlib dash patterns).
LINESTYLES = {
    "plain": "-",
    "rand": (0, (5, 2)),
    "dape": "-.",
    "dapev2": (0, (1, 1.5)),
    "dape-rand": (0, (6, 1.5, 1, 1.5, 1, 1.5)),
    "dapev2-rand": (0, (2, 2)),
}


@dataclass(frozen=True)
class Member:
    """One encoding label read as family, base and variant."""

    label: str
    family: str
    base: str
    variant: str

    @property
    def sort_key(self) -> tuple[int, str, str, int, str]:
        known = self.family in FAMILY_ORDER
        rank = FAMILY_ORDER.index(self.family) if known else len(FAMILY_ORDER)
        return rank, self.family, self.base, VARIANTS.index(self.variant), self.label


def registry_family(base: str) -> str:
    """The registry's family of ``base``, or ``base`` when it is not registered here."""
    from che_bench.encodings.registry import get_encoding

    try:
        family = get_encoding(base).family
    except Exception:  # a row of a plugin not installed here: its name is its family
        return base
    return family if family and family not in ("dape", "randomized") else base


def member(label: str) -> Member:
    """Family, base and variant of an encoding label (options in ``[...]`` are ignored)."""
    name = label.split("[", 1)[0]
    dape = ""
    for prefix in ("dapev2-", "dape-"):
        if name.startswith(prefix):
            dape, name = prefix[:-1], name[len(prefix) :]
            break
    rand = name.startswith("rand-")
    base = name[len("rand-") :] if rand else name
    variant = "-".join(p for p in (dape, "rand" if rand else "") if p) or "plain"
    return Member(label, registry_family(base), base, variant)


def ordered(labels: Iterable[str]) -> list[Member]:
    """``labels`` as members, grouped by family in :data:`FAMILY_ORDER`, then by base and
    variant (plain, rand, dape, dapev2, ...)."""
    return sorted((member(label) for label in dict.fromkeys(labels)), key=lambda m: m.sort_key)


def family_colour(family: str) -> str:
    """The hue of ``family``: fixed for the known ones, hashed from the name otherwise."""
    known = FAMILY_COLOURS.get(family)
    return known or OTHER_COLOURS[zlib.crc32(family.encode()) % len(OTHER_COLOURS)]


def shade(colour: str, step: int) -> str:
    """``colour`` lightened towards white (steps 1, 2) or darkened (step 3, 4, ...), so the
    members of one family that share a line style stay apart."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    if step == 0:
        return colour
    if step <= 2:
        t = 0.3 * step
        r, g, b = (round(c + (255 - c) * t) for c in (r, g, b))
    else:
        t = min(0.7, 0.25 * (step - 2))
        r, g, b = (round(c * (1 - t)) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def styles(members: Iterable[Member]) -> dict[str, tuple[str, object]]:
    """label → (colour, line style): the family's hue, the variant's line style, and a
    shade for each further member of a family with the same variant."""
    seen: dict[tuple[str, str], int] = {}
    out = {}
    for m in members:
        step = seen.get((m.family, m.variant), 0)
        seen[(m.family, m.variant)] = step + 1
        out[m.label] = (shade(family_colour(m.family), step), LINESTYLES[m.variant])
    return out


def variant_key(members: Iterable[Member]) -> str:
    """``"; line style: plain (solid), rand- (dashed)"`` for the variants drawn."""
    names = {"plain": "plain (solid)", "rand": "rand- (dashed)", "dape": "dape- (dash-dot)",
             "dapev2": "dapev2- (dotted)", "dape-rand": "dape-rand- (dash-dot-dot)",
             "dapev2-rand": "dapev2-rand- (short dashes)"}  # fmt: skip
    drawn = {m.variant for m in members}
    shown = [names[v] for v in names if v in drawn]
    return "; line style: " + ", ".join(shown) if len(shown) > 1 else ""
