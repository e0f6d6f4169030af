"""The repository is ruff-clean (configuration in pyproject.toml; notebooks included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_check_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    print(output)
    assert "No module named ruff" not in output, output
    assert result.returncode == 0, f"ruff check . failed:\n{output}"
