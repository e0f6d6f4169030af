"""The photos: where they come from, checking them, and tf.data pipelines.

Introduced in ``01_data_loading.ipynb``.

Where the photos come from, in order:

1. the ``data_dir`` argument of :func:`inspect_dataset` / :func:`make_datasets`;
2. the ``TL_DATA_DIR`` environment variable;
3. otherwise TensorFlow's ``cats_and_dogs_filtered.zip`` is downloaded once with
   ``keras.utils.get_file`` into the git-ignored ``data/`` folder and reused afterwards.

A local folder may use either layout::

    <folder>/train/cats, <folder>/train/dogs, <folder>/validation/cats, ...   (the archive's)
    <folder>/training_set/cats, ..., <folder>/test_set/cats, ...             (the seed lecture's)

Labels follow the sorted class-folder names, so ``cats`` is 0 and ``dogs`` is 1. Images reach the
model as float32 RGB 224x224 with values 0..255; MobileNetV2's preprocessing lives inside the model.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from helpers import config

DATASET_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
ARCHIVE_NAME = "cats_and_dogs_filtered.zip"
#: Folder names accepted for the training split and for the validation split.
TRAIN_NAMES = ("train", "training_set")
VALIDATION_NAMES = ("validation", "test_set")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
#: Formats that ``tf.io.decode_image`` decodes (Pillow reads more, e.g. TIFF).
TF_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP")
#: Operating-system clutter that is skipped silently apart from a note.
SYSTEM_FILES = (".ds_store", "thumbs.db", "desktop.ini")

_HOW_TO_FIX = (
    "Mit tehetsz: (1) futtasd internetkapcsolattal, ekkor a sorozat letölti a "
    f"{DATASET_URL} archívumot a(z) {config.DATA_ROOT} mappába; vagy (2) töltsd le és csomagold ki "
    "máshol, majd add meg a mappát: os.environ['TL_DATA_DIR'] = '...' (a helpers importálása "
    "előtt) vagy data_dir='...' argumentummal. A mappában train/ és validation/ (vagy "
    "training_set/ és test_set/) legyen, bennük osztályonként egy-egy almappa (cats/, dogs/)."
)


class DataError(RuntimeError):
    """The photos cannot be used; the message says which folder or file and what to do."""


@dataclass
class Split:
    """One folder of the data set (training or validation) after checking.

    Attributes:
        name: ``"train"`` or ``"validation"``.
        directory: The folder that holds one sub-folder per class.
        files: Class name -> sorted list of readable image files.
        skipped: ``(path, reason)`` for files that are not photos (system files, other types).
        broken: ``(path, reason)`` for image files that cannot be decoded.
    """

    name: str
    directory: Path
    files: dict[str, list[Path]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    broken: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        return sorted(self.files)

    def counts(self) -> dict[str, int]:
        return {name: len(self.files[name]) for name in self.class_names}


@dataclass
class DatasetInfo:
    """The checked data set: both splits and the class names (label = index)."""

    root: Path
    train: Split
    validation: Split

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names

    def summary(self) -> str:
        """Return the per-class counts and any notes as printable (Hungarian) text."""
        lines = [f"Adatmappa: {self.root}"]
        for split in (self.train, self.validation):
            counts = ", ".join(f"{k}: {v}" for k, v in split.counts().items())
            lines.append(f"  {split.name:<10} ({split.directory.name}/) {counts}")
        lines.append("  címkék: " + ", ".join(f"{n} = {i}" for i, n in enumerate(self.class_names)))
        for split in (self.train, self.validation):
            for path, reason in split.skipped:
                lines.append(f"  Megjegyzés: kihagyva {path} ({reason})")
            for path, reason in split.broken:
                lines.append(f"  FIGYELEM: hibás kép kihagyva: {path} ({reason})")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Finding the data
# --------------------------------------------------------------------------------------------


def _pick_child(folder: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        candidate = folder / name
        if candidate.is_dir():
            # Kaggle's archive nests training_set/training_set/cats: step into the twin folder.
            twin = candidate / name
            subdirs = [p for p in candidate.iterdir() if p.is_dir() and not _is_hidden(p)]
            if twin.is_dir() and subdirs == [twin]:
                return twin
            return candidate
    return None


def find_split_dirs(folder: str | os.PathLike) -> tuple[Path, Path]:
    """Find the training and validation folders in ``folder`` (or one or two levels below it).

    Introduced in ``01_data_loading.ipynb``.

    Args:
        folder: A folder laid out as described in the module docstring.

    Returns:
        ``(train_dir, validation_dir)``.

    Raises:
        DataError: The folder does not exist or holds no recognisable layout.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"Az adatmappa nem létezik vagy nem mappa: {root}\n{_HOW_TO_FIX}")
    queue = [root]
    for _depth in range(3):
        next_level: list[Path] = []
        for candidate in queue:
            train_dir = _pick_child(candidate, TRAIN_NAMES)
            val_dir = _pick_child(candidate, VALIDATION_NAMES)
            if train_dir and val_dir:
                return train_dir, val_dir
            next_level += sorted(p for p in candidate.iterdir() if p.is_dir() and not _is_hidden(p))
        queue = next_level
    inside = sorted(p.name for p in root.iterdir())[:10]
    raise DataError(
        f"A(z) {root} mappában nem találom a tanító és a validációs mappát "
        f"({' vagy '.join(TRAIN_NAMES)}, illetve {' vagy '.join(VALIDATION_NAMES)}). "
        f"Ezt találtam benne: {inside or 'semmit (üres)'}.\n{_HOW_TO_FIX}"
    )


