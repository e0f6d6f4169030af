"""helpers.config: the two profiles, pick(), seeding and the Keras cache folder."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from helpers import config


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


def test_keras_cache_dir_honours_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert config.keras_cache_dir() == tmp_path / "models"


def test_keras_cache_dir_expands_user(monkeypatch, tmp_path):
    (tmp_path / "kh").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", "~/kh")
    assert config.keras_cache_dir() == tmp_path / "kh" / "models"


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
