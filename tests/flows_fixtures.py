"""Fixtures of the monitoring tests: a real PostgreSQL database per test.

The server is the one ``.ci/services.sh`` starts: its URL comes from the environment variable
``VESSELWATCH_TEST_POSTGRES_URL`` or the file ``var/ci-postgres-url``; when neither answers, the
fixture runs ``.ci/services.sh`` itself (installing Debian's ``postgresql`` if it can). Tests are
skipped, with the reason in the skip message, only when no server can be installed or started.

Import the fixtures into a test module with ``from flows_fixtures import postgres_url``.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

PROJECT_DIR = Path(__file__).resolve().parent.parent
URL_FILE = PROJECT_DIR / "var" / "ci-postgres-url"
UNAVAILABLE_FILE = PROJECT_DIR / "var" / "ci-postgres-unavailable"
SERVICES_SCRIPT = PROJECT_DIR / ".ci" / "services.sh"


def _answers(url: str) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def _configured_url() -> str | None:
    url = os.environ.get("VESSELWATCH_TEST_POSTGRES_URL")
    if url:
        return url
    if URL_FILE.exists():
        return URL_FILE.read_text().strip() or None
    return None


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of a database on a running PostgreSQL server (started by ``.ci/services.sh``)."""
    url = _configured_url()
    if url and _answers(url):
        return url
    if os.environ.get("VESSELWATCH_TEST_POSTGRES_URL"):
        pytest.fail(f"VESSELWATCH_TEST_POSTGRES_URL={url} does not answer")
    completed = subprocess.run(
        ["bash", str(SERVICES_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
    )
    url = _configured_url()
    if url and _answers(url):
        return url
    reason = UNAVAILABLE_FILE.read_text().strip() if UNAVAILABLE_FILE.exists() else completed.stderr.strip()
    pytest.skip(f"PostgreSQL server cannot be installed or started here: {reason}")


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = f"vw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL of each supported database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("postgres_url")
