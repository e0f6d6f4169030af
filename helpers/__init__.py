"""Helpers for the MobileNetV2 transfer-learning notebook series (cats vs dogs).

One module per stage of the data flow: :mod:`helpers.config` (paths, seeding, profiles),
:mod:`helpers.data`, :mod:`helpers.backbone`, :mod:`helpers.training` and :mod:`helpers.viz`.
Notebooks import them explicitly, e.g. ``from helpers import config, data``.
"""

import warnings

# Keras 3.15 warns on every ``fit(tf.data.Dataset)`` that fit's default ``shuffle=True`` is ignored.
# The series' training pipelines shuffle themselves (``data.make_dataset(shuffle=True)``), so on a
# projected notebook this warning is only noise.
warnings.filterwarnings(
    "ignore", message="`shuffle=True` was passed, but will be ignored", category=UserWarning
)
