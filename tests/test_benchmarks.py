"""The two measurement commands: ``benchmarks/benchmark.py`` and ``benchmarks/series.py``.

Their table logic is tested on made-up numbers; each command then runs once in the smoke profile
on the real photos and weights (``TL_DATA_DIR``, the Keras cache) in a subprocess, and its table
is checked for structure and positive numbers — behaviour tests, no timing assertions.
``benchmark.py`` runs only the ``seed`` and ``nb05`` recipes there (about 20 s): every recipe is a
child process that starts TensorFlow and builds its graphs, several seconds each even on 8 photos.
Not executed by the suite: the ``head`` recipe (its cached head training is what ``nb05`` runs as
phase 1, through ``training.cache_features``/``train_cached``, tested in ``test_caching.py``) and
the ``augmented`` recipe's one augmented pass (``data.make_dataset(augment=...)`` and a plain
``fit``; the pipeline is tested in ``test_data.py``); that every recipe has a runner, a title and
the command-line settings it needs is checked without running it.
``series.py`` runs generated notebooks there (a kernel that holds a known amount of memory, a
skipped cell that would fail, a failing cell): the real notebooks are executed by nbval already.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
#: Memory the generated notebook's kernel holds, in MiB.
HELD_MIB = 300


def _load(name: str):
    """Import ``benchmarks/<name>.py`` (benchmark.py imports series.py, as the scripts do)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


series = _load("series")
benchmark = _load("benchmark")


def _table(text: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the first Markdown table in ``text``."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert set(lines[1]) <= set("|-"), "second line: the separator"
    return cells[0], cells[2:]


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TL_PROFILE": "smoke"}
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _notebook(path: Path, *cells) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC)}
    nb.cells = [
        nbformat.v4.new_code_cell(source, metadata={"tags": tags} if tags else {})
        for source, *tags in cells
    ]
    nbformat.write(nb, path)
    return path


# --------------------------------------------------------------------------------------------
# benchmark.py
# --------------------------------------------------------------------------------------------


def _fake(recipe, curve, **extra):
    base = {
        "recipe": recipe,
        "epochs": "2",
        "epoch_count": 2,
        "wall_s": 10.0,
        "caching_s": 0.0,
        "images_per_s": 4.0,
        "val_accuracy": curve[-1],
        "test_accuracy": 0.5,
        "peak_rss_mib": 100.0,
        "n_train": 20,
        "n_validation": 10,
        "n_test": 10,
        "curve": [{"t": 10.0 * (i + 1), "val_accuracy": v} for i, v in enumerate(curve)],
    }
    return {**base, **extra}


def test_benchmark_table_uses_the_seed_recipes_best_validation_accuracy():
    results = [
        _fake("seed", [0.6, 0.9, 0.8]),
        _fake("head", [0.7, 0.8]),
        _fake("nb05", [0.85, 0.95]),
        _fake("augmented", [0.9]),
    ]
    rows, summary = benchmark.make_table(results)
    assert summary["seed_best_val_accuracy"] == pytest.approx(0.9)
    assert summary["seed_best_epoch"] == 2
    assert summary["seed_val_accuracy_range"] == (0.6, 0.9)
    assert summary["time_to_seed_best_s"] == {
        "seed": 20.0,
        "head": None,
        "nb05": 20.0,
        "augmented": 10.0,
    }
    assert summary["speedup"] == {"nb05": pytest.approx(1.0), "augmented": pytest.approx(2.0)}
    assert [len(r) for r in rows] == [len(benchmark.COLUMNS)] * 4
    assert rows[1][4] == "not reached"
    header, body = _table(benchmark.markdown(rows))
    assert header == list(benchmark.COLUMNS) and body == rows
    summary.update(seconds=50.0, machine=["Machine: test"])
    text = benchmark.describe_run(results, summary, "smoke")
    assert "best validation accuracy: 0.9000 (epoch 2)" in text and "0.6000-0.9000" in text
    assert "nb05 1.0x, augmented 2.0x" in text and text.endswith("Machine: test")


