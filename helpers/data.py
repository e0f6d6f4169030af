"""The photos: where they come from, checking them, loading them and tf.data pipelines.

Introduced in ``01_data_loading.ipynb``.

Where the photos come from, in order:

1. the ``data_dir`` argument of :func:`inspect_dataset` / :func:`make_datasets`;
2. the ``TL_DATA_DIR`` environment variable;
3. otherwise TensorFlow's ``cats_and_dogs_filtered.zip`` is downloaded once with
   ``keras.utils.get_file`` into the git-ignored ``data/`` folder and reused afterwards.

A local folder may use either layout::

    <folder>/train/cats, <folder>/train/dogs, <folder>/validation/cats, ...   (the archive's)
    <folder>/training_set/cats, ..., <folder>/test_set/cats, ...             (the seed lecture's)

Classes and labels are explicit, never the alphabetical order of the folders:
:data:`CLASS_NAMES` is ``("cats", "dogs")`` and the label is the index, so ``cats`` is 0, ``dogs``
is 1, and the model's single sigmoid output is the probability of ``dogs``. Class folders are
matched to these names case-insensitively (``Cats/`` and ``DOGS/`` work). Folders with other names
(``macskák/`` and ``kutyák/``, ``birds/``) stop with a :class:`DataError`; to train on other
classes pass ``class_names=("macskák", "kutyák")`` to :func:`inspect_dataset` and
:func:`make_datasets`: the first name is label 0, the second is label 1, the class whose
probability the sigmoid outputs.

There is one photo loader. :func:`load_photo` decodes a file with Pillow (any format Pillow reads:
JPEG, PNG, WebP, GIF, BMP, TIFF, MPO; HEIC too when the optional ``pillow-heif`` package is
installed), applies the EXIF rotation of phone photos, turns every colour mode (16-bit, grayscale,
palette, RGBA, CMYK) into 8-bit RGB, and resizes to 224x224 with
``tf.image.resize(..., "bilinear", antialias=True)`` rounded to whole numbers. The tf.data
pipelines decode through the very same functions, so a photo reaches the model bit for bit the
same in training, in :func:`load_images` and in a prediction on one's own photo
(:func:`load_photo` + :func:`as_model_input`). Images reach the model as float32 RGB 224x224 with
values 0..255; MobileNetV2's preprocessing lives inside the model.
"""

from __future__ import annotations

import io
import numbers
import os
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from helpers import config

try:  # optional: iPhone photos (HEIC/HEIF)
    from pillow_heif import register_heif_opener
except ImportError:
    HEIF_SUPPORTED = False
else:
    register_heif_opener()
    HEIF_SUPPORTED = True

DATASET_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
ARCHIVE_NAME = "cats_and_dogs_filtered.zip"
#: The two classes of the series; the label is the index (the sigmoid outputs P(dogs)).
CLASS_NAMES = ("cats", "dogs")
#: Folder names accepted for the training split and for the validation split.
TRAIN_NAMES = ("train", "training_set")
VALIDATION_NAMES = ("validation", "test_set")
#: File extensions read as photos (the content decides the format, not the extension).
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".mpo"
)  # fmt: skip
#: iPhone photos: read when ``pillow-heif`` is installed, otherwise skipped with advice.
HEIF_EXTENSIONS = (".heic", ".heif")
#: ISO-BMFF brands of HEIC/HEIF files (bytes 8..12 of the file).
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1")
#: Operating-system clutter that is skipped silently apart from a note.
SYSTEM_FILES = (".ds_store", "thumbs.db", "desktop.ini")
#: Shorter photo sides than this are refused (a 224x224 input cannot be made from them).
MIN_SIDE = 32

_UPLOADED = "a feltöltött fájl"
_HEIF_ADVICE = (
    "Telepítsd a pillow-heif csomagot (pip install pillow-heif, majd indítsd újra a kernelt), "
    "vagy mentsd el a képet JPEG-ként."
)
_HEIF_SKIPPED = "HEIC-kép (iPhone): telepítsd a pillow-heif csomagot, vagy mentsd el JPEG-ként"
_CHANGED_SINCE_CHECK = (
    "A fájl valószínűleg a képek ellenőrzése óta változott meg. Futtasd újra a "
    "data.make_datasets(...) cellát: újra ellenőrzi a mappát, és kihagyja a hibás képet "
    "(vagy cseréld le, töröld a fájlt)."
)
_HOW_TO_FIX = (
    "Mit tehetsz: (1) futtasd internetkapcsolattal, ekkor a sorozat letölti a "
    f"{DATASET_URL} archívumot a(z) {config.DATA_ROOT} mappába; vagy (2) töltsd le és csomagold ki "
    "máshol, majd add meg a mappát: os.environ['TL_DATA_DIR'] = '...' (a helpers importálása "
    "előtt) vagy data_dir='...' argumentummal. A mappában train/ és validation/ (vagy "
    "training_set/ és test_set/) legyen, bennük osztályonként egy-egy almappa (cats/, dogs/)."
)


