"""Registry generation: ``dape-<b>`` (V1) and ``dapev2-<b>`` (V2, K = 3) for every encoding
with a bias, built-in or plugin, and for the bias-free nope and rope (the official ``nope_c``,
``rope_dapev1`` and their V2 twins).

It listens on the registry, so it sees every entry whatever the import order: those
registered before this module is imported and those registered after it.
"""

from __future__ import annotations

import warnings
from typing import Any

from che_bench.encodings.dape.wrapper import DAPE, NO_BIAS, Form
from che_bench.encodings.registry import ENCODINGS, EncodingEntry, OptionSpec
from che_bench.errors import PluginError

NO_BIAS_BASES = ("nope", "rope")  # the bias-free bases that get dape-/dapev2- entries
HIDDEN = OptionSpec("hidden", int, 32)
FORM = OptionSpec("form", Form, "concat_residual")
KERNEL = OptionSpec("kernel", int, 3)
_GENERATED: set[str] = set()


def _factory(base: EncodingEntry, version: int, form: str | None):
    """The generated entry's factory: DAPE over ``base`` built with its own options."""

    def build(dims, *, causal: bool = False, **options: Any) -> DAPE:
        own = {k: options.pop(k) for k in ("hidden", "form", "kernel") if k in options}
        own.setdefault("form", form)
        return DAPE(base.build(dims, causal=causal, **options), version=version, **own)

    return build


def _generate(name: str, entry: EncodingEntry) -> None:
    """Registry listener: ``dape-<name>`` and ``dapev2-<name>`` for every wrappable entry."""
    if name.startswith("dape") or not (entry.has_bias or name in NO_BIAS_BASES):
        return
    what = f"over {name}: {entry.description}" if entry.has_bias else f"over {name}, no bias"
    inputs = "[A‖B]" if entry.has_bias else "A"
    variants = {
        "dape": (1, [HIDDEN, FORM] if entry.has_bias else [HIDDEN], f"MLP over {inputs}"),
        "dapev2": (2, [HIDDEN, KERNEL], f"(1, K) convs over {inputs}"),
    }
    for prefix, (version, specs, how) in variants.items():
        generated = f"{prefix}-{name}"
        clash = {s.name for s in specs} & set(entry.options)
        if clash:
            warnings.warn(f"not generating {generated}: option clash {clash}", stacklevel=2)
            continue
        new = EncodingEntry(
            name=generated,
            factory=_factory(entry, version, None if entry.has_bias else NO_BIAS),
            description=f"DAPE V{version} ({how}) {what}",
            options={**entry.options, **{s.name: s for s in specs}},
            has_bias=entry.has_bias,
            family="dape",
            hashed_if_changed=entry.hashed_if_changed,
        )
        try:
            ENCODINGS.add(generated, new, replace=generated in _GENERATED)
        except PluginError as exc:  # a hand-registered entry of that name wins
            warnings.warn(f"not generating {generated}: {exc}", stacklevel=2)
            continue
        _GENERATED.add(generated)


ENCODINGS.on_register(_generate)
