"""Every notebook executed by nbval, in the smoke profile — the lesson, the student copy and the
model solutions in one run.

For each notebook the test builds :func:`helpers.classroom.student_then_teacher`: the student copy
cell for cell (solutions replaced by placeholders set to ``None``, model answers removed),
followed by the original's exercise section (the model solutions and their self-checks). nbval
executes it in one kernel, so the lesson runs once, the student copy's placeholders must not
crash anything, and a model solution that its self-check rejects fails the run (under the smoke
profile :func:`helpers.exercises.check` raises on a wrong answer).

The notebooks run in order in one output folder (``TL_OUTPUT_DIR``, a temporary folder the root
``conftest.py`` sets), so 06 and 08 load the model that 05 saved and 07 reads 05's feature cache,
as in a classroom. ``pytest notebooks/05_training_tensorboard.ipynb`` runs one original notebook
directly (``--nbval-lax`` is in the repository's pytest options).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import classroom

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
#: Longest a single cell may run (the smoke profile's cells take seconds).
CELL_TIMEOUT = 1800


def run_nbval(notebook: Path, workdir: Path) -> subprocess.CompletedProcess:
    """Run nbval on one notebook in a child pytest that ignores the repository's own settings."""
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    command = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
        f"--nbval-cell-timeout={CELL_TIMEOUT}", "-p", "no:cacheprovider", "-q",
        "-c", str(ini), "--rootdir", str(workdir), str(notebook),
    ]  # fmt: skip
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_and_its_student_copy_run_under_nbval(path, tmp_path):
    original = nbformat.read(path, as_version=4)
    both = classroom.student_then_teacher(original, path.name)
    notebook = tmp_path / path.name
    nbformat.write(both, notebook)
    result = run_nbval(notebook, tmp_path)
    output = result.stdout + result.stderr
    student_cells = len(classroom.student_copy(original, path.name).cells)
    assert result.returncode == 0, (
        f"{path.name} failed under nbval. In the run, cells 1–{student_cells} are the student "
        f"copy and the rest the original's exercise section (nbval counts code cells only).\n"
        + output[-6000:]
    )
    assert " passed" in output and " failed" not in output, output[-3000:]
