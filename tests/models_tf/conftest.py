"""TensorFlow-extra tests: run in the environment with `trackside[tensorflow]` installed."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.models.conftest import owner, pool, store  # noqa: F401
