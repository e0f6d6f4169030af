"""Training support: run folders for TensorBoard, reading the logs back, evaluation, saving,
and feature caching (in memory and on disk).

Introduced in ``05_training_tensorboard.ipynb`` (run folders, logs, evaluation, saving) and
``07_experiments.ipynb`` (feature caching).
``compile`` and ``fit`` themselves stay in the notebooks.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import numbers
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from helpers import backbone, config, data

#: File name of the trained classifier.
CLASSIFIER_FILE = "cats_vs_dogs.keras"
#: Where notebook 05 saves the trained classifier; later notebooks load it from here. It follows
#: ``TL_OUTPUT_DIR`` (read when :mod:`helpers` is imported, like every path in
#: :mod:`helpers.config`).
CLASSIFIER_PATH = config.MODELS_ROOT / CLASSIFIER_FILE
#: Version of the on-disk feature cache: the stored layout *and* the photo loading
#: (:func:`helpers.data.make_dataset`) it depends on. Bump it when either changes, so that no
#: entry written by an older version is ever read.
FEATURE_CACHE_VERSION = 1
#: Sub-folder of :data:`helpers.config.CACHE_ROOT` holding the feature cache entries.
FEATURE_CACHE_DIR = "features"
#: Photos per forward pass in :func:`evaluate`, whatever the dataset's batch size.
EVALUATE_BATCH_SIZE = 16


def _timestamp() -> str:
    # No ':' in folder names: Windows forbids it (one cause of the seed's TensorBoard crash).
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _as_path(value, argument: str) -> Path:
    """``str``/``PathLike`` -> ``Path`` with ``~`` expanded; anything else -> clear TypeError."""
    if isinstance(value, (str, os.PathLike)):
        return Path(value).expanduser()
    raise TypeError(
        f"A(z) {argument} egy elérési út legyen (szöveg vagy pathlib.Path), nem "
        f"{type(value).__name__}: {value!r}."
    )


def _positive_int(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"A(z) {argument} pozitív egész szám legyen, nem {value!r}.")
    return int(value)


def _require_model(model, function: str) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"A {function}() egy Keras-modellt vár (például backbone.build_classifier()), nem "
            f"{type(model).__name__} típusú értéket."
        )


def new_run_dir(name: str = "run", root: str | os.PathLike | None = None) -> Path:
    """Create a fresh, never-reused folder for one training run's TensorBoard logs.

    Introduced in ``05_training_tensorboard.ipynb``. Built with ``pathlib`` (works on Windows and
    Linux), named ``<name>-<date>-<time>`` and suffixed ``-2``, ``-3`` … if that exists, so earlier
    runs are never overwritten.

    Args:
        name: Short run name (letters, digits, ``-`` and ``_``).
        root: Parent folder (``~`` is expanded); defaults to :data:`helpers.config.LOGS_ROOT`.

    Raises:
        TypeError: ``name`` is not a string or ``root`` is not a path.
        ValueError: ``name`` is empty or holds a character a folder name cannot have.
        NotADirectoryError: ``root`` (or one of its parents) exists as a *file* — the exact
            situation behind TensorFlow's ``FailedPreconditionError ... is not a directory``.
    """
    if not isinstance(name, str):
        raise TypeError(f"A futás neve szöveg legyen, nem {type(name).__name__}: {name!r}.")
    if not name or any(ch in name for ch in '<>:"/\\|?*'):
        raise ValueError(
            f'A futás neve ({name!r}) nem lehet üres, és nem tartalmazhat ilyen jeleket: <>:"/\\|?*'
        )
    root = config.LOGS_ROOT if root is None else _as_path(root, "root")
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
        FileNotFoundError: ``run_dir`` is not a folder, or it holds no event files.
    """
    run_dir = _as_path(run_dir, "run_dir")
    if not run_dir.is_dir():
        raise FileNotFoundError(f"Nincs ilyen naplómappa: {run_dir}")
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
    """Predictions of a binary classifier on one dataset.

    Introduced in ``05_training_tensorboard.ipynb``. Accepts what ``model.predict`` returns:
    probabilities of shape ``(N,)`` or ``(N, 1)`` are both stored as ``(N,)``.

    Attributes:
        labels: True classes, integers 0 (cat) or 1 (dog), shape ``(N,)``.
        probabilities: P(class 1) for every example, between 0 and 1, shape ``(N,)``.
        threshold: P(dog) at or above which an example counts as a dog.

    Raises:
        TypeError: The labels are not integers (floats, strings) or the probabilities are not
            numbers.
        ValueError: Shapes or lengths do not match, a label is not 0/1, a probability is outside
            0..1, or the threshold is not between 0 and 1.
    """

    labels: np.ndarray
    probabilities: np.ndarray
    threshold: float = 0.5

    def __post_init__(self):
        labels = np.asarray(self.labels)
        probabilities = np.asarray(self.probabilities)
        if labels.dtype.kind not in "iub":
            raise TypeError(
                f"A címkék egész számok legyenek (0 = macska, 1 = kutya), nem {labels.dtype} "
                "típusúak. Lebegőpontos 0.0/1.0 címkéből így lesz egész: címkék.astype('int32')."
            )
        if probabilities.dtype.kind not in "fiu":
            raise TypeError(
                f"A valószínűségek számok legyenek, nem {probabilities.dtype} típusúak."
            )
        labels = _column(labels, "címkék")
        probabilities = _column(probabilities, "valószínűségek")
        if len(labels) != len(probabilities):
            raise ValueError(
                f"{len(labels)} címke és {len(probabilities)} valószínűség: ugyanannyi kell, "
                "ugyanabban a sorrendben (például ne keverő, shuffle=True adatfolyamon jósolj)."
            )
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"A címkék csak 0 vagy 1 lehetnek, ezek is vannak: {np.unique(labels)}"
            )
        if probabilities.size and not (
            np.all(probabilities >= 0.0) and np.all(probabilities <= 1.0)
        ):
            raise ValueError(
                "A valószínűségek 0 és 1 közé esnek (a szigmoid kimenet); itt van más érték is "
                "(vagy NaN). Logitokat adtál meg? Akkor előbb: keras.ops.sigmoid(logitok)."
            )
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real):
            raise TypeError(f"A küszöb szám legyen, nem {self.threshold!r}.")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"A küszöb 0 és 1 közé essen, nem {self.threshold}.")
        self.labels = labels.astype("int32")
        self.probabilities = probabilities.astype(np.result_type(probabilities, np.float32))

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
        """Indices of the misclassified examples, most confident mistakes first.

        Confidence is the distance of the probability from :attr:`threshold`.
        """
        idx = np.flatnonzero(self.predictions != self.labels)
        confidence = np.abs(self.probabilities[idx] - self.threshold)
        return idx[np.argsort(-confidence, kind="stable")]


