"""Shared fixtures. Prefect runs against a temporary home and one test server per session."""

from __future__ import annotations

import os
import tempfile

# Prefect reads these at import time: set them before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="vesselwatch-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect test server for the whole session (starting one costs 10–20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
