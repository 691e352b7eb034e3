"""DAPE V1/V2 over any encoding (Zheng et al., NeurIPS 2024, arXiv 2405.14722; arXiv 2410.04798).

``wrapper`` holds the encoding, ``layer`` each layer's mixer module, ``mixer`` its exact fast
kernels and ``generate`` the registry entries ``dape-<b>`` / ``dapev2-<b>``; importing this
package registers them.
"""

from che_bench.encodings.dape import generate  # noqa: F401  (registers the listener)
from che_bench.encodings.dape.wrapper import DAPE, NO_BIAS, DAPEContext, Form

__all__ = ["DAPE", "NO_BIAS", "DAPEContext", "Form"]
