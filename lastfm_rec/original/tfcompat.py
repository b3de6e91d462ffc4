"""TensorFlow's v1 API, imported with the package's environment defaults.

Importing this module sets ``TF_ENABLE_ONEDNN_OPTS=0`` (no CPU-specific oneDNN kernels, so
results do not depend on them) and ``TF_CPP_MIN_LOG_LEVEL=1`` unless they are already set,
then imports ``tensorflow.compat.v1`` as :data:`tf`. The settings only take effect if
TensorFlow was not imported before. :mod:`lastfm_rec.original.cfmodel` and
:mod:`lastfm_rec.original.solvers` take ``tf`` from here.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import tensorflow.compat.v1 as tf

__all__ = ["tf"]
