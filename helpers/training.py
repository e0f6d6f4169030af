"""Training support: run folders for TensorBoard, reading the logs back, evaluation, saving,
and feature caching.

Introduced in ``05_training_tensorboard.ipynb`` (run folders, logs, evaluation, saving) and
``07_experiments.ipynb`` (feature caching).
``compile`` and ``fit`` themselves stay in the notebooks.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import backbone, config

#: Where notebook 05 saves the trained classifier; later notebooks load it from here.
CLASSIFIER_PATH = config.MODELS_ROOT / "cats_vs_dogs.keras"


def _timestamp() -> str:
    # No ':' in folder names: Windows forbids it (one cause of the seed's TensorBoard crash).
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def new_run_dir(name: str = "run", root: str | os.PathLike | None = None) -> Path:
    """Create a fresh, never-reused folder for one training run's TensorBoard logs.

    Introduced in ``05_training_tensorboard.ipynb``. Built with ``pathlib`` (works on Windows and
    Linux), named ``<name>-<date>-<time>`` and suffixed ``-2``, ``-3`` … if that exists, so earlier
    runs are never overwritten.

    Args:
        name: Short run name (letters, digits, ``-`` and ``_``).
        root: Parent folder; defaults to ``logs/`` in the project.

    Raises:
        NotADirectoryError: ``root`` (or one of its parents) exists as a *file* — the exact
            situation behind TensorFlow's ``FailedPreconditionError ... is not a directory``.
    """
    if not name or any(ch in name for ch in '<>:"/\\|?*'):
        raise ValueError(
            f'A futás neve ({name!r}) nem lehet üres, és nem tartalmazhat ilyen jeleket: <>:"/\\|?*'
        )
    root = Path(root) if root is not None else config.LOGS_ROOT
    for parent in [root, *root.parents]:
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(
                f"A naplómappa helyén egy fájl áll: {parent}. A TensorBoard ide nem tud mappát "
                "létrehozni (ez a 'FailedPreconditionError ... is not a directory' hiba oka). "
                "Nevezd át vagy töröld a fájlt, vagy válassz más mappát."
            )
    root.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{_timestamp()}"
    for i in range(1, 1000):
        run_dir = root / (base if i == 1 else f"{base}-{i}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise RuntimeError(f"Nem sikerült új futásmappát létrehozni itt: {root}")


def read_scalars(run_dir: str | os.PathLike) -> dict[str, dict[str, list[float]]]:
    """Read the per-epoch scalars that Keras' TensorBoard callback wrote to ``run_dir``.

    Introduced in ``05_training_tensorboard.ipynb`` — reading the event files back proves that the
    logs really were written.

    Returns:
        ``{"train": {"epoch_loss": [...], "epoch_accuracy": [...]}, "validation": {...}}``, values
        in epoch order.

    Raises:
        FileNotFoundError: No event files under ``run_dir``.
    """
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    run_dir = Path(run_dir)
    out: dict[str, dict[str, list[float]]] = {}
    for sub in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        if not list(sub.glob("events.out.tfevents.*")):
            continue
        acc = event_accumulator.EventAccumulator(str(sub), size_guidance={"tensors": 0})
        acc.Reload()
        tags = {}
        for tag in acc.Tags().get("tensors", []):
            events = sorted(acc.Tensors(tag), key=lambda e: e.step)
            values = [tf.make_ndarray(e.tensor_proto) for e in events]
            # Keras also logs the model config as a string tensor: keep numeric scalars only.
            if values and all(v.ndim == 0 and v.dtype.kind == "f" for v in values):
                tags[tag] = [float(v) for v in values]
        if tags:
            out[sub.name] = tags
    if not out:
        raise FileNotFoundError(
            f"Nincsenek TensorBoard-eseményfájlok itt: {run_dir}. Lefutott a fit() a TensorBoard "
            "callbackkel?"
        )
    return out


@dataclass
class Evaluation:
    """Predictions of a binary classifier on one dataset."""

    labels: np.ndarray
    probabilities: np.ndarray
    threshold: float = 0.5

    @property
    def predictions(self) -> np.ndarray:
        return (self.probabilities >= self.threshold).astype("int32")

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.labels))

    @property
    def confusion(self) -> np.ndarray:
        """2x2 matrix, rows = true class, columns = predicted class."""
        matrix = np.zeros((2, 2), dtype="int64")
        np.add.at(matrix, (self.labels, self.predictions), 1)
        return matrix

    @property
    def wrong(self) -> np.ndarray:
        """Indices of the misclassified examples, most confident mistakes first."""
        idx = np.flatnonzero(self.predictions != self.labels)
        confidence = np.abs(self.probabilities[idx] - 0.5)
        return idx[np.argsort(-confidence, kind="stable")]


def evaluate(model, dataset) -> Evaluation:
    """Run ``model`` over a ``(image, label)`` dataset and collect labels and P(class 1).

    Introduced in ``05_training_tensorboard.ipynb``.
    """
    labels, probs = [], []
    for x, y in dataset:
        probs.append(np.asarray(model(x, training=False)).reshape(-1))
        labels.append(np.asarray(y).reshape(-1))
    return Evaluation(np.concatenate(labels).astype("int32"), np.concatenate(probs))


def save_classifier(model, path: str | os.PathLike = CLASSIFIER_PATH) -> Path:
    """Save ``model`` as one ``.keras`` file; an existing file is kept under a dated name first.

    Introduced in ``05_training_tensorboard.ipynb``.

    Returns:
        The path written.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"A modellfájl kiterjesztése .keras legyen, nem {path.suffix!r}: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(f"{path.stem}-{_timestamp()}{path.suffix}")
        i = 2
        while backup.exists():
            backup = path.with_name(f"{path.stem}-{_timestamp()}-{i}{path.suffix}")
            i += 1
        shutil.move(path, backup)
        print(f"A korábbi modell megmaradt: {backup}")
    model.save(path)
    return path


