"""The seed lecture's training recipe and the series' recipes, side by side, on one machine.

Run it from the repository root (it is a measurement, not a test)::

    nice python benchmarks/benchmark.py               # lesson profile: all photos (~20-30 min)
    python benchmarks/benchmark.py --profile smoke    # 4 photos per class, 1 epoch (the test suite)
    python benchmarks/benchmark.py --output benchmarks/results/benchmark.md   # also write Markdown

The parent process runs every recipe in a fresh child process (``--recipe NAME``), one after the
other, on the same file split of the same photos; each child reports its numbers as JSON, so the
peak memory (``ru_maxrss``) belongs to that recipe alone and no recipe profits from another's warm
caches. The clock of a recipe starts after TensorFlow is imported and the network is built, right
before the first photo is read, and stops after the test split is evaluated. Every recipe computes
its own cached features inside its timed region, in memory: none reads the on-disk feature cache
(``cache_features(on_disk=True)``) that notebooks 05 and 07 share, so no recipe starts with
features another run computed.

Recipes:

``seed``
    The seed lecture reproduced as faithfully as Keras 3 allows: ``MobileNetV2(include_top=False)``
    + ``GlobalAveragePooling2D`` + ``Dense(1, sigmoid)``, ``for layer in model.layers[:113]:
    layer.trainable = False`` (so the BatchNorm layers after the cut stay trainable and normalise
    with batch statistics during ``fit``, exactly as in Keras 2), pixels scaled by ``1/255`` (the
    seed's ``ImageDataGenerator(rescale=1/255)``, although MobileNetV2 expects [-1, 1]),
    ``compile(optimizer="adam")`` (learning rate 1e-3), batch size 8, 20 epochs, no augmentation,
    every photo decoded and pushed through the whole network in every epoch. Only the Keras 2 APIs
    that no longer exist are replaced: ``ImageDataGenerator`` + ``fit_generator`` -> a ``tf.data``
    pipeline (file order shuffled, every photo decoded again in every epoch) + ``fit``. Photos
    are resized by the series' loader (bilinear with antialiasing) instead of
    ``flow_from_directory``'s nearest-neighbour default.
``head``
    Calibration line: a logistic layer on the frozen, pooled ImageNet features (no fine-tuning),
    features computed once, Adam 1e-3, early stopping on the validation loss (best epoch kept).
``nb05``
    Notebook 05's recipe. The frozen front's outputs (the 14x14x96 input of ``block_12``) are
    computed once and advanced to the pooled features. Phase 1 = the head alone on the pooled
    features, Adam 1e-3, ``EarlyStopping(patience=3, restore_best_weights=True)`` on the
    validation loss. Phase 2 = ``freeze_up_to(model, "block_12_project")`` (every BatchNorm
    frozen), fine-tuning on the cached ``block_12`` inputs (exact and deterministic, no
    augmentation), Adam 1e-5, at most 2 epochs, ``EarlyStopping(patience=1,
    restore_best_weights=True)`` on the validation loss. The test split is evaluated on the
    photos by the whole model (the notebook gets the same accuracy from the cached ``block_12``
    inputs of the test photos).
``augmented``
    The alternative notebook 05 measured and rejected: the same head, then
    ``freeze_up_to(model, "block_12_project")``, Adam 1e-4 and **one** pass over the training
    photos with the series' augmentation (``data.augmentation()``; the batches
    ``data.make_datasets(augment=...)`` gives, from the same file split, without the in-memory
    photo cache), validated after it on the photos. Its result depends on the seed and the
    augmentation draws (Adam moves every weight by about the learning rate per step), and an
    epoch costs a whole pass over the photos: the row shows why notebook 05 fine-tunes on the
    cache instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import series  # benchmarks/series.py: the machine, load and commit lines

REPO = Path(__file__).resolve().parent.parent
RECIPES = ("seed", "head", "nb05", "augmented")
TITLES = {
    "seed": "seed recipe (Keras 3 reproduction)",
    "head": "head only (logistic layer on cached pooled features)",
    "nb05": "notebook 05 (head, then block_12 on fine-tuned on the cache at 1e-5)",
    "augmented": "rejected: head, then one augmented pass over the photos at 1e-4",
}
#: Batch size of every recipe but the seed's (notebook 05's BATCH_SIZE).
BATCH_SIZE = 32
#: Notebook 05's phase 2 on the cache: learning rate, maximum epochs, early-stopping patience.
NB05_LEARNING_RATE, NB05_EPOCHS, NB05_PATIENCE = 1e-5, 2, 1
#: The rejected alternative: learning rate of its one augmented pass.
AUGMENTED_LEARNING_RATE = 1e-4
COLUMNS = (
    "recipe",
    "epochs",
    "wall time (s)",
    "images/s",
    "time to seed's best val acc (s)",
    "final val acc",
    "test acc",
    "peak RSS (MiB)",
)


# --------------------------------------------------------------------------------------------
# Child side: one recipe
# --------------------------------------------------------------------------------------------


def _curve_callback(t0: float, curve: list, label: str):
    import keras

    class Curve(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            curve.append(
                {
                    "t": time.perf_counter() - t0,
                    "val_accuracy": float(logs["val_accuracy"]),
                    "label": f"{label} {epoch + 1}",
                }
            )

    return Curve()


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB else


def run_seed(files, args) -> dict:
    """The seed lecture's recipe; see the module docstring."""
    import keras

    from helpers import backbone, data

    base = backbone.load_backbone("imagenet")
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(base.input, out)
    for layer in model.layers[:113]:
        layer.trainable = False
    assert model.layers[113].name == "block_12_project"
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])

    def pipeline(split, shuffle):
        # Like flow_from_directory: shuffle the file order, then read and decode every photo in
        # every epoch, scale by 1/255 (ImageDataGenerator(rescale=1/255)), batches of 8.
        ds = data.make_dataset(files[split], batch_size=8, shuffle=shuffle, cache=False)
        return ds.map(lambda x, y: (x / 255.0, y))

    curve: list = []
    t0 = time.perf_counter()
    history = model.fit(
        pipeline("train", True),
        validation_data=pipeline("validation", False),
        epochs=args.epochs,
        shuffle=False,  # the pipeline shuffles itself (Keras warns that it ignores shuffle=True)
        callbacks=[_curve_callback(t0, curve, "epoch")],
        verbose=args.verbose,
    )
    _, test_accuracy = model.evaluate(pipeline("test", False), verbose=0)
    wall = time.perf_counter() - t0
    return {
        "epochs": str(args.epochs),
        "epoch_count": args.epochs,
        "wall_s": wall,
        "caching_s": 0.0,
        "curve": curve,
        "val_accuracy": float(history.history["val_accuracy"][-1]),
        "test_accuracy": float(test_accuracy),
    }