def test_benchmark_nb05_recipe_is_notebook_05s_phase_2():
    notebook = nbformat.read(REPO / "notebooks" / "05_training_tensorboard.ipynb", as_version=4)
    settings = next(c.source for c in notebook.cells if "FINE_TUNE_EPOCHS =" in c.source)
    value = {
        name: float(re.search(rf"^{name} = ([0-9.e-]+)", settings, re.M).group(1))
        for name in ("FINE_TUNE_LEARNING_RATE", "FINE_TUNE_EPOCHS", "FINE_TUNE_PATIENCE")
    }
    assert (benchmark.NB05_LEARNING_RATE, benchmark.NB05_EPOCHS, benchmark.NB05_PATIENCE) == (
        value["FINE_TUNE_LEARNING_RATE"],
        value["FINE_TUNE_EPOCHS"],
        value["FINE_TUNE_PATIENCE"],
    )


def test_benchmark_every_recipe_has_a_runner_a_title_and_its_settings():
    assert set(benchmark.RUNNERS) == set(benchmark.TITLES) == set(benchmark.RECIPES)
    lesson = benchmark.parse_args(["--profile", "lesson"])
    smoke = benchmark.parse_args(["--profile", "smoke"])
    # nb05's own settings: test_benchmark_nb05_recipe_is_notebook_05s_phase_2 ties them to 05
    assert (lesson.epochs, lesson.head_epochs) == (20, 50)
    assert lesson.fine_tune_epochs == benchmark.NB05_EPOCHS
    assert (smoke.epochs, smoke.head_epochs, smoke.fine_tune_epochs) == (1, 2, 1)
    assert (lesson.max_per_class, smoke.max_per_class) == (None, 4)
    assert benchmark.AUGMENTED_LEARNING_RATE == 1e-4
    for name in benchmark.RECIPES:  # a child gets the parent's settings back
        command = benchmark.child_command(name, lesson, Path("result.json"))
        child = benchmark.parse_args(command[2:])
        assert (child.recipe, child.result) == (name, Path("result.json"))
        settings = ("profile", "epochs", "head_epochs", "fine_tune_epochs", "patience")
        assert [getattr(child, k) for k in settings] == [getattr(lesson, k) for k in settings]


@pytest.mark.parametrize("recipes", ["nb05", "seed,cached"])
def test_benchmark_refuses_a_run_without_the_seed_recipe_or_with_an_unknown_one(
    recipes, monkeypatch
):
    monkeypatch.setenv("TL_PROFILE", "smoke")  # main() sets it for its children
    with pytest.raises(SystemExit, match="--recipes must name 'seed'"):
        benchmark.main(["--recipes", recipes])


@pytest.mark.usefixtures("real_photos", "imagenet_weights")
def test_benchmark_command_in_smoke_profile(tmp_path):
    output, measurements = tmp_path / "table.md", tmp_path / "results.json"
    run = ["--recipes", "seed,nb05", "--output", str(output), "--json", str(measurements)]
    result = _run("benchmark.py", *run)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = output.read_text()
    header, rows = _table(text)
    assert header == list(benchmark.COLUMNS)
    assert [r[0] for r in rows] == [benchmark.TITLES["seed"], benchmark.TITLES["nb05"]]
    for row in rows:
        assert len(row) == len(benchmark.COLUMNS)
        assert 0.0 <= float(row[5]) <= 1.0 and 0.0 <= float(row[6]) <= 1.0
        assert float(row[2]) > 0 and float(row[7]) > 0
    # notebook 05 in smoke: 2 head epochs (patience 3 never stops them) + 1 epoch on the cache
    assert rows[1][1] == "2 + 1"
    assert text.strip() in result.stdout  # the same text is printed
    assert "Load average" in text and "git commit" in text
    saved = json.loads(measurements.read_text())
    assert [r["recipe"] for r in saved["results"]] == ["seed", "nb05"]
    assert all(r["n_train"] == 8 for r in saved["results"])  # smoke: 4 photos per class


# --------------------------------------------------------------------------------------------
# series.py
# --------------------------------------------------------------------------------------------


def test_series_rows_have_wall_time_in_u_and_a_total():
    results = [
        {"notebook": "01_a", "wall_s": 30.0, "peak_rss_mib": 900.0},
        {"notebook": "02_b", "wall_s": 90.0, "peak_rss_mib": 1500.0},
    ]
    rows = series.make_rows(results, u_s=60.0, u_graph_s=25.0)
    assert rows == [
        ["01_a", "30", "0.50", "1.20", "900"],
        ["02_b", "90", "1.50", "3.60", "1500"],
        ["total (RSS: largest)", "120", "2.00", "4.80", "1500"],
    ]
    header, body = _table(series.markdown(rows))
    assert header == list(series.COLUMNS) and body == rows


