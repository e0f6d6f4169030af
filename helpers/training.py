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
import time
from collections.abc import Callable
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
        # predict_on_batch runs the compiled graph: far less memory than an eager model(x) call
        probs.append(np.asarray(model.predict_on_batch(x)).reshape(-1))
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


def quick_classifier(datasets, *, epochs: int = 3, cut: str = backbone.CUT_LAYER, verbose: int = 0):
    """Train the series' classifier fast on cached features (no augmentation) and return it.

    Introduced in ``06_what_the_network_sees.ipynb`` as the fallback when notebook 05's model is
    missing. Same graph and freezing as notebook 05; only the frozen front is computed once
    (:func:`cache_features`, :func:`train_cached`).

    Args:
        datasets: A :class:`helpers.data.Datasets` (its train/validation file splits are used).
        epochs: Epochs over the cached features.
        cut: First trainable layer.
        verbose: Keras verbosity.
    """
    config.seed_everything()
    model = backbone.build_classifier(cut=cut)
    cache = cache_features(
        model, datasets.files, at=cut, splits=("train", "validation"), verbose=bool(verbose)
    )
    train_cached(cache, epochs=epochs, learning_rate=1e-4, verbose=verbose)
    return model


def trainable_before(model, layer_name: str) -> list[str]:
    """Return the names of the layers before ``layer_name`` that still have trainable weights.

    Introduced in ``07_experiments.ipynb``. Caching is exact only if this list is empty: a layer
    that learns (or a BatchNormalization layer that is not frozen, which would normalise with
    batch statistics during ``fit``) changes its output from epoch to epoch.
    """
    cut = backbone.layer_index(model, layer_name)
    return [layer.name for layer in model.layers[:cut] if layer.trainable_weights]


def _require_frozen(model, layer_name: str) -> None:
    learning = trainable_before(model, layer_name)
    if learning:
        shown = ", ".join(learning[:5]) + (" …" if len(learning) > 5 else "")
        raise ValueError(
            f"A(z) {layer_name!r} előtti rétegek közül {len(learning)} tanítható ({shown}). "
            "Gyorsítótárazni csak a teljesen befagyasztott (BatchNormot is fagyasztó) elejét "
            "szabad, különben a tárolt kimenet nem az, amit a tanítás közben a háló számolna. "
            "Fagyaszd be őket: backbone.freeze_up_to(model, vágási_réteg)."
        )


@dataclass
class FeatureCache:
    """The frozen front part's outputs for whole file splits, computed once and kept in memory.

    Introduced in ``07_experiments.ipynb``. Built by :func:`cache_features`; a cache can be pushed
    further through frozen layers with :meth:`advance`.

    Attributes:
        model: The full model the features belong to.
        at: The first layer of the tail: the features are the tensors that enter
            ``model.layers[layer_index(model, at):]`` from earlier layers.
        tail: ``keras.Model`` from the cached tensors to the model's output. It shares its layers
            with ``model``: training ``tail`` trains ``model``.
        features: Split name -> one array per tail input (float32 or float16).
        labels: Split name -> int32 labels (cats 0, dogs 1).
        seconds: Wall-clock seconds spent computing the features.
    """

    model: object
    at: str
    tail: object
    features: dict[str, list[np.ndarray]]
    labels: dict[str, np.ndarray]
    seconds: float

    def inputs(self, split: str) -> list[np.ndarray]:
        """What ``fit``/``predict`` of :attr:`tail` take for ``split``: a list of arrays."""
        return list(self.features[split])

    @property
    def nbytes(self) -> int:
        """Memory held by the cached arrays, in bytes."""
        return sum(a.nbytes for arrays in self.features.values() for a in arrays)

    def shapes(self) -> dict[str, list[tuple[int, ...]]]:
        """Split name -> shapes of its cached arrays."""
        return {k: [a.shape for a in v] for k, v in self.features.items()}

    def subset(self, indices, split: str = "train") -> FeatureCache:
        """Return a cache whose ``split`` keeps only the rows ``indices`` (the rest is shared).

        Used in ``07_experiments.ipynb`` for smaller or deliberately biased training sets: no
        photo is read again and no feature is recomputed.
        """
        indices = np.asarray(indices)
        features = {**self.features, split: [a[indices] for a in self.features[split]]}
        labels = {**self.labels, split: self.labels[split][indices]}
        return FeatureCache(self.model, self.at, self.tail, features, labels, self.seconds)

    def advance(self, at: str, *, batch_size: int = 64) -> FeatureCache:
        """Return a new cache at a later layer, computed from this one (no photo is read again).

        Every layer before ``at`` must be frozen (freeze more with
        :func:`helpers.backbone.freeze_up_to` first). ``advance("dog_probability")`` gives the
        pooled 1280-long feature vectors: the input of the classifier head alone. Like every cache,
        the result is a snapshot: it stays exact only while the layers before ``at`` keep their
        weights.
        """
        import keras

        _require_frozen(self.model, at)
        start = time.perf_counter()
        old, new = backbone.frontier(self.model, self.at), backbone.frontier(self.model, at)
        # A tensor that crosses both cuts (a residual branch) is copied, not recomputed.
        kept = [next((i for i, t in enumerate(old) if t is n), None) for n in new]
        computed = [n for n, k in zip(new, kept, strict=True) if k is None]
        mid = keras.Model(old, computed) if computed else None
        _, tail = backbone.split_at(self.model, at)
        features = {}
        for split, arrays in self.features.items():
            out = []
            if mid is not None:
                out = mid.predict(list(arrays), batch_size=batch_size, verbose=0)
                out = list(out) if isinstance(out, (list, tuple)) else [out]
            dtype = arrays[0].dtype
            features[split] = [
                arrays[k] if k is not None else np.asarray(out.pop(0), dtype=dtype) for k in kept
            ]
        seconds = self.seconds + time.perf_counter() - start
        return FeatureCache(self.model, at, tail, features, dict(self.labels), seconds)