def _extracted_root() -> Path:
    # keras.utils.get_file(fname="x.zip", extract=True) unpacks into "<cache>/x_extracted".
    stem = ARCHIVE_NAME[: ARCHIVE_NAME.find(".")]
    return config.DATA_ROOT / f"{stem}_extracted"


def download_dataset(origin: str = DATASET_URL) -> Path:
    """Download and unpack the archive into ``data/`` once; later calls reuse it offline.

    Introduced in ``01_data_loading.ipynb``. Uses ``keras.utils.get_file`` (progress bar, extraction
    that refuses paths escaping the target folder) and checks the layout afterwards.

    Args:
        origin: URL of the zip archive.

    Returns:
        The folder that holds the unpacked archive.

    Raises:
        DataError: The download failed (for example offline) or the archive had the wrong layout.
    """
    extracted = _extracted_root()
    if extracted.is_dir():
        try:
            find_split_dirs(extracted)
            return extracted
        except DataError:
            pass  # an interrupted extraction: unpack again below
    import keras

    config.DATA_ROOT.mkdir(parents=True, exist_ok=True)
    archive = config.DATA_ROOT / ARCHIVE_NAME
    if archive.is_file() and not zipfile.is_zipfile(archive):
        archive.unlink()  # cut short by an interrupted download: fetch it again
    try:
        path = keras.utils.get_file(
            fname=ARCHIVE_NAME,
            origin=origin,
            extract=True,
            cache_dir=str(config.DATA_ROOT),
            cache_subdir="",
        )
    except Exception as exc:  # urllib errors arrive wrapped in a plain Exception
        raise DataError(
            f"Nem sikerült letölteni a képeket innen: {origin}\n(ok: {exc})\n{_HOW_TO_FIX}"
        ) from None
    find_split_dirs(path)  # structure verified right after extraction
    return Path(path)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the folder to read photos from: argument, then ``TL_DATA_DIR``, then download.

    Introduced in ``01_data_loading.ipynb``.
    """
    chosen = data_dir or os.environ.get(config.DATA_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return download_dataset()


# --------------------------------------------------------------------------------------------
# Checking the files
# --------------------------------------------------------------------------------------------


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name.startswith("__")


def check_image(path: Path) -> str | None:
    """Fully decode one image file; return None if it is usable, else the reason in Hungarian.

    Introduced in ``01_data_loading.ipynb``. Truncated JPEGs are caught because the pixels are
    actually decoded, not just the header read.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.format not in TF_FORMATS:
                return f"a TensorFlow nem tudja dekódolni ({img.format} formátum)"
            if img.width < 2 or img.height < 2:
                return f"túl kicsi kép ({img.width}x{img.height})"
    except UnidentifiedImageError:
        return "nem kép, vagy ismeretlen formátum"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"nem olvasható / csonka fájl: {exc}"
    return None