def _column(values: np.ndarray, what: str) -> np.ndarray:
    if values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0]
    if values.ndim != 1:
        raise ValueError(
            f"A(z) {what} alakja (N,) vagy (N, 1) legyen (egy szám példánként), nem {values.shape}."
        )
    return values


def evaluate(model, dataset) -> Evaluation:
    """Run ``model`` over a ``(image, label)`` dataset and collect labels and P(class 1).

    Introduced in ``05_training_tensorboard.ipynb``.

    Args:
        model: The classifier.
        dataset: A batched ``tf.data.Dataset`` of ``(images, labels)``, e.g. ``ds.test``.

    Raises:
        TypeError: ``model`` is not a Keras model or ``dataset`` not a ``tf.data.Dataset``.
    """
    _require_model(model, "evaluate")
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "Az evaluate() egy (kép, címke) párokat adó tf.data-adatfolyamot vár (például "
            f"ds.test), nem {type(dataset).__name__} típusú értéket. Fájllistából így lesz: "
            "data.make_dataset(ds.files['test'])."
        )
    labels, probs = [], []
    # At most EVALUATE_BATCH_SIZE photos per forward pass: at 224 px a batch of 32 raised 05's peak
    # memory by about 250 MB, at the same speed. predict_on_batch runs the compiled graph: far less
    # memory than an eager model(x) call.
    for x, y in dataset.rebatch(EVALUATE_BATCH_SIZE):
        probs.append(np.asarray(model.predict_on_batch(x)).reshape(-1))
        labels.append(np.asarray(y).reshape(-1))
    return Evaluation(np.concatenate(labels).astype("int32"), np.concatenate(probs))


def _classifier_path(path) -> Path:
    path = CLASSIFIER_PATH if path is None else _as_path(path, "path")
    if path.suffix != ".keras":
        raise ValueError(f"A modellfájl kiterjesztése .keras legyen, nem {path.suffix!r}: {path}")
    return path


def _backup_name(path: Path) -> Path:
    backup = path.with_name(f"{path.stem}-{_timestamp()}{path.suffix}")
    i = 2
    while backup.exists():
        backup = path.with_name(f"{path.stem}-{_timestamp()}-{i}{path.suffix}")
        i += 1
    return backup


def save_classifier(model, path: str | os.PathLike | None = None) -> Path:
    """Save ``model`` as one ``.keras`` file; an existing file is kept under a dated name.

    Introduced in ``05_training_tensorboard.ipynb``. The model is first written to a temporary
    file in the same folder and renamed only when it is complete, so a failing save (full disk,
    a layer that cannot be serialised, an interrupted kernel) never leaves a half-written file and
    never touches the earlier model. Only then is the earlier file kept under
    ``<name>-<date>-<time>.keras``.

    Args:
        model: The model to save.
        path: A ``.keras`` file (``~`` is expanded); defaults to :data:`CLASSIFIER_PATH`.

    Returns:
        The path written.

    Raises:
        TypeError: ``model`` is not a Keras model or ``path`` not a path.
        ValueError: ``path`` does not end in ``.keras``.
    """
    _require_model(model, "save_classifier")
    path = _classifier_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}-{uuid.uuid4().hex}.tmp.keras")
    backup = None
    try:
        model.save(temporary)
        if path.exists():
            backup = _backup_name(path)
            try:
                os.link(path, backup)  # no copy: the backup and the old file share the data
            except OSError:  # file systems without hard links (FAT, some network drives)
                shutil.copy2(path, backup)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        if backup is not None and path.exists():
            backup.unlink(missing_ok=True)  # the old model is still at `path`
        raise
    if backup is not None:
        print(f"A korábbi modell megmaradt: {backup}")
    return path


