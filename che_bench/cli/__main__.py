"""``python -m che_bench.cli``: the ``che-bench`` command (tests and subprocesses use it)."""

from che_bench.cli import main

main(prog_name="che-bench")
