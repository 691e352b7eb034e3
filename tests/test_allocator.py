"""``import che_bench`` asks PyTorch for huge-page-aligned large tensors before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import che_bench, os; print(os.environ.get('THP_MEM_ALLOC_ENABLE'))"


def probe(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE",)}
    clean.pop("CHE_BENCH_DEFAULT_MALLOC", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env={**clean, **env}
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_sets_the_flag_before_torch_loads() -> None:
    assert probe() == "1"


def test_opt_out_and_user_value_are_respected() -> None:
    assert probe(CHE_BENCH_DEFAULT_MALLOC="1") == "None"
    assert probe(THP_MEM_ALLOC_ENABLE="0") == "0"


SPY = """
import builtins, os
real, seen = builtins.__import__, []
def spy(name, *args, **kwargs):
    if name == "torch" and not seen:
        seen.append(os.environ.get("THP_MEM_ALLOC_ENABLE"))
    return real(name, *args, **kwargs)
builtins.__import__ = spy
import che_bench
print(seen[0])
"""


def test_flag_is_set_when_torch_is_first_imported() -> None:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    env.pop("CHE_BENCH_DEFAULT_MALLOC", None)
    done = subprocess.run([sys.executable, "-c", SPY], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "1", done.stderr
