"""Deterministic context-free tasks (Delétang et al., ICLR 2023, Table 1): a deterministic
pushdown automaton (one stack) solves them."""
