"""Which che-bench code produced a row, as lm-evaluation-harness records its git hash.

From a git checkout: ``git:<revision>``, with ``+dirty`` when tracked files differ from that
revision or untracked files sit inside the package. From an installed wheel or sdist:
``sha256:<digest>`` over the package's ``.py`` files (path and bytes), so two installs
with equal digests run the same source.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision(package: Path = PACKAGE) -> str | None:
    """``git:<revision>[+dirty]`` when ``package`` is the che_bench folder of a checkout."""
    root = package.parent
    if not (root / ".git").exists():
        return None
    revision = _git(root, "rev-parse", "HEAD")
    if not revision:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=all")
    inside = f"?? {package.name}/"  # untracked files elsewhere do not change the code
    lines = (status or "").splitlines()
    dirty = status is None or any(not x.startswith("??") or x.startswith(inside) for x in lines)
    return f"git:{revision}{'+dirty' if dirty else ''}"


def source_digest(package: Path = PACKAGE) -> str:
    """``sha256:<first 16 hex digits>`` over the sorted ``.py`` files of ``package``."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return f"sha256:{digest.hexdigest()[:16]}"


@functools.cache
def code_identity() -> str:
    """This process's che-bench code: its git revision, else its source digest."""
    return git_revision() or source_digest()
