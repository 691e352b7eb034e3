"""Context-sensitive tasks (Delétang et al., ICLR 2023, Table 1; binary_multiplication from
Ruoss et al., ACL 2023): a linear bounded automaton (a bounded tape) solves them."""
