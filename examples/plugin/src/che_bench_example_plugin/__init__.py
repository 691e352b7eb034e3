"""An example che-bench plugin: one additive-bias encoding and one task variant.

che-bench calls :func:`register_encodings` and :func:`register_tasks` the first time its
registries are used (entry-point groups ``che_bench.encodings`` and ``che_bench.tasks``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from che_bench.encodings import Encoding, ModelDims, register_encoding
from che_bench.generators import Example, register_task
from che_bench.generators.dcf.reverse_string import ReverseString


class CauchyBias(Encoding):
    """Cauchy-kernel distance penalty: -a_h · ln(1 + (δ / w)²), learnable a_h per layer."""

    has_bias = True  # makes dape-example-cauchy and dapev2-example-cauchy exist

    def __init__(self, dims: ModelDims, *, causal: bool = False, width: float = 4.0) -> None:
        super().__init__(dims, causal=causal)
        self.width = width
        self.strength = nn.Parameter(torch.full((dims.num_layers, dims.num_heads, 1, 1), 0.5))

    def bias(self, layer, length, device, generator) -> Tensor:
        position = torch.arange(length, device=device, dtype=torch.float32)
        offset = position[None, :] - position[:, None]
        penalty = -self.strength[layer] * torch.log1p((offset / self.width) ** 2)
        if self.causal:
            penalty = penalty.masked_fill(offset > 0, 0.0)
        return penalty


class ReverseStringTernary(ReverseString):
    """reverse_string over the alphabet {0, 1, 2}."""

    name = "reverse_string3"
    description = "The input string over {0,1,2} reversed."
    examples = (Example([2, 0, 1, 1], [1, 1, 0, 2]), Example([2], [2]))

    def __init__(self) -> None:
        super().__init__(vocab_size=3)


def register_encodings() -> None:
    register_encoding("example-cauchy")(CauchyBias)


def register_tasks() -> None:
    register_task(ReverseStringTernary)
