"""The built wheel, installed into a fresh venv and run from an empty folder, does what the
checkout does: shipped baselines and sweep files are found by name, nothing is read from
the repository. The venv gets che-bench from the wheel only; torch and the other
dependencies come from this environment's site-packages through a path file (its ``.pth``
files, the editable install among them, are not processed there)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(list(map(str, args)), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(the fresh venv's bin folder, the environment to run it in)."""
    base = tmp_path_factory.mktemp("wheel")
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
       "-w", base / "dist", ROOT, cwd=base)  # fmt: skip
    (wheel,) = (base / "dist").glob("che_bench-*.whl")
    venv = base / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    bin_dir = venv / "bin"
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = sh(bin_dir / "python", "-c", ask, cwd=base).strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    sh(sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "-q",
       "--no-deps", wheel, cwd=base)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"CHE_BENCH_DISABLE_PLUGINS": "1", "OMP_NUM_THREADS": "1",
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}  # fmt: skip
    return bin_dir, env


def test_the_wheel_is_what_runs(installed, tmp_path):
    bin_dir, env = installed
    where = sh(bin_dir / "python", "-c", "import che_bench; print(che_bench.__file__)",
               cwd=tmp_path, env=env)  # fmt: skip
    assert Path(where.strip()).is_relative_to(bin_dir.parent)
    assert not Path(where.strip()).is_relative_to(ROOT)
    from che_bench import __version__

    version = sh(bin_dir / "che-bench", "--version", cwd=tmp_path, env=env).strip()
    assert version.startswith(f"che-bench {__version__} (sha256:")  # no git outside a checkout


def test_check_finds_the_shipped_smoke_baseline_from_an_empty_folder(installed, tmp_path):
    bin_dir, env = installed
    out = sh(bin_dir / "che-bench", "check", "--baseline", "smoke", "--pe", "nope",
             cwd=tmp_path, env=env)  # fmt: skip
    assert "check passed" in out
    assert "nope" in out


def test_a_shipped_sweep_is_found_by_name_from_an_empty_folder(installed, tmp_path):
    bin_dir, env = installed
    out = sh(bin_dir / "che-bench", "sweep", "example", "--dry-run", cwd=tmp_path, env=env)
    assert "sweep:" in out and "runs" in out
    assert "estimated cost" in out
    assert not (tmp_path / "leaderboards").exists() and not (tmp_path / "runs").exists()
