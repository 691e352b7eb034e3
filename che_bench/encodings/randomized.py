"""Randomized positional encodings (Ruoss et al. 2023, arXiv 2305.16843; RPE code).

Each variant is its deterministic twin evaluated at sorted random positions drawn without
replacement from {0..L-1} (distances from {1..L-1}), L = ``max_length`` = 2048. One draw per
forward call, shared by the batch and the heads; the attention-side variants (rand-rope,
rand-alibi, rand-relative) draw independently in every layer, in ``prepare``. Draws come only
from the ``generator`` argument and happen in evaluation too.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from che_bench.encodings.absolute import Learned, Sinusoidal, sinusoid
from che_bench.encodings.alibi import ALiBi, alibi_bias
from che_bench.encodings.base import LayerContext, sorted_random_positions
from che_bench.encodings.registry import register_encoding
from che_bench.encodings.relative import Relative
from che_bench.encodings.rope import RoPE
from che_bench.errors import ConfigError

DEFAULT_MAX_LENGTH = 2048


class Randomized:
    """Mixin: the range L, the ``max_length`` limit and the two kinds of draw."""

    randomized = True
    shift_invariant = False
    limit: int

    def set_limit(self, max_length: int) -> None:
        if max_length < 1:
            raise ConfigError(f"max_length must be positive, got {max_length}")
        self.limit = max_length

    @property
    def max_length(self) -> int:
        return self.limit

    def draw(self, length: int, device: torch.device, generator: torch.Generator | None) -> Tensor:
        """Positions π_0 < … < π_{T-1} from {0..L-1}, long [T]."""
        return sorted_random_positions(length, self.limit, device, generator)

    def draw_distances(
        self, length: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor:
        """[0, p_1, …, p_{T-1}] with p_1 < … < p_{T-1} from {1..L-1}, long [T]."""
        drawn = sorted_random_positions(length - 1, self.limit, device, generator, low=1)
        return torch.cat([drawn.new_zeros(1), drawn])


@register_encoding("rand-sinusoidal")
class RandSinusoidal(Randomized, Sinusoidal):
    """Sinusoidal vectors at sorted random positions from {0..L-1}, one draw per forward."""

    def __init__(self, dims, *, causal: bool = False, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        super().__init__(dims, causal=causal)
        self.set_limit(max_length)

    def embed(self, length, device, generator):
        return sinusoid(self.draw(length, device, generator), self.dims.d_model, exact=True)


@register_encoding("rand-learned")
class RandLearned(Randomized, Learned):
    """A learned L×64 table read at sorted random positions, one draw per forward."""

    def __init__(self, dims, *, causal: bool = False, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        super().__init__(dims, causal=causal, max_length=max_length)
        self.set_limit(max_length)

    def embed(self, length, device, generator):
        return self.table[self.draw(length, device, generator)]


@register_encoding("rand-rope")
class RandRoPE(Randomized, RoPE):
    """RoPE at sorted random positions, drawn per layer and shared by q and k."""

    def __init__(self, dims, *, causal: bool = False, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        super().__init__(dims, causal=causal)
        self.set_limit(max_length)

    def positions(self, layer, length, device, generator):
        return self.draw(length, device, generator)


@register_encoding("rand-alibi")
class RandALiBi(Randomized, ALiBi):
    """ALiBi with sorted random distances p_|i-j| drawn per layer; both sides share p."""

    def __init__(self, dims, *, causal: bool = False, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        super().__init__(dims, causal=causal)
        self.set_limit(max_length)

    def prepare(self, layer, length, device, generator):
        distances = self.draw_distances(length, device, generator)
        bias = alibi_bias(distances.to(self.slopes.dtype), self.slopes, self.causal)
        return LayerContext(length, bias=bias, positions=distances)

    def bias(self, layer, length, device, generator):
        return self.prepare(layer, length, device, generator).bias


#: ``rand-relative`` lookups: the formula of Ruoss et al. 2023 (``intended``), or what their
#: released code computes (``released``, RPE issue #2). The released code builds its sinusoid
#: table for positions 0..L-1 only but reads it at L + offset, and JAX clamps out-of-range
#: indices: the query itself and every key to its right get s(L-1), and a left key at
#: distance d gets s(L - p_d). Use it to compare with the published R-Relative column.
LOOKUPS = ("intended", "released")


@register_encoding("rand-relative")
class RandRelative(Randomized, Relative):
    """Transformer-XL with the sinusoid at sign(δ)·p_|δ|, p drawn per layer (Ruoss et al.);
    ``lookup=released`` reproduces the released code's clamped table instead."""

    #: Options added after rows were stored: hashed only when set away from these values.
    options_hashed_if_changed = {"lookup": "intended"}

    def __init__(
        self,
        dims,
        *,
        causal: bool = False,
        max_length: int = DEFAULT_MAX_LENGTH,
        lookup: Literal["intended", "released"] = "intended",
    ) -> None:
        super().__init__(dims, causal=causal)
        self.set_limit(max_length)
        if lookup not in LOOKUPS:
            raise ConfigError(f"lookup must be one of {', '.join(LOOKUPS)}, got {lookup!r}")
        self.lookup = lookup
        self.exact_sinusoid = lookup == "released"  # its table is built in float64

    def offset_positions(self, layer, length, device, generator):
        distances = self.draw_distances(length, device, generator)
        offsets = torch.arange(-(length - 1), length, device=device)
        if self.lookup == "released":
            clamped = torch.full_like(offsets, self.limit - 1)
            return torch.where(offsets < 0, self.limit - distances[offsets.abs()], clamped)
        return offsets.sign() * distances[offsets.abs()]
