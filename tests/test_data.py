"""helpers.data on small generated photo folders: layouts, class folders, clutter, broken files,
errors, the download path, the file split, the one photo loader, the tf.data pipelines and the
README's prediction snippet."""

from __future__ import annotations

import re
import unicodedata
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from helpers import config, data

from .conftest import CLASS_RANGES, jpeg_bytes, random_photo, write_tree

# --------------------------------------------------------------------------------------------
# Layouts and where the folder comes from
# --------------------------------------------------------------------------------------------

LAYOUTS = {
    "archive": ("train", "validation"),
    "seed_lecture": ("training_set", "test_set"),
    "nested_archive": ("cats_and_dogs_filtered/train", "cats_and_dogs_filtered/validation"),
    "nested_two_levels": (
        "download/cats_and_dogs_filtered/train",
        "download/cats_and_dogs_filtered/validation",
    ),
    "kaggle_twin": ("training_set/training_set", "test_set/test_set"),
    "nested_seed_lecture": ("dataset/training_set", "dataset/test_set"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layouts_are_found(tmp_path, layout):
    train_dir, val_dir = write_tree(tmp_path, *LAYOUTS[layout])
    assert data.find_split_dirs(tmp_path) == (train_dir, val_dir)
    info = data.inspect_dataset(tmp_path, verbose=False)
    assert info.train.directory == train_dir
    assert info.validation.directory == val_dir
    assert info.class_names == ["cats", "dogs"]
    assert info.train.counts() == {"cats": 6, "dogs": 6}
    assert info.validation.counts() == {"cats": 4, "dogs": 4}


def test_kaggle_twin_nesting_ignores_mac_clutter(tmp_path):
    train_dir, val_dir = write_tree(tmp_path, "training_set/training_set", "test_set/test_set")
    (tmp_path / "training_set" / "__MACOSX").mkdir()
    (tmp_path / "training_set" / ".DS_Store").write_bytes(b"\0")
    assert data.find_split_dirs(tmp_path) == (train_dir, val_dir)


def test_data_dir_argument(tiny_dataset, capsys):
    info = data.inspect_dataset(str(tiny_dataset))
    assert info.root == tiny_dataset
    out = capsys.readouterr().out
    assert "cats: 6" in out and "dogs: 6" in out  # verbose=True prints the summary
    assert "cats = 0" in out and "dogs = 1" in out


def test_tl_data_dir_environment_variable(tiny_dataset, monkeypatch):
    monkeypatch.setenv("TL_DATA_DIR", str(tiny_dataset))
    assert data.resolve_data_dir() == tiny_dataset
    info = data.inspect_dataset(verbose=False)
    assert info.root == tiny_dataset
    assert info.train.counts() == {"cats": 6, "dogs": 6}


def test_data_dir_argument_wins_over_environment(tiny_dataset, monkeypatch, tmp_path):
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "does_not_exist"))
    assert data.resolve_data_dir(tiny_dataset) == tiny_dataset
    assert data.inspect_dataset(tiny_dataset, verbose=False).root == tiny_dataset


# --------------------------------------------------------------------------------------------
# Clutter and broken files
# --------------------------------------------------------------------------------------------