def load_classifier(path: str | os.PathLike | None = None):
    """Load a classifier saved by :func:`save_classifier`.

    Introduced in ``06_what_the_network_sees.ipynb``.

    Args:
        path: A ``.keras`` file (``~`` is expanded); defaults to :data:`CLASSIFIER_PATH`.

    Raises:
        FileNotFoundError: With a hint to run notebook 05 (or :func:`quick_classifier`).
        ValueError: The file exists but is not a loadable Keras model.
    """
    path = _classifier_path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Nincs betanított modell itt: {path}. Futtasd le a 05_training_tensorboard "
            "notebookot, vagy hívd meg a training.quick_classifier() függvényt."
        )
    try:
        return keras.models.load_model(path)
    except Exception as exc:
        raise ValueError(
            f"A(z) {path} nem tölthető be Keras-modellként ({type(exc).__name__}: {exc}). Ha "
            "sérült (például félbeszakadt egy korábbi mentés), töröld, és futtasd újra a "
            "05_training_tensorboard notebookot."
        ) from None


# --------------------------------------------------------------------------------------------
# Feature caching
# --------------------------------------------------------------------------------------------


def _file_splits(files, function: str) -> dict[str, data.FileSplit]:
    """``Datasets`` or ``{name: FileSplit}`` -> dict; anything else -> a clear TypeError."""
    if isinstance(files, data.Datasets):
        files = files.files
    if isinstance(files, tf.data.Dataset):
        raise TypeError(
            f"A {function}() a fájllistákat kéri (ds.files, vagy maga a ds), nem egy "
            "tf.data-adatfolyamot (például ds.train): az adatfolyam keverhet és augmentálhat, a "
            "gyorsítótárnak viszont minden képet pontosan egyszer, augmentálás nélkül kell látnia."
        )
    if (
        not isinstance(files, Mapping)
        or not files
        or not all(isinstance(k, str) and isinstance(v, data.FileSplit) for k, v in files.items())
    ):
        raise TypeError(
            f"A {function}() egy data.Datasets-et (a data.make_datasets() eredményét) vagy egy "
            "{'train': FileSplit, ...} szótárat (ds.files) vár, nem "
            f"{type(files).__name__} típusú értéket."
        )
    return dict(files)


