"""helpers.config: the two profiles, pick(), seeding, the output folder and the Keras cache
folder; and the suite settings of the root conftest.py (temporary output folder, work-tree check,
missing assets under CI).

Keras reads ``KERAS_HOME`` once, at ``import keras``, so the Keras-cache tests run in fresh
subprocesses and compare ``config.keras_cache_dir()`` with where ``keras.utils.get_file`` really
puts a file.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

from helpers import config

REPO = Path(__file__).resolve().parent.parent


def _clean_env(**changes) -> dict[str, str]:
    """This process's environment without pytest's variables, with ``changes`` applied (None
    removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.fixture
def no_profile(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)


def test_profile_defaults_to_lesson(no_profile):
    assert config.profile() == "lesson"
    assert not config.is_smoke()


def test_profile_empty_value_means_lesson(monkeypatch):
    monkeypatch.setenv("TL_PROFILE", "")
    assert config.profile() == "lesson"


@pytest.mark.parametrize("value", ["smoke", "SMOKE", "  smoke "])
def test_profile_smoke_from_environment(monkeypatch, value):
    monkeypatch.setenv("TL_PROFILE", value)
    assert config.profile() == "smoke"
    assert config.is_smoke()


def test_unknown_profile_raises_profile_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("TL_PROFILE", "fast")
    with pytest.raises(config.ProfileError) as excinfo:
        config.profile()
    message = str(excinfo.value)
    assert "TL_PROFILE" in message
    assert "fast" in message
    assert "lesson" in message and "smoke" in message
    assert isinstance(excinfo.value, ValueError)
    with pytest.raises(config.ProfileError):
        config.pick(lesson=1, smoke=2)  # no silent fallback to either value


def test_pick_follows_the_profile(monkeypatch):
    monkeypatch.setenv("TL_PROFILE", "lesson")
    assert config.pick(lesson=20, smoke=1) == 20
    assert config.pick(lesson=None, smoke=20) is None
    monkeypatch.setenv("TL_PROFILE", "smoke")
    assert config.pick(lesson=20, smoke=1) == 1
    assert config.pick(lesson=None, smoke=20) == 20


def test_suite_runs_in_smoke_profile_by_default():
    # conftest.py at the repository root selects the smoke profile for the whole suite.
    assert config.is_smoke()


def test_seed_everything_repeats_python_numpy_and_keras():
    import keras

    def draw():
        layer = keras.layers.Dense(3)
        layer.build((None, 4))
        return (
            random.random(),
            np.random.rand(4),  # noqa: NPY002 - the legacy global state is what is seeded
            keras.random.normal((5,)).numpy(),
            layer.kernel.numpy(),
        )

    config.seed_everything()
    first = draw()
    config.seed_everything()
    second = draw()
    config.seed_everything(config.SEED + 1)
    other = draw()
    assert first[0] == second[0]
    for a, b in zip(first[1:], second[1:], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[0] != other[0]
    assert not np.array_equal(first[1], other[1])
    assert not np.array_equal(first[2], other[2])


def test_describe_names_profile_and_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TL_PROFILE", "smoke")
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    text = config.describe()
    assert "smoke" in text
    assert str(tmp_path) in text
    monkeypatch.delenv("TL_DATA_DIR")
    assert str(config.DATA_ROOT) in config.describe()


def test_project_paths_live_in_the_checkout():
    if os.environ.get("TL_HOME"):
        pytest.skip("TL_HOME moves the project root on purpose")
    assert (config.PROJECT_ROOT / "pyproject.toml").is_file()
    assert config.DATA_ROOT.parent == config.PROJECT_ROOT
    assert config.IMAGE_SIZE == 224


# --------------------------------------------------------------------------------------------
# Output folder (TL_OUTPUT_DIR)
# --------------------------------------------------------------------------------------------


def test_the_suite_writes_under_a_temporary_output_folder():
    from helpers import training

    output = Path(os.environ["TL_OUTPUT_DIR"])
    assert config.OUTPUT_ROOT == output
    assert output != REPO and REPO not in output.parents  # outside the work tree
    assert config.LOGS_ROOT == output / "logs"
    assert config.MODELS_ROOT == output / "models"
    assert config.CACHE_ROOT == output / "cache"
    assert training.CLASSIFIER_PATH == output / "models" / "cats_vs_dogs.keras"
    assert str(output) in config.describe()


_PATHS = (
    "from helpers import config; import json; print(json.dumps([str(p) for p in "
    "(config.PROJECT_ROOT, config.OUTPUT_ROOT, config.LOGS_ROOT, config.MODELS_ROOT, "
    "config.CACHE_ROOT)]))"
)


def test_output_folder_defaults_to_the_project_and_expands_user(tmp_path):
    def paths(**env):
        result = subprocess.run(
            [sys.executable, "-c", _PATHS],
            env=_clean_env(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return [Path(p) for p in json.loads(result.stdout)]

    project, output, logs, models, cache = paths(TL_OUTPUT_DIR=None, TL_HOME=None)
    assert output == project == REPO
    assert (logs, models, cache) == (REPO / "logs", REPO / "models", REPO / "cache")
    _, output, logs, models, cache = paths(TL_OUTPUT_DIR="~/out", HOME=str(tmp_path))
    assert output == tmp_path / "out"
    assert (logs, models, cache) == (output / "logs", output / "models", output / "cache")


# --------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------


def _tiny_convnet():
    import keras

    model = keras.Sequential(
        [
            keras.Input((224, 224, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 5, strides=8, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    return model


def test_augmented_pipeline_repeats_after_seed_everything(tiny_dataset):
    # The augmentation layers share one seed state: in a parallel tf.data map, which batch gets
    # which random draw would depend on thread timing (make_dataset augments sequentially).
    from helpers import data

    def augmented_batches():
        config.seed_everything()
        datasets = data.make_datasets(
            tiny_dataset, batch_size=2, augment=data.augmentation(), verbose=False
        )
        return np.concatenate([x.numpy() for x, _ in datasets.train])

    first = augmented_batches()
    for _ in range(3):
        np.testing.assert_array_equal(augmented_batches(), first)


def test_two_trainings_from_the_same_seed_give_bit_identical_weights(tiny_dataset):
    from helpers import data

    def train():
        config.seed_everything()
        datasets = data.make_datasets(
            tiny_dataset, batch_size=2, augment=data.augmentation(), verbose=False
        )
        model = _tiny_convnet()
        model.fit(datasets.train, epochs=2, verbose=0, shuffle=False)  # ds shuffles
        return model.get_weights()

    first, second = train(), train()
    for a, b in zip(first, second, strict=True):
        assert a.tobytes() == b.tobytes()


def test_seed_everything_rejects_a_non_integer_seed():
    with pytest.raises(TypeError, match="seed"):
        config.seed_everything("42")


# --------------------------------------------------------------------------------------------
# The Keras cache folder, checked against Keras' own behaviour
# --------------------------------------------------------------------------------------------

_KERAS_HOME_PROBE = textwrap.dedent(
    """
    import json, os, sys, uuid
    from pathlib import Path

    from helpers import config

    source, later_home = Path(sys.argv[1]), sys.argv[2]
    result = {"predicted": str(config.keras_cache_dir())}
    result["predicted_note"] = config.keras_cache_note()
    import keras

    def where_keras_puts_a_file():
        name = f"probe-{uuid.uuid4().hex}.txt"
        path = keras.utils.get_file(name, origin=source.as_uri(), cache_subdir="models")
        result.setdefault("written", []).append(path)
        return str(Path(path).parent)

    result["imported"] = str(config.keras_cache_dir())
    result["keras"] = where_keras_puts_a_file()
    result["note"] = config.keras_cache_note()
    # The private accessor config reads once Keras is loaded: a Keras upgrade that moves it
    # must fail here, loudly.
    result["accessor"] = sys.modules["keras.src.backend.config"].keras_home()
    os.environ["KERAS_HOME"] = later_home
    result["after_change"] = str(config.keras_cache_dir())
    result["keras_after_change"] = where_keras_puts_a_file()
    result["note_after_change"] = config.keras_cache_note()
    print(json.dumps(result))
    """
)


def _probe_keras_home(tmp_path: Path, keras_home: str, **env) -> dict:
    source = tmp_path / "source.txt"
    source.write_text("probe")
    work = tmp_path / "cwd"  # Keras creates a literal "~..." folder here when given one
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _KERAS_HOME_PROBE, str(source), str(tmp_path / "later")],
        env=_clean_env(KERAS_HOME=keras_home, TF_CPP_MIN_LOG_LEVEL="3", **env),
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    for path in probe["written"]:
        Path(path).unlink()  # the /tmp/.keras fallback is outside tmp_path
    return probe


def test_keras_cache_dir_is_where_keras_writes_and_ignores_a_later_keras_home(tmp_path):
    (tmp_path / "kh").mkdir()
    probe = _probe_keras_home(tmp_path, "~/kh", HOME=str(tmp_path))
    expected = str(tmp_path / "kh" / "models")
    assert probe["predicted"] == probe["imported"] == probe["keras"] == expected
    assert probe["note"] == "" and probe["predicted_note"] == ""
    assert probe["accessor"] == "~/kh"
    # KERAS_HOME changed after `import keras`: Keras keeps its folder, and so does config.
    assert probe["after_change"] == probe["keras_after_change"] == expected
    note = probe["note_after_change"]
    assert str(tmp_path / "later") in note and "importálása előtt" in note


def test_keras_cache_dir_follows_keras_to_tmp_when_keras_home_is_unusable(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    probe = _probe_keras_home(tmp_path, str(blocker / "keras"))
    assert probe["predicted"] == probe["imported"] == probe["keras"]
    assert Path(probe["keras"]).parent.name == ".keras"
    assert not Path(probe["keras"]).is_relative_to(tmp_path)
    for note in (probe["predicted_note"], probe["note"]):
        assert "nem írható" in note and str(blocker / "keras") in note


# --------------------------------------------------------------------------------------------
# The root conftest.py: work-tree check and missing assets
# --------------------------------------------------------------------------------------------


def _run_pytest(args: list[str], cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _probe_repository(root: Path, test_body: str) -> Path:
    """A tiny git work tree with the real root conftest.py and one test."""
    root.mkdir()
    (root / "conftest.py").write_text((REPO / "conftest.py").read_text(encoding="utf-8"))
    (root / ".gitignore").write_text("/models/\n__pycache__/\n")
    (root / "test_probe.py").write_text(
        "import os\nfrom pathlib import Path\n\n\ndef test_probe():\n" + test_body
    )
    for command in (["init", "-q"], ["add", "."]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
    return root


def test_a_run_that_leaves_files_in_the_work_tree_fails(tmp_path):
    repo = _probe_repository(
        tmp_path / "repo",
        "    Path('models').mkdir(exist_ok=True)\n"
        "    Path('models/leftover.keras').write_text('x')\n"
        "    Path('notes.txt').write_text('x')\n",
    )
    local = _run_pytest([], repo, CI=None)
    output = local.stdout + local.stderr
    assert local.returncode == 1, output[-3000:]
    assert "1 passed" in output  # the test itself passed; the session check failed the run
    assert "new:      models/leftover.keras" in output  # an ignored artefact: always checked
    assert "notes.txt" not in output  # untracked files: only in CI, where nobody else edits
    ci = _run_pytest([], repo, CI="true")
    output = ci.stdout + ci.stderr
    assert ci.returncode == 1, output[-3000:]
    assert "changed:  models/leftover.keras" in output
    assert "changed:  notes.txt" in output
    # The suite runs on pytest-xdist workers (pyproject.toml): the controller's check fails it.
    shutil.rmtree(repo / "models")
    (repo / "notes.txt").unlink()
    parallel = _run_pytest(["-n", "2"], repo, CI=None)
    output = parallel.stdout + parallel.stderr
    assert parallel.returncode == 1, output[-3000:]
    assert "1 passed" in output and "new:      models/leftover.keras" in output


def test_a_notebook_given_on_the_command_line_runs_in_one_process(tmp_path):
    """Under ``-n 2`` the cells of a notebook still share one kernel (conftest.py turns
    pytest-xdist off when notebooks are named); the suite's own tests keep their workers."""
    repo = _probe_repository(tmp_path / "repo", "    assert True\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    nb.cells = [
        nbformat.v4.new_code_cell(f"x{i} = {i}" + (f" + x{i - 1}" if i else "")) for i in range(6)
    ]
    nbformat.write(nb, repo / "lesson.ipynb")
    args = ["-n", "2", "--dist", "loadgroup", "--nbval-lax", "--nbval-current-env"]
    result = _run_pytest([*args, "lesson.ipynb"], repo, CI=None)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "6 passed" in output, output[-3000:]
    assert "bringing up nodes" not in output  # xdist's line when it starts workers
    tests_only = _run_pytest([*args, "test_probe.py"], repo, CI=None)
    assert "bringing up nodes" in tests_only.stdout, tests_only.stdout[-3000:]


def test_a_run_that_writes_only_under_tl_output_dir_passes(tmp_path):
    repo = _probe_repository(
        tmp_path / "repo",
        "    output = Path(os.environ['TL_OUTPUT_DIR'])\n"
        "    (output / 'models').mkdir()\n"
        "    (output / 'models' / 'model.keras').write_text('x')\n"
        "    print('OUTPUT', output)\n",
    )
    result = _run_pytest(["-s"], repo, TL_OUTPUT_DIR=str(tmp_path / "ignored"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    used = Path(output.split("OUTPUT ", 1)[1].split()[0])
    assert used != tmp_path / "ignored"  # the suite always takes a fresh folder ...
    assert not used.exists()  # ... and removes it at the end


def test_missing_photos_fail_under_ci(tmp_path):
    result = _run_pytest(
        [str(REPO / "tests" / "test_integration.py"), "-k", "data_set", "-rA"],
        REPO,
        CI="true",
        TL_DATA_DIR=None,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "CI=true and an asset is missing" in output and "TL_DATA_DIR" in output
