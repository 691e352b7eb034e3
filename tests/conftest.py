"""Shared test setup: small thread count (CI has 2 cores) and no stray plugins' side effects."""

import torch

torch.set_num_threads(2)
