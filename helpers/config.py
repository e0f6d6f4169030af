"""Paths, seeding and the two run profiles of the series.

Introduced in ``01_data_loading.ipynb`` and used by every notebook's setup cell.

Two profiles are selected by one environment variable, ``TL_PROFILE``:

* ``lesson`` (the default): what a student runs — all photos, the real number of epochs.
* ``smoke``: what the test suite sets — a few dozen photos and one epoch, so that every cell of
  every notebook executes in CI within minutes.

A notebook states its lesson value and its smoke value side by side on one visible line::

    EPOCHS = config.pick(lesson=20, smoke=1)

Other settings a student may change (all optional, read when :mod:`helpers` is imported):

* ``TL_DATA_DIR``: a local folder with the photos (see :mod:`helpers.data`).
* ``TL_OUTPUT_DIR``: where ``logs/``, ``models/`` and ``cache/`` live (default: the project
  folder). The test suite points it at a fresh temporary folder, so a test run never reads or
  overwrites a student's models.
* ``KERAS_HOME``: where Keras caches downloaded weights (standard Keras setting, read by Keras
  when ``keras`` is imported).

This module never imports TensorFlow or Keras at module level: notebooks import it before they
set ``TF_CPP_MIN_LOG_LEVEL``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TypeVar

#: Environment variable that selects the profile (``lesson`` or ``smoke``).
PROFILE_ENV = "TL_PROFILE"
#: Environment variable that points at a local copy of the photos.
DATA_DIR_ENV = "TL_DATA_DIR"
#: Environment variable that moves ``logs/``, ``models/`` and ``cache/`` elsewhere.
OUTPUT_DIR_ENV = "TL_OUTPUT_DIR"
#: Keras' own setting for its cache folder.
KERAS_HOME_ENV = "KERAS_HOME"

PROFILES = ("lesson", "smoke")


def _project_root() -> Path:
    # A checkout (editable install, the normal case) has pyproject.toml beside helpers/; a plain
    # install (Colab) keeps data, logs and models in the current folder instead of site-packages.
    if os.environ.get("TL_HOME"):
        return Path(os.environ["TL_HOME"]).expanduser()
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def _output_root() -> Path:
    value = os.environ.get(OUTPUT_DIR_ENV, "").strip()
    return Path(value).expanduser().absolute() if value else PROJECT_ROOT


#: Root of the project: the repository checkout (``TL_HOME`` overrides it).
PROJECT_ROOT = _project_root()
#: Downloaded data set lives here (git-ignored).
DATA_ROOT = PROJECT_ROOT / "data"
#: Everything a run writes lives under this folder: ``TL_OUTPUT_DIR``, else :data:`PROJECT_ROOT`.
OUTPUT_ROOT = _output_root()
#: TensorBoard runs, one sub-folder per run (git-ignored).
LOGS_ROOT = OUTPUT_ROOT / "logs"
#: Trained models (git-ignored).
MODELS_ROOT = OUTPUT_ROOT / "models"
#: Feature caches on disk (git-ignored; may be deleted at any time).
CACHE_ROOT = OUTPUT_ROOT / "cache"

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
    """Seed Python, NumPy and the Keras backend so that runs repeat.

    Introduced in ``01_data_loading.ipynb``. Keras is imported here, not at module level, so that
    notebooks can set ``TF_CPP_MIN_LOG_LEVEL`` before TensorFlow loads.

    With the seed set, the series' runs repeat bit for bit on the same machine: the one source of
    randomness that used to depend on thread timing, the augmentation layers inside a parallel
    ``tf.data`` map (they share one seed state and drew in thread order), runs sequentially in
    :func:`helpers.data.make_dataset` (``tests/test_config.py`` trains twice and compares the
    weights). TensorFlow's global op determinism is *not* switched on: it would serialise every
    ``tf.data`` pipeline, cost about 30% on the feature-cache trainings of notebooks 05 and 07,
    and print an error-looking log line in every notebook.

    Args:
        seed: The seed to use (a non-negative integer).

    Raises:
        TypeError: ``seed`` is not an integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TypeError(f"A seed nemnegatív egész szám legyen, nem {seed!r}.")
    os.environ.setdefault("PYTHONHASHSEED", str(seed))  # inherited by subprocesses
    import keras

    keras.utils.set_random_seed(seed)  # seeds Python's random, NumPy and the backend


def _tmp_keras_home() -> Path:
    # Keras' fallback when its folder is not writable (keras.utils.get_file).
    return Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"