def _early_stopping(patience: int):
    import keras

    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )


def run_head(files, args) -> dict:
    """A logistic layer on cached pooled ImageNet features (no fine-tuning)."""
    from helpers import backbone, training

    model = backbone.build_classifier(cut="dog_probability")
    curve: list = []
    t0 = time.perf_counter()
    cache = training.cache_features(model, files, at="dog_probability", verbose=False)
    caching = time.perf_counter() - t0
    run = training.train_cached(
        cache,
        epochs=args.head_epochs,
        learning_rate=1e-3,
        callbacks=[_curve_callback(t0, curve, "epoch"), _early_stopping(args.patience)],
    )
    result = {
        "val_accuracy": training.evaluate_cached(cache, "validation").accuracy,
        "test_accuracy": training.evaluate_cached(cache, "test").accuracy,
    }
    epochs = len(run.epoch_seconds)
    return {
        **result,
        "epochs": f"{epochs}",
        "epoch_count": epochs,
        "wall_s": time.perf_counter() - t0,
        "caching_s": caching,
        "curve": curve,
    }


def _head_phase(model, files, args, t0, curve):
    """Phase 1 of notebook 05: cache the block_12 inputs, advance them to the pooled features
    and train the head on them. Returns the block_12 cache, the phase-1 run and the seconds
    spent caching."""
    from helpers import backbone, training

    cache = training.cache_features(
        model, files, at="block_12_expand", splits=("train", "validation"), verbose=False
    )
    backbone.freeze_up_to(model, "dog_probability")  # phase 1: only the head learns
    pooled = cache.advance("dog_probability", verbose=False)
    caching = time.perf_counter() - t0
    phase1 = training.train_cached(
        pooled,
        epochs=args.head_epochs,
        learning_rate=1e-3,
        batch_size=BATCH_SIZE,
        callbacks=[_curve_callback(t0, curve, "head epoch"), _early_stopping(args.patience)],
    )
    backbone.freeze_up_to(model, backbone.CUT_LAYER)  # phase 2: block_12_project on, BN frozen
    return cache, phase1, caching


def _test_on_photos(model, files) -> float:
    from helpers import data, training

    test = data.make_dataset(files["test"], batch_size=BATCH_SIZE)
    return training.evaluate(model, test).accuracy


