"""Test-suite settings shared by the unit tests and the notebooks that nbval executes.

* The suite runs the *smoke* profile unless TL_PROFILE is set explicitly (``TL_PROFILE=lesson
  pytest notebooks/05_training_tensorboard.ipynb`` runs one notebook with the lesson's settings).
* Everything a run writes (``logs/``, ``models/``, ``cache/``) goes to a fresh temporary
  ``TL_OUTPUT_DIR``, removed at the end: no test reads a model an earlier run left behind, and no
  test overwrites a student's model. With ``--nbval-current-env`` the notebook kernels inherit
  these variables.
* At the end the work tree must look as it did at the start; if not, the run fails and the
  changed paths are listed. Compared: every git-ignored file (where run artefacts land: models,
  logs, caches, downloads) with its size and modification time; under ``CI=true`` (a fresh clone
  that nobody else edits) also every untracked file and the status of every tracked one.
* Tests that need the real photos or the ImageNet weights use the ``real_photos`` and
  ``imagenet_weights`` fixtures: a developer without them gets a skip with a one-line reason,
  CI (``CI=true``) gets a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TL_PROFILE", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The run's output folder (``TL_OUTPUT_DIR``), set before any test imports helpers.
OUTPUT_DIR = Path(tempfile.mkdtemp(prefix="tl-pytest-output-"))
os.environ["TL_OUTPUT_DIR"] = str(OUTPUT_DIR)

REPO = Path(__file__).resolve().parent
#: Tool caches that may change during a run (path components).
VOLATILE = {"__pycache__", ".pytest_cache", ".ruff_cache"}

_tree_before: dict[str, tuple] | None = None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def tree_state(root: Path = REPO, *, everything: bool | None = None) -> dict[str, tuple] | None:
    """Path -> git status, plus size and modification time for untracked and ignored files.

    Only ignored files unless ``everything`` (default: under ``CI=true``): on a developer's
    machine other people may be editing and committing sources in the same checkout meanwhile.
    ``None`` when ``root`` is not a git work tree (or git is missing). The virtual environment
    (``.venv``) and :data:`VOLATILE` caches are left out.
    """
    everything = _in_ci() if everything is None else everything
    command = [
        "git", "status", "--porcelain=v1", "-z", "--ignored=traditional",
        "--untracked-files=all", "--", ".", ":(exclude).venv",
    ]  # fmt: skip
    try:
        listing = subprocess.run(
            command, cwd=root, capture_output=True, check=True, timeout=300
        ).stdout.decode("utf-8", "surrogateescape")
    except (OSError, subprocess.SubprocessError):
        return None
    entries = listing.split("\0")
    state: dict[str, tuple] = {}
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":
            i += 1  # a rename's source path follows as its own entry
        if VOLATILE.intersection(Path(path).parts) or not (everything or status == "!!"):
            continue
        if status in ("??", "!!"):
            try:
                info = (root / path).lstat()
            except OSError:
                continue
            state[path] = (status, info.st_size, info.st_mtime_ns)
        else:
            state[path] = (status,)
    return state


def tree_changes(before: dict[str, tuple], after: dict[str, tuple], root: Path = REPO) -> list[str]:
    """Human-readable differences between two :func:`tree_state` results.

    A path that left the listing but still exists was committed meanwhile (someone else working
    in the same checkout), not deleted by the run.
    """
    lines = [f"new:      {p}" for p in sorted(after.keys() - before.keys())]
    lines += [
        f"removed:  {p}" for p in sorted(before.keys() - after.keys()) if not (root / p).exists()
    ]
    lines += [
        f"changed:  {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]
    ]
    return lines


def _names_notebooks(arg: str) -> bool:
    path = Path(arg.split("::")[0])
    if path.suffix == ".ipynb":
        return True
    return path.is_dir() and ((path / "notebooks").is_dir() or any(path.glob("*.ipynb")))


def pytest_configure(config):
    """Notebooks given on the command line (``pytest notebooks/05_training_tensorboard.ipynb``)
    run in one process. nbval runs a notebook's cells in one kernel, but a pytest-xdist worker
    (``-n 2`` in pyproject.toml) tears the notebook down between batches of cells, and the
    next cell would find a fresh kernel. The suite itself runs notebooks in child processes
    (tests/test_notebooks_run.py), so it keeps its two workers."""
    if getattr(config.option, "numprocesses", None) and any(map(_names_notebooks, config.args)):
        config.option.numprocesses, config.option.dist, config.option.tx = 0, "no", []


def pytest_sessionstart(session):
    global _tree_before
    _tree_before = tree_state()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    if _tree_before is None:
        return
    after = tree_state()
    changes = tree_changes(_tree_before, after) if after is not None else []
    if not changes:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    report = [
        f"The test run changed the work tree ({REPO}); tests and notebooks must write only "
        f"under TL_OUTPUT_DIR ({OUTPUT_DIR}) or tmp_path:",
        *(f"  {line}" for line in changes),
    ]
    if reporter is not None:
        reporter.write_sep("=", "work tree changed", red=True)
        for line in report:
            reporter.write_line(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _missing_asset(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true and an asset is missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_photos() -> Path:
    """The real photos (``TL_DATA_DIR``); skip without them, fail under ``CI=true``."""
    value = os.environ.get("TL_DATA_DIR", "").strip()
    if not value or not Path(value).expanduser().is_dir():
        _missing_asset(
            "TL_DATA_DIR does not name a folder: export TL_DATA_DIR=.../cats_vs_dogs to run the "
            "real-photo tests"
        )
    return Path(value).expanduser()


@pytest.fixture(scope="session")
def imagenet_weights() -> Path:
    """The ImageNet weights file in the Keras cache; skip without it, fail under ``CI=true``."""
    from helpers import backbone

    path = backbone.weights_path()
    if not path.is_file():
        _missing_asset(
            f"no ImageNet weights at {path}: copy the file there (see ../shared/README.md) or "
            "point KERAS_HOME at a folder whose models/ holds it"
        )
    return path