def _split_names(splits, files: Mapping) -> tuple[str, ...]:
    if splits is None:
        return tuple(files)
    if isinstance(splits, str):
        raise TypeError(
            f"A splits részek listája legyen, például splits=({splits!r},) — nem egyetlen szöveg."
        )
    names = tuple(splits)
    unknown = [s for s in names if s not in files]
    if unknown or not names:
        raise ValueError(
            f"Ismeretlen rész(ek): {unknown or 'üres lista'}. Választható: {', '.join(files)}."
        )
    return names


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
    files = _file_splits(datasets, "quick_classifier")
    epochs = _positive_int(epochs, "epochs")
    config.seed_everything()
    model = backbone.build_classifier(cut=cut)
    cache = cache_features(
        model, files, at=cut, splits=("train", "validation"), verbose=bool(verbose)
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


def random_before(model, layer_name: str) -> list[str]:
    """Return the names of the layers before ``layer_name`` that draw random numbers.

    Introduced in ``07_experiments.ipynb``. Dropout, GaussianNoise and the augmentation layers
    (``RandomFlip`` …) have no weights, so freezing does not tame them: in training mode they
    change the front's output at every step, which one stored copy cannot reproduce. They are
    found by their random state: Keras lists a layer's ``SeedGenerator`` state in
    ``layer.variables`` but not in ``layer.weights``.
    """
    cut = backbone.layer_index(model, layer_name)
    found = []
    for layer in model.layers[:cut]:
        weights = {id(w) for w in layer.weights}
        if any(id(v) not in weights for v in layer.variables):
            found.append(layer.name)
    return found


def _listed(names: list[str]) -> str:
    return ", ".join(names[:5]) + (" …" if len(names) > 5 else "")


def _require_frozen(model, layer_name: str) -> None:
    learning = trainable_before(model, layer_name)
    if learning:
        raise ValueError(
            f"A(z) {layer_name!r} előtti rétegek közül {len(learning)} tanítható "
            f"({_listed(learning)}). Gyorsítótárazni csak a teljesen befagyasztott (BatchNormot "
            "is fagyasztó) elejét szabad, különben a tárolt kimenet nem az, amit a tanítás "
            "közben a háló számolna. Fagyaszd be őket: backbone.freeze_up_to(model, vágási_réteg)."
        )
    random = random_before(model, layer_name)
    if random:
        raise ValueError(
            f"A(z) {layer_name!r} előtti {_listed(random)} réteg véletlenszámokat használ "
            "(Dropout, zaj vagy augmentáció): tanítás közben minden lépésben mást adna, a "
            "gyorsítótár viszont egyetlen, véletlen nélküli kimenetet tárolna. Tedd a vágás mögé "
            "vagy hagyd el; az augmentáció helye az adatfolyam (data.make_datasets(augment=...)), "
            "ami gyorsítótárral nem jár együtt."
        )


@dataclass
class FeatureCache:
    """The frozen front part's outputs for whole file splits, computed once and kept in memory.

    Introduced in ``07_experiments.ipynb``. Built by :func:`cache_features` (optionally stored on
    disk and reloaded from there); a cache can be pushed further through frozen layers with
    :meth:`advance`.

    Attributes:
        model: The full model the features belong to.
        at: The first layer of the tail: the features are the tensors that enter
            ``model.layers[layer_index(model, at):]`` from earlier layers.
        tail: ``keras.Model`` from the cached tensors to the model's output. It shares its layers
            with ``model``: training ``tail`` trains ``model``.
        features: Split name -> one array per tail input (float32 or float16).
        labels: Split name -> int32 labels (cats 0, dogs 1).
        seconds: Wall-clock seconds spent computing (or loading) the features.
        origins: Split name -> ``"computed"`` (in memory only), ``"stored"`` (computed and
            written to disk) or ``"loaded"`` (read from disk, no photo was read).
        entries: Split name -> the disk cache file (only for splits cached on disk).
    """

    model: object
    at: str
    tail: object
    features: dict[str, list[np.ndarray]]
    labels: dict[str, np.ndarray]
    seconds: float
    origins: dict[str, str] = field(default_factory=dict)
    entries: dict[str, Path] = field(default_factory=dict)

    def inputs(self, split: str) -> list[np.ndarray]:
        """What ``fit``/``predict`` of :attr:`tail` take for ``split``: a list of arrays."""
        self._require_split(split)
        return list(self.features[split])

    def _require_split(self, split) -> None:
        if split not in self.features:
            raise KeyError(
                f"Nincs {split!r} rész a gyorsítótárban; van: {', '.join(self.features)}."
            )

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
        self._require_split(split)
        indices = np.asarray(indices)
        features = {**self.features, split: [a[indices] for a in self.features[split]]}
        labels = {**self.labels, split: self.labels[split][indices]}
        return FeatureCache(
            self.model, self.at, self.tail, features, labels, self.seconds, dict(self.origins)
        )

    def advance(
        self, at: str, *, on_disk: bool = False, batch_size: int = 64, verbose: bool = True
    ) -> FeatureCache:
        """Return a new cache at a later layer, computed from this one (no photo is read again).

        Introduced in ``07_experiments.ipynb``; ``05_training_tensorboard.ipynb`` stores the pooled
        features with it. Every layer before ``at`` must be frozen (freeze more with
        :func:`helpers.backbone.freeze_up_to` first). ``advance("dog_probability")`` gives the
        pooled 1280-long feature vectors: the input of the classifier head alone. Like every cache,
        the result is a snapshot: it stays exact only while the layers before ``at`` keep their
        weights.

        With ``on_disk=True`` every split that has a disk entry (made by
        ``cache_features(..., on_disk=True)`` or an earlier ``advance(..., on_disk=True)``) is
        stored next to it, under ``cache/features/<key>.npz``, and a later call — from any
        notebook — loads it without a forward pass. The key hashes the parent entry's key (which
        already covers the photos and the front), ``at``, the storage type, and the architecture
        and every weight value of the layers between the two cuts: a change to any of them gives
        a new key. A split held in memory only (for example from :meth:`subset`) stays in memory.

        Args:
            at: First layer of the new tail; it must not come before this cache's ``at``.
            on_disk: Store the advanced features on disk and reuse them across calls and
                notebooks.
            batch_size: Examples per forward pass.
            verbose: With ``on_disk``, print for each split whether it was loaded or computed,
                and the memory used.

        Raises:
            ValueError: ``at`` comes before this cache's cut, or a layer before ``at`` still
                learns or is random.
        """
        _require_frozen(self.model, at)
        batch_size = _positive_int(batch_size, "batch_size")
        if backbone.layer_index(self.model, at) < backbone.layer_index(self.model, self.at):
            raise ValueError(
                f"A(z) {at!r} réteg a gyorsítótár vágása ({self.at!r}) előtt van: a jellemzőket "
                "csak a háló vége felé lehet továbbvinni. Korábbi vágáshoz hívd újra a "
                f"training.cache_features(..., at={at!r}) függvényt."
            )
        start = time.perf_counter()
        old, new = backbone.frontier(self.model, self.at), backbone.frontier(self.model, at)
        # A tensor that crosses both cuts (a residual branch) is copied, not recomputed.
        kept = [next((i for i, t in enumerate(old) if t is n), None) for n in new]
        computed = [n for n, k in zip(new, kept, strict=True) if k is None]
        # A fixed name: Keras numbers unnamed models (functional_1 ...), which would enter the key.
        name = f"{self.model.name}_between"
        mid = keras.Model(old, computed, name=name) if computed else None
        _, tail = backbone.split_at(self.model, at)
        step_key = _advance_key(mid, at=at, kept=kept) if on_disk else None
        features: dict[str, list[np.ndarray]] = {}
        origins: dict[str, str] = {}
        entries: dict[str, Path] = {}
        for split, arrays in self.features.items():
            labels, dtype = self.labels[split], arrays[0].dtype
            parent = self.entries.get(split) if on_disk else None
            if on_disk and parent is None and verbose:
                print(
                    f"{split}: ez a rész nincs a lemezes gyorsítótárban (például subset() vagy "
                    "on_disk=False készítette), ezért a továbbvitt jellemzői is csak a memóriába "
                    "kerülnek."
                )
            if parent is not None:
                key = hashlib.sha256(f"{step_key}|{parent.stem}|{dtype}".encode()).hexdigest()
                entry = entries[split] = config.CACHE_ROOT / FEATURE_CACHE_DIR / f"{key}.npz"
                shapes = [(len(labels), *t.shape[1:]) for t in new]
                found, problem = _read_entry(entry, key, shapes, labels, dtype)
                if found is not None:
                    features[split], origins[split] = found[0], "loaded"
                    if verbose:
                        print(
                            f"{split}: {len(labels)} kép jellemzői a(z) {at!r} előtt a lemezről "
                            f"betöltve ({entry})"
                        )
                    continue
                if problem and verbose:
                    print(
                        f"{split}: sérült gyorsítótár-bejegyzés ({problem}), újraszámolom: {entry}"
                    )
            t0 = time.perf_counter()
            features[split] = _advance_split(mid, arrays, kept, batch_size=batch_size)
            origins[split] = "computed"
            if parent is None:
                continue
            meta = {"at": at, "parent": parent.stem, "split": split, "photos": len(labels)}
            try:
                _write_entry(entry, key, features[split], labels, meta)
                origins[split] = "stored"
            except OSError as exc:
                print(
                    f"{split}: a jellemzőket nem sikerült a lemezre menteni ({exc}); a "
                    "memóriában megvannak, ez a futás így is működik."
                )
            if verbose and origins[split] == "stored":
                print(
                    f"{split}: {len(labels)} kép jellemzői továbbszámolva a(z) {at!r} elé "
                    f"({time.perf_counter() - t0:.1f} s) és elmentve ide: {entry}"
                )
        seconds = self.seconds + time.perf_counter() - start
        cache = FeatureCache(
            self.model, at, tail, features, dict(self.labels), seconds, origins, entries
        )
        if on_disk and verbose:
            print(
                f"Gyorsítótár a(z) {at!r} előtt: {sum(len(v) for v in self.labels.values())} "
                f"kép, {time.perf_counter() - start:.1f} s, {cache.nbytes / 2**20:.1f} MiB"
            )
        return cache


def _advance_split(mid, arrays, kept, *, batch_size: int) -> list[np.ndarray]:
    """Push one split's cached arrays through the layers between two cuts: the forward pass that
    an advanced disk entry saves. ``kept[i]`` is the index of an array passed on unchanged."""
    dtype = arrays[0].dtype
    out = []
    if mid is not None:
        # Slice by slice with predict_on_batch: predict() would first copy every array whole into
        # a tf.data pipeline (measured in 05: 8.5 s and 200 MB more peak memory for 3000 photos).
        n = len(arrays[0])
        out = [np.empty((n, *t.shape[1:]), dtype=dtype) for t in mid.outputs]
        for i in range(0, n, batch_size):
            _store(out, i, mid.predict_on_batch([a[i : i + batch_size] for a in arrays]))
    return [arrays[k] if k is not None else out.pop(0) for k in kept]


def _store(arrays: list[np.ndarray], start: int, outputs) -> None:
    """Write one batch of a model's outputs (one array or a list) into ``arrays`` at ``start``."""
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    for array, output in zip(arrays, outputs, strict=True):
        output = np.asarray(output)
        array[start : start + len(output)] = output


def _advance_key(mid, *, at: str, kept: list) -> str:
    """Hash of what advanced features depend on besides the parent entry: the architecture and
    every weight value of the layers between the two cuts, ``at`` and the software versions."""
    digest = hashlib.sha256()
    architecture = ""
    if mid is not None:
        architecture = json.dumps(mid.get_config(), sort_keys=True, default=repr)
        # The inputs of a model built on inner tensors get generated names ("keras_tensor_106"),
        # which differ between two builds of the same classifier: replace them by their position.
        inputs = [layer.name for layer in mid.layers if isinstance(layer, keras.layers.InputLayer)]
        for i, name in enumerate(inputs):
            architecture = architecture.replace(json.dumps(name), json.dumps(f"<input {i}>"))
    header = {
        "version": FEATURE_CACHE_VERSION,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "at": at,
        "kept": kept,
        "architecture": architecture,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for weight in [] if mid is None else mid.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{weight.path}|{value.dtype}|{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _input_size(model) -> int:
    shape = model.inputs[0].shape
    return int(shape[1]) if len(shape) == 4 and shape[1] is not None else config.IMAGE_SIZE


def _compute_split(front, split: data.FileSplit, *, batch_size, dtype, transform, image_size):
    """Push one file split through ``front``: the forward pass that a disk cache saves."""
    pipeline = data.make_dataset(split, batch_size=batch_size, cache=False, image_size=image_size)
    n = len(split)
    arrays = [np.empty((n, *t.shape[1:]), dtype=dtype) for t in front.outputs]
    ys = np.empty(n, dtype="int32")
    i = 0
    for x, y in pipeline:
        if transform is not None:
            x = transform(x)
        _store(arrays, i, front.predict_on_batch(x))  # compiled graph: about twice as fast as eager
        k = int(x.shape[0])
        ys[i : i + k] = np.asarray(y)
        i += k
    return arrays, ys


def _front_key(front, **settings) -> str:
    """Hash of everything the features depend on apart from the photos: the front's
    architecture and every weight value, plus ``settings`` and the software versions."""
    digest = hashlib.sha256()
    header = {
        "version": FEATURE_CACHE_VERSION,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "architecture": front.get_config(),
        **settings,
    }
    digest.update(json.dumps(header, sort_keys=True, default=repr).encode())
    for weight in front.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{weight.path}|{value.dtype}|{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _files_key(split: data.FileSplit) -> str:
    """Hash of the split's photos in order: each file's *content* (SHA-256) and its label.

    Content, not size and modification time: it cannot miss an edit that keeps both, and a
    copied or re-extracted folder still hits the cache (about 0.6 s for 3000 photos).
    """
    digest = hashlib.sha256()
    for path, label in zip(split.paths, split.labels, strict=True):
        try:
            with open(path, "rb") as stream:
                digest.update(hashlib.sha256(stream.read()).digest())
        except OSError as exc:
            raise FileNotFoundError(
                f"A fájllista egyik képe nem olvasható: {path} ({exc.strerror}). Töltsd be újra "
                "a képeket (data.make_datasets()), ha közben változott a mappa."
            ) from None
        digest.update(int(label).to_bytes(8, "little", signed=True))
    return digest.hexdigest()


def _read_entry(entry: Path, key: str, shapes: list[tuple], labels: np.ndarray, dtype):
    """Return ``((arrays, labels), None)``, ``(None, None)`` if absent, or ``(None, problem)``.

    An entry counts only if its key, its arrays' ``shapes`` and type, and its ``labels`` match.
    """
    if not entry.is_file():
        return None, None
    try:
        with np.load(entry, allow_pickle=False) as archive:  # zip CRCs catch damaged bytes
            meta = json.loads(str(archive["meta"]))
            arrays = [archive[f"f{i}"] for i in range(len(shapes))]
            stored = archive["labels"]
    except Exception as exc:  # truncated, damaged or foreign file: recompute it
        return None, f"nem olvasható: {type(exc).__name__}"
    if (
        meta.get("key") != key
        or [a.shape for a in arrays] != list(shapes)
        or any(a.dtype != np.dtype(dtype) for a in arrays)
        or not np.array_equal(stored, labels)
    ):
        return None, "nem ehhez a modellhez és fájllistához tartozik"
    return (arrays, stored), None


def _write_entry(entry: Path, key: str, arrays, labels, meta: dict) -> None:
    """Write atomically: a temporary file in the same folder, renamed when complete."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    temporary = entry.with_name(f".{entry.stem}-{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as stream:
            np.savez(
                stream,
                meta=np.array(json.dumps({**meta, "key": key})),
                labels=labels,
                **{f"f{i}": a for i, a in enumerate(arrays)},
            )
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, entry)
    finally:
        temporary.unlink(missing_ok=True)


def cache_features(
    model,
    files,
    *,
    at: str = backbone.CUT_LAYER,
    splits: tuple[str, ...] | None = None,
    batch_size: int = 16,
    dtype: str = "float32",
    transform: Callable | None = None,
    transform_key: str | None = None,
    on_disk: bool = False,
    verbose: bool = True,
) -> FeatureCache:
    """Push every photo of the given splits through the frozen front of ``model`` once.

    Introduced in ``07_experiments.ipynb``. Exact because the layers before ``at`` are frozen
    (BatchNorm included, so it normalises with its stored statistics), none of them is random
    (no Dropout or augmentation layer) and the photos are **not augmented**: the pipelines are
    rebuilt from the file lists, so a random augmentation of the training pipeline is never used.
    The price: no input augmentation while training on the cache, and memory for the arrays
    (see :attr:`FeatureCache.nbytes`).

    With ``on_disk=True`` each split is also stored under :data:`helpers.config.CACHE_ROOT`
    (``cache/features/<key>.npz``) and later calls — from any notebook — load it instead of
    reading the photos again. The key cannot go stale: it hashes the front's architecture and
    every weight value, ``at``, ``dtype``, the image size, :data:`FEATURE_CACHE_VERSION`, the
    TensorFlow/Keras versions, and the content and label of every photo in order; any change
    gives a new key. An entry is written atomically (temporary file, then rename); a damaged or
    truncated entry is detected on loading and recomputed. The folder may be deleted at any time.

    Args:
        model: A flat classifier such as :func:`helpers.backbone.build_classifier` builds.
        files: A :class:`helpers.data.Datasets` or its ``files`` (``{"train": FileSplit, ...}``).
        at: First layer of the tail. ``"block_12_expand"`` caches the 14x14x96 output of
            ``block_11_add`` (7x smaller than the two tensors entering ``block_12_project``); the
            frozen ``block_12`` expansion then runs cheaply every epoch.
        splits: Which splits to cache, e.g. ``("train", "validation")``; default: all of them.
        batch_size: Photos per forward pass. Measured for 05's 3000 photos on 2 cores, back to
            back: 16 took 38 s, 8 took 46–59 s with 140 MB less peak memory, 32 ran as fast as
            16 and 64 at half the speed with 0.8 GB more. It does not enter the disk key: it
            changes the results only by float rounding (about 1e-6).
        dtype: Storage type, ``"float32"`` (exact) or ``"float16"`` (half the memory, rounding
            error of about 1e-3 relative).
        transform: A **deterministic** function applied to every batch of 0..255 images before
            the front, e.g. grayscale or blur to test a distribution shift. Never a random
            augmentation: its one frozen draw would be reused in every epoch.
        transform_key: A name for ``transform`` under which its features may be stored on disk
            (change it whenever the function changes). Without it, a transformed cache stays in
            memory only: a function's name does not say what it computes.
        on_disk: Store the features on disk and reuse them across calls and notebooks.
        verbose: Print the time, the memory used and, on disk, whether each split was loaded or
            computed.

    Returns:
        The :class:`FeatureCache`; its ``tail`` is the model to train.

    Raises:
        TypeError: ``model`` is not a Keras model, or ``files`` is not file splits (for example
            ``ds.train``, a ``tf.data`` pipeline).
        ValueError: A layer before ``at`` still learns or is random (caching would not be
            exact), or an argument is out of range.
    """
    _require_model(model, "cache_features")
    files = _file_splits(files, "cache_features")
    names = _split_names(splits, files)
    batch_size = _positive_int(batch_size, "batch_size")
    if dtype not in ("float32", "float16"):
        raise ValueError(f"A dtype 'float32' vagy 'float16' lehet, nem {dtype!r}.")
    if transform is not None and not callable(transform):
        raise TypeError(f"A transform függvény legyen (vagy None), nem {type(transform).__name__}.")
    if transform_key is not None and (
        not isinstance(transform_key, str) or not transform_key.strip() or transform is None
    ):
        raise ValueError(
            "A transform_key egy nem üres név a transform= függvényhez; transform nélkül nincs "
            "értelme."
        )
    _require_frozen(model, at)
    front, tail = backbone.split_at(model, at)
    image_size = _input_size(model)
    store = bool(on_disk) and (transform is None or transform_key is not None)
    if on_disk and not store and verbose:
        print(
            "A transform= eredménye nem kerül a lemezre (a függvény neve nem mondja meg, mit "
            "számol): adj neki transform_key='...' nevet, ha tárolnád."
        )
    settings = {"at": at, "dtype": dtype, "image_size": image_size, "transform": transform_key}
    front_key = _front_key(front, **settings) if store else None
    start = time.perf_counter()
    features: dict[str, list[np.ndarray]] = {}
    labels: dict[str, np.ndarray] = {}
    origins: dict[str, str] = {}
    entries: dict[str, Path] = {}
    for split in names:
        file_split = files[split]
        if store:
            key = hashlib.sha256((front_key + _files_key(file_split)).encode()).hexdigest()
            entry = entries[split] = config.CACHE_ROOT / FEATURE_CACHE_DIR / f"{key}.npz"
            shapes = [(len(file_split), *t.shape[1:]) for t in front.outputs]
            found, problem = _read_entry(entry, key, shapes, file_split.labels, dtype)
            if found is not None:
                features[split], labels[split] = found
                origins[split] = "loaded"
                if verbose:
                    print(f"{split}: {len(file_split)} kép jellemzői a lemezről betöltve ({entry})")
                continue
            if problem and verbose:
                print(f"{split}: sérült gyorsítótár-bejegyzés ({problem}), újraszámolom: {entry}")
        t0 = time.perf_counter()
        features[split], labels[split] = _compute_split(
            front,
            file_split,
            batch_size=batch_size,
            dtype=dtype,
            transform=transform,
            image_size=image_size,
        )
        origins[split] = "computed"
        if store:
            meta = {**settings, "split": split, "photos": len(file_split)}
            try:
                _write_entry(entry, key, features[split], labels[split], meta)
                origins[split] = "stored"
            except OSError as exc:
                print(
                    f"{split}: a jellemzőket nem sikerült a lemezre menteni ({exc}); a "
                    "memóriában megvannak, ez a futás így is működik."
                )
            if verbose and origins[split] == "stored":
                print(
                    f"{split}: {len(file_split)} kép jellemzői kiszámolva "
                    f"({time.perf_counter() - t0:.1f} s) és elmentve ide: {entry}"
                )
    seconds = time.perf_counter() - start
    cache = FeatureCache(model, at, tail, features, labels, seconds, origins, entries)
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


class _Timer(keras.callbacks.Callback):
    """Wall-clock times of repeated intervals in :attr:`seconds` (subclasses choose which)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def _begin(self) -> None:
        self._start = time.perf_counter()

    def _end(self) -> None:
        self.seconds.append(time.perf_counter() - self._start)


class EpochTimer(_Timer):
    """Keras callback that records each epoch's wall-clock time in :attr:`seconds`.

    Introduced in ``07_experiments.ipynb`` (time per epoch of each cut); :func:`train_cached`
    uses it too::

        timer = training.EpochTimer()
        model.fit(..., callbacks=[timer])
        timer.seconds  # one number per epoch, validation included
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._begin()

    def on_epoch_end(self, epoch, logs=None):
        self._end()


class StepTimer(_Timer):
    """Keras callback that records each training step's wall-clock time in :attr:`seconds`.

    Introduced in ``07_experiments.ipynb`` (the cost of each cut). Validation is not timed. The
    first step of a ``fit`` also builds the compiled graph, so :attr:`typical` (the median of the
    later steps) is the cost of one step, and an epoch of any size can be extrapolated from it::

        timer = training.StepTimer()
        model.fit(..., batch_size=32, callbacks=[timer])
        timer.typical * math.ceil(2000 / 32)  # one epoch over 2000 photos
    """

    def on_train_batch_begin(self, batch, logs=None):
        self._begin()

    def on_train_batch_end(self, batch, logs=None):
        self._end()

    @property
    def typical(self) -> float:
        """Median step time without the first step (the only one, if there was just one).

        Raises:
            ValueError: No training step has been timed yet.
        """
        if not self.seconds:
            raise ValueError(
                "A StepTimer még egyetlen tanítólépést sem mért: add át a fit() hívásnak, "
                "például model.fit(..., callbacks=[timer])."
            )
        return float(np.median(self.seconds[1:] or self.seconds))


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

    Raises:
        TypeError: ``cache`` is not a :class:`FeatureCache`.
        KeyError: ``train`` or ``validation`` is not a split of the cache.
        ValueError: ``epochs`` or ``batch_size`` is not a positive integer.
    """
    if not isinstance(cache, FeatureCache):
        raise TypeError(
            "A train_cached() egy FeatureCache-t vár (a training.cache_features() eredményét), "
            f"nem {type(cache).__name__} típusú értéket."
        )
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    cache._require_split(train)
    if validation is not None:
        cache._require_split(validation)
    timer = EpochTimer()
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
    if not isinstance(cache, FeatureCache):
        raise TypeError(
            "Az evaluate_cached() egy FeatureCache-t vár, nem "
            f"{type(cache).__name__} típusú értéket."
        )
    probs = cache.tail.predict(
        cache.inputs(split), batch_size=_positive_int(batch_size, "batch_size"), verbose=0
    )
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

    Raises:
        ValueError: ``images`` is not a batch (for one photo use ``photo[None]``).
    """
    _require_model(model, "cache_error")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"A cache_error() képek kötegét várja, (n, magasság, szélesség, 3) alakban, nem "
            f"{images.shape}. Egyetlen képből így lesz köteg: kép[None]."
        )
    front, tail = backbone.split_at(model, at)
    # predict_on_batch runs the compiled graphs: eager model(x) calls of the whole classifier kept
    # about 1.4 GB more memory for 16 photos at 224 px.
    full = np.asarray(model.predict_on_batch(images))
    out = front.predict_on_batch(images)
    out = out if isinstance(out, (list, tuple)) else [out]
    stored = [np.asarray(o).astype(dtype).astype("float32") for o in out]
    cached = np.asarray(tail.predict_on_batch(stored if len(stored) > 1 else stored[0]))
    return float(np.max(np.abs(cached - full)))