def _keras_home_setting() -> tuple[str, bool]:
    """Return the folder Keras has (or will have) as its home, and whether Keras is imported.

    Keras reads ``KERAS_HOME`` once, when ``keras`` is imported; it offers no public accessor for
    the value, so the private ``keras.src.backend.config.keras_home()`` is read once Keras is
    loaded (``tests/test_config.py`` pins it against Keras' real behaviour).
    """
    keras_config = sys.modules.get("keras.src.backend.config")
    if keras_config is not None:
        return keras_config.keras_home(), True
    if KERAS_HOME_ENV in os.environ:
        return os.environ[KERAS_HOME_ENV], False
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras"), False


def _will_be_writable(setting: str) -> bool:
    """Whether ``keras.utils.get_file`` will find ``setting`` writable after ``import keras``.

    On import Keras tries ``os.makedirs(setting)`` without expanding ``~``; ``get_file`` then
    checks the *expanded* path.
    """
    if not setting:
        return False
    path = Path(os.path.expanduser(setting))
    if path.exists():
        return os.access(path, os.W_OK)
    if os.path.expanduser(setting) != setting:
        return False  # Keras creates the literal "~..." folder, not this one
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    return parent.is_dir() and os.access(parent, os.W_OK)


def _keras_home_state() -> tuple[str, bool, bool]:
    """``(setting, imported, usable)``: Keras' home setting, whether ``keras`` is loaded, and
    whether ``keras.utils.get_file`` accepts that folder (else it falls back to ``/tmp``)."""
    setting, imported = _keras_home_setting()
    if imported:
        return setting, True, os.access(os.path.expanduser(setting), os.W_OK)
    return setting, False, _will_be_writable(setting)


def keras_home() -> Path:
    """Return the folder Keras really uses as its cache root (weights go to its ``models/``).

    Introduced in ``02_backbone_inspection.ipynb``. Keras' rule: the ``KERAS_HOME`` value it read
    when ``keras`` was imported (a later change is ignored), else ``~/.keras``; if that folder is
    not writable (or could not be created), ``/tmp/.keras`` instead. Before ``keras`` is imported
    this returns the folder Keras *will* use with the current environment.
    """
    setting, _, usable = _keras_home_state()
    return (Path(os.path.expanduser(setting)) if usable else _tmp_keras_home()).absolute()


def keras_cache_dir() -> Path:
    """Return the folder where Keras looks for downloaded weights (``<Keras home>/models``).

    Introduced in ``02_backbone_inspection.ipynb``. See :func:`keras_home` for how Keras decides;
    :func:`keras_cache_note` says why it is not the folder ``KERAS_HOME`` names now, if it is not.
    """
    return keras_home() / "models"


def keras_cache_note() -> str:
    """Explain, in Hungarian, why Keras does not use the folder that ``KERAS_HOME`` names now.

    Introduced in ``02_backbone_inspection.ipynb``.

    Returns:
        One or two sentences, or ``""`` when Keras uses exactly what ``KERAS_HOME`` says (or
        ``KERAS_HOME`` is not set and ``~/.keras`` is usable).
    """
    setting, imported, usable = _keras_home_state()
    notes = []
    current = os.environ.get(KERAS_HOME_ENV)
    if imported and current is not None and current != setting:
        notes.append(
            f"A KERAS_HOME most {current!r}, de a Keras a mappáját az importálásakor választotta "
            f"({setting!r}), és azt használja: a KERAS_HOME-ot a keras importálása előtt kell "
            "beállítani (a notebook első cellájában), utána indítsd újra a kernelt."
        )
    if not usable:
        notes.append(
            f"A(z) {setting!r} mappa nem írható (vagy nem hozható létre), ezért a Keras a(z) "
            f"{keras_home()} mappát használja helyette. Tedd írhatóvá, vagy állítsd a "
            "KERAS_HOME-ot egy írható mappára a keras importálása előtt."
        )
    return " ".join(notes)


def describe() -> str:
    """Return a one-line summary of the active settings, printed by every setup cell.

    Introduced in ``01_data_loading.ipynb``.
    """
    data_dir = os.environ.get(DATA_DIR_ENV) or f"{DATA_ROOT} (letöltés)"
    note = keras_cache_note()
    return (
        f"profil: {profile()} | adatok: {data_dir} | kimenet: {OUTPUT_ROOT} | "
        f"Keras-gyorsítótár: {keras_cache_dir()}" + (f" | FIGYELEM: {note}" if note else "")
    )
