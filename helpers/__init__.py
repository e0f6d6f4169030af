"""Helpers for the MobileNetV2 transfer-learning notebook series (cats vs dogs).

One module per job, e.g. :mod:`helpers.config` (paths, seeding, profiles), :mod:`helpers.data`,
:mod:`helpers.backbone`, :mod:`helpers.training` and :mod:`helpers.viz`. Notebooks import them
explicitly, e.g. ``from helpers import config, data``.
"""
