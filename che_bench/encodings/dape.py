"""DAPE: a learned mixer over the attention logits and the bias (spec ``encodings.md`` §4).

V1 (Zheng et al., NeurIPS 2024, arXiv 2405.14722): A + B + f([A‖B]), f = Linear(2H→D) →
LeakyReLU → Linear(D→H) at every (batch, i, j). V2 (arXiv 2410.04798): the same with (1, K)
convs along the key axis, tril'ed input in causal mode. :class:`DAPE` wraps any encoding
without altering it; ``dape-<b>`` / ``dapev2-<b>`` are generated for every bias encoding.

The mixer itself, exact but cheaper than the official formulation, is in :mod:`.dape_mixer`.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
from torch import nn

from che_bench.encodings.base import ALL_ROWS, Encoding, LayerContext
from che_bench.encodings.dape_mixer import DAPEMixer, mix, rows_of
from che_bench.encodings.registry import ENCODINGS, EncodingEntry, OptionSpec
from che_bench.errors import ConfigError, PluginError

Form = Literal["concat_residual", "bias_only", "concat", "add_residual"]
FORMS = ("concat_residual", "bias_only", "concat", "add_residual", "no_bias")
NO_BIAS_BASES = ("nope", "rope")


class DAPE(Encoding):
    """DAPE V1 (MLP over [A‖B]) or V2 ((1, K) convs over [A‖B]) wrapped around ``base``.

    Every hook delegates to ``base``; ``prepare`` adds the mixer's batch-independent inputs
    to the context and ``modify`` returns A + B + f([A‖B]) (form ``concat_residual``), or an
    ablation form of §4.4, or A + f(A) (``no_bias``) for a base without a bias. Each layer
    owns its :class:`DAPEMixer` in ``mixers``.
    """

    description = "DAPE over a base encoding"

    def __init__(
        self,
        base: Encoding,
        *,
        version: int = 1,
        form: str | None = None,
        hidden: int = 32,
        kernel: int = 3,
    ) -> None:
        super().__init__(base.dims, causal=base.causal)
        form = form or ("concat_residual" if base.has_bias else "no_bias")
        if version not in (1, 2):
            raise ConfigError(f"DAPE version must be 1 or 2, got {version!r}")
        if form not in FORMS or (version == 2 and form not in ("concat_residual", "no_bias")):
            raise ConfigError(f"DAPE V{version} has no form {form!r}; see encodings.md §4.4")
        if (form == "no_bias") == base.has_bias:
            need = "a bias-free base" if form == "no_bias" else "a base with a bias"
            raise ConfigError(f"DAPE form {form!r} needs {need}; {base.name!r} is not one")
        if version == 2 and (kernel < 1 or kernel % 2 == 0):
            raise ConfigError(f"DAPE V2 kernel must be a positive odd integer, got {kernel}")
        if hidden < 1:
            raise ConfigError(f"DAPE hidden width must be positive, got {hidden}")
        self.base, self.version, self.form, self.hidden = base, version, form, hidden
        self.kernel = kernel if version == 2 else 1
        heads = self.dims.num_heads
        width = 2 * heads if form in ("concat_residual", "concat") else heads
        self.mixers = nn.ModuleList(
            DAPEMixer(heads, width, hidden, kernel if version == 2 else None)
            for _ in range(self.dims.num_layers)
        )
        # The wrapper behaves like its base (per instance; generated classes also set them).
        self.has_bias, self.absolute = base.has_bias, base.absolute
        self.randomized, self.content_dependent = base.randomized, True
        self.shift_invariant = base.shift_invariant and version == 1  # V2 pads the row ends

    @property
    def max_length(self) -> int | None:
        return self.base.max_length

    def embed(self, length, device, generator):
        return self.base.embed(length, device, generator)

    def bias(self, layer, length, device, generator):
        return self.base.bias(layer, length, device, generator)

    def qk(self, layer, ctx, q, k):
        return self.base.qk(layer, ctx, q, k)

    def logits(self, layer, ctx, q, k, rows):
        return self.base.logits(layer, ctx, q, k, rows)

    def prepare(self, layer, length, device, generator) -> LayerContext:
        """The base's context plus the batch-independent inputs of the mixer."""
        ctx = self.base.prepare(layer, length, device, generator)
        mixer = self.mixers[layer]
        w1b, b1, weights = mixer.split()
        bias = None if ctx.bias is None else ctx.bias.to(b1.dtype)
        keep = None
        if self.causal and self.version == 2:  # V2 convolves tril([A‖B])
            keep = torch.ones(length, length, device=device, dtype=b1.dtype).tril()
        state = {"w1b": None, "b1": b1, "c_of": None, "res": None, "keep": keep, "w": weights}
        if self.form == "bias_only":  # A + (B + f(B)): no batch dimension at all
            state["res"] = mix(bias[None], None, b1, None, *weights)[0]
        elif self.form in ("concat_residual", "concat"):
            state.update(w1b=w1b, c_of=bias if keep is None else bias * keep)
            state["res"] = bias if self.form == "concat_residual" else None
        ctx.cache["dape"] = state
        return ctx

    def modify(self, layer, ctx, logits, q, rows, inplace: bool = False):
        """Scores for the query rows ``rows``: A + B + f(·) (exact under query chunking).

        c = W₁ᴮ·B + b₁ is computed here for these rows only: batch-independent, once per
        forward per layer in all, and never held for all T² pairs at once.
        """
        state = ctx.cache["dape"]
        if self.form == "bias_only":
            return logits + state["res"][:, rows]
        if self.form == "add_residual":
            logits, inplace = logits + ctx.bias[:, rows].to(logits.dtype), True
        c_of = rows_of(state["c_of"], rows)
        c = DAPEMixer.batch_independent(state["w1b"], state["b1"], c_of)
        res, keep = rows_of(state["res"], rows), rows_of(state["keep"], rows)
        return mix(logits, res, c, keep, *state["w"], self.kernel, inplace)

    def scores(self, layer, ctx, q, k, rows=ALL_ROWS):
        """logits then modify; the logits are a private temporary here, so evaluation
        (no autograd) writes the scores into them instead of a second [b, H, R, T] tensor."""
        return self.modify(layer, ctx, self.logits(layer, ctx, q, k, rows), q, rows, inplace=True)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, version={self.version}, form={self.form!r}, "
            f"hidden={self.hidden}, kernel={self.kernel}"
        )


