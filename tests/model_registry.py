"""The registered model names as test parameters: a model that needs an install extra
(``lastfm_rec.models.EXTRAS``, e.g. Spark) is skipped where the extra is not installed."""

from __future__ import annotations

import importlib.util

import pytest

from lastfm_rec import models

#: Extra -> the module that shows it is installed.
EXTRA_MODULES = {"spark": "pyspark"}


def registered() -> list:
    """``pytest.param`` per registered name, with a skip mark when its extra is missing."""
    extras = getattr(models, "EXTRAS", {})
    cases = []
    for name in models.available():
        module = EXTRA_MODULES.get(extras.get(name, ""), extras.get(name))
        missing = module is not None and importlib.util.find_spec(module) is None
        cases.append(pytest.param(name, id=name, marks=pytest.mark.skipif(
            missing, reason=f"{name} needs the {extras.get(name)} extra")))
    return cases