class DataError(RuntimeError):
    """The photos cannot be used; the message says which folder or file and what to do."""


class PhotoError(DataError):
    """One photo (or array of photos) cannot be used; the message names it and says what to do.

    Introduced in ``01_data_loading.ipynb``.

    Attributes:
        reason: The short Hungarian reason without the file name (the data check lists it next
            to the path of each broken photo).
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


@dataclass
class Split:
    """One folder of the data set (training or validation) after checking.

    Attributes:
        name: ``"train"`` or ``"validation"``.
        directory: The folder that holds one sub-folder per class.
        files: Class name -> sorted list of readable image files, in label order.
        skipped: ``(path, reason)`` for files that are not photos (system files, other types).
        broken: ``(path, reason)`` for image files that cannot be decoded.
        folders: Class name -> its folder (the folder's own spelling, e.g. ``Cats``).
    """

    name: str
    directory: Path
    files: dict[str, list[Path]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    broken: list[tuple[Path, str]] = field(default_factory=list)
    folders: dict[str, Path] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.files)

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
        """The class names in label order (``["cats", "dogs"]`` unless ``class_names=`` says
        otherwise), whatever the folders' spelling."""
        return self.train.class_names

    def summary(self) -> str:
        """Return the per-class counts and any notes as printable (Hungarian) text."""
        lines = [f"Adatmappa: {self.root}"]
        for split in (self.train, self.validation):
            counts = ", ".join(f"{k}: {v}" for k, v in split.counts().items())
            lines.append(f"  {split.name:<10} ({split.directory.name}/) {counts}")
        labels = []
        for label, name in enumerate(self.class_names):
            folder = self.train.folders.get(name)
            spelled = f" ({folder.name}/)" if folder is not None and folder.name != name else ""
            labels.append(f"{name} = {label}{spelled}")
        lines.append(f"  címkék: {', '.join(labels)}; a háló kimenete: P({self.class_names[-1]})")
        for split in (self.train, self.validation):
            for path, reason in split.skipped:
                lines.append(f"  Megjegyzés: kihagyva {path} ({reason})")
            for path, reason in split.broken:
                lines.append(f"  FIGYELEM: hibás kép kihagyva: {path} ({reason})")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------


def _positive_int(value, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    what = "pozitív egész szám" + (" vagy None (= az összes kép)" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"A(z) {name} argumentum {what} legyen, nem {value!r}.")
    if value < 1:
        raise ValueError(f"A(z) {name} argumentum {what} legyen (legalább 1), nem {value}.")
    return int(value)


def _seed(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"A seed nemnegatív egész szám legyen (pl. 42), nem {value!r}.")
    return int(value)


def _fold(name: str) -> str:
    # macOS stores "á" decomposed (NFD): compare names in one normal form, case-insensitively.
    return unicodedata.normalize("NFC", name).casefold()


def _class_names(value) -> tuple[str, str]:
    example = "például class_names=('cats', 'dogs')"
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"A class_names két osztálynév listája vagy tuple-je legyen, {example}, nem {value!r}."
        )
    names = tuple(value)
    if len(names) != 2 or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(
            f"A class_names pontosan két nem üres nevet tartalmazzon, {example} (az első a 0-s, "
            f"a második az 1-es címke); most ez van benne: {value!r}."
        )
    if _fold(names[0]) == _fold(names[1]):
        raise ValueError(
            f"A class_names két neve különbözzön (kis- és nagybetű nem számít): {names}."
        )
    return names  # type: ignore[return-value]


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
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(
            "A data_dir egy mappa útvonala legyen (szöveg vagy pathlib.Path), nem "
            f"{type(data_dir).__name__}: {data_dir!r}."
        )
    chosen = data_dir or os.environ.get(config.DATA_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return download_dataset()


# --------------------------------------------------------------------------------------------
# One photo loader
# --------------------------------------------------------------------------------------------


def _photo_error(name: str, reason: str, advice: str) -> PhotoError:
    return PhotoError(f"Ez a kép nem használható: {name} – {reason}. {advice}", reason=reason)


def _looks_like_heif(source) -> bool:
    if isinstance(source, io.BytesIO):
        head = source.getvalue()[:12]
    else:
        with open(source, "rb") as file:
            head = file.read(12)
    return head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB version of any Pillow image; 16-bit values keep their high byte, as Pillow does
    for 16-bit RGB (``convert("RGB")`` would clip 16-bit grayscale to white)."""
    if image.mode.startswith("I"):  # "I;16", "I;16B", ... and 32-bit "I"
        values = np.asarray(image).astype(np.int64)
        if image.mode != "I" or values.max() > 255:
            values = np.clip(values, 0, 65535) >> 8
        return Image.fromarray(values.astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        scale = 255.0 if values.max() <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.round(values * scale), 0, 255).astype(np.uint8)).convert(
            "RGB"
        )
    if image.mode in ("P", "PA"):  # palette transparency is only defined via RGBA
        image = image.convert("RGBA")
    return image if image.mode == "RGB" else image.convert("RGB")


def _decode(source, name: str) -> Image.Image:
    """Decode a path or BytesIO into an upright 8-bit RGB image; PhotoError naming ``name``."""
    try:
        with Image.open(source) as image:
            if min(image.size) < MIN_SIDE:
                width, height = image.size
                raise _photo_error(
                    name,
                    f"túl kicsi kép ({width}×{height} pixel; legalább {MIN_SIDE} pixel kell "
                    "mindkét irányban)",
                    f"A háló {config.IMAGE_SIZE}×{config.IMAGE_SIZE} pixeles képet vár: "
                    "használj nagyobb felbontású fotót.",
                )
            image.load()  # every pixel is decoded: truncated files fail here
            ImageOps.exif_transpose(image, in_place=True)  # phone photos' rotation
            return _to_rgb(image)
    except PhotoError:
        raise
    except Image.DecompressionBombError:
        limit = 2 * Image.MAX_IMAGE_PIXELS / 1e6
        raise _photo_error(
            name,
            f"a fejléce szerint több mint {limit:.0f} megapixeles (lehet hamisított, ún. "
            "dekompressziós bomba is)",
            "Ha valódi fotó, kicsinyítsd le egy képszerkesztővel (pl. 4000 pixel szélesre), "
            "különben töröld.",
        ) from None
    except UnidentifiedImageError:
        if _looks_like_heif(source):
            reason = "HEIC/HEIF kép (iPhone), ezt a Pillow magában nem tudja megnyitni"
            raise _photo_error(name, reason, _HEIF_ADVICE) from None
        raise _photo_error(
            name,
            "nem kép, vagy ismeretlen formátum",
            "Nyisd meg egy képnézegetővel: ha ott sem jelenik meg, töröld vagy cseréld le; ha "
            "igen, mentsd el JPEG-ként vagy PNG-ként.",
        ) from None
    except Exception as exc:  # Pillow reports damaged files with many exception types
        raise _photo_error(
            name,
            f"csonka vagy sérült fájl (a Pillow üzenete: {exc})",
            "Valószínűleg félbeszakadt a másolása vagy a letöltése: másold át / töltsd le "
            "újra, vagy töröld.",
        ) from None


def _open_source(source) -> tuple[Path | io.BytesIO, str]:
    """What ``Image.open`` reads, and the photo's name for messages."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            where = "mappa, nem fájl" if path.is_dir() else "nincs ilyen fájl"
            raise PhotoError(
                f"Ez a kép nem használható: {path} – {where}. Ellenőrizd az útvonalat (a "
                f"relatív útvonal innen indul: {Path.cwd()}).",
                reason=where,
            )
        return path, str(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), _UPLOADED
    if callable(getattr(source, "read", None)):
        content = source.read()
        if not isinstance(content, (bytes, bytearray)):
            raise TypeError(
                "A fájlt binárisan nyisd meg: open(útvonal, 'rb'), ne szövegként ('r')."
            )
        name = getattr(source, "name", None)
        return io.BytesIO(bytes(content)), name if isinstance(name, str) and name else _UPLOADED
    hint = (
        " Ez már egy kép pixelekben: a modellnek a data.as_model_input(...) adja át."
        if isinstance(source, (np.ndarray, Image.Image))
        else ""
    )
    raise TypeError(
        "A load_photo egy képfájlt vár: útvonalat (szöveg vagy pathlib.Path), a fájl tartalmát "
        f"(bytes, pl. egy feltöltésből), vagy egy open(útvonal, 'rb') fájlt, nem "
        f"{type(source).__name__}-t.{hint}"
    )


def _resize(image, image_size: int):
    """The one resize of the series (eager or in a tf.data graph): uint8 RGB of any size ->
    uint8 ``image_size`` x ``image_size``, bilinear with antialiasing, rounded."""
    import tensorflow as tf

    resized = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def load_photo(source, image_size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Load one photo exactly as the training pipeline does.

    Introduced in ``01_data_loading.ipynb``; used for the student's own photos and uploads.
    Decodes with Pillow (any format it reads; HEIC with ``pillow-heif``), applies the EXIF
    rotation, converts every colour mode (16-bit, grayscale, palette, RGBA, CMYK) to 8-bit RGB
    and resizes with the pipeline's own resize, so the result equals the pipeline's image bit for
    bit.

    Args:
        source: A path (``str`` or ``pathlib.Path``), the file's content as ``bytes`` (an upload
            widget's value), or a file opened in binary mode.
        image_size: Side length of the square result.

    Returns:
        float32 array ``(image_size, image_size, 3)`` with whole-number values 0..255.

    Raises:
        PhotoError: Missing file, not an image, truncated, smaller than :data:`MIN_SIDE`, or a
            decompression bomb; the message names the file (or "a feltöltött fájl").
        TypeError: ``source`` is none of the above.
    """
    image_size = _positive_int(image_size, "image_size")
    pixels = np.asarray(_decode(*_open_source(source)))
    return _resize(pixels, image_size).numpy().astype(np.float32)


def load_images(
    paths: Sequence[str | os.PathLike], image_size: int = config.IMAGE_SIZE
) -> np.ndarray:
    """Load a few photos into one float32 array (N, size, size, 3) with values 0..255.

    Introduced in ``01_data_loading.ipynb`` (sample grids); used for galleries later. Each photo is
    loaded by :func:`load_photo`, so the images equal the pipeline's.

    Args:
        paths: A list of paths (one path still goes into a list: ``[path]``).
        image_size: Side length of the square images.

    Raises:
        TypeError: A single path instead of a list.
        ValueError: An empty list.
        PhotoError: A photo cannot be used (the message names it).
    """
    if isinstance(paths, (str, os.PathLike, bytes, bytearray, memoryview)):
        raise TypeError(
            "A load_images képek listáját várja, pl. data.load_images(['a.jpg', 'b.jpg']); "
            f"egyetlen képhez: data.load_photo({paths!r}), vagy tedd listába: [{paths!r}]."
        )
    if not isinstance(paths, (Sequence, np.ndarray)):
        raise TypeError(f"A load_images útvonalak listáját várja, nem {type(paths).__name__}-t.")
    if len(paths) == 0:
        raise ValueError("A load_images üres listát kapott: adj meg legalább egy képet.")
    return np.stack([load_photo(path, image_size) for path in paths])


def as_model_input(images, image_size: int = config.IMAGE_SIZE) -> np.ndarray:
    """Check photos and return the float32 batch the saved model expects.

    Introduced in ``05_training_tensorboard.ipynb`` (predicting on one's own photo). The model
    scales the pixels itself, so it needs raw values 0..255: scaled input (``/255`` or
    ``preprocess_input``) would silently score about 0.50, hence it is refused.

    Args:
        images: One photo ``(size, size, 3)`` or a batch ``(n, size, size, 3)``, values 0..255
            (what :func:`load_photo` / :func:`load_images` return).
        image_size: The side length the model takes.

    Returns:
        float32 array ``(n, image_size, image_size, 3)``.

    Raises:
        PhotoError: Wrong shape or size, empty batch, non-finite values, or values that look
            already scaled (all at most 1, or negative) or are above 255.
        TypeError: Not an array of numbers (e.g. a file name).
    """
    image_size = _positive_int(image_size, "image_size")
    if isinstance(images, (str, os.PathLike, bytes)):
        raise TypeError(
            "Az as_model_input képpontokat vár, nem fájlt: előbb töltsd be, "
            f"photo = data.load_photo({images!r}), majd data.as_model_input(photo)."
        )
    try:
        batch = np.array(images, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(
            "Az as_model_input egy képet (magasság, szélesség, 3) vagy képek kötegét "
            f"(db, magasság, szélesség, 3) várja NumPy-tömbként, nem {type(images).__name__}-t."
        ) from None
    single = batch.ndim == 3
    if single:
        batch = batch[None]
    load = "Töltsd be a képet a data.load_photo(...) függvénnyel: az a helyes méretű RGB képet ad."
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise PhotoError(
            f"A kép alakja {tuple(np.shape(images))}, de egy RGB kép ({image_size}, {image_size}, "
            f"3) vagy egy köteg (db, {image_size}, {image_size}, 3) kell. {load}"
        )
    if batch.shape[0] == 0:
        raise PhotoError("Üres köteg: legalább egy kép kell.")
    if batch.shape[1:3] != (image_size, image_size):
        raise PhotoError(
            f"A kép mérete {batch.shape[1]}×{batch.shape[2]} pixel, a modell "
            f"{image_size}×{image_size} pixeleset vár. {load}"
        )
    if not np.isfinite(batch).all():
        raise PhotoError("A képben NaN vagy végtelen érték van: nyers, 0–255 közötti pixel kell.")
    flat = batch.reshape(len(batch), -1)
    scaled = np.flatnonzero((flat.max(axis=1) <= 1.0) | (flat.min(axis=1) < 0.0))
    if scaled.size:
        which = (
            "A kép"
            if single
            else f"A(z) {', '.join(str(i) for i in scaled[:5])}. sorszámú kép (0-tól számolva)"
        )
        raise PhotoError(
            f"{which} már skálázottnak tűnik (minden érték legfeljebb 1, vagy van negatív érték, "
            "pl. /255 vagy preprocess_input után). A mentett modell maga skáláz, nyers 0–255 "
            "közötti pixeleket vár; skálázott képre minden fotóra kb. 0,50-et mondana. Add át a "
            "skálázás előtti képet (a data.load_photo eredményét)."
        )
    if flat.max() > 255.0:
        raise PhotoError(
            f"A képben 255-nél nagyobb érték is van ({flat.max():g}): nyers, 0–255 közötti "
            "pixelek kellenek (a data.load_photo eredménye)."
        )
    return batch


# --------------------------------------------------------------------------------------------
# Checking the files
# --------------------------------------------------------------------------------------------


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name.startswith("__")


def _image_extensions() -> tuple[str, ...]:
    return IMAGE_EXTENSIONS + (HEIF_EXTENSIONS if HEIF_SUPPORTED else ())


def check_image(path: str | os.PathLike) -> str | None:
    """Fully decode one image file; return None if it is usable, else the reason in Hungarian.

    Introduced in ``01_data_loading.ipynb``. Decodes exactly as :func:`load_photo` does (without
    resizing), so a photo that passes also loads in the pipelines; truncated JPEGs are caught
    because the pixels are actually decoded, not just the header read.
    """
    try:
        _decode(*_open_source(path))
    except PhotoError as err:
        return err.reason
    return None


def _class_folders(directory: Path, class_names: Sequence[str]) -> list[Path]:
    folders = [p for p in sorted(directory.iterdir()) if p.is_dir() and not _is_hidden(p)]
    if not folders:
        raise DataError(
            f"A(z) {directory} mappában nincsenek osztálymappák. Minden osztály képei "
            f"külön almappába kerüljenek: {' és '.join(f'{n}/' for n in class_names)}."
        )
    return folders


def _class_problem(folders: list[Path], class_names: tuple[str, str]) -> str | None:
    """What is wrong with a split's class folders (Hungarian), or None if they are the classes."""
    by_key = {_fold(name): name for name in class_names}
    spellings: dict[str, list[str]] = {name: [] for name in class_names}
    unknown = []
    for folder in folders:
        name = by_key.get(_fold(folder.name))
        if name is None:
            unknown.append(f"{folder.name}/")
        else:
            spellings[name].append(f"{folder.name}/")
    notes = []
    missing = [f"{name}/" for name, found in spellings.items() if not found]
    if missing:
        notes.append(f"hiányzik: {', '.join(missing)}")
    if unknown:
        notes.append(f"nem ismert: {', '.join(unknown)}")
    for found in spellings.values():
        if len(found) > 1:
            notes.append(f"ugyanaz az osztály többször: {', '.join(found)}")
    return "; ".join(notes) or None


def _match_classes(folders: list[Path], class_names: tuple[str, str]) -> dict[str, Path]:
    """Class name -> folder in label order (the folders are known to be exactly the classes)."""
    by_key = {_fold(folder.name): folder for folder in folders}
    return {name: by_key[_fold(name)] for name in class_names}


def _class_error(listing: dict[Path, list[Path]], class_names: tuple[str, str]) -> DataError:
    found = []
    for directory, folders in listing.items():
        problem = _class_problem(folders, class_names)
        names = ", ".join(f"{p.name}/" for p in folders)
        found.append(f"a(z) {directory} mappában: {names}" + (f" ({problem})" if problem else ""))
    expected = " és ".join(f"{name}/ (címke {label})" for label, name in enumerate(class_names))
    names = {_fold(p.name): p.name for folders in listing.values() for p in folders}
    example = tuple(sorted(names.values())) if len(names) == 2 else ("macskák", "kutyák")
    return DataError(
        f"Nem a várt osztálymappákat találtam. Ezt látom: {'; '.join(found)}. Pontosan két "
        f"osztálymappát várok, {expected}; a kis- és nagybetű nem számít. Nevezd át a mappákat, "
        "vagy ha más osztályokat használsz, add meg a neveiket a kívánt sorrendben a "
        "data.inspect_dataset(...) és a data.make_datasets(...) függvénynek, pl. "
        f"class_names={example!r}. Az első név lesz a 0-s, "
        "a második az 1-es címke: a háló kimenete a második osztály valószínűsége."
    )


def _describe(entries: list[tuple[Path, str]], limit: int = 5) -> str:
    shown = "; ".join(f"{path.name} – {reason}" for path, reason in entries[:limit])
    more = f"; és még {len(entries) - limit} fájl" if len(entries) > limit else ""
    return shown + more


def _empty_class_error(folder: Path, skipped, broken, nested: dict[Path, int]) -> DataError:
    if nested:
        where = ", ".join(f"{sub.name}/ ({n} kép)" for sub, n in nested.items())
        return DataError(
            f"A(z) {folder} mappában nincs kép, de az almappájában igen: {where}. A képek eggyel "
            f"mélyebben vannak a kelleténél: mozgasd őket eggyel feljebb, közvetlenül a(z) "
            f"{folder} mappába (az osztálymappán belül nem lehet további almappa)."
        )
    formats = ", ".join(_image_extensions())
    if not skipped and not broken:
        return DataError(
            f"Üres osztály: a(z) {folder} mappa üres. Tegyél bele képeket ({formats}), vagy "
            "töröld a mappát."
        )
    notes = []
    if broken:
        notes.append(f"Hibás képek: {_describe(broken)}")
    if skipped:
        notes.append(f"Kihagyott fájlok: {_describe(skipped)}")
    return DataError(
        f"A(z) {folder} mappában nincs egyetlen használható kép sem. "
        f"{'. '.join(notes)}. "
        f"A sorozat ezeket a képfájlokat olvassa: {formats}. Javítsd vagy cseréld le a fenti "
        "fájlokat, vagy tegyél a mappába ilyen képeket."
    )


def scan_split(
    name: str,
    directory: Path,
    check_images: bool = True,
    *,
    class_names: Sequence[str] = CLASS_NAMES,
) -> Split:
    """List the class folders of one split, skipping clutter and reporting broken images.

    Introduced in ``01_data_loading.ipynb``.

    Args:
        name: ``"train"`` or ``"validation"``.
        directory: The split's folder.
        check_images: Decode every image to find broken ones (about 1 ms per photo).
        class_names: The two classes in label order; folders match them case-insensitively.

    Raises:
        DataError: No class folders, folders that are not the classes, or a class folder with no
            usable photo (the message says what was skipped and why).
    """
    class_names = _class_names(class_names)
    found = _class_folders(directory, class_names)
    if _class_problem(found, class_names):
        raise _class_error({directory: found}, class_names)
    folders = _match_classes(found, class_names)
    split = Split(name=name, directory=directory, files={}, folders=folders)
    for entry in sorted(directory.iterdir()):
        if entry.is_file():
            split.skipped.append((entry, "nem osztálymappában van"))
    extensions = _image_extensions()
    for class_name, folder in folders.items():
        files: list[Path] = []
        skipped: list[tuple[Path, str]] = []
        broken: list[tuple[Path, str]] = []
        nested: dict[Path, int] = {}
        for path in sorted(folder.iterdir()):
            lower = path.name.lower()
            suffix = path.suffix.lower()
            if path.is_dir():
                photos = sum(1 for p in path.iterdir() if p.suffix.lower() in extensions)
                if photos and not _is_hidden(path):
                    nested[path] = photos
                    reason = (
                        f"almappa {photos} képpel: ezek nem kerülnek be; ha ide tartoznak, "
                        "mozgasd őket eggyel feljebb"
                    )
                else:
                    reason = "almappa, nincs benne kép"
                skipped.append((path, reason))
            elif lower in SYSTEM_FILES or _is_hidden(path):
                skipped.append((path, "rendszerfájl / rejtett fájl"))
            elif suffix in HEIF_EXTENSIONS and not HEIF_SUPPORTED:
                skipped.append((path, _HEIF_SKIPPED))
            elif suffix not in extensions:
                skipped.append((path, f"nem képfájl ({path.suffix or 'kiterjesztés nélkül'})"))
            elif check_images and (reason := check_image(path)):
                broken.append((path, reason))
            else:
                files.append(path)
        if not files:
            raise _empty_class_error(folder, skipped, broken, nested)
        split.files[class_name] = files
        split.skipped += skipped
        split.broken += broken
    return split


def _fingerprint(*folders: Path, depth: int = 3) -> tuple:
    """Name, size and modification time of everything up to ``depth`` levels below ``folders``."""
    entries: list[tuple[str, int, int]] = []

    def walk(folder: str, level: int) -> None:
        try:
            with os.scandir(folder) as scan:
                children = sorted(scan, key=lambda entry: entry.name)
        except OSError:
            return
        for entry in children:
            try:
                stat = entry.stat()
                entries.append((entry.path, stat.st_size, stat.st_mtime_ns))
            except OSError:  # a dangling link
                entries.append((entry.path, -1, -1))
            if level < depth and entry.is_dir():
                walk(entry.path, level + 1)

    for folder in folders:
        walk(str(folder), 1)
    return tuple(entries)


_CHECKED: dict[tuple, tuple[tuple, DatasetInfo]] = {}


def inspect_dataset(
    data_dir: str | os.PathLike | None = None,
    *,
    check_images: bool = True,
    verbose: bool = True,
    class_names: Sequence[str] = CLASS_NAMES,
) -> DatasetInfo:
    """Find, check and describe the data set before TensorFlow sees a single file.

    Introduced in ``01_data_loading.ipynb``. The result is remembered for the session while no
    file changes (names, sizes and modification times are compared on every call, which takes
    milliseconds), so calling it again (or calling :func:`make_datasets`) does not decode every
    photo twice, yet a photo deleted, added or damaged since is noticed.

    Args:
        data_dir: Local folder; defaults to ``TL_DATA_DIR`` or the downloaded archive.
        check_images: Decode every image to find broken ones.
        verbose: Print the per-class counts and notes.
        class_names: The two classes in label order (default :data:`CLASS_NAMES`); the class
            folders must be these, in any letter case. The second class is the one whose
            probability the model's sigmoid outputs.

    Returns:
        The checked :class:`DatasetInfo`.

    Raises:
        DataError: Missing folder, wrong layout, class folders that are not ``class_names`` (in
            either split), or a class with no usable photo.
    """
    class_names = _class_names(class_names)
    root = resolve_data_dir(data_dir)
    train_dir, val_dir = find_split_dirs(root)
    key = (str(root.resolve()), bool(check_images), class_names)
    stamp = _fingerprint(train_dir, val_dir)
    cached = _CHECKED.get(key)
    if cached is not None and cached[0] == stamp:
        info = cached[1]
    else:
        listing = {d: _class_folders(d, class_names) for d in (train_dir, val_dir)}
        if any(_class_problem(folders, class_names) for folders in listing.values()):
            raise _class_error(listing, class_names)
        train = scan_split("train", train_dir, check_images, class_names=class_names)
        validation = scan_split("validation", val_dir, check_images, class_names=class_names)
        info = DatasetInfo(root=root, train=train, validation=validation)
        _CHECKED[key] = (stamp, info)
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
        max_per_class: Use at most this many photos per class and split (smoke profile); a
            positive whole number, or None for all photos.
        seed: Seed of the split.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}``, disjoint; labels follow
        ``info.class_names``.
    """
    if not isinstance(info, DatasetInfo):
        raise TypeError(
            "A split_files a data.inspect_dataset(...) eredményét várja, nem "
            f"{type(info).__name__}-t."
        )
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"A test_fraction 0 és 1 közötti szám legyen, nem {test_fraction!r}.")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"A test_fraction 0 és 1 közötti szám legyen (pl. 0.5 = a validációs mappa fele), "
            f"nem {test_fraction}."
        )
    max_per_class = _positive_int(max_per_class, "max_per_class", allow_none=True)
    rng = np.random.default_rng(_seed(seed))
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
            folder = info.validation.folders.get(class_name, info.validation.directory)
            raise DataError(
                f"A(z) {folder} mappában túl kevés kép van ahhoz, hogy validációs és teszt "
                "részre is jusson (legalább 2 kell)."
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


def _decode_file(path: bytes) -> np.ndarray:
    """The pipeline's decoder (runs in ``tf.numpy_function``): :func:`load_photo`'s decoding."""
    name = path.decode("utf-8")
    try:
        return np.asarray(_decode(*_open_source(name)))
    except PhotoError as err:
        raise PhotoError(f"{err}\n{_CHANGED_SINCE_CHECK}", reason=err.reason) from None


def _read_photo(path, image_size: int):
    """Path tensor -> uint8 ``image_size`` x ``image_size`` x 3 tensor, as :func:`load_photo`."""
    import tensorflow as tf

    pixels = tf.numpy_function(_decode_file, [path], tf.uint8, name="decode_photo")
    pixels.set_shape([None, None, 3])
    return _resize(pixels, image_size)


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

    Introduced in ``01_data_loading.ipynb``. Photos are decoded exactly like :func:`load_photo`
    (the same Pillow decoder and resize) and cached in memory as uint8 **before** any random
    augmentation, so every epoch sees freshly augmented images. Without the cache, shuffling
    reorders the file list before decoding (like ``flow_from_directory``), so no decoded photo
    waits in a shuffle buffer.

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

    if not isinstance(split, FileSplit):
        raise TypeError(
            "A make_dataset egy FileSplit-et vár (a data.split_files(...) eredményének egy "
            f"részét, pl. files['train']), nem {type(split).__name__}-t."
        )
    if len(split) == 0:
        raise DataError("Üres felosztás: a make_dataset legalább egy képet vár.")
    batch_size = _positive_int(batch_size, "batch_size")
    image_size = _positive_int(image_size, "image_size")
    seed = _seed(seed)
    if augment is not None and not callable(augment):
        raise TypeError(
            "Az augment egy Keras-réteg vagy -modell legyen (pl. data.augmentation()) vagy None, "
            f"nem {type(augment).__name__}."
        )

    def decode(path, label):
        return _read_photo(path, image_size), label

    def to_float(image, label):
        return tf.cast(image, tf.float32), label

    def augment_batch(images, labels):
        return augment(images, training=True), labels

    ds = tf.data.Dataset.from_tensor_slices((split.paths, split.labels))
    if shuffle and not cache:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(to_float).batch(batch_size)
    if augment is not None:
        # Sequential on purpose: the augmentation layers keep one random state, so parallel
        # calls would draw in thread order and two runs from the same seed would differ.
        # prefetch still overlaps it with training.
        ds = ds.map(augment_batch)
    return ds.prefetch(tf.data.AUTOTUNE)


def augmentation(seed: int = config.SEED):
    """Return the series' random augmentation: horizontal flip, small rotation and zoom.

    Introduced in ``01_data_loading.ipynb``. Each layer gets its own seed, derived from ``seed``:
    with one shared seed the three would draw the same random numbers, so exactly the flipped
    photos would also be the ones rotated one way and zoomed in.
    """
    import keras

    flip_seed, rotation_seed, zoom_seed = (
        int(s) for s in np.random.SeedSequence(_seed(seed)).generate_state(3)
    )
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=flip_seed),
            keras.layers.RandomRotation(0.08, fill_mode="reflect", seed=rotation_seed),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=zoom_seed),
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
    class_names: Sequence[str] = CLASS_NAMES,
) -> Datasets:
    """Check the photos and return train / validation / test pipelines in one call.

    Introduced in ``01_data_loading.ipynb``; used by every later notebook.

    Args:
        data_dir: Local folder; defaults to ``TL_DATA_DIR`` or the downloaded archive.
        batch_size: Photos per batch.
        augment: Random augmentation for the training pipeline (None: no augmentation).
        max_per_class: At most this many photos per class and split (the smoke profile's limit);
            a positive whole number, or None for all photos.
        test_fraction: Share of the validation folder used as the test split.
        seed: Seed of the file split and of the shuffling.
        verbose: Print counts and notes.
        class_names: The two classes in label order (see :func:`inspect_dataset`).
    """
    batch_size = _positive_int(batch_size, "batch_size")
    max_per_class = _positive_int(max_per_class, "max_per_class", allow_none=True)
    info = inspect_dataset(data_dir, verbose=verbose, class_names=class_names)
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
