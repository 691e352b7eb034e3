"""T5 relative position bias (Raffel et al. 2020, arXiv 1910.10683), as in the DAPE code.

One table W [32 buckets, H] shared by all layers, causal bucketing with max_distance 128,
B_h[i,j] = √d·W[bucket(n), h]. Causal: n = max(i - j, 0). Bidirectional (a che-bench
decision; T5's own bidirectional scheme, 16 buckets per side, is not used): a left table for
j <= i (n = i - j) and a right table for j > i (n = j - i), each with the causal bucketing,
so the left half equals the causal form.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from che_bench.encodings.base import Encoding
from che_bench.encodings.kerple import offset_bias, side_distances
from che_bench.encodings.registry import register_encoding

NUM_BUCKETS = 32
MAX_DISTANCE = 128


def t5_bucket(
    distance: Tensor, num_buckets: int = NUM_BUCKETS, max_distance: int = MAX_DISTANCE
) -> Tensor:
    """Causal T5 bucket of distances n >= 0: n below num_buckets/2, then log-spaced, capped."""
    exact = num_buckets // 2
    scaled = torch.log(distance.to(torch.float64).clamp(min=1.0) / exact)
    large = exact + (scaled / math.log(max_distance / exact) * (num_buckets - exact)).floor().long()
    return torch.where(distance < exact, distance.long(), large.clamp(max=num_buckets - 1))


@register_encoding("t5")
class T5Bias(Encoding):
    """T5 bucketed relative bias, one table shared by all layers, scaled by √d."""

    has_bias = True

    def __init__(self, dims, *, causal: bool = False, tie_init: bool = False) -> None:
        super().__init__(dims, causal=causal)
        tables = torch.empty(1 if causal else 2, NUM_BUCKETS, dims.num_heads)
        for table in tables:  # xavier-normal: std = √(2 / (32 + H)) per table
            nn.init.xavier_normal_(table)
        if tie_init and not causal:
            tables[1] = tables[0]
        self.tables = nn.Parameter(tables)

    def bias(self, layer, length, device, generator):
        left_d, right_d = side_distances(length, device)
        left = self.tables[0][t5_bucket(left_d)]  # [T, H]
        if self.causal:  # j > i falls in bucket 0 (masked afterwards)
            right = self.tables[0][torch.zeros_like(right_d)]
        else:
            right = self.tables[1][t5_bucket(right_d)]
        return math.sqrt(self.dims.head_dim) * offset_bias(torch.cat([left, right]).T, length)