def cache_features(
    model,
    files,
    *,
    at: str = backbone.CUT_LAYER,
    splits: tuple[str, ...] | None = None,
    batch_size: int = 16,
    dtype: str = "float32",
    transform: Callable | None = None,
    verbose: bool = True,
) -> FeatureCache:
    """Push every photo of the given splits through the frozen front of ``model`` once.

    Introduced in ``07_experiments.ipynb``. Exact because the layers before ``at`` are frozen
    (BatchNorm included, so it normalises with its stored statistics) and the photos are **not
    augmented**: the pipelines are rebuilt from the file lists, so a random augmentation of the
    training pipeline is never used. The price: no input augmentation while training on the
    cache, and memory for the arrays (see :attr:`FeatureCache.nbytes`).

    Args:
        model: A flat classifier such as :func:`helpers.backbone.build_classifier` builds.
        files: ``{"train": FileSplit, ...}`` (e.g. ``Datasets.files``) or a ``Datasets``.
        at: First layer of the tail. ``"block_12_expand"`` caches the 14x14x96 output of
            ``block_11_add`` (7x smaller than the two tensors entering ``block_12_project``); the
            frozen ``block_12`` expansion then runs cheaply every epoch.
        splits: Which splits to cache; default: all of ``files``.
        batch_size: Photos per forward pass. Larger batches are not faster on a 2-core CPU but
            hold more activations in memory (measured: 16 and 32 run at the same speed, 64 at
            half of it with 0.8 GB more peak memory).
        dtype: Storage type, ``"float32"`` (exact) or ``"float16"`` (half the memory, rounding
            error of about 1e-3 relative).
        transform: A **deterministic** function applied to every batch of 0..255 images before
            the front, e.g. grayscale or blur to test a distribution shift. Never a random
            augmentation: its one frozen draw would be reused in every epoch.
        verbose: Print the time and the memory used.

    Returns:
        The :class:`FeatureCache`; its ``tail`` is the model to train.

    Raises:
        ValueError: A layer before ``at`` still learns (caching would not be exact).
    """
    from helpers import data

    files = getattr(files, "files", files)
    _require_frozen(model, at)
    front, tail = backbone.split_at(model, at)
    start = time.perf_counter()
    features: dict[str, list[np.ndarray]] = {}
    labels: dict[str, np.ndarray] = {}
    for split in splits or tuple(files):
        pipeline = data.make_dataset(files[split], batch_size=batch_size, cache=False)
        n = len(files[split])
        arrays = [np.empty((n, *t.shape[1:]), dtype=dtype) for t in front.outputs]
        ys = np.empty(n, dtype="int32")
        i = 0
        for x, y in pipeline:
            if transform is not None:
                x = transform(x)
            out = front.predict_on_batch(x)  # compiled graph: about twice as fast as eager
            out = out if isinstance(out, (list, tuple)) else [out]
            k = int(x.shape[0])
            for array, o in zip(arrays, out, strict=True):
                array[i : i + k] = np.asarray(o)
            ys[i : i + k] = np.asarray(y)
            i += k
        features[split], labels[split] = arrays, ys
    cache = FeatureCache(model, at, tail, features, labels, time.perf_counter() - start)
    if verbose:
        n_photos = sum(len(v) for v in labels.values())
        print(
            f"Gyorsítótár a(z) {at!r} előtt: {n_photos} kép, {cache.seconds:.1f} s, "
            f"{cache.nbytes / 2**20:.0f} MiB ({dtype})"
        )
    return cache


