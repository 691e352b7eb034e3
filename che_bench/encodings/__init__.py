"""Positional encodings: the registry and every built-in encoding.

One module (or package) per family, discovered: every module in this folder except ``base``,
``registry`` and private ``_*`` ones is imported here, and importing it registers its
encodings. A new encoding is one new file. Plugins add more through the
``che_bench.encodings`` entry-point group. DAPE listens on the registry, so ``dape-<b>`` and
``dapev2-<b>`` exist for every bias encoding whatever the import order.
"""

import importlib
import pkgutil

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

NOT_FAMILIES = ("base", "registry")


def _family_modules() -> list[str]:
    """The family modules of this package, in name order."""
    return [
        info.name
        for info in pkgutil.iter_modules(__path__)
        if info.name not in NOT_FAMILIES and not info.name.startswith("_")
    ]


for _name in _family_modules():
    importlib.import_module(f"{__name__}.{_name}")
del _name

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
