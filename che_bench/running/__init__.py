"""Running RunConfigs: one run end to end (``runner``), grids (``sweep``) and where the
runs execute (``executors``: inline, a local process pool, Ray)."""
