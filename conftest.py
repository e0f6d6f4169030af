"""Test-suite settings shared by the unit tests and the notebooks that nbval executes.

The suite runs the *smoke* profile unless TL_PROFILE is set explicitly (``TL_PROFILE=lesson pytest
notebooks/05_training_tensorboard.ipynb`` runs one notebook with the lesson's full settings).
With ``--nbval-current-env`` the notebook kernels inherit these variables.
"""

import os

os.environ.setdefault("TL_PROFILE", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