def load_classifier(path: str | os.PathLike = CLASSIFIER_PATH):
    """Load a classifier saved by :func:`save_classifier`.

    Introduced in ``06_what_the_network_sees.ipynb``.

    Raises:
        FileNotFoundError: With a hint to run notebook 05 (or :func:`quick_classifier`).
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Nincs betanított modell itt: {path}. Futtasd le a 05_training_tensorboard "
            "notebookot, vagy hívd meg a training.quick_classifier() függvényt."
        )
    return keras.models.load_model(path)


# --------------------------------------------------------------------------------------------
# Feature caching
# --------------------------------------------------------------------------------------------


def extract_features(front, dataset) -> tuple[list[np.ndarray], np.ndarray]:
    """Run the frozen front part once over a dataset and keep its outputs in memory.

    Introduced in ``07_experiments.ipynb``. Exact as long as the front is frozen (BatchNorm
    included) and the dataset is not randomly augmented.

    Returns:
        ``(features, labels)``: one array per front output, and the labels.
    """
    chunks: list[list[np.ndarray]] = []
    labels = []
    for x, y in dataset:
        out = front(x, training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        chunks.append([np.asarray(o) for o in out])
        labels.append(np.asarray(y))
    features = [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
    return features, np.concatenate(labels)


def quick_classifier(datasets, *, epochs: int = 3, cut: str = backbone.CUT_LAYER, verbose: int = 0):
    """Train the series' classifier fast on cached features (no augmentation) and return it.

    Introduced in ``06_what_the_network_sees.ipynb`` as the fallback when notebook 05's model is
    missing. Same graph and freezing as notebook 05; only the frozen front is computed once.

    Args:
        datasets: A :class:`helpers.data.Datasets` (its un-augmented train/validation pipelines
            are used).
        epochs: Epochs over the cached features.
        cut: First trainable layer.
        verbose: Keras verbosity.
    """
    import keras

    from helpers import data

    config.seed_everything()
    model = backbone.build_classifier(cut=cut)
    front, tail = backbone.split_at(model, cut)
    plain_train = data.make_dataset(datasets.files["train"], batch_size=32)
    train_x, train_y = extract_features(front, plain_train)
    val_x, val_y = extract_features(front, datasets.validation)
    tail.compile(
        optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy", metrics=["accuracy"]
    )
    # NumPy arrays straight into fit: Keras slices them per batch without copying them into a graph.
    tail.fit(
        train_x,
        train_y,
        batch_size=32,
        shuffle=True,
        validation_data=(val_x, val_y),
        epochs=epochs,
        verbose=verbose,
    )
    return model