# -- registry generation -----------------------------------------------------------------------
HIDDEN = OptionSpec("hidden", int, 32)
FORM = OptionSpec("form", Form, "concat_residual")
KERNEL = OptionSpec("kernel", int, 3)
_FLAGS = ("has_bias", "absolute", "randomized", "shift_invariant")
_GENERATED: set[str] = set()


def _wrapper_class(base: EncodingEntry, version: int, form: str | None) -> type[DAPE]:
    """The generated entry's factory: a DAPE subclass whose class flags follow the base."""
    flags = {k: getattr(base.factory, k, getattr(Encoding, k)) for k in _FLAGS}
    flags["shift_invariant"] = flags["shift_invariant"] and version == 1

    def __init__(self, dims, *, causal: bool = False, **options: Any) -> None:
        own = {k: options.pop(k) for k in ("hidden", "form", "kernel") if k in options}
        own.setdefault("form", form)
        DAPE.__init__(self, base.build(dims, causal=causal, **options), version=version, **own)

    body = {"__init__": __init__, "__module__": __name__, "content_dependent": True, **flags}
    return type(f"DAPE{version}_{base.name}".replace("-", "_"), (DAPE,), body)


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
            factory=_wrapper_class(entry, version, None if entry.has_bias else "no_bias"),
            description=f"DAPE V{version} ({how}) {what}",
            options={**entry.options, **{s.name: s for s in specs}},
            has_bias=entry.has_bias,
            family="dape",
        )
        try:
            ENCODINGS.add(generated, new, replace=generated in _GENERATED)
        except PluginError as exc:  # a hand-registered entry of that name wins
            warnings.warn(f"not generating {generated}: {exc}", stacklevel=2)
            continue
        _GENERATED.add(generated)


ENCODINGS.on_register(_generate)
