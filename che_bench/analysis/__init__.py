"""Looking inside a trained model: one layer's positional term and attention weights.

:mod:`.maps` collects them for one sample (:func:`collect`), :mod:`.figure` draws them
(:func:`write`) or saves the arrays (:func:`write_npz`); ``che-bench inspect`` is the CLI.
"""

from che_bench.analysis.maps import ATTENTION, Maps, collect

__all__ = ["ATTENTION", "Maps", "collect"]
