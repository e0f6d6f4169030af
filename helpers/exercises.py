"""Self-checks for the exercises at the end of every notebook.

Introduced in ``01_data_loading.ipynb`` (and used by the "self-check" cell of every notebook).

A self-check cell calls :func:`check` with the task id (``"NN.K"``: notebook, task number), the
student's answer, and, for some tasks, objects of the notebook that the expected value is
computed from::

    exercises.check("01.1", test_cats, files=ds.files)

It prints one Hungarian line and returns ``True`` (right), ``False`` (wrong) or ``None`` (not filled
in: the answer is ``None`` or ``...``). The expected answer is never printed and is not written in
the notebook: :data:`TASKS` stores either a hash of the answer's canonical form (for answers that
are the same on every run) or a function that computes the expected value from the notebook's
objects, compared within a tolerance (for answers that depend on the run). A hash keeps an answer
out of plain sight, not away from someone who tries every small number; that is enough here.

Under the test suite (``TL_PROFILE=smoke``) a *wrong* answer raises ``AssertionError`` after the
printed line, so a model solution that drifts from its check fails nbval; an answer that is not
filled in never raises, which is what lets the students' copies (placeholders set to ``None``) run
under nbval too.

How to add a task: pick its id ``"NN.K"`` and add a :class:`Task` to :data:`TASKS` with a ``hint``
that helps without giving the answer away. If the answer is the same on every run (a parameter
count, a layer name, a shape), store its hash: ``python -m helpers.exercises hash "(7, 7, 1280)"``
prints a line to paste (add ``--decimals 3`` for a float compared to 3 decimals; strings are
compared without regard to case and extra spaces, tuples and lists alike). If the answer depends on
the run (the best epoch, a count on the random test split, a measured speed-up), give ``expected``,
a function whose keyword arguments are the notebook objects it needs, and a tolerance
(``abs_tol``/``rel_tol``); the self-check cell passes those objects by name:
``exercises.check("05.1", best_epoch, history=history)``. Then add the task's right answer (with a
small example context for a computed task) to ``EXAMPLES`` in ``tests/test_exercises.py``: the
test that walks every registered task fails until it has one, and checks that a perturbed answer
is rejected.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import json
import math
import numbers
import re
import reprlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import numpy as np

from helpers import backbone, config, data, probes, training

#: Task ids: two-digit notebook number, a dot, the task's number in that notebook.
TASK_ID = re.compile(r"^(\d\d)\.([1-9]\d*)$")

_TYPE_NOTE = "a választ számként, szövegként, vagy ezek listájaként / tuple-jeként add meg."


class ExerciseError(ValueError):
    """A self-check cell names an unknown task or passes the wrong notebook objects."""


@dataclass(frozen=True)
class Task:
    """One registered exercise: how its answer is checked.

    Introduced in ``01_data_loading.ipynb``. Exactly one of ``answer_hash`` and ``expected`` is
    given.

    Attributes:
        hint: Hungarian hint printed after a wrong answer; it must not give the answer away.
        answer_hash: :func:`answer_hash` of the right answer (a fixed answer).
        decimals: Numbers are rounded to this many decimals before hashing (``None``: exact;
            ``1`` and ``1.0`` are the same number either way).
        expected: Computes the expected value from the notebook objects passed to :func:`check`
            as keyword arguments (an answer that depends on the run).
        abs_tol: Absolute tolerance for ``expected`` (inclusive).
        rel_tol: Tolerance relative to the expected value (inclusive); the larger one applies.
    """

    hint: str
    answer_hash: str | None = None
    decimals: int | None = None
    expected: Callable[..., Any] | None = None
    abs_tol: float = 0.0
    rel_tol: float = 0.0

    def __post_init__(self) -> None:
        if (self.answer_hash is None) == (self.expected is None):
            raise ValueError("give exactly one of answer_hash and expected")
        if self.answer_hash is not None:
            if not re.fullmatch(r"[0-9a-f]{64}", self.answer_hash):
                raise ValueError(f"answer_hash is not a sha256 hex digest: {self.answer_hash!r}")
            if self.abs_tol or self.rel_tol:
                raise ValueError("a hashed answer has no tolerance; use decimals or expected")
        elif self.decimals is not None:
            raise ValueError("decimals applies to hashed answers; use abs_tol/rel_tol")
        if self.decimals is not None and self.decimals < 0:
            raise ValueError(f"decimals must be >= 0, got {self.decimals}")
        if self.abs_tol < 0 or self.rel_tol < 0:
            raise ValueError("tolerances must be >= 0")

    @property
    def context_names(self) -> tuple[str, ...]:
        """The keyword arguments :func:`check` needs for this task."""
        if self.expected is None:
            return ()
        return tuple(inspect.signature(self.expected).parameters)


def _test_labels_zero(files) -> int:
    return int(np.sum(np.asarray(files["test"].labels) == 0))


def _speedup(epoch_seconds) -> float:
    return epoch_seconds["full"] / epoch_seconds["cut"]


# 01_data_loading.ipynb: answers computed from the notebook's objects.
def _most_stretched(sizes) -> float:
    widths_heights = np.asarray(sizes, dtype=float)
    ratios = widths_heights[:, 0] / widths_heights[:, 1]
    return float(ratios[np.argmax(np.abs(np.log(ratios)))])


def _test_dogs_at_30_percent(info, max_per_class) -> int:
    split = data.split_files(info, test_fraction=0.3, max_per_class=max_per_class)
    return int(np.sum(split["test"].labels == 1))


# --- 05 ---
# 05_training_tensorboard.ipynb: answers computed from the notebook's objects.
def _cached_validation_accuracy(cache) -> float:
    return training.evaluate_cached(cache, "validation").accuracy


def _mistakes_at_threshold_09(result) -> tuple[int, int]:
    strict = training.Evaluation(result.labels, result.probabilities, threshold=0.9)
    return int(strict.confusion[0, 1]), int(strict.confusion[1, 0])


def _head_accuracy(head, features, labels) -> float:
    p_dog = np.asarray(head.predict(features, verbose=0)).reshape(-1)
    return float(np.mean((p_dog > 0.5) == np.asarray(labels)))  # Keras' accuracy: P > 0,5


def _validation_accuracy_on_cache(model, cache) -> float:
    # ``model``'s own tail on the cached inputs: no photo is read (the front is frozen).
    _, tail = backbone.split_at(model, cache.at)
    p_dog = np.asarray(tail.predict(cache.inputs("validation"), verbose=0)).reshape(-1)
    return float(np.mean((p_dog > 0.5) == cache.labels["validation"]))


# --- 06 ---
# 06_what_the_network_sees.ipynb: answers computed from the notebook's objects.
def _plain_ascent_activation(net, layer, channel, size, steps) -> float:
    target = probes.activation_model(net, layer, before_activation=True)
    image = probes.gradient_ascent(
        target, [channel], size=size, steps=steps, octaves=1, jitter=0, blur_every=0, seed=0
    )
    return float(probes.channel_activation(target, image, [channel])[0])


def _hottest_cell(model, photo) -> tuple[int, int]:
    side = int(model.get_layer("out_relu").output.shape[1])
    cams, _ = probes.grad_cam(model, np.asarray(photo)[None], sign="predicted", size=side)
    return tuple(int(v) for v in np.unravel_index(np.argmax(cams[0]), cams.shape[1:]))


def _confidence_after_hot10(model, photos, maps, signs) -> float:
    hidden = probes.occlude(photos, probes.top_fraction_mask(maps, 0.1))
    p_dog = np.asarray(model.predict(hidden, batch_size=8, verbose=0)).reshape(-1)  # less memory
    return float(np.where(np.asarray(signs) > 0, p_dog, 1 - p_dog).mean())


# --- 03 ---
# 03_layer_freezing.ipynb: answers computed from the notebook's objects.
def _best_val_accuracy(run) -> float:
    return float(max(run.history["val_accuracy"]))


def _relative_drift_block_13(bn_before, bn_after) -> float:
    key = "block_13_expand_BN/moving_mean"
    before, after = np.asarray(bn_before[key]), np.asarray(bn_after[key])
    return float(np.abs(after - before).mean() / np.abs(before).mean())


# --- 07 ---
# 07_experiments.ipynb: answers computed from the notebook's objects.
def _cut_cache_mib_float16(model, n_images) -> float:
    crossing = backbone.frontier(model, backbone.CUT_LAYER)
    return n_images * sum(int(np.prod(t.shape[1:])) for t in crossing) * 2 / 2**20


def _brightest_third_cat_hits(evaluation, brightness) -> float:
    brightness = np.asarray(brightness)
    cats = (evaluation.labels == 0) & (brightness >= np.quantile(brightness, 2 / 3))
    return float(np.mean(evaluation.predictions[cats] == 0))


def _brightness_correlation(evaluation, brightness) -> float:
    return float(np.corrcoef(evaluation.probabilities, np.asarray(brightness))[0, 1])


# --- 08 ---
# 08_conclusions.ipynb: answers computed from the notebook's objects.
def _precision_at_09(result) -> float:
    strict = training.Evaluation(result.labels, result.probabilities, threshold=0.9)
    (_, false_dogs), (_, true_dogs) = strict.confusion
    return float(true_dogs / (true_dogs + false_dogs))


def _confident_mistakes(result) -> int:
    p_wrong_class = np.where(result.labels == 1, 1 - result.probabilities, result.probabilities)
    return int(np.sum(p_wrong_class >= 0.9))


#: Every exercise of the series, by task id.
TASKS: dict[str, Task] = {
    # --- Example tasks: not used by any notebook; tests/test_exercises.py exercises them and
    # --- notebook authors can copy them. Notebook tasks go below, under their notebook's number.
    # A fixed integer (the hash of 42).
    "00.1": Task(
        hint="számold újra a fenti táblázatból.",
        answer_hash="73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049",
    ),
    # A fixed pair of floats compared to 2 decimals (the hash of (-1.0, 1.0) with decimals=2).
    "00.2": Task(
        hint="a preprocess_input a [0, 255] tartományt egy szimmetrikus tartományba viszi.",
        answer_hash="bb356ec149dbfcdcb3832a5c7568fd8a1231486de36d2ad2d0e1c580686cb189",
        decimals=2,
    ),
    # A fixed string, case and spacing ignored (the hash of "block_12_project").
    "00.3": Task(
        hint="a réteg nevét a backbone rétegeinek listájában találod.",
        answer_hash="f054dd12667bd5852898b5a58cecf823f1b60e9017abda83e015ad4fc68f490f",
    ),
    # Computed from the notebook's objects, exact: exercises.check("00.4", n, files=ds.files).
    "00.4": Task(
        hint="számold meg kóddal a ds.files['test'].labels nulláit.",
        expected=_test_labels_zero,
    ),
    # Computed, within 10%: exercises.check("00.5", ratio, epoch_seconds=times).
    "00.5": Task(
        hint="oszd el a teljes háló epochidejét a vágott hálóéval.",
        expected=_speedup,
        rel_tol=0.1,
    ),
    # --- 01 ---
    # A dog's label with class_names=("dogs", "cats").
    "01.1": Task(
        hint="a címke az osztály helye a class_names sorrendjében; nézd meg a kiírt összefoglaló "
        "„címkék:” sorát.",
        answer_hash="5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9",
    ),
    # Width / height of the photo in `wh` whose aspect ratio is furthest from 1.
    "01.2": Task(
        hint="oszd el a wh első oszlopát a másodikkal, és annak a fotónak az arányát add meg, "
        "amelynél az arány logaritmusának abszolút értéke a legnagyobb.",
        expected=_most_stretched,
        abs_tol=0.006,
    ),
    # The largest angle of RandomRotation(0.25), in degrees.
    "01.3": Task(
        hint="a RandomRotation faktora a teljes kör (360°) törtrésze.",
        answer_hash="69f59c273b6e669ac32a6dd5e1b2cb63333d8b004f9696447aee2d422ce63763",
    ),
    # Distinct versions of one photo over three epochs when the cache follows augmentation.
    "01.4": Task(
        hint="járd be mindhárom epochban a teljes adatfolyamot, és a képek bájtjait hasonlítsd "
        "össze (tobytes); a gyorsítótár az első bejárás eredményét adja vissza.",
        answer_hash="6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
    ),
    # Dog photos in the test split with test_fraction=0.3.
    "01.5": Task(
        hint="a data.split_files(..., test_fraction=0.3, ...) eredményének teszt részében "
        "számold meg az 1-es címkéket.",
        expected=_test_dogs_at_30_percent,
    ),
    # --- 02 ---
    # The output shape of MobileNetV2(input_shape=(160, 160, 3), include_top=False).
    "02.1": Task(
        hint="a kimenet alakja a small.output.shape utolsó három eleme; a háló öt lépésben felezi "
        "a felbontást, a csatornák száma a végén ugyanannyi, mint a 224-es hálóban.",
        answer_hash="3c4fe82fd173b19f10812c82d65b5544f334bae5b562f3fc87fc2d7c048df048",
    ),
    # (parameters, multiply-adds relative to 224x224) of the 160x160 backbone.
    "02.2": Task(
        hint="a paraméterszámot a small.count_params() adja; a layer_macs értékeit add össze a "
        "small rétegein, és oszd el a 224-es háló total_macs értékével.",
        answer_hash="8d95d4247f2837a19a994a89bcbc57893457fc9fbc611d09036d1ada35a0137c",
        decimals=2,
    ),
    # (parameter share, multiply-add share) from block_14_expand to the end.
    "02.3": Task(
        hint="a backbone.layer_index(base, 'block_14_expand') indextől a végéig add össze a "
        "rétegek paramétereit és layer_macs értékeit, és oszd el a teljes alapháló értékeivel.",
        answer_hash="bf2ee84043ed4060d4288857ab2b9e32d77411736784843c31f383bff5ec0780",
        decimals=2,
    ),
    # Receptive field after block 6 with 5x5 depthwise kernels.
    "02.4": Task(
        hint="a képlet ugyanaz, csak a DepthwiseConv2D rétegeknél k = 5; a jump változatlan.",
        answer_hash="1d28c120568c10e19b9d8abe8b66d0983fa3d2e11ee7751aca50f83c6f4a43aa",
    ),
    # --- 03 ---
    # (layers before block_14_project, trainable share of the parameters) when cut there.
    "03.1": Task(
        hint="a build_classifier(weights=None, cut=...) modellen a backbone.layer_index adja a "
        "vágás előtti rétegek számát, a count_parameters a tanítható és az összes paramétert; az "
        "arányt két tizedesre kerekítsd.",
        answer_hash="bee63f68aea3a082b4d2b4ce354c3358452d2a4c38ebfa24591e8de28835cfa0",
        decimals=2,
    ),
    # Best validation accuracy of the fine-tuning run at 3e-4.
    "03.2": Task(
        hint="a run_3e4.history['val_accuracy'] lista legnagyobb eleme kell (nem az utolsó).",
        expected=_best_val_accuracy,
        abs_tol=0.001,
    ),
    # Mean relative drift of block_13_expand_BN's moving mean in the short epoch of part 5.
    "03.3": Task(
        hint="az 5. rész képlete a block_13_expand_BN/moving_mean súlyra: a különbség abszolút "
        "értékének átlaga osztva a tanítás előtti értékek abszolút értékének átlagával.",
        expected=_relative_drift_block_13,
        rel_tol=0.01,
    ),
    # --- 04 ---
    # Parameters of a Dense(2, softmax) head on the 1280 pooled features.
    "04.1": Task(
        hint="bemenetek × kimenetek + kimenetenként egy eltolás; most két kimenet van.",
        answer_hash="817944c9c68564a039ef90a88a4f87b739f822051db42dd6ef9ba6e80507a261",
    ),
    # Parameters of a Dense(1) head after Flatten instead of global average pooling.
    "04.2": Task(
        hint="a Flatten az 1280 darab 7×7-es jellemzőtérképet egyetlen vektorrá teríti ki; a "
        "Dense(1) ennek minden eleméhez kap egy súlyt, és van egy eltolása.",
        answer_hash="5924dd9308dd981797d11f473e91f175ad0a55cfc543ae9ba678b1ee499fa3c7",
    ),
    # Output shape (height, width, channels) of block_3_project in the flat classifier.
    "04.3": Task(
        hint="a keras.Model(classifier.input, classifier.get_layer('block_3_project').output) "
        "részmodell kimenetének alakja, a köteg mérete nélkül (magasság, szélesség, csatorna).",
        answer_hash="65be7835c42b93421a567003aa6306d8610fc1b31c5f4ea78ddbec10f6cd3c7b",
    ),
    # Output range of the preprocess layer for input already scaled to [-1, 1].
    "04.4": Task(
        hint="futtasd a classifier.get_layer('preprocess') réteget a [-1, 1] tartomány két "
        "végpontján, és a két kimenetet három tizedesre add meg, a kisebbiket elöl.",
        answer_hash="dfdae50498d509ebfbc3b0c586d08084fe17284a0d9516400e4a8faa25c17e7b",
        decimals=3,
    ),
    # --- 05 ---
    # Validation accuracy after one fine-tuning epoch at 1e-3 on the cached block_12 inputs.
    "05.1": Task(
        hint="a train_cached eredményének history szótárában a 'val_accuracy' lista utolsó eleme.",
        expected=_cached_validation_accuracy,
        abs_tol=0.001,
    ),
    # (cats called dogs, dogs called cats) on the test split at threshold 0.9.
    "05.2": Task(
        hint="a 0,9-es küszöbű Evaluation confusion mátrixának két átlón kívüli eleme kell: "
        "előbb a valódi macskák sorában a kutya oszlop, aztán fordítva (sorok: valódi, oszlopok: "
        "jósolt).",
        expected=_mistakes_at_threshold_09,
    ),
    # Validation accuracy of a new head trained for two epochs on the pooled features.
    "05.3": Task(
        hint="a few_head.fit által visszaadott History history szótárában a 'val_accuracy' lista "
        "utolsó eleme.",
        expected=_head_accuracy,
        abs_tol=0.001,
    ),
    # Validation accuracy after one augmented pass over the photos at 1e-4 (from the phase-1 state).
    "05.5": Task(
        hint="a model.fit által visszaadott History (aug_history) history szótárában a "
        "'val_accuracy' lista utolsó eleme.",
        expected=_validation_accuracy_on_cache,
        abs_tol=0.001,
    ),
    # --- 06 ---
    # Mean activation after the plain ascent_step loop (no regularisers) on a deeper layer.
    "06.1": Task(
        hint="ugyanabból a kiinduló képből indulj (np.random.default_rng(0), 8-as szórás), "
        "akkora képen és annyi lépéssel, amennyit a size és a steps mond; a végén "
        "probes.channel_activation(ex1_target, kép, [ex1_channel]).",
        expected=_plain_ascent_activation,
        rel_tol=0.01,
    ),
    # (row, column) of the hottest cell of the predicted class's 7x7 Grad-CAM map.
    "06.2": Task(
        hint="a jósolt osztály térképét kérjük (sign a P(kutya) alapján), a 7×7-es térkép "
        "argmax-ét, np.unravel_index-szel (sor, oszlop) alakban, 0-tól számolva.",
        expected=_hottest_cell,
    ),
    # The earliest offered cut with less than half of the parameters trainable, and its count.
    "06.3": Task(
        hint="járd végig a table sorait a háló elejétől, és az első olyat keresd, ahol a "
        "trainable_params kisebb, mint a total_params fele; a nevét és a számot add meg.",
        answer_hash="12d4a41c202ab02a09a4c00459b76c8eb5d080bec15bac6d792f23ea8fcd51ea",
    ),
    # Mean P(predicted class) after covering the hottest 10% of each Grad-CAM map.
    "06.4": Task(
        hint="probes.top_fraction_mask(occ_maps, 0.1), majd probes.occlude, és a confidence "
        "függvény eredményének átlaga.",
        expected=_confidence_after_hot10,
        abs_tol=0.001,
    ),
    # --- 07 ---
    # MiB of the training set's cache before block_12_project (both tensors), in float16.
    "07.1": Task(
        hint="add össze a crossing('block_12_project') mindkét alakjának elemszámát, szorozd a "
        "tanítóképek számával és 2 bájttal (float16), majd oszd el 2**20-nal.",
        expected=_cut_cache_mib_float16,
        abs_tol=0.5,
    ),
    # Hit rate of the biased scratch model on the cats of the test split's brightest third.
    "07.2": Task(
        hint="a határ np.quantile(brightness['test'], 2 / 3); azokat a macskákat nézd, amelyek "
        "világossága legalább ekkora, és azt, hányadrészüket jósolta a modell macskának (0).",
        expected=_brightest_third_cat_hits,
        abs_tol=0.001,
    ),
    # Correlation of P(dog) with brightness for the head trained on the extreme biased subset.
    "07.3": Task(
        hint="a 3. feladat modelljének P(kutya) értékei és a tesztképek világossága közti "
        "korreláció (np.corrcoef), a teszthalmaz minden képén.",
        expected=_brightness_correlation,
        abs_tol=0.001,
    ),
    # --- 08 ---
    # Precision for "dog" at the stricter threshold 0.9.
    "08.1": Task(
        hint="training.Evaluation(..., threshold=0.9), majd a tévesztési mátrix kutya oszlopából: "
        "a valódi kutyák száma osztva az összes kutyának mondott képével.",
        expected=_precision_at_09,
        abs_tol=0.001,
    ),
    # Test photos on which the model gives the wrong class a probability of at least 0.9.
    "08.2": Task(
        hint="a rossz osztály valószínűsége egy kutyánál 1 − P(kutya), egy macskánál P(kutya); "
        "azokat a képeket számold, ahol ez legalább 0,9.",
        expected=_confident_mistakes,
    ),
}


def canonical(value: Any, decimals: int | None = None) -> str:
    """Return the canonical text of an answer, the form that :func:`answer_hash` hashes.

    Introduced in ``01_data_loading.ipynb``. Numbers: ``1`` and ``1.0`` are the same, and with
    ``decimals`` floats are rounded (half to even) to that many decimals; booleans are not numbers.
    Strings: Unicode NFC, case-folded, runs of whitespace become one space, no outer spaces.
    Tuples, lists and arrays (NumPy, TensorFlow) are the same sequence; dict keys and set
    elements are sorted.

    Args:
        value: The answer.
        decimals: Rounding of floats, or ``None`` for exact numbers.

    Raises:
        TypeError: The answer is of another type (e.g. a model or a function).
    """
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, np.generic):
        return canonical(value.item(), decimals)
    if isinstance(value, numbers.Real):
        return _number_text(value, decimals)
    if isinstance(value, str):
        text = " ".join(unicodedata.normalize("NFC", value).casefold().split())
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = sorted(
            f"{canonical(k, decimals)}:{canonical(v, decimals)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(canonical(v, decimals) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonical(v, decimals) for v in value) + "]"
    if hasattr(value, "__array__"):  # NumPy arrays, tensors
        return canonical(np.asarray(value).tolist(), decimals)
    raise TypeError(f"cannot put an answer of type {type(value).__name__} in canonical form")


def _number_text(value: numbers.Real, decimals: int | None) -> str:
    if isinstance(value, numbers.Integral):
        exact = Decimal(int(value))
    else:
        as_float = float(value)
        if not math.isfinite(as_float):
            return repr(as_float)
        exact = Decimal(as_float)  # the float's exact binary value
    if decimals is None:
        if exact == exact.to_integral_value():
            return str(int(exact))
        return repr(float(value))
    with localcontext() as context:
        context.prec = 400 + decimals  # enough digits for any float
        rounded = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    return f"{abs(rounded) if rounded == 0 else rounded:f}"  # no "-0.00"


def answer_hash(value: Any, decimals: int | None = None) -> str:
    """Return the sha256 hex digest of ``canonical(value, decimals)``: what a :class:`Task` stores.

    Introduced in ``01_data_loading.ipynb`` (for notebook authors; see the module docstring).

    Args:
        value: The right answer.
        decimals: Round floats to this many decimals first (``None``: exact).
    """
    if decimals is not None and (not isinstance(decimals, int) or decimals < 0):
        raise ValueError(f"decimals must be a non-negative int or None, got {decimals!r}")
    return hashlib.sha256(canonical(value, decimals).encode("utf-8")).hexdigest()


def _lookup(task: str) -> Task:
    if not isinstance(task, str):
        raise TypeError(
            f"A feladat azonosítója szöveg legyen, például '01.1' (most: {type(task).__name__})."
        )
    if task not in TASKS:
        raise ExerciseError(
            f"Ismeretlen feladat: {task!r}, nincs ilyen a helpers/exercises.py TASKS "
            "táblázatában. Nézd meg a check(...) hívás első argumentumát ('NN.K': a notebook és "
            f"a feladat száma, például '01.1'); ismert feladatok: {', '.join(sorted(TASKS))}."
        )
    return TASKS[task]


def _check_context(task: str, entry: Task, context: Mapping[str, Any]) -> None:
    needed = set(entry.context_names)
    missing, extra = sorted(needed - set(context)), sorted(set(context) - needed)
    if missing or extra:
        wanted = ", ".join(f"{name}=..." for name in entry.context_names) or "semmi más"
        raise ExerciseError(
            f"A(z) {task} feladat ellenőrzése a válaszon kívül ezt kéri: {wanted} "
            f"(hiányzik: {', '.join(missing) or '-'}; fölösleges: {', '.join(extra) or '-'}). "
            "Futtasd az eredeti ellenőrző cellát változtatás nélkül."
        )


def _numbers(value: Any) -> np.ndarray | None:
    """The value as a float array if it is a number or a (nested) sequence of numbers."""
    if isinstance(value, (str, bytes, Mapping, set, frozenset)) or value is None:
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged nesting
        return None
    return array.astype(float) if array.dtype.kind in "iuf" else None


def _matches(entry: Task, answer: Any, context: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether ``answer`` is right, and a note on its form when it cannot be compared."""
    if entry.answer_hash is not None:
        try:
            return answer_hash(answer, entry.decimals) == entry.answer_hash, None
        except TypeError:
            return False, _TYPE_NOTE
    expected = entry.expected(**context)
    wanted = _numbers(expected)
    if wanted is None:  # strings, mixed sequences: canonical forms
        try:
            return canonical(answer) == canonical(expected), None
        except TypeError:
            return False, _TYPE_NOTE
    given = _numbers(answer)
    if given is None:
        return False, "a válasz egy szám (vagy számok listája / tuple-je) legyen."
    if given.shape != wanted.shape:
        if wanted.ndim == 0:
            return False, "egyetlen számot várok, nem listát."
        if wanted.ndim == 1:
            return False, f"{len(wanted)} elemű listát vagy tuple-t várok."
        return False, f"{wanted.shape} alakú tömböt várok."
    allowed = np.maximum(entry.abs_tol, entry.rel_tol * np.abs(wanted))
    return bool(np.all(np.abs(given - wanted) <= allowed)), None


