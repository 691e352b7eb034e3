"""NoPE: no positional encoding. The encoder is then permutation-equivariant."""

from che_bench.encodings.base import Encoding
from che_bench.encodings.registry import register_encoding


@register_encoding("nope")
class NoPE(Encoding):
    """No positional information; placeholders are indistinguishable."""