def run_nb05(files, args) -> dict:
    """Notebook 05's recipe: the head, then fine-tuning on the cached block_12 inputs."""
    from helpers import backbone, training

    model = backbone.build_classifier()  # [-1, 1] inside the model, BN frozen
    curve: list = []
    t0 = time.perf_counter()
    cache, phase1, caching = _head_phase(model, files, args, t0, curve)
    phase2 = training.train_cached(
        cache,
        epochs=args.fine_tune_epochs,
        learning_rate=NB05_LEARNING_RATE,
        batch_size=BATCH_SIZE,
        callbacks=[_curve_callback(t0, curve, "fine-tune epoch"), _early_stopping(NB05_PATIENCE)],
    )
    val_accuracy = training.evaluate_cached(cache, "validation").accuracy  # the restored epoch
    test_accuracy = _test_on_photos(model, files)
    wall = time.perf_counter() - t0
    e1, e2 = len(phase1.epoch_seconds), len(phase2.epoch_seconds)
    return {
        "epochs": f"{e1} + {e2}",
        "epoch_count": e1 + e2,
        "val_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "wall_s": wall,
        "caching_s": caching,
        "curve": curve,
    }


def run_augmented(files, args) -> dict:
    """The rejected alternative: the head, then one augmented pass over the photos at 1e-4."""
    import keras

    from helpers import backbone, data

    model = backbone.build_classifier()
    curve: list = []
    t0 = time.perf_counter()
    cache, phase1, caching = _head_phase(model, files, args, t0, curve)
    del cache  # the augmented pass reads the photos
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=AUGMENTED_LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    # One pass: the batches of data.make_datasets(augment=...), without keeping the decoded
    # photos in memory (cache=False: they are read once).
    augmented = data.make_dataset(
        files["train"],
        batch_size=BATCH_SIZE,
        shuffle=True,
        augment=data.augmentation(),
        cache=False,
    )
    history = model.fit(
        augmented,
        validation_data=data.make_dataset(files["validation"], batch_size=BATCH_SIZE),
        epochs=1,
        shuffle=False,  # the pipeline shuffles itself
        callbacks=[_curve_callback(t0, curve, "augmented pass")],
        verbose=args.verbose,
    )
    test_accuracy = _test_on_photos(model, files)
    wall = time.perf_counter() - t0
    e1 = len(phase1.epoch_seconds)
    return {
        "epochs": f"{e1} + 1",
        "epoch_count": e1 + 1,
        "val_accuracy": float(history.history["val_accuracy"][-1]),
        "test_accuracy": test_accuracy,
        "wall_s": wall,
        "caching_s": caching,
        "curve": curve,
    }


#: The function that runs each recipe in a child process.
RUNNERS = {"seed": run_seed, "head": run_head, "nb05": run_nb05, "augmented": run_augmented}