@dataclass
class CachedRun:
    """History and timing of one :func:`train_cached` call.

    Attributes:
        history: Keras ``History.history`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).
        epoch_seconds: Wall-clock seconds of each epoch, validation included.
    """

    history: dict[str, list[float]]
    epoch_seconds: list[float]

    @property
    def seconds(self) -> float:
        return float(sum(self.epoch_seconds))


def epoch_timer():
    """Return a Keras callback that records each epoch's wall-clock time in its ``.seconds`` list.

    Introduced in ``07_experiments.ipynb`` (time per epoch of each cut); :func:`train_cached`
    uses it too.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def train_cached(
    cache: FeatureCache,
    *,
    epochs: int,
    learning_rate: float = 1e-4,
    batch_size: int = 32,
    train: str = "train",
    validation: str | None = "validation",
    callbacks: list | None = None,
    verbose: int = 0,
) -> CachedRun:
    """Compile the cache's tail (Adam, binary cross-entropy, accuracy) and fit it on the arrays.

    Introduced in ``07_experiments.ipynb``. The NumPy arrays go straight into ``fit`` (Keras
    slices them batch by batch; wrapping big arrays in ``tf.data.Dataset.from_tensor_slices``
    would copy them into the graph). The tail shares its layers with ``cache.model``, so the
    model itself is trained. Compiling again starts a fresh optimizer state.

    Args:
        cache: The features, from :func:`cache_features` or :meth:`FeatureCache.advance`.
        epochs: Passes over the cached training split.
        learning_rate: Adam's learning rate (1e-4 for fine-tuning, 1e-3 for a new head alone).
        batch_size: Examples per step.
        train: Split to train on.
        validation: Split to validate on after every epoch (``None``: no validation).
        callbacks: Extra Keras callbacks.
        verbose: Keras verbosity.
    """
    import keras

    timer = epoch_timer()
    cache.tail.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    history = cache.tail.fit(
        cache.inputs(train),
        cache.labels[train],
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        validation_data=(
            None if validation is None else (cache.inputs(validation), cache.labels[validation])
        ),
        callbacks=[timer, *(callbacks or [])],
        verbose=verbose,
    )
    return CachedRun(
        {k: [float(v) for v in vals] for k, vals in history.history.items()}, timer.seconds
    )


def evaluate_cached(cache: FeatureCache, split: str, *, batch_size: int = 64) -> Evaluation:
    """Predict P(dog) for a cached split with the cache's tail; same result as :func:`evaluate`.

    Introduced in ``07_experiments.ipynb``.
    """
    probs = cache.tail.predict(cache.inputs(split), batch_size=batch_size, verbose=0)
    return Evaluation(cache.labels[split].astype("int32"), np.asarray(probs).reshape(-1))


def cache_error(model, images, *, at: str = backbone.CUT_LAYER, dtype: str = "float32") -> float:
    """Return ``max |tail(front(x)) - model(x)|`` over a batch: the numerical check of caching.

    Introduced in ``07_experiments.ipynb``. With ``dtype="float16"`` the front's outputs are
    rounded to half precision first, as a float16 cache would store them.

    Args:
        model: The full classifier.
        images: A batch of raw 0..255 images, shape ``(n, 224, 224, 3)``.
        at: First layer of the tail.
        dtype: Storage type to simulate.
    """
    front, tail = backbone.split_at(model, at)
    full = np.asarray(model(images, training=False))
    out = front(images, training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    stored = [np.asarray(o).astype(dtype).astype("float32") for o in out]
    cached = np.asarray(tail(stored, training=False))
    return float(np.max(np.abs(cached - full)))