def test_system_and_non_image_files_are_skipped_and_reported(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    cats = train_dir / "cats"
    junk = [cats / ".DS_Store", cats / "Thumbs.db", cats / "desktop.ini", cats / "notes.txt"]
    for path in junk:
        path.write_bytes(b"not a photo")
    apple_double = cats / "._cat.0.jpg"  # macOS resource fork next to a real photo: hidden
    apple_double.write_bytes(b"\x00\x05\x16\x07" + b"\0" * 60)
    loose = train_dir / ".DS_Store"  # clutter next to the class folders
    loose.write_bytes(b"\0")
    junk += [apple_double, loose]

    info = data.inspect_dataset(tmp_path, verbose=False)
    skipped = {path: reason for path, reason in info.train.skipped}
    for path in junk:
        assert path in skipped, f"{path.name} not reported as skipped"
        assert skipped[path]
    assert info.train.counts() == {"cats": 6, "dogs": 6}
    assert not set(junk) & set(info.train.files["cats"])
    assert not info.train.broken
    summary = info.summary()
    for path in junk:
        assert str(path) in summary


def test_broken_images_are_reported_with_path_and_excluded(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    rng = np.random.default_rng(1)
    whole = jpeg_bytes(random_photo(rng, "dogs"))
    truncated = train_dir / "dogs" / "truncated.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    garbage = train_dir / "dogs" / "x.jpg"
    garbage.write_bytes(rng.bytes(2000))

    info = data.inspect_dataset(tmp_path, verbose=False)
    broken = {path: reason for path, reason in info.train.broken}
    assert set(broken) == {truncated, garbage}
    assert all(broken.values())
    assert truncated not in info.train.files["dogs"] and garbage not in info.train.files["dogs"]
    assert info.train.counts() == {"cats": 6, "dogs": 6}
    summary = info.summary()
    assert str(truncated) in summary and str(garbage) in summary

    # The broken files never reach TensorFlow: a full pass over every pipeline works.
    ds = data.make_datasets(tmp_path, batch_size=8, verbose=False)
    seen = sum(int(y.shape[0]) for split in (ds.train, ds.validation, ds.test) for _, y in split)
    assert seen == 12 + 8
    assert not {str(truncated), str(garbage)} & set(ds.files["train"].paths)


def test_tiny_image_is_broken(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(path)
    assert data.check_image(path)


def _special(mode: str, path: Path) -> Image.Image:
    base = np.zeros((32, 40, 3), np.uint8)
    base[..., 0], base[..., 1], base[..., 2] = 220, 30, 40
    base[:, :20] = (20, 180, 90)
    image = Image.fromarray(base)
    if mode == "RGBA":
        alpha = Image.new("L", image.size, 128)
        image = image.convert("RGBA")
        image.putalpha(alpha)
    elif mode == "P":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    else:
        image = image.convert(mode)
    image.save(path)
    return image


@pytest.mark.parametrize(
    ("mode", "name"),
    [
        ("L", "gray.jpg"),
        ("CMYK", "cmyk.jpg"),
        ("RGBA", "rgba.png"),
        ("P", "palette.png"),
        ("RGB", "plain.gif"),
        ("RGB", "plain.bmp"),
    ],
)
def test_load_photo_converts_every_colour_mode_to_rgb(tmp_path, mode, name):
    path = tmp_path / name
    image = _special(mode, path)
    assert data.check_image(path) is None
    pixels = data.load_photo(path)
    assert pixels.shape == (224, 224, 3)
    assert pixels.dtype == np.float32
    assert pixels.min() >= 0.0 and pixels.max() <= 255.0
    # Colours survive (CMYK is not inverted, alpha is dropped, the palette is applied).
    with Image.open(path) as reread:
        expected = np.asarray(reread.convert("RGB"), dtype="float32")
    assert image.size == (40, 32)
    np.testing.assert_allclose(
        pixels[:, :100].mean(axis=(0, 1)), expected[:, :15].mean(axis=(0, 1)), atol=4
    )
    np.testing.assert_allclose(
        pixels[:, 124:].mean(axis=(0, 1)), expected[:, 25:].mean(axis=(0, 1)), atol=4
    )


def test_load_images_stacks_float32(tiny_dataset):
    paths = sorted((tiny_dataset / "train" / "cats").glob("*.jpg"))[:3]
    batch = data.load_images(paths)
    assert batch.shape == (3, 224, 224, 3)
    assert batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 255.0
    assert batch.mean(axis=(1, 2, 3)).max() < CLASS_RANGES["dogs"][0]  # dark cats


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF", "PNG"])
def test_any_format_pillow_reads_is_accepted_whatever_the_extension(tmp_path, fmt):
    train_dir, _ = write_tree(tmp_path)
    disguised = train_dir / "cats" / "renamed.jpg"
    random_photo(np.random.default_rng(2), "cats").save(disguised, format=fmt)
    info = data.inspect_dataset(tmp_path, verbose=False)
    assert not info.train.broken
    assert disguised in info.train.files["cats"]
    pipeline = data.make_dataset(data.FileSplit([str(disguised)], np.zeros(1, "int32")))
    images, _ = _collect(pipeline)
    np.testing.assert_array_equal(images[0], data.load_photo(disguised))


def test_more_photo_extensions_are_accepted(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    rng = np.random.default_rng(4)
    saved = {".webp": "WEBP", ".jfif": "JPEG", ".jpe": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
    extra = []
    for suffix, fmt in saved.items():
        path = train_dir / "cats" / f"extra{suffix}"
        random_photo(rng, "cats").save(path, format=fmt)
        extra.append(path)
    info = data.inspect_dataset(tmp_path, verbose=False)
    assert set(extra) <= set(info.train.files["cats"])
    assert info.train.counts() == {"cats": 6 + len(extra), "dogs": 6}
    assert not info.train.skipped and not info.train.broken


def _bomb_jpeg(path: Path) -> Path:
    """A small JPEG whose frame header (SOF0) claims 20000x20000 pixels."""
    raw = bytearray(jpeg_bytes(Image.new("RGB", (64, 64), (120, 60, 30))))
    i = 2
    while raw[i + 1] != 0xC0:  # walk the marker segments up to the frame header
        i += 2 + int.from_bytes(raw[i + 2 : i + 4], "big")
    raw[i + 5 : i + 9] = (20000).to_bytes(2, "big") * 2
    path.write_bytes(bytes(raw))
    return path


def test_decompression_bomb_is_reported_by_path_and_left_out(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    bomb = _bomb_jpeg(train_dir / "dogs" / "huge.jpg")
    info = data.inspect_dataset(tmp_path, verbose=False)
    broken = dict(info.train.broken)
    assert set(broken) == {bomb}
    assert "megapixel" in broken[bomb]
    assert info.train.counts() == {"cats": 6, "dogs": 6}
    with pytest.raises(data.PhotoError, match="megapixel") as excinfo:
        data.load_photo(bomb)
    assert str(bomb) in str(excinfo.value)


def test_photos_one_level_too_deep_get_move_up_advice(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    cats = train_dir / "cats"
    (cats / "more").mkdir()
    for path in cats.glob("*.jpg"):
        path.rename(cats / "more" / path.name)
    message = _data_error(tmp_path)
    assert str(cats) in message and "more/" in message
    assert "feljebb" in message  # move them up, not "put photos into the empty class"
    assert "Üres" not in message


def test_nested_folder_next_to_photos_is_reported_with_move_up_advice(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    nested = train_dir / "cats" / "more"
    nested.mkdir()
    random_photo(np.random.default_rng(5), "cats").save(nested / "cat.99.jpg")
    info = data.inspect_dataset(tmp_path, verbose=False)
    reason = dict(info.train.skipped)[nested]
    assert "1 képpel" in reason and "feljebb" in reason


def test_class_folder_with_only_skipped_files_says_what_and_why(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "HEIF_SUPPORTED", False)
    train_dir, _ = write_tree(tmp_path)
    dogs = train_dir / "dogs"
    for path in dogs.iterdir():
        path.unlink()
    (dogs / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 32)
    (dogs / "clip.mp4").write_bytes(b"\0" * 64)
    message = _data_error(tmp_path)
    assert str(dogs) in message
    assert "IMG_0001.HEIC" in message and "pillow-heif" in message  # what, and what to do
    assert "clip.mp4" in message and ".mp4" in message
    assert ".webp" in message  # which files would be read


# --------------------------------------------------------------------------------------------
# Clear errors that name the folder
# --------------------------------------------------------------------------------------------


def _data_error(folder) -> str:
    with pytest.raises(data.DataError) as excinfo:
        data.inspect_dataset(folder, verbose=False)
    return str(excinfo.value)


def test_missing_folder(tmp_path):
    missing = tmp_path / "nincs_ilyen_mappa"
    assert str(missing) in _data_error(missing)


def test_folder_is_a_file(tmp_path):
    path = tmp_path / "photos.zip"
    path.write_bytes(b"PK")
    assert str(path) in _data_error(path)


def test_folder_without_the_layout(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / "photos" / name).mkdir(parents=True)
    message = _data_error(tmp_path)
    assert str(tmp_path) in message
    assert "photos" in message  # says what it did find
    assert "TL_DATA_DIR" in message


def test_empty_folder(tmp_path):
    assert str(tmp_path) in _data_error(tmp_path)


def test_empty_class_folder_with_only_clutter(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    dogs = train_dir / "dogs"
    for path in dogs.iterdir():
        path.unlink()
    (dogs / ".DS_Store").write_bytes(b"\0")
    (dogs / "notes.txt").write_text("kutyák")
    assert str(dogs) in _data_error(tmp_path)


def test_split_without_class_folders(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    for folder in train_dir.iterdir():
        for path in folder.iterdir():
            path.rename(train_dir / f"{folder.name}_{path.name}")
        folder.rmdir()
    assert str(train_dir) in _data_error(tmp_path)


def test_single_class(tmp_path):
    train_dir, _ = write_tree(tmp_path, classes=("cats",))
    message = _data_error(tmp_path)
    assert f"{train_dir} mappában: cats/ (hiányzik: dogs/)" in message  # found, and what is missing
    assert "cats/ (címke 0) és dogs/ (címke 1)" in message  # what is expected
    assert "class_names=" in message  # the documented way to use other classes


def test_three_classes(tmp_path):
    train_dir, _ = write_tree(tmp_path, classes=("birds", "cats", "dogs"))
    message = _data_error(tmp_path)
    assert str(train_dir) in message
    assert "birds" in message


def test_classes_differ_between_train_and_validation(tmp_path):
    train_dir, val_dir = write_tree(tmp_path, val_classes=("cats", "horses"))
    message = _data_error(tmp_path)
    assert str(train_dir) in message and str(val_dir) in message
    assert "horses" in message


# --------------------------------------------------------------------------------------------
# Download path (a local file:// archive stands in for the internet)
# --------------------------------------------------------------------------------------------


def _write_archive(path: Path, top: str = "cats_and_dogs_filtered") -> Path:
    rng = np.random.default_rng(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for split, count in (("train", 3), ("validation", 2)):
            for class_name in ("cats", "dogs"):
                for i in range(count):
                    name = f"{top}/{split}/{class_name}/{class_name[:-1]}.{i}.jpg"
                    archive.writestr(name, jpeg_bytes(random_photo(rng, class_name)))
    return path


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "project_data"
    monkeypatch.setattr(config, "DATA_ROOT", root)
    monkeypatch.delenv("TL_DATA_DIR", raising=False)
    return root


def test_download_extracts_verifies_and_then_works_offline(tmp_path, data_root):
    archive = _write_archive(tmp_path / "server" / data.ARCHIVE_NAME)
    origin = "file://" + str(archive)

    path = data.download_dataset(origin=origin)
    assert path == data_root / "cats_and_dogs_filtered_extracted"
    train_dir, val_dir = data.find_split_dirs(path)
    assert train_dir == path / "cats_and_dogs_filtered" / "train"
    assert len(list((train_dir / "dogs").glob("*.jpg"))) == 3

    archive.unlink()  # the "internet" is gone: the second call must not need it
    assert data.download_dataset(origin=origin) == path
    # Without TL_DATA_DIR, inspect_dataset() falls back to the downloaded copy (offline here).
    info = data.inspect_dataset(verbose=False)
    assert info.train.directory == train_dir
    assert info.validation.counts() == {"cats": 2, "dogs": 2}


@pytest.mark.parametrize("origin", ["file:///nonexistent/x.zip", "http://127.0.0.1:9/x.zip"])
def test_unreachable_origin_raises_data_error_mentioning_tl_data_dir(data_root, origin):
    with pytest.raises(data.DataError) as excinfo:
        data.download_dataset(origin=origin)
    message = str(excinfo.value)
    assert "TL_DATA_DIR" in message
    assert origin in message
    assert not (data_root / data.ARCHIVE_NAME).exists()  # no half-downloaded leftovers


def test_archive_with_wrong_layout_is_rejected(tmp_path, data_root):
    archive = tmp_path / "server" / data.ARCHIVE_NAME
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("something_else/readme.txt", "no photos here")
    with pytest.raises(data.DataError):
        data.download_dataset(origin="file://" + str(archive))


def test_interrupted_download_is_downloaded_again(tmp_path, data_root):
    archive = _write_archive(tmp_path / "server" / data.ARCHIVE_NAME)
    data_root.mkdir(parents=True)
    whole = archive.read_bytes()
    (data_root / data.ARCHIVE_NAME).write_bytes(whole[: len(whole) // 2])  # kernel died mid-way
    path = data.download_dataset(origin="file://" + str(archive))
    assert data.find_split_dirs(path)


# --------------------------------------------------------------------------------------------
# Splitting by files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_info(tiny_dataset):
    return data.inspect_dataset(tiny_dataset, verbose=False)


def test_split_files_is_disjoint_and_complete(tiny_info):
    parts = data.split_files(tiny_info)
    sets = {name: set(part.paths) for name, part in parts.items()}
    assert len(sets["train"]) == len(parts["train"]) == 12
    assert not sets["train"] & sets["validation"]
    assert not sets["train"] & sets["test"]
    assert not sets["validation"] & sets["test"]
    held_out = {str(p) for files in tiny_info.validation.files.values() for p in files}
    assert sets["validation"] | sets["test"] == held_out
    assert len(parts["test"]) == 4 and len(parts["validation"]) == 4  # test_fraction=0.5


def test_split_files_repeats_with_the_same_seed(tiny_info):
    first = data.split_files(tiny_info, seed=7)
    second = data.split_files(tiny_info, seed=7)
    for name in ("train", "validation", "test"):
        assert first[name].paths == second[name].paths
        np.testing.assert_array_equal(first[name].labels, second[name].labels)
    others = [data.split_files(tiny_info, seed=s)["test"].paths for s in range(5)]
    assert any(paths != first["test"].paths for paths in others)


def test_split_files_is_stratified_and_labels_follow_folders(tiny_info):
    for part in data.split_files(tiny_info).values():
        assert set(part.labels.tolist()) == {0, 1}
        assert part.labels.dtype == np.int32
        for path, label in zip(part.paths, part.labels, strict=True):
            assert Path(path).parent.name == ["cats", "dogs"][label]


def test_split_files_max_per_class(tiny_info):
    parts = data.split_files(tiny_info, max_per_class=2)
    for name, part in parts.items():
        counts = np.bincount(part.labels, minlength=2)
        assert counts.max() <= 2, name
        assert counts.min() >= 1, name
    assert np.bincount(parts["train"].labels).tolist() == [2, 2]


def test_split_files_test_fraction(tiny_info):
    parts = data.split_files(tiny_info, test_fraction=0.25)
    assert np.bincount(parts["test"].labels).tolist() == [1, 1]
    assert np.bincount(parts["validation"].labels).tolist() == [3, 3]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_split_files_rejects_bad_test_fraction(tiny_info, fraction):
    with pytest.raises(ValueError):
        data.split_files(tiny_info, test_fraction=fraction)


# --------------------------------------------------------------------------------------------
# tf.data pipelines
# --------------------------------------------------------------------------------------------


def _collect(dataset):
    images, labels = [], []
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def _assert_pixels_match_labels(images, labels):
    means = images.reshape(len(images), -1).mean(axis=1)
    np.testing.assert_array_equal(labels, (means > 128).astype("int32"))


@pytest.fixture(scope="module")
def tiny_datasets(tiny_dataset):
    return data.make_datasets(
        tiny_dataset, batch_size=4, augment=data.augmentation(), verbose=False
    )


def test_make_datasets_element_spec(tiny_datasets):
    assert tiny_datasets.class_names == ["cats", "dogs"]
    for name in ("train", "validation", "test"):
        pipeline = getattr(tiny_datasets, name)
        images, labels = next(iter(pipeline))
        assert tuple(images.shape) == (4, 224, 224, 3), name
        assert images.dtype.name == "float32"
        assert labels.dtype.name == "int32"
        assert tuple(labels.shape) == (4,)
        assert float(images.numpy().min()) >= 0.0 and float(images.numpy().max()) <= 255.0


def test_every_pipeline_yields_its_files_with_matching_labels(tiny_datasets):
    for name in ("train", "validation", "test"):
        images, labels = _collect(getattr(tiny_datasets, name))
        assert len(labels) == len(tiny_datasets.files[name]), name
        assert (
            np.bincount(labels).tolist() == np.bincount(tiny_datasets.files[name].labels).tolist()
        )
        _assert_pixels_match_labels(images, labels)  # cats (dark) are 0, dogs (bright) are 1
    _, labels = _collect(tiny_datasets.validation)
    np.testing.assert_array_equal(labels, tiny_datasets.files["validation"].labels)  # file order


def test_augmentation_differs_between_epochs(tiny_datasets):
    # Shuffling alone only reorders the same images; compare order-free image fingerprints.
    first, first_labels = _collect(tiny_datasets.train)
    second, second_labels = _collect(tiny_datasets.train)
    _assert_pixels_match_labels(first, first_labels)
    _assert_pixels_match_labels(second, second_labels)
    assert sorted(first.sum(axis=(1, 2, 3))) != sorted(second.sum(axis=(1, 2, 3)))


def test_without_augmentation_epochs_hold_the_same_images(tiny_dataset):
    plain = data.make_datasets(tiny_dataset, batch_size=4, verbose=False)
    first, _ = _collect(plain.train)
    second, _ = _collect(plain.train)
    np.testing.assert_array_equal(
        np.sort(first.sum(axis=(1, 2, 3))), np.sort(second.sum(axis=(1, 2, 3)))
    )


def test_cache_sits_before_augmentation(tiny_datasets):
    # Same order every pass (no shuffle): identical batches would mean augmented images were cached.
    pipeline = data.make_dataset(
        tiny_datasets.files["train"], batch_size=4, augment=data.augmentation(), cache=True
    )
    first, first_labels = _collect(pipeline)
    second, second_labels = _collect(pipeline)
    np.testing.assert_array_equal(first_labels, second_labels)
    assert not np.array_equal(first, second)


def test_evaluation_pipelines_are_deterministic(tiny_datasets):
    for name in ("validation", "test"):
        pipeline = getattr(tiny_datasets, name)
        first, first_labels = _collect(pipeline)
        second, second_labels = _collect(pipeline)
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(first_labels, second_labels)


def test_pipeline_images_are_whole_numbers_like_load_images(tiny_datasets):
    images, _ = _collect(tiny_datasets.validation)
    np.testing.assert_array_equal(images, data.load_images(tiny_datasets.files["validation"].paths))
    np.testing.assert_array_equal(images, np.round(images))


def _augmentation_draws(seed: int, n: int = 128, size: int = 96):
    """Flip, rotation and zoom of ``n`` augmented copies of one asymmetric test image, each read
    from its own colour channel: red fills the right half (a flip moves it left), green is a
    horizontal bar (rotation tilts it), blue a centred disk (zoom changes its area)."""
    image = np.zeros((size, size, 3), np.float32)
    image[:, size // 2 :, 0] = 255.0
    image[size // 2 - 3 : size // 2 + 3, :, 1] = 255.0
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    image[..., 2] = 255.0 * (xx**2 + yy**2 <= (0.2 * size) ** 2)
    out = np.asarray(data.augmentation(seed)(np.repeat(image[None], n, axis=0), training=True))
    red, green, blue = out[..., 0], out[..., 1], out[..., 2]
    half = size // 2
    flipped = red[:, :, :half].mean(axis=(1, 2)) > red[:, :, half:].mean(axis=(1, 2))
    rows = np.arange(size)[None, :, None]

    def bar_row(columns: slice) -> np.ndarray:
        g = green[:, :, columns]
        return (g * rows).sum(axis=(1, 2)) / g.sum(axis=(1, 2))

    tilt = bar_row(slice(half + 10, size - 10)) - bar_row(slice(10, half - 10))
    area = blue.sum(axis=(1, 2))
    return flipped.astype(float), tilt, area


@pytest.mark.parametrize("seed", [0, config.SEED])
def test_augmentation_layers_draw_independently(seed):
    # With one shared seed every layer draws the same uniform numbers: the flipped copies are
    # exactly those rotated one way and zoomed in (correlations of about 0.86 and 0.997).
    flipped, tilt, area = _augmentation_draws(seed)
    assert 0.3 < flipped.mean() < 0.7
    assert tilt.std() > 1.0 and area.std() > 0.01 * area.mean()  # the probes do see the draws
    for name, a, b in (("flip/rotation", flipped, tilt), ("flip/zoom", flipped, area),
                       ("rotation/zoom", tilt, area)):  # fmt: skip
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.35, name


# --------------------------------------------------------------------------------------------
# Class folders and labels
# --------------------------------------------------------------------------------------------


def _rename_classes(folders, names: dict[str, str]) -> None:
    for split_dir in folders:
        for old, new in names.items():
            (split_dir / old).rename(split_dir / new)


@pytest.mark.parametrize(("cats", "dogs"), [("Cats", "DOGS"), ("cats", "Dogs"), ("CATS", "dogs")])
def test_class_folders_match_case_insensitively_with_fixed_labels(tmp_path, cats, dogs):
    folders = write_tree(tmp_path)
    _rename_classes(folders, {"cats": cats, "dogs": dogs})
    ds = data.make_datasets(tmp_path, batch_size=4, verbose=False)
    assert ds.class_names == ["cats", "dogs"]
    assert ds.info.train.counts() == {"cats": 6, "dogs": 6}
    assert ds.info.train.folders["cats"].name == cats
    for name in ("train", "validation", "test"):
        _assert_pixels_match_labels(*_collect(getattr(ds, name)))  # dark cats 0, bright dogs 1
    assert f"cats = 0 ({cats}/)" in ds.info.summary() or cats == "cats"


def test_other_class_names_stop_with_the_documented_way_out(tmp_path):
    folders = write_tree(tmp_path)
    _rename_classes(folders, {"cats": "macskák", "dogs": "kutyák"})
    message = _data_error(tmp_path)
    assert "macskák/" in message and "kutyák/" in message  # what was found
    assert "hiányzik: cats/, dogs/" in message
    assert "cats/ (címke 0) és dogs/ (címke 1)" in message  # what is expected
    assert "class_names=" in message and "0-s" in message  # the documented way out


def test_class_names_argument_sets_labels_in_its_order(tmp_path):
    folders = write_tree(tmp_path)
    # macOS writes accented names decomposed (NFD); the argument is typed composed (NFC).
    nfd = unicodedata.normalize("NFD", "macskák")
    _rename_classes(folders, {"cats": nfd, "dogs": "Kutyák"})
    ds = data.make_datasets(
        tmp_path, batch_size=4, verbose=False, class_names=("macskák", "kutyák")
    )
    assert ds.class_names == ["macskák", "kutyák"]
    for name in ("train", "validation", "test"):
        _assert_pixels_match_labels(*_collect(getattr(ds, name)))  # macskák (dark) = 0
    info = data.inspect_dataset(tmp_path, verbose=False, class_names=["macskák", "kutyák"])
    assert info.class_names == ["macskák", "kutyák"]


@pytest.mark.parametrize(
    ("value", "error"),
    [("cats", TypeError), (("cats",), ValueError), (("a", "b", "c"), ValueError),
     (("Cats", "cats"), ValueError), (("cats", ""), ValueError), (("cats", 1), ValueError)],
)  # fmt: skip
def test_class_names_argument_is_validated(tiny_dataset, value, error):
    with pytest.raises(error, match=r"class_names .*(legyen|tartalmazzon|különbözzön)"):
        data.inspect_dataset(tiny_dataset, verbose=False, class_names=value)


# --------------------------------------------------------------------------------------------
# The data check notices changes made in the same session
# --------------------------------------------------------------------------------------------


def test_inspect_dataset_notices_files_changed_since_the_last_check(tmp_path):
    train_dir, _ = write_tree(tmp_path)
    first = data.inspect_dataset(tmp_path, verbose=False)
    assert not first.train.broken
    assert data.inspect_dataset(tmp_path, verbose=False) is first  # unchanged: remembered

    damaged = train_dir / "dogs" / "dog.2.jpg"
    damaged.write_bytes(damaged.read_bytes()[:300])  # truncated
    (train_dir / "cats" / "cat.0.jpg").unlink()
    second = data.inspect_dataset(tmp_path, verbose=False)
    assert [path for path, _ in second.train.broken] == [damaged]
    assert second.train.counts() == {"cats": 5, "dogs": 5}
    assert str(damaged) in second.summary()

    random_photo(np.random.default_rng(6), "cats").save(train_dir / "cats" / "cat.new.jpg")
    assert data.inspect_dataset(tmp_path, verbose=False).train.counts() == {"cats": 6, "dogs": 5}


@pytest.mark.parametrize(("damage", "reason"), [("truncate", "csonka"), ("delete", "nincs ilyen")])
def test_pipeline_names_a_photo_damaged_after_the_check(tmp_path, damage, reason):
    write_tree(tmp_path)
    ds = data.make_datasets(tmp_path, batch_size=4, verbose=False)
    damaged = Path(ds.files["validation"].paths[1])
    if damage == "truncate":
        damaged.write_bytes(damaged.read_bytes()[:300])
    else:
        damaged.unlink()
    with pytest.raises(Exception) as excinfo:  # TensorFlow wraps the error of the decoder
        _collect(ds.validation)
    message = str(excinfo.value)
    assert str(damaged) in message
    assert reason in message and "data.make_datasets" in message


# --------------------------------------------------------------------------------------------
# Argument checks at the public boundary
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 0, 2.5, True, "3"])
def test_max_per_class_must_be_a_positive_whole_number_or_none(tiny_dataset, tiny_info, value):
    with pytest.raises((TypeError, ValueError), match="max_per_class"):
        data.split_files(tiny_info, max_per_class=value)
    with pytest.raises((TypeError, ValueError), match="max_per_class"):
        data.make_datasets(tiny_dataset, max_per_class=value, verbose=False)


@pytest.mark.parametrize("value", [0, -4, 2.0, None])
def test_batch_size_is_validated(tiny_info, value):
    split = data.split_files(tiny_info)["test"]
    with pytest.raises((TypeError, ValueError), match="batch_size"):
        data.make_dataset(split, batch_size=value)


def test_make_dataset_refuses_what_is_not_a_file_split(tiny_info):
    with pytest.raises(TypeError, match="FileSplit"):
        data.make_dataset(data.split_files(tiny_info))  # the whole dict instead of one split


def test_data_dir_of_the_wrong_type(tmp_path):
    with pytest.raises(TypeError, match="data_dir"):
        data.inspect_dataset(42, verbose=False)


# --------------------------------------------------------------------------------------------
# The one photo loader
# --------------------------------------------------------------------------------------------


def _asymmetric(width: int = 96, height: int = 64) -> Image.Image:
    """Bright top half, dark bottom half, a red left edge: every rotation and flip shows."""
    pixels = np.full((height, width, 3), 40, np.uint8)
    pixels[: height // 2] = 210
    pixels[:, :8] = (230, 20, 20)
    return Image.fromarray(pixels)


def _exif_rotated_jpeg(path: Path) -> Path:
    """Stored landscape with EXIF orientation 6: shown rotated 90° clockwise (portrait)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    _asymmetric().save(path, format="JPEG", quality=95, exif=exif)
    return path


def _png16(path: Path) -> Path:
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(ramp).save(path)  # mode "I;16": a 16-bit grayscale PNG
    return path


def _photo_files(folder: Path) -> list[Path]:
    rng = np.random.default_rng(8)
    files = [folder / "plain.jpg", folder / "photo.webp", folder / "anim.gif", folder / "x.bmp"]
    for path, fmt in zip(files, ("JPEG", "WEBP", "GIF", "BMP"), strict=True):
        random_photo(rng).save(path, format=fmt)
    _special("CMYK", folder / "cmyk.jpg")
    random_photo(rng).save(folder / "scan.tif", format="TIFF")
    return [*files, folder / "cmyk.jpg", folder / "scan.tif",
            _png16(folder / "gray16.png"), _exif_rotated_jpeg(folder / "rotated.jpg")]  # fmt: skip


def test_pipeline_equals_load_photo_bit_for_bit(tmp_path):
    paths = _photo_files(tmp_path)
    split = data.FileSplit([str(p) for p in paths], np.zeros(len(paths), "int32"))
    for cache in (True, False):
        images, _ = _collect(data.make_dataset(split, batch_size=3, cache=cache))
        for path, image in zip(paths, images, strict=True):
            np.testing.assert_array_equal(image, data.load_photo(path), err_msg=path.name)
    np.testing.assert_array_equal(images, data.load_images(paths))
    small = data.make_dataset(split, batch_size=8, image_size=64)
    np.testing.assert_array_equal(_collect(small)[0][:1], data.load_images(paths[:1], 64))


def test_load_photo_contract(tmp_path):
    photo = data.load_photo(_exif_rotated_jpeg(tmp_path / "p.jpg"))
    assert photo.shape == (224, 224, 3) and photo.dtype == np.float32
    assert photo.min() >= 0 and photo.max() <= 255
    np.testing.assert_array_equal(photo, np.round(photo))  # rounded like the pipeline's uint8


def test_exif_rotation_is_applied(tmp_path):
    photo = data.load_photo(_exif_rotated_jpeg(tmp_path / "rotated.jpg"))
    # Turned 90° clockwise: the bright top half is now on the right, the red edge at the top.
    assert photo[:, 112:].mean() > photo[:, :112].mean() + 100
    assert photo[:20, :, 0].mean() > photo[:20, :, 1].mean() + 100


def test_sixteen_bit_grayscale_png_keeps_its_grays(tmp_path):
    photo = data.load_photo(_png16(tmp_path / "gray16.png"))  # convert("RGB") would be white
    np.testing.assert_array_equal(photo[..., 0], photo[..., 2])
    assert photo[:10].mean() < 30 and photo[-10:].mean() > 225  # dark top rows, bright bottom
    assert 110 < photo.mean() < 145


def test_load_photo_takes_a_path_bytes_or_a_binary_file(tmp_path):
    path = _exif_rotated_jpeg(tmp_path / "p.jpg")
    expected = data.load_photo(path)
    np.testing.assert_array_equal(data.load_photo(str(path)), expected)
    np.testing.assert_array_equal(data.load_photo(path.read_bytes()), expected)
    np.testing.assert_array_equal(data.load_photo(memoryview(path.read_bytes())), expected)
    with open(path, "rb") as file:
        np.testing.assert_array_equal(data.load_photo(file), expected)
    assert data.load_photo(path, image_size=100).shape == (100, 100, 3)


@pytest.mark.parametrize(
    ("source", "hint"),
    [(42, "útvonal"), (np.zeros((224, 224, 3)), "as_model_input"), (["a.jpg"], "útvonal")],
)
def test_load_photo_says_what_to_pass(source, hint):
    with pytest.raises(TypeError, match=hint):
        data.load_photo(source)


def test_load_photo_refuses_a_text_mode_file(tmp_path):
    path = tmp_path / "p.jpg"
    _asymmetric().save(path)
    with open(path, encoding="latin-1") as file, pytest.raises(TypeError, match="'rb'"):
        data.load_photo(file)


def test_photo_errors_name_the_photo_and_say_what_to_do(tmp_path):
    whole = jpeg_bytes(random_photo(np.random.default_rng(9)))
    cases = {
        "truncated.jpg": (whole[: len(whole) // 2], "csonka vagy sérült"),
        "notes.jpg": ("bevásárlólista".encode(), "nem kép"),
        "tiny.jpg": (jpeg_bytes(Image.new("RGB", (31, 200))), f"legalább {data.MIN_SIDE} pixel"),
    }
    for name, (content, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        for source, label in ((path, str(path)), (content, "a feltöltött fájl")):
            with pytest.raises(data.PhotoError, match=reason) as excinfo:
                data.load_photo(source)
            assert label in str(excinfo.value)
            assert excinfo.value.reason in str(excinfo.value)
        assert reason in data.check_image(path)
    with pytest.raises(data.PhotoError, match="nincs ilyen fájl") as excinfo:
        data.load_photo(tmp_path / "missing.jpg")
    assert str(tmp_path / "missing.jpg") in str(excinfo.value)
    assert data.check_image(_bomb_jpeg(tmp_path / "bomb.jpg"))
    assert issubclass(data.PhotoError, data.DataError)


def test_smallest_accepted_photo(tmp_path):
    path = tmp_path / "small.png"
    Image.new("RGB", (data.MIN_SIDE, data.MIN_SIDE), (10, 200, 30)).save(path)
    assert data.check_image(path) is None
    np.testing.assert_array_equal(data.load_photo(path)[0, 0], [10, 200, 30])


@pytest.mark.skipif(data.HEIF_SUPPORTED, reason="pillow-heif is installed: HEIC photos load")
def test_heic_without_the_plugin_says_to_install_it():
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64
    with pytest.raises(data.PhotoError, match="pillow-heif") as excinfo:
        data.load_photo(heic)
    assert "a feltöltött fájl" in str(excinfo.value) and "JPEG" in str(excinfo.value)


def test_load_images_stacks_load_photo(tmp_path):
    paths = [_exif_rotated_jpeg(tmp_path / "a.jpg"), _png16(tmp_path / "b.png")]
    batch = data.load_images([str(p) for p in paths])
    np.testing.assert_array_equal(batch, np.stack([data.load_photo(p) for p in paths]))
    np.testing.assert_array_equal(data.load_images(tuple(paths)), batch)


@pytest.mark.parametrize("single", ["x.jpg", Path("x.jpg"), b"\xff\xd8"])
def test_load_images_with_a_single_path_says_what_to_pass(single):
    with pytest.raises(TypeError, match="load_photo"):
        data.load_images(single)


def test_load_images_refuses_an_empty_list():
    with pytest.raises(ValueError, match="üres"):
        data.load_images([])


# --------------------------------------------------------------------------------------------
# as_model_input: what reaches model.predict
# --------------------------------------------------------------------------------------------


def test_as_model_input_makes_a_float32_batch(tmp_path):
    photo = data.load_photo(_exif_rotated_jpeg(tmp_path / "p.jpg"))
    batch = data.as_model_input(photo)
    assert batch.shape == (1, 224, 224, 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0], photo)
    two = data.as_model_input(np.stack([photo, photo]).astype(np.uint8))
    assert two.shape == (2, 224, 224, 3) and two.dtype == np.float32
    assert data.as_model_input([photo, photo]).shape == (2, 224, 224, 3)
    batch[0, 0, 0, 0] = -1.0
    assert photo[0, 0, 0] != -1.0  # a copy: the caller's photo is untouched


@pytest.mark.parametrize(
    ("transform", "match"),
    [
        (lambda p: p / 255.0, "skálázott"),
        (lambda p: keras.applications.mobilenet_v2.preprocess_input(p.copy()), "skálázott"),
        (lambda p: np.stack([p, p / 255.0]), "1. sorszámú"),
        (lambda p: p[..., 0], r"\(224, 224\)"),
        (lambda p: np.concatenate([p, p[..., :1]], axis=-1), "RGB"),
        (lambda p: p[:100, :100], "100×100"),
        (lambda p: p[None, :0], "224×224|0×"),
        (lambda p: p * 2.0, "255-nél nagyobb"),
        (lambda p: np.where(p > 100, np.nan, p), "NaN"),
    ],
)
def test_as_model_input_refuses_what_the_model_would_misread(transform, match):
    photo = np.round(np.random.default_rng(10).uniform(0, 255, (224, 224, 3))).astype("float32")
    with pytest.raises(data.PhotoError, match=match):
        data.as_model_input(transform(photo))


def test_as_model_input_refuses_a_file_name():
    with pytest.raises(TypeError, match="load_photo"):
        data.as_model_input("my_pet.jpg")


# --------------------------------------------------------------------------------------------
# The README's prediction snippet feeds the model exactly the pipeline's image
# --------------------------------------------------------------------------------------------


def _readme_snippet() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The trained model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section should hold exactly one python block"
    return blocks[0]


class _Recorder:
    """Stands in for the saved classifier: a tiny Keras model that outputs the mean pixel, and a
    record of what ``predict`` received."""

    def __init__(self, path):
        self.path = path
        inputs = keras.Input((224, 224, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(inputs)
        mean = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(pooled) / 3.0
        self.model = keras.Model(inputs, mean)
        self.inputs: list[np.ndarray] = []

    def predict(self, x, **kwargs):
        self.inputs.append(np.array(x))
        return self.model.predict(x, **kwargs)


def test_readme_snippet_feeds_the_model_the_pipeline_image(tmp_path, monkeypatch, capsys):
    code = _readme_snippet()
    photo = _exif_rotated_jpeg(tmp_path / "my_pet.jpg")
    loaded: list[_Recorder] = []

    def load_model(path):
        loaded.append(_Recorder(path))
        return loaded[-1]

    monkeypatch.setattr(keras.models, "load_model", load_model)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_snippet"})

    (model,) = loaded
    assert model.path == "models/cats_vs_dogs.keras"
    (seen,) = model.inputs
    pipeline = data.make_dataset(data.FileSplit([str(photo)], np.zeros(1, "int32")))
    expected, _ = _collect(pipeline)
    assert seen.dtype == np.float32
    np.testing.assert_array_equal(seen, expected)
    printed = capsys.readouterr().out.split()
    assert printed[0] in ("cat", "dog")
    np.testing.assert_allclose(float(printed[1]), expected.mean(), rtol=1e-4)
