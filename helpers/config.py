"""Paths, seeding and the two run profiles of the series.

Introduced in ``01_data_loading.ipynb`` and used by every notebook's setup cell.

Two profiles are selected by one environment variable, ``TL_PROFILE``:

* ``lesson`` (the default): what a student runs — all photos, the real number of epochs.
* ``smoke``: what the test suite sets — a few dozen photos and one epoch, so that every cell of
  every notebook executes in CI within minutes.

A notebook states its lesson value and its smoke value side by side on one visible line::

    EPOCHS = config.pick(lesson=20, smoke=1)

Other settings a student may change (all optional):

* ``TL_DATA_DIR``: a local folder with the photos (see :mod:`helpers.data`).
* ``KERAS_HOME``: where Keras caches downloaded weights (standard Keras setting).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

#: Environment variable that selects the profile (``lesson`` or ``smoke``).
PROFILE_ENV = "TL_PROFILE"
#: Environment variable that points at a local copy of the photos.
DATA_DIR_ENV = "TL_DATA_DIR"

PROFILES = ("lesson", "smoke")


def _project_root() -> Path:
    # A checkout (editable install, the normal case) has pyproject.toml beside helpers/; a plain
    # install (Colab) keeps data, logs and models in the current folder instead of site-packages.
    if os.environ.get("TL_HOME"):
        return Path(os.environ["TL_HOME"]).expanduser()
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


#: Root of the project: the repository checkout (``TL_HOME`` overrides it).
PROJECT_ROOT = _project_root()
#: Downloaded data set lives here (git-ignored).
DATA_ROOT = PROJECT_ROOT / "data"
#: TensorBoard runs, one sub-folder per run (git-ignored).
LOGS_ROOT = PROJECT_ROOT / "logs"
#: Trained models (git-ignored).
MODELS_ROOT = PROJECT_ROOT / "models"

#: Image side length the whole series uses (MobileNetV2's ImageNet weights are for 224x224).
IMAGE_SIZE = 224
#: The one seed of the series.
SEED = 42

T = TypeVar("T")


class ProfileError(ValueError):
    """Raised when ``TL_PROFILE`` holds an unknown value."""


def profile() -> str:
    """Return the active profile name, ``"lesson"`` unless ``TL_PROFILE`` says otherwise.

    Introduced in ``01_data_loading.ipynb``.

    Raises:
        ProfileError: ``TL_PROFILE`` is set to something other than ``lesson`` or ``smoke``.
    """
    value = os.environ.get(PROFILE_ENV, "lesson").strip().lower() or "lesson"
    if value not in PROFILES:
        raise ProfileError(
            f"Ismeretlen profil: {PROFILE_ENV}={value!r}. Lehetséges értékek: "
            f"{', '.join(PROFILES)} (a diákoknak: hagyd üresen, az alapértelmezés 'lesson')."
        )
    return value


def is_smoke() -> bool:
    """Return True under the test suite's quick ``smoke`` profile.

    Introduced in ``01_data_loading.ipynb``.
    """
    return profile() == "smoke"


def pick(lesson: T, smoke: T) -> T:
    """Choose the lesson value or the smoke value according to the active profile.

    Introduced in ``01_data_loading.ipynb``. Notebooks write both values on one line so the
    student always sees the real lesson setting::

        EPOCHS = config.pick(lesson=20, smoke=1)

    Args:
        lesson: The value a student runs with.
        smoke: The value the test suite runs with.

    Returns:
        ``lesson`` or ``smoke``.
    """
    return smoke if is_smoke() else lesson


def seed_everything(seed: int = SEED) -> None:
    """Seed Python, NumPy and the Keras backend so runs repeat.

    Introduced in ``01_data_loading.ipynb``. TensorFlow is imported lazily so that notebooks can set
    ``TF_CPP_MIN_LOG_LEVEL`` before it loads.

    Args:
        seed: The seed to use.
    """
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import keras

    keras.utils.set_random_seed(seed)  # seeds Python's random, NumPy and the backend


def keras_cache_dir() -> Path:
    """Return the folder where Keras looks for downloaded weights (``<KERAS_HOME>/models``).

    Introduced in ``02_backbone_inspection.ipynb``. Mirrors Keras' own rule: ``$KERAS_HOME`` if
    set, else ``~/.keras``; Keras falls back to ``/tmp/.keras`` when that folder is not writable.
    """
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    if not os.access(home, os.W_OK):  # Keras creates the folder on import, then checks this
        home = Path("/tmp/.keras")
    return home / "models"


def describe() -> str:
    """Return a one-line summary of the active settings, printed by every setup cell.

    Introduced in ``01_data_loading.ipynb``.
    """
    data_dir = os.environ.get(DATA_DIR_ENV) or f"{DATA_ROOT} (letöltés)"
    return f"profil: {profile()} | adatok: {data_dir} | Keras-gyorsítótár: {keras_cache_dir()}"
