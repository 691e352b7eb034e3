"""Positional encodings: the registry and every built-in encoding.

One module per family; importing it registers its encodings. Plugins add more through
the ``che_bench.encodings`` entry-point group.
"""

from che_bench.encodings.base import Encoding, LayerContext, ModelDims
from che_bench.encodings.registry import (
    ENCODINGS,
    EncodingEntry,
    OptionSpec,
    build_encoding,
    get_encoding,
    list_encodings,
    register_encoding,
)

# Importing the family modules registers them; dape must come first so that it sees
# every bias encoding registered afterwards (and it also wraps those before it).
# isort: split
from che_bench.encodings import dape  # noqa: E402,F401

# isort: split
from che_bench.encodings import (  # noqa: E402,F401
    absolute,
    alibi,
    cope,
    fire,
    kerple,
    nope,
    randomized,
    relative,
    rope,
    t5,
)

__all__ = [
    "ENCODINGS",
    "Encoding",
    "EncodingEntry",
    "LayerContext",
    "ModelDims",
    "OptionSpec",
    "build_encoding",
    "get_encoding",
    "list_encodings",
    "register_encoding",
]