def scan_split(name: str, directory: Path, check_images: bool = True) -> Split:
    """List the class folders of one split, skipping clutter and reporting broken images.

    Introduced in ``01_data_loading.ipynb``.

    Args:
        name: ``"train"`` or ``"validation"``.
        directory: The split's folder.
        check_images: Decode every image to find broken ones (about 2 ms per photo).

    Raises:
        DataError: No class folders, or a class folder with no usable photo.
    """
    split = Split(name=name, directory=directory, files={})
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() and not _is_hidden(entry):
            split.files[entry.name] = []
        elif entry.is_file():
            split.skipped.append((entry, "nem osztálymappában van"))
    if not split.files:
        raise DataError(
            f"A(z) {directory} mappában nincsenek osztálymappák. Minden osztály képei "
            "külön almappába kerüljenek, például cats/ és dogs/."
        )
    for class_name in list(split.files):
        for path in sorted((directory / class_name).iterdir()):
            lower = path.name.lower()
            if path.is_dir():
                split.skipped.append((path, "almappa, nem kép"))
            elif lower in SYSTEM_FILES or _is_hidden(path):
                split.skipped.append((path, "rendszerfájl / rejtett fájl"))
            elif path.suffix.lower() not in IMAGE_EXTENSIONS:
                kind = path.suffix or "kiterjesztés nélkül"
                split.skipped.append((path, f"nem képfájl ({kind})"))
            elif check_images and (reason := check_image(path)):
                split.broken.append((path, reason))
            else:
                split.files[class_name].append(path)
        if not split.files[class_name]:
            raise DataError(
                f"Üres osztály: a(z) {directory / class_name} mappában nincs egyetlen használható "
                "kép sem. Tegyél bele képeket (jpg/png), vagy töröld a mappát."
            )
    return split


_CHECKED: dict[tuple[str, bool], DatasetInfo] = {}


def inspect_dataset(
    data_dir: str | os.PathLike | None = None, *, check_images: bool = True, verbose: bool = True
) -> DatasetInfo:
    """Find, check and describe the data set before TensorFlow sees a single file.

    Introduced in ``01_data_loading.ipynb``. Results are remembered for the session, so calling it
    again (or calling :func:`make_datasets`) does not decode every photo twice.

    Args:
        data_dir: Local folder; defaults to ``TL_DATA_DIR`` or the downloaded archive.
        check_images: Decode every image to find broken ones.
        verbose: Print the per-class counts and notes.

    Returns:
        The checked :class:`DatasetInfo`.

    Raises:
        DataError: Missing folder, wrong layout, empty class, a single class, more than two
            classes, or classes that differ between the splits.
    """
    root = resolve_data_dir(data_dir)
    key = (str(root.resolve()), check_images)
    info = _CHECKED.get(key)
    if info is None:
        train_dir, val_dir = find_split_dirs(root)
        train = scan_split("train", train_dir, check_images)
        validation = scan_split("validation", val_dir, check_images)
        if train.class_names != validation.class_names:
            raise DataError(
                "A tanító és a validációs mappa osztályai eltérnek: "
                f"{train_dir} → {train.class_names}, {val_dir} → {validation.class_names}. "
                "Mindkét mappában ugyanazok az almappák legyenek (pl. cats/ és dogs/)."
            )
        if len(train.class_names) != 2:
            raise DataError(
                f"A(z) {train_dir} mappában {len(train.class_names)} osztályt találtam "
                f"({train.class_names}), de a bináris (egy szigmoid neuronos) osztályozóhoz "
                "pontosan kettő kell, például cats/ és dogs/."
            )
        info = DatasetInfo(root=root, train=train, validation=validation)
        _CHECKED[key] = info
    if verbose:
        print(info.summary())
    return info


# --------------------------------------------------------------------------------------------
# Splitting by files
# --------------------------------------------------------------------------------------------


@dataclass
class FileSplit:
    """File paths and labels of one split (training, validation or test)."""

    paths: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)


def _subsample(files: list[Path], limit: int | None, rng: np.random.Generator) -> list[Path]:
    order = rng.permutation(len(files))
    chosen = order if limit is None else order[:limit]
    return [files[i] for i in sorted(chosen)]


