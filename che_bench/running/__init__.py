"""Running RunConfigs: one run end to end (``runner``), grids (``sweep``), where the runs
execute (``executors``: inline, a local process pool, Ray; ``workers``: the pool's
processes), and one row per run (``gate``: skip what is done, ``claims``: who runs what)."""