def run_recipe(name: str, args) -> dict:
    """Run one recipe in this process and return its measurements."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from helpers import config, data

    config.seed_everything()
    # The smoke profile skips decoding all 3000 photos to check them (seconds in every child).
    info = data.inspect_dataset(check_images=args.profile != "smoke", verbose=False)
    files = data.split_files(info, max_per_class=args.max_per_class)
    result = RUNNERS[name](files, args)
    n_train = len(files["train"])
    result.update(
        recipe=name,
        n_train=n_train,
        n_validation=len(files["validation"]),
        n_test=len(files["test"]),
        images_per_s=n_train * result["epoch_count"] / result["wall_s"],
        peak_rss_mib=_peak_rss_mib(),
    )
    return result


# --------------------------------------------------------------------------------------------
# Parent side: run every recipe in a child, then the table
# --------------------------------------------------------------------------------------------


def time_to_reach(curve: list[dict], target: float) -> float | None:
    """Seconds until the validation accuracy first reached ``target`` (None: never)."""
    for point in curve:
        if point["val_accuracy"] >= target - 1e-6:
            return point["t"]
    return None


def make_table(results: list[dict]) -> tuple[list[list[str]], dict]:
    """Rows of the table and the summary numbers (seed's best, speed-ups against the seed)."""
    seed = next(r for r in results if r["recipe"] == "seed")
    seed_curve = [p["val_accuracy"] for p in seed["curve"]]
    seed_best = max(seed_curve)
    reach = {r["recipe"]: time_to_reach(r["curve"], seed_best) for r in results}
    rows = []
    for r in results:
        t = reach[r["recipe"]]
        rows.append(
            [
                TITLES[r["recipe"]],
                r["epochs"],
                f"{r['wall_s']:.0f}",
                f"{r['images_per_s']:.0f}",
                "not reached" if t is None else f"{t:.0f}",
                f"{r['val_accuracy']:.4f}",
                f"{r['test_accuracy']:.4f}",
                f"{r['peak_rss_mib']:.0f}",
            ]
        )
    speedup = {
        name: reach["seed"] / t
        for name, t in reach.items()
        if name != "seed" and t and reach["seed"]
    }
    summary = {
        "seed_best_val_accuracy": seed_best,
        "seed_best_epoch": seed_curve.index(seed_best) + 1,
        "seed_val_accuracy_range": (min(seed_curve), seed_best),
        "time_to_seed_best_s": reach,
        "speedup": speedup,
    }
    return rows, summary


def markdown(rows: list[list[str]]) -> str:
    return series.markdown(rows, COLUMNS)


def describe_run(results: list[dict], summary: dict, profile: str) -> str:
    r0 = results[0]
    low, high = summary["seed_val_accuracy_range"]
    lines = [
        f"Profile {profile}: {r0['n_train']} training, {r0['n_validation']} validation and "
        f"{r0['n_test']} test photos (file-level split, seed 42); whole benchmark "
        f"{summary['seconds']:.0f} s.",
        f"Seed recipe's best validation accuracy: {high:.4f} (epoch {summary['seed_best_epoch']}); "
        f"from epoch to epoch it ranged over {low:.4f}-{high:.4f}.",
    ]
    if summary["speedup"]:
        sooner = ", ".join(f"{name} {x:.1f}x" for name, x in summary["speedup"].items())
        lines.append(f"Reached it sooner than the seed recipe: {sooner}.")
    caching = ", ".join(
        f"{r['recipe']} {r['caching_s']:.0f} s" for r in results if r["caching_s"] > 0
    )
    lines += [
        f"Wall time includes reading the photos and computing cached features ({caching}).",
        "images/s = training photos x epochs / wall time. Peak RSS is per recipe (each runs in its"
        " own process) and includes TensorFlow itself.",
        *summary["machine"],
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile",
        choices=("lesson", "smoke"),
        default=None,
        help="lesson: all photos; smoke: 4 photos per class (default: $TL_PROFILE or lesson)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="seed recipe epochs (20)")
    parser.add_argument(
        "--head-epochs", type=int, default=None, help="max head epochs, every recipe (50)"
    )
    parser.add_argument(
        "--fine-tune-epochs",
        type=int,
        default=None,
        help=f"max fine-tuning epochs of 'nb05' on the cache ({NB05_EPOCHS})",
    )
    parser.add_argument(
        "--patience", type=int, default=3, help="early stopping patience of the head (3)"
    )
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated subset")
    parser.add_argument("--output", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--json", type=Path, help="also write all measurements as JSON here")
    parser.add_argument("--verbose", type=int, default=0, help="Keras verbosity in the children")
    parser.add_argument("--recipe", choices=RECIPES, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile is None:
        args.profile = os.environ.get("TL_PROFILE", "lesson").strip().lower() or "lesson"
    smoke = args.profile == "smoke"
    defaults = {"epochs": (20, 1), "head_epochs": (50, 2), "fine_tune_epochs": (NB05_EPOCHS, 1)}
    for key, (lesson, smoke_value) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, smoke_value if smoke else lesson)
    args.max_per_class = 4 if smoke else None
    return args


def child_command(name: str, args, result: Path) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        f"--profile={args.profile}",
        f"--epochs={args.epochs}",
        f"--head-epochs={args.head_epochs}",
        f"--fine-tune-epochs={args.fine_tune_epochs}",
        f"--patience={args.patience}",
        f"--verbose={args.verbose}",
        f"--recipe={name}",
        f"--result={result}",
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["TL_PROFILE"] = args.profile
    if args.recipe:  # child
        result = run_recipe(args.recipe, args)
        args.result.write_text(json.dumps(result, indent=1))
        return 0
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = set(names) - set(RECIPES)
    if unknown or "seed" not in names:
        sys.exit(f"--recipes must name 'seed' and may add {RECIPES[1:]}; unknown: {unknown}")
    start, date, load_before = time.perf_counter(), dt.datetime.now(), os.getloadavg()
    commit = series.git_state()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"== {TITLES[name]} ...", flush=True)
            path = Path(tmp) / f"{name}.json"
            subprocess.run(child_command(name, args, path), check=True, cwd=REPO)
            results.append(json.loads(path.read_text()))
            print(f"   done in {results[-1]['wall_s']:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    rows, summary = make_table(results)
    summary["seconds"] = seconds
    summary["machine"] = series.machine_lines(load_before, os.getloadavg(), date, commit)
    text = markdown(rows) + "\n\n" + describe_run(results, summary, args.profile)
    print("\n" + text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
