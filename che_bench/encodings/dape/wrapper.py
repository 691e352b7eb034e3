"""DAPE: a learned mixer over the attention logits and the bias.

V1 (Zheng et al., "DAPE: Data-Adaptive Positional Encoding for Length Extrapolation", NeurIPS
2024, arXiv 2405.14722): A + B + f([A‖B]), f = Linear(2H→D) → LeakyReLU → Linear(D→H) at every
(batch, i, j). V2 (arXiv 2410.04798): the same with (1, K) convs along the key axis, tril'ed
input in causal mode. :class:`DAPE` wraps any encoding without altering it; ``dape-<b>`` and
``dapev2-<b>`` are generated for every bias encoding, and for nope and rope (:mod:`.generate`).

Each layer's mixer module is in :mod:`.layer`; its kernels, exact but cheaper than the
official formulation, are in :mod:`.mixer`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from che_bench.encodings.base import ALL_ROWS, Encoding, LayerContext, as_map, scaled_logits
from che_bench.encodings.dape.layer import DAPEMixer
from che_bench.encodings.dape.mixer import mix, rows_of
from che_bench.errors import ConfigError

# V1's forms over a bias: the default, then the ablations of the DAPE paper (arXiv 2405.14722
# v6): A + B + f([A‖B]), A + B + f(B), A + f([A‖B]) and A + B + f(A + B). V2 has the first only.
Form = Literal["concat_residual", "bias_only", "concat", "add_residual"]
NO_BIAS = "no_bias"  # A + f(A): the only form over a base without a bias (V1 and V2)
#: The name of :meth:`DAPE.explain`'s adapted map, by form.
ADAPTED = {
    "concat_residual": "adapted A+B+f(A,B)",
    "bias_only": "adapted A+B+f(B)",
    "concat": "adapted A+f(A,B)",
    "add_residual": "adapted A+B+f(A+B)",
    NO_BIAS: "adapted A+f(A)",
}


@dataclass
class DAPEContext(LayerContext):
    """The base's context (``inner``) plus the mixer's batch-independent inputs."""

    inner: LayerContext | None = None  # what the base's own hooks read (RoPE: its positions)
    w1b: Tensor | None = None  # W₁ᴮ, the B columns of the first layer (None: no B channels)
    b1: Tensor | None = None  # the first layer's bias
    weights: tuple[Tensor, ...] = ()  # (W₁ᴬ, W₂, b₂) in :func:`.mixer.mix`'s layout
    c_of: Tensor | None = None  # the B of c = W₁ᴮ·B + b₁ (tril'ed for causal V2)
    res: Tensor | None = None  # the batch-independent residual: B, or B + f(B) (bias_only)
    keep: Tensor | None = None  # causal V2: the tril ones applied before the conv


class DAPE(Encoding):
    """DAPE V1 (MLP over [A‖B]) or V2 ((1, K) convs over [A‖B]) wrapped around ``base``.

    ``embed``, ``bias`` and ``qk`` are the base's; ``prepare`` adds the mixer's
    batch-independent inputs to the base's context and ``scores`` returns A + B + f([A‖B])
    (form ``concat_residual``), an ablation form, or A + f(A) (``no_bias``) for a base
    without a bias. Each layer owns its :class:`DAPEMixer` in ``mixers``.
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
        form = form or ("concat_residual" if base.has_bias else NO_BIAS)
        if version not in (1, 2):
            raise ConfigError(f"DAPE version must be 1 or 2, got {version!r}")
        forms = (*typing.get_args(Form), NO_BIAS) if version == 1 else ("concat_residual", NO_BIAS)
        if form not in forms:
            raise ConfigError(f"DAPE V{version} has no form {form!r}; its forms: {forms}")
        if (form == NO_BIAS) == base.has_bias:
            need = "a bias-free base" if form == NO_BIAS else "a base with a bias"
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
        # The flags follow the base; V2's zero padding at the row ends breaks shift invariance.
        self.has_bias, self.absolute = base.has_bias, base.absolute
        self.randomized = base.randomized
        self.shift_invariant = base.shift_invariant and version == 1

    @property
    def max_length(self) -> int | None:
        return self.base.max_length

    def begin_forward(self) -> None:
        self.base.begin_forward()

    def embed(self, length, device, generator):
        return self.base.embed(length, device, generator)

    def bias(self, layer, length, device, generator):
        return self.base.bias(layer, length, device, generator)

    def qk(self, layer, ctx: DAPEContext, q, k):
        return self.base.qk(layer, ctx.inner, q, k)

    def prepare(self, layer, length, device, generator) -> DAPEContext:
        """The base's context plus the batch-independent inputs of the mixer."""
        inner = self.base.prepare(layer, length, device, generator)
        w1b, b1, weights = self.mixers[layer].split()
        bias = None if inner.bias is None else inner.bias.to(b1.dtype)
        keep = None
        if self.causal and self.version == 2:  # V2 convolves tril([A‖B])
            keep = torch.ones(length, length, device=device, dtype=b1.dtype).tril()
        ctx = DAPEContext(length, inner.bias, inner.positions, inner, b1=b1, keep=keep)
        ctx.weights = weights
        if self.form == "bias_only":  # A + (B + f(B)): no batch dimension at all
            ctx.res = mix(bias[None], None, b1, None, *weights)[0]
        elif self.form in ("concat_residual", "concat"):
            ctx.w1b, ctx.c_of = w1b, (bias if keep is None else bias * keep)
            ctx.res = bias if self.form == "concat_residual" else None
        return ctx

    def scores(self, layer, ctx: DAPEContext, q, k, rows=ALL_ROWS):
        """A = q·kᵀ/√d through :meth:`from_logits`; A is a private temporary here, so
        evaluation (no autograd) writes the scores into it, not a second [b, H, R, T] tensor."""
        return self.from_logits(layer, ctx, scaled_logits(q, k, rows), rows, inplace=True)

    def from_logits(
        self, layer: int, ctx: DAPEContext, logits: Tensor, rows: slice, inplace: bool = False
    ) -> Tensor:
        """Scores for the query rows ``rows`` from their logits A: A + B + f(·) (exact under
        query chunking).

        c = W₁ᴮ·B + b₁ is computed here for these rows only: batch-independent, once per
        forward per layer in all, and never held for all T² pairs at once.
        """
        if self.form == "bias_only":
            return logits + ctx.res[:, rows]
        if self.form == "add_residual":
            logits, inplace = logits + ctx.bias[:, rows].to(logits.dtype), True
        c = DAPEMixer.batch_independent(ctx.w1b, ctx.b1, rows_of(ctx.c_of, rows))
        res, keep = rows_of(ctx.res, rows), rows_of(ctx.keep, rows)
        return mix(logits, res, c, keep, *ctx.weights, self.kernel, inplace)

    def explain(self, layer, ctx: DAPEContext, q, k) -> dict[str, Tensor]:
        """The base's maps (its bias B, if any) and the adapted scores of this sequence,
        A + B + f(A, B) for the default form: the pair per head that Zheng et al. 2024 show
        in DAPE's Figure 1. For V2, f is the (1, K) conv."""
        maps = self.base.explain(layer, ctx.inner, q, k)
        return {**maps, ADAPTED[self.form]: as_map(self.scores(layer, ctx, q, k))}

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, version={self.version}, form={self.form!r}, "
            f"hidden={self.hidden}, kernel={self.kernel}"
        )
