"""Feature caching (helpers.training, notebook 07).

The tests use the tiny generated photo folder and the ImageNet weights from the Keras cache. The
benchmark commands are tested in ``test_benchmarks.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import backbone, config, data, training


@pytest.fixture(scope="module")
def files(tiny_dataset):
    return data.make_datasets(tiny_dataset, batch_size=4, verbose=False).files


@pytest.fixture(scope="module")
def model(imagenet_weights):
    config.seed_everything()
    return backbone.build_classifier()


@pytest.fixture(scope="module")
def cache(model, files):
    return training.cache_features(model, files, at="block_12_expand", verbose=False)


# --------------------------------------------------------------------------------------------
# Exactness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["block_12_project", "block_12_expand"])
def test_cache_error_is_float32_noise(model, files, at):
    images = data.load_images(files["train"].paths[:6])
    assert training.cache_error(model, images, at=at) < 1e-5


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_cache_error_runs_compiled_graphs_not_eager_calls():
    """16 photos at 224 px (random weights suffice): eager model(x) calls of the whole classifier
    raised the peak memory by about 1.4 GB, the compiled predict path by about 0.3 GB."""
    code = textwrap.dedent(
        """
        import numpy as np
        from helpers import backbone, training

        def peak_mib():
            with open("/proc/self/status") as status:
                line = next(x for x in status if x.startswith("VmHWM"))
            return int(line.split()[1]) / 1024

        model = backbone.build_classifier(weights=None)
        before = peak_mib()
        training.cache_error(model, np.zeros((16, 224, 224, 3), "float32"), at="block_12_expand")
        print(peak_mib() - before)
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    growth = float(result.stdout.strip().splitlines()[-1])
    assert growth < 700, f"cache_error raised the peak memory by {growth:.0f} MiB"


def test_cached_predictions_equal_full_model_predictions(model, files, cache):
    for split in ("train", "validation", "test"):
        full = training.evaluate(model, data.make_dataset(files[split], batch_size=4))
        cached = training.evaluate_cached(cache, split)
        np.testing.assert_array_equal(cached.labels, full.labels)
        np.testing.assert_allclose(cached.probabilities, full.probabilities, atol=1e-5)


def test_float16_storage_halves_memory_and_stays_close(model, files, cache):
    half = training.cache_features(
        model, files, at="block_12_expand", dtype="float16", verbose=False
    )
    assert half.features["train"][0].dtype == np.float16
    assert half.nbytes * 2 == cache.nbytes
    p16 = training.evaluate_cached(half, "validation").probabilities
    p32 = training.evaluate_cached(cache, "validation").probabilities
    np.testing.assert_allclose(p16, p32, atol=1e-3)
    images = data.load_images(files["train"].paths[:4])
    assert training.cache_error(model, images, at="block_12_expand", dtype="float16") < 1e-3


# --------------------------------------------------------------------------------------------
# Shapes and labels
# --------------------------------------------------------------------------------------------


def test_feature_shapes_and_labels(files, cache):
    for split, file_split in files.items():
        n = len(file_split)
        assert cache.shapes()[split] == [(n, 14, 14, 96)]
        np.testing.assert_array_equal(cache.labels[split], file_split.labels)
    assert cache.nbytes == sum(len(f) for f in files.values()) * 14 * 14 * 96 * 4
    assert cache.seconds > 0


def test_cache_at_the_cut_has_two_inputs(model, files):
    two = training.cache_features(
        model, files, at=backbone.CUT_LAYER, splits=("validation",), verbose=False
    )
    n = len(files["validation"])
    assert two.shapes() == {"validation": [(n, 14, 14, 576), (n, 14, 14, 96)]}
    assert len(two.tail.inputs) == 2