def test_series_notebooks_by_number_or_path_in_the_series_order(tmp_path):
    real = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert series.resolve_notebooks(None) == real
    first, fifth = real[0], real[4]
    assert series.resolve_notebooks(["05", str(first)]) == [first, fifth]
    with pytest.raises(series.SeriesError, match="no such notebook: 99"):
        series.resolve_notebooks(["99"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(series.SeriesError, match="notes.txt"):
        series.resolve_notebooks([str(tmp_path / "notes.txt")])


def test_series_default_output_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.setattr(series, "RESULTS_DIR", tmp_path)
    day = series.dt.date(2026, 11, 28)
    assert series.default_output("smoke", day) == tmp_path / "smoke-2026-11-28.md"
    (tmp_path / "smoke-2026-11-28.md").write_text("earlier run")
    assert series.default_output("smoke", day) == tmp_path / "smoke-2026-11-28-2.md"


def test_series_stops_at_a_failing_cell_and_names_it(tmp_path, capsys):
    failing = _notebook(tmp_path / "91_fails.ipynb", ("x = 1",), ("1 / 0",))
    later = _notebook(tmp_path / "92_later.ipynb", ("print('ran')",))
    env = {**os.environ, "TL_PROFILE": "smoke"}
    with pytest.raises(series.SeriesError) as excinfo:
        series.time_notebooks([failing, later], env, timeout=60)
    message = str(excinfo.value)
    assert message.startswith("stopped at 91_fails.ipynb:")
    assert "2. cella ('1 / 0'): ZeroDivisionError" in message
    assert "92_later" not in capsys.readouterr().out


def test_series_student_runs_the_student_copy(tmp_path):
    """``--student``: the solution becomes a placeholder (here it would fail), the rest runs."""
    nb = _notebook(
        tmp_path / "93_exercise.ipynb",
        ("lesson = 6 * 7",),
        (
            "# 1. feladat – megoldás\nanswer = lesson\nraise RuntimeError('a solution ran')",
            "solution",
        ),
        ("assert answer is None, answer",),
    )
    env = {**os.environ, "TL_PROFILE": "smoke"}
    [result] = series.time_notebooks([nb], env, timeout=60, student=True)
    assert result["notebook"] == "93_exercise" and result["wall_s"] > 0
    with pytest.raises(series.SeriesError, match="a solution ran"):
        series.time_notebooks([nb], env, timeout=60)
    assert (
        nbformat.read(nb, as_version=4)
        .cells[1]
        .source.endswith("raise RuntimeError('a solution ran')")
    )


@pytest.mark.usefixtures("real_photos", "imagenet_weights")
def test_series_command_in_smoke_profile(tmp_path):
    holds = _notebook(
        tmp_path / "01_holds_memory.ipynb",
        (f"held = b'x' * ({HELD_MIB} * 2**20)",),
        ("raise RuntimeError('an nbval-skip cell must not run')", "nbval-skip"),
    )
    quick = _notebook(tmp_path / "02_quick.ipynb", ("print(sum(range(10)))",))
    output = tmp_path / "series.md"
    result = _run(
        "series.py",
        "--notebooks", str(quick), str(holds),
        "--u-photos", "32",
        "--output", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = output.read_text()
    header, rows = _table(text)
    assert header == list(series.COLUMNS)
    assert [r[0] for r in rows] == ["01_holds_memory", "02_quick", "total (RSS: largest)"]
    for row in rows:
        assert all(float(value) > 0 for value in row[1:]), row
    held_rss, quick_rss = float(rows[0][4]), float(rows[1][4])
    assert held_rss > HELD_MIB > quick_rss  # the kernel's memory, not the script's
    assert float(rows[2][4]) == held_rss
    assert "scaled to 3000" in text and "Profile smoke" in text and "git commit" in text
    assert re.search(r"U = \d+\.\d s and U_graph = \d+\.\d s right before", text)
    assert text.strip() in result.stdout