def split_files(
    info: DatasetInfo,
    *,
    test_fraction: float = 0.5,
    max_per_class: int | None = None,
    seed: int = config.SEED,
) -> dict[str, FileSplit]:
    """Split the photos into train / validation / test by **files**, the same way every run.

    Introduced in ``01_data_loading.ipynb``. The validation folder is split per class into a
    validation part and a test part with a fixed seed (never by ``take``/``skip`` on a shuffled
    dataset, which can put a photo into both parts).

    Args:
        info: The checked data set.
        test_fraction: Share of each validation class that goes to the test split.
        max_per_class: Use at most this many photos per class and split (smoke profile).
        seed: Seed of the split.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}``, disjoint.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    names = ("train", "validation", "test")
    parts: dict[str, tuple[list[str], list[int]]] = {name: ([], []) for name in names}
    for label, class_name in enumerate(info.class_names):
        train = _subsample(info.train.files[class_name], max_per_class, rng)
        held_out = info.validation.files[class_name]
        order = rng.permutation(len(held_out))
        n_test = max(1, round(len(held_out) * test_fraction))
        test = [held_out[i] for i in sorted(order[:n_test])]
        val = [held_out[i] for i in sorted(order[n_test:])]
        if not val:
            raise DataError(
                f"A(z) {info.validation.directory / class_name} mappában túl kevés kép van ahhoz, "
                "hogy validációs és teszt részre is jusson (legalább 2 kell)."
            )
        for name, files in (
            ("train", train),
            ("validation", _subsample(val, max_per_class, rng)),
            ("test", _subsample(test, max_per_class, rng)),
        ):
            parts[name][0].extend(str(p) for p in files)
            parts[name][1].extend([label] * len(files))
    return {
        name: FileSplit(paths, np.asarray(labels, dtype="int32"))
        for name, (paths, labels) in parts.items()
    }


# --------------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------------


def load_image(path, image_size: int = config.IMAGE_SIZE):
    """Read one file into a float32 RGB ``image_size`` x ``image_size`` tensor with values 0..255.

    Introduced in ``01_data_loading.ipynb``. Grayscale, CMYK, palette and RGBA files all come out
    as 3-channel RGB (``channels=3`` drops alpha).
    """
    import tensorflow as tf

    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def make_dataset(
    split: FileSplit,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    augment: Callable | None = None,
    cache: bool = True,
    seed: int = config.SEED,
    image_size: int = config.IMAGE_SIZE,
):
    """Build a batched, prefetched ``tf.data.Dataset`` of ``(image, label)`` from a file split.

    Introduced in ``01_data_loading.ipynb``. Decoded photos are cached in memory as uint8 **before**
    any random augmentation, so every epoch sees freshly augmented images.

    Args:
        split: Paths and labels.
        batch_size: Photos per batch.
        shuffle: Reshuffle the order every epoch (training only).
        augment: A Keras layer/model applied to each batch with ``training=True``.
        cache: Keep decoded photos in memory after the first pass.
        seed: Shuffle seed.
        image_size: Side length of the square output images.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((split.paths, split.labels))
    ds = ds.map(
        lambda p, y: (tf.cast(tf.round(load_image(p, image_size)), tf.uint8), y),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    ds = ds.batch(batch_size)
    if augment is not None:
        ds = ds.map(
            lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def augmentation(seed: int = config.SEED):
    """Return the series' random augmentation: horizontal flip, small rotation and zoom.

    Introduced in ``01_data_loading.ipynb``.
    """
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.08, fill_mode="reflect", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
        ],
        name="augmentation",
    )


@dataclass
class Datasets:
    """Everything a notebook needs about the data: pipelines, file splits and the check result."""

    train: object
    validation: object
    test: object
    files: dict[str, FileSplit]
    info: DatasetInfo

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names


def make_datasets(
    data_dir: str | os.PathLike | None = None,
    *,
    batch_size: int = 32,
    augment: Callable | None = None,
    max_per_class: int | None = None,
    test_fraction: float = 0.5,
    seed: int = config.SEED,
    verbose: bool = True,
) -> Datasets:
    """Check the photos and return train / validation / test pipelines in one call.

    Introduced in ``01_data_loading.ipynb``; used by every later notebook.

    Args:
        data_dir: Local folder; defaults to ``TL_DATA_DIR`` or the downloaded archive.
        batch_size: Photos per batch.
        augment: Random augmentation for the training pipeline (None: no augmentation).
        max_per_class: At most this many photos per class and split (the smoke profile's limit).
        test_fraction: Share of the validation folder used as the test split.
        seed: Seed of the file split and of the shuffling.
        verbose: Print counts and notes.
    """
    info = inspect_dataset(data_dir, verbose=verbose)
    files = split_files(info, test_fraction=test_fraction, max_per_class=max_per_class, seed=seed)
    if verbose:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in files.items())
        print(f"Felosztás fájlok szerint (seed={seed}): {sizes}")
    return Datasets(
        train=make_dataset(
            files["train"], batch_size=batch_size, shuffle=True, augment=augment, seed=seed
        ),
        validation=make_dataset(files["validation"], batch_size=batch_size),
        test=make_dataset(files["test"], batch_size=batch_size),
        files=files,
        info=info,
    )


def load_images(paths: Sequence[str], image_size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Load a few photos into one float32 array (N, size, size, 3) with values 0..255.

    Introduced in ``01_data_loading.ipynb`` (sample grids); used for galleries later.
    """
    return np.stack([load_image(str(p), image_size).numpy() for p in paths]).astype("float32")