def test_advance_gives_the_same_features_as_a_direct_cache(model, files, cache):
    advanced = cache.advance(backbone.CUT_LAYER)
    direct = training.cache_features(model, files, at=backbone.CUT_LAYER, verbose=False)
    for split in files:
        for a, b in zip(advanced.features[split], direct.features[split], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_advance_to_the_head_gives_pooled_features(files, imagenet_weights):
    model = backbone.build_classifier(cut="dog_probability")
    cache = training.cache_features(model, files, at="block_12_expand", verbose=False)
    pooled = cache.advance("dog_probability")
    assert pooled.shapes()["train"] == [(len(files["train"]), 1280)]
    assert [layer.name for layer in pooled.tail.layers][-1] == "dog_probability"
    full = training.evaluate(model, data.make_dataset(files["test"], batch_size=4))
    np.testing.assert_allclose(
        training.evaluate_cached(pooled, "test").probabilities, full.probabilities, atol=1e-5
    )


def test_subset_selects_rows_of_one_split(cache):
    small = cache.subset([0, 2, 3])
    assert small.shapes()["train"] == [(3, 14, 14, 96)]
    np.testing.assert_array_equal(small.features["train"][0][1], cache.features["train"][0][2])
    np.testing.assert_array_equal(small.labels["train"], cache.labels["train"][[0, 2, 3]])
    assert small.features["validation"] is cache.features["validation"]
    assert small.tail is cache.tail


def test_transform_is_applied_before_the_front(model, files):
    black = training.cache_features(
        model,
        files,
        at="block_12_expand",
        splits=("test",),
        transform=lambda x: x * 0.0,
        verbose=False,
    )
    front, _ = backbone.split_at(model, "block_12_expand")
    expected = np.asarray(front(np.zeros((1, 224, 224, 3), dtype="float32")))
    for row in black.features["test"][0]:
        np.testing.assert_allclose(row, expected[0], atol=1e-4)  # batch-size float noise


# --------------------------------------------------------------------------------------------
# Refusals: augmentation and layers that still learn
# --------------------------------------------------------------------------------------------


def test_augmentation_of_the_training_pipeline_is_not_used(tiny_dataset, model):
    augmented = data.make_datasets(
        tiny_dataset, batch_size=4, augment=data.augmentation(), verbose=False
    )
    first = training.cache_features(model, augmented, at="block_12_expand", verbose=False)
    again = training.cache_features(model, augmented, at="block_12_expand", verbose=False)
    np.testing.assert_array_equal(first.features["train"][0], again.features["train"][0])
    front, _ = backbone.split_at(model, "block_12_expand")
    # The pipelines store decoded photos as uint8, hence the rounding.
    photos = np.round(data.load_images(augmented.files["train"].paths))
    plain = np.asarray(front(photos))
    np.testing.assert_allclose(first.features["train"][0], plain, atol=1e-4)


def test_refuses_to_cache_before_layers_that_learn(files, imagenet_weights):
    model = backbone.build_classifier(cut=None)  # everything trainable
    assert "Conv1" in training.trainable_before(model, backbone.CUT_LAYER)
    with pytest.raises(ValueError, match="Conv1"):
        training.cache_features(model, files, verbose=False)


def test_refuses_to_advance_past_trainable_layers(cache):
    assert training.trainable_before(cache.model, "dog_probability")[0] == "block_12_project"
    with pytest.raises(ValueError, match="block_12_project"):
        cache.advance("dog_probability")


def test_the_series_model_is_cacheable_at_the_cut(imagenet_weights):
    model = backbone.build_classifier()
    assert training.trainable_before(model, backbone.CUT_LAYER) == []


def test_cache_is_exact_in_training_mode_too(model, files):
    # fit() runs the model with training=True: the frozen BatchNorm layers must still use their
    # stored statistics on both sides of the cut, or the cache would not match training.
    backbone.freeze_up_to(model)
    images = data.load_images(files["train"].paths[:4])
    direct = np.asarray(model(images, training=True))
    for at in (backbone.CUT_LAYER, "block_12_expand"):
        front, tail = backbone.split_at(model, at)
        cached = np.asarray(tail(front(images, training=True), training=True))
        np.testing.assert_allclose(cached, direct, atol=1e-5)
    np.testing.assert_allclose(direct, np.asarray(model(images, training=False)), atol=1e-5)


def _tiny_model(*between, seed: int = 0, cut: str = "mid") -> keras.Model:
    """image -> scale -> [between] -> stem (conv) -> mid (conv) -> pool -> head, frozen before
    ``cut``: a flat model like the series' classifier, small enough for fast tests."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((224, 224, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    for layer in between:
        x = layer(x)
    x = keras.layers.Conv2D(4, 5, strides=8, activation="relu", name="stem")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="mid")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    backbone.freeze_up_to(model, cut)
    return model


@pytest.mark.parametrize(
    "random_layer",
    [
        lambda: keras.layers.Dropout(0.2, name="noisy"),
        lambda: keras.layers.GaussianNoise(0.5, name="noisy"),
        lambda: keras.layers.RandomFlip("horizontal", name="noisy"),
        lambda: keras.Sequential([keras.layers.RandomRotation(0.1)], name="noisy"),
    ],
    ids=["Dropout", "GaussianNoise", "RandomFlip", "augmentation_model"],
)
def test_refuses_to_cache_after_a_random_layer(files, random_layer):
    model = _tiny_model(random_layer())
    assert training.trainable_before(model, "mid") == []  # frozen, yet not cacheable
    assert training.random_before(model, "mid") == ["noisy"]
    assert training.random_before(model, "scale") == []
    with pytest.raises(ValueError, match="noisy") as excinfo:
        training.cache_features(model, files, at="mid", verbose=False)
    assert "véletlen" in str(excinfo.value)


def test_the_series_model_has_no_random_layer_before_the_cut(imagenet_weights):
    model = backbone.build_classifier()
    assert training.random_before(model, "dog_probability") == []


def test_cache_features_names_the_mistake_in_its_arguments(tiny_dataset, files):
    model = _tiny_model()
    datasets = data.make_datasets(tiny_dataset, batch_size=4, verbose=False)
    with pytest.raises(TypeError, match="ds.files"):
        training.cache_features(model, datasets.train, at="mid")
    with pytest.raises(TypeError, match="Keras-modell"):
        training.cache_features("model", files, at="mid")
    with pytest.raises(TypeError, match=r"splits=\('train',\)"):
        training.cache_features(model, files, at="mid", splits="train")
    with pytest.raises(ValueError, match="tanito"):
        training.cache_features(model, files, at="mid", splits=("tanito",))
    with pytest.raises(ValueError, match="batch_size"):
        training.cache_features(model, files, at="mid", batch_size=0)
    with pytest.raises(ValueError, match="dtype"):
        training.cache_features(model, files, at="mid", dtype="int8")
    with pytest.raises(ValueError, match="nincs 'mid2'|Nincs 'mid2'"):
        training.cache_features(model, files, at="mid2")
    with pytest.raises(ValueError, match=r"kép\[None\]"):
        training.cache_error(model, np.zeros((224, 224, 3), dtype="float32"), at="mid")


# --------------------------------------------------------------------------------------------
# The feature cache on disk (tiny model, generated photos, a temporary CACHE_ROOT)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def disk(monkeypatch, tmp_path) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setattr(config, "CACHE_ROOT", root)
    return root / training.FEATURE_CACHE_DIR


@pytest.fixture
def forward_passes(monkeypatch) -> list[int]:
    """Photos pushed through a front, one entry per split computed."""
    calls: list[int] = []
    original = training._compute_split

    def counting(front, split, **kwargs):
        calls.append(len(split))
        return original(front, split, **kwargs)

    monkeypatch.setattr(training, "_compute_split", counting)
    return calls


@pytest.fixture
def own_files(tmp_path, make_tree):
    """A photo folder of this test's own (the test may change its files)."""
    make_tree(tmp_path / "photos", n_train=3, n_val=2)
    return data.make_datasets(tmp_path / "photos", batch_size=4, verbose=False).files


def _on_disk(model, files, **kwargs) -> training.FeatureCache:
    return training.cache_features(model, files, at=kwargs.pop("at", "mid"), on_disk=True, **kwargs)


def _same_features(a: training.FeatureCache, b: training.FeatureCache) -> None:
    assert a.features.keys() == b.features.keys()
    for split in a.features:
        np.testing.assert_array_equal(a.labels[split], b.labels[split])
        for x, y in zip(a.features[split], b.features[split], strict=True):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def test_second_call_loads_from_disk_without_a_forward_pass(files, disk, forward_passes, capsys):
    first = _on_disk(_tiny_model(), files)
    assert first.origins == dict.fromkeys(files, "stored")
    assert forward_passes == [len(f) for f in files.values()]
    assert sorted(disk.glob("*.npz")) == sorted(first.entries.values())
    assert "elmentve" in capsys.readouterr().out
    # A model built again, as another notebook would: same architecture and weights.
    second = _on_disk(_tiny_model(), files)
    assert second.origins == dict.fromkeys(files, "loaded")
    assert len(forward_passes) == len(files)  # no new forward pass
    assert "lemezről betöltve" in capsys.readouterr().out
    _same_features(first, second)
    direct = training.cache_features(_tiny_model(), files, at="mid", verbose=False)
    _same_features(first, direct)
    assert direct.origins == dict.fromkeys(files, "computed") and not direct.entries
    run = training.train_cached(second, epochs=1, batch_size=4)
    assert len(run.epoch_seconds) == 1


def test_a_front_weight_change_invalidates_but_a_tail_weight_does_not(files, disk, forward_passes):
    model = _tiny_model()
    first = _on_disk(model, files, splits=("validation",))
    head = model.get_layer("head").kernel
    head.assign(head.numpy() + 1.0)  # after the cut: the stored features still hold
    assert _on_disk(model, files, splits=("validation",)).origins == {"validation": "loaded"}
    stem = model.get_layer("stem").kernel
    stem.assign(stem.numpy() * (1 + 1e-6))  # before the cut: the smallest change counts
    changed = _on_disk(model, files, splits=("validation",))
    assert changed.origins == {"validation": "stored"}
    assert changed.entries["validation"] != first.entries["validation"]
    assert len(forward_passes) == 2


def test_changing_one_photo_invalidates_only_its_split(own_files, disk, forward_passes):
    model = _tiny_model()
    _on_disk(model, own_files)
    victim = own_files["train"].paths[0]
    rng = np.random.default_rng(99)
    from PIL import Image

    Image.fromarray(rng.integers(0, 100, (40, 50, 3), dtype=np.uint8)).save(victim, quality=90)
    again = _on_disk(model, own_files)
    assert again.origins == {"train": "stored", "validation": "loaded", "test": "loaded"}
    assert forward_passes[-1] == len(own_files["train"])


@pytest.mark.parametrize(
    ("change", "expected_shape"),
    [({"at": "pool"}, (13, 13, 4)), ({"dtype": "float16"}, (28, 28, 4))],
    ids=["cut", "dtype"],
)
def test_another_cut_or_dtype_gets_its_own_entry(
    files, disk, forward_passes, change, expected_shape
):
    model = _tiny_model(cut="pool")  # frozen up to pool, so both cuts are cacheable
    first = _on_disk(model, files, splits=("test",))
    other = _on_disk(model, files, splits=("test",), **change)
    assert other.origins == {"test": "stored"}
    assert other.entries["test"] != first.entries["test"]
    assert other.shapes()["test"] == [(len(files["test"]), *expected_shape)]
    assert len(list(disk.glob("*.npz"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip_a_byte", "empty"])
def test_a_damaged_entry_is_detected_and_recomputed(files, disk, forward_passes, capsys, damage):
    model = _tiny_model()
    first = _on_disk(model, files, splits=("train", "test"))
    entry = first.entries["train"]
    content = bytearray(entry.read_bytes())
    if damage == "truncate":
        content = content[: len(content) // 2]
    elif damage == "flip_a_byte":
        content[len(content) // 2] ^= 0xFF  # inside the stored feature values
    else:
        content = bytearray()
    entry.write_bytes(bytes(content))
    capsys.readouterr()
    again = _on_disk(model, files, splits=("train", "test"))
    assert again.origins == {"train": "stored", "test": "loaded"}
    assert "sérült" in capsys.readouterr().out
    _same_features(first, again)
    assert _on_disk(model, files, splits=("train",)).origins == {"train": "loaded"}  # repaired
    assert not [p for p in disk.iterdir() if p.suffix != ".npz"]  # no temporary file left


def test_a_transform_is_stored_only_under_a_key(files, disk, forward_passes, capsys):
    model = _tiny_model()

    def darker(x):
        return x * 0.5

    first = _on_disk(model, files, splits=("test",), transform=darker)
    assert first.origins == {"test": "computed"} and not list(disk.glob("*.npz"))
    assert "transform_key" in capsys.readouterr().out
    keyed = _on_disk(model, files, splits=("test",), transform=darker, transform_key="darker-v1")
    plain = _on_disk(model, files, splits=("test",))
    assert keyed.origins == plain.origins == {"test": "stored"}
    assert keyed.entries["test"] != plain.entries["test"]
    _same_features(first, keyed)
    again = _on_disk(model, files, splits=("test",), transform=darker, transform_key="darker-v1")
    assert again.origins == {"test": "loaded"}
    with pytest.raises(ValueError, match="transform_key"):
        _on_disk(model, files, transform_key="darker-v1")


def test_two_separately_built_classifiers_share_the_disk_cache(files, disk, imagenet_weights):
    # Notebooks 05 and 07 each build the classifier: the key must not depend on the build.
    first = _on_disk(backbone.build_classifier(), files, at="block_12_expand", splits=("test",))
    second = _on_disk(backbone.build_classifier(), files, at="block_12_expand", splits=("test",))
    assert (first.origins, second.origins) == ({"test": "stored"}, {"test": "loaded"})
    _same_features(first, second)


@pytest.fixture
def advance_passes(monkeypatch) -> list[int]:
    """Examples pushed through the layers between two cuts, one entry per split computed."""
    calls: list[int] = []
    original = training._advance_split

    def counting(mid, arrays, kept, **kwargs):
        calls.append(len(arrays[0]))
        return original(mid, arrays, kept, **kwargs)

    monkeypatch.setattr(training, "_advance_split", counting)
    return calls


def _pooled_on_disk(model, files, **kwargs) -> training.FeatureCache:
    return _on_disk(model, files, **kwargs).advance("head", on_disk=True, verbose=True)


def test_advance_on_disk_loads_without_a_forward_pass(
    files, disk, forward_passes, advance_passes, capsys
):
    first = _pooled_on_disk(_tiny_model(cut="head"), files)
    assert first.origins == dict.fromkeys(files, "stored")
    assert advance_passes == [len(f) for f in files.values()]
    assert first.shapes()["train"] == [(len(files["train"]), 4)]
    assert "elmentve" in capsys.readouterr().out
    # The same model built again, as notebook 07 would after notebook 05
    second = _pooled_on_disk(_tiny_model(cut="head"), files)
    assert second.origins == dict.fromkeys(files, "loaded")
    assert len(advance_passes) == len(files) and len(forward_passes) == len(files)
    assert "lemezről betöltve" in capsys.readouterr().out
    _same_features(first, second)
    assert second.entries == first.entries
    assert len(list(disk.glob("*.npz"))) == 2 * len(files)  # parents + advanced entries
    in_memory = _on_disk(_tiny_model(cut="head"), files).advance("head")
    _same_features(first, in_memory)
    assert in_memory.origins == dict.fromkeys(files, "computed") and not in_memory.entries


def test_advance_on_disk_is_invalidated_by_a_weight_between_the_cuts(
    files, disk, forward_passes, advance_passes
):
    model = _tiny_model(cut="head")
    first = _pooled_on_disk(model, files, splits=("test",))
    head = model.get_layer("head").kernel
    head.assign(head.numpy() + 1.0)  # after `at`: the stored pooled features still hold
    assert _pooled_on_disk(model, files, splits=("test",)).origins == {"test": "loaded"}
    mid = model.get_layer("mid").kernel
    mid.assign(mid.numpy() * (1 + 1e-6))  # between the two cuts, before `at`: it counts
    changed = _pooled_on_disk(model, files, splits=("test",))
    assert changed.origins == {"test": "stored"}
    assert changed.entries["test"] != first.entries["test"]
    assert len(forward_passes) == 1  # the parent entry (before "mid") still loads
    assert len(advance_passes) == 2


def test_advance_on_disk_keeps_memory_only_splits_in_memory(files, disk, capsys):
    model = _tiny_model(cut="head")
    parent = training.cache_features(model, files, at="mid", verbose=False)
    pooled = parent.subset([0, 1]).advance("head", on_disk=True)
    assert set(pooled.origins.values()) == {"computed"} and not pooled.entries
    assert not list(disk.glob("*.npz")) and "memóriába" in capsys.readouterr().out


def test_advance_refuses_an_earlier_layer(files):
    cache = training.cache_features(_tiny_model(cut="head"), files, at="mid", verbose=False)
    with pytest.raises(ValueError, match="előtt van"):
        cache.advance("stem")


def test_two_builds_of_the_classifier_share_the_advanced_entry(files, disk, imagenet_weights):
    # Notebook 05 stores the pooled features, notebook 07 builds the classifier again.
    def pooled():
        model = backbone.build_classifier(cut="dog_probability")
        parent = _on_disk(model, files, at="block_12_expand", splits=("test",))
        return parent.advance("dog_probability", on_disk=True)

    first, second = pooled(), pooled()
    assert (first.origins, second.origins) == ({"test": "stored"}, {"test": "loaded"})
    _same_features(first, second)


# --------------------------------------------------------------------------------------------
# Training on the cache trains the model itself
# --------------------------------------------------------------------------------------------


def test_training_the_tail_trains_the_models_own_layers(files, imagenet_weights):
    config.seed_everything()
    model = backbone.build_classifier()
    cache = training.cache_features(model, files, at="block_12_expand", verbose=False)
    before = backbone.snapshot(model)
    run = training.train_cached(cache, epochs=2, learning_rate=1e-3, batch_size=4)
    after = backbone.snapshot(model)
    assert len(run.epoch_seconds) == 2 and run.seconds > 0
    assert set(run.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    moved = backbone.changed(before, after)
    cut = backbone.layer_index(model, backbone.CUT_LAYER)
    learning = {w.path for layer in model.layers[cut:] for w in layer.trainable_weights}
    assert set(moved) == learning  # every trainable weight moved, nothing else did
    assert any("block_16_project" in path for path in moved)
    # The cache is still exact for the trained model (the frozen front did not change).
    full = training.evaluate(model, data.make_dataset(files["validation"], batch_size=4))
    np.testing.assert_allclose(
        training.evaluate_cached(cache, "validation").probabilities, full.probabilities, atol=1e-5
    )


def test_train_cached_without_validation(cache):
    run = training.train_cached(cache, epochs=1, validation=None, batch_size=8)
    assert "val_loss" not in run.history and len(run.history["loss"]) == 1