def check(task: str, answer: Any, **context: Any) -> bool | None:
    """Check an exercise's answer and print one Hungarian line about it.

    Introduced in ``01_data_loading.ipynb``; the self-check cell of every notebook calls it.
    The expected answer is never printed.

    Args:
        task: The task id, ``"NN.K"`` (e.g. ``"05.1"``).
        answer: The student's answer; ``None`` or ``...`` means "not filled in yet".
        **context: The notebook objects the task's expected value is computed from (see
            :data:`TASKS`), e.g. ``files=ds.files``.

    Returns:
        ``True`` if right, ``False`` if wrong, ``None`` if not filled in.

    Raises:
        ExerciseError: Unknown task id, or the wrong notebook objects passed.
        AssertionError: A wrong answer under the test suite's ``smoke`` profile (an unfilled one
            never raises).
    """
    entry = _lookup(task)
    _check_context(task, entry, context)
    label = f"{int(TASK_ID.match(task).group(2))}. feladat"
    if answer is None or answer is Ellipsis:
        print(f"{label}: még nincs kitöltve.")
        return None
    right, note = _matches(entry, answer, context)
    if right:
        print(f"{label}: helyes!")
        return True
    print(f"{label}: nem egészen – {note or entry.hint}")
    if config.is_smoke():
        raise AssertionError(
            f"A(z) {task} feladat válasza ({reprlib.repr(answer)}) nem megy át az ellenőrzésen. "
            f"A tesztkészlet ({config.PROFILE_ENV}=smoke) alatt ez hiba: a mintamegoldás és az "
            "ellenőrzés eltér."
        )
    return False


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word is a string


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.exercises hash VALUE [--decimals N]``: print a Task's hash line.

    Introduced in ``01_data_loading.ipynb`` (for notebook authors).
    """
    parser = argparse.ArgumentParser(
        prog="python -m helpers.exercises",
        description="Feladat-ellenőrzések: a rögzített válaszok hash-e a TASKS táblázathoz.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    hasher = commands.add_parser("hash", help="egy válasz kanonikus alakja és hash-e")
    hasher.add_argument("value", help="Python-literál (42, '(7, 7, 1280)', 'szöveg') vagy szó")
    hasher.add_argument("--decimals", type=int, default=None, help="kerekítés tizedesjegyekre")
    args = parser.parse_args(argv)
    value = _parse_value(args.value)
    print(f"# kanonikus alak: {canonical(value, args.decimals)}")
    decimals = "" if args.decimals is None else f", decimals={args.decimals}"
    print(f'answer_hash="{answer_hash(value, args.decimals)}"{decimals},')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
