"""The revision a row records: dirty when code differs from the commit, not when a study wrote its
report into the checkout (two studies run one after the other in one clone)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dispatchbench.bench.run_metadata import _git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _repo(tmp_path: Path) -> Path:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    for name in ("dispatchbench/x.py", "reports/paper/report.md", "benchmarks/results/r.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "start")
    return tmp_path


def test_a_rewritten_report_or_benchmark_result_leaves_the_revision_clean(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "reports/paper/report.md").write_text("2\n")
    (repo / "benchmarks/results/r.json").write_text("2\n")
    rev, dirty = _git(repo)
    assert rev is not None and len(rev) == 40
    assert dirty is False


def test_changed_code_makes_the_revision_dirty(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "dispatchbench/x.py").write_text("2\n")
    assert _git(repo)[1] is True
