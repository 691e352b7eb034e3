"""Regular tasks (Delétang et al., ICLR 2023, Table 1): a finite-state automaton solves them."""
