"""Fixtures of the monitoring tests: a real PostgreSQL database per test.

The server is the one ``.ci/services.sh`` starts: its URL comes from the environment variable
``VESSELWATCH_TEST_POSTGRES_URL`` or the file ``var/ci-postgres-url``; when neither answers, the
fixture runs ``.ci/services.sh`` itself (installing Debian's ``postgresql`` if it can). Tests are
skipped, with the reason in the skip message, only when no server can be installed or started.

Import the fixtures into a test module with ``from flows_fixtures import postgres_url``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import datetime, timezone
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


def run_at_once(*calls) -> list[BaseException]:
    """Run each zero-argument callable in its own thread, all released together; their exceptions."""
    import threading

    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call):
        barrier.wait()
        try:
            call()
        except Exception as error:  # noqa: BLE001 - returned to the test, which asserts on them
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


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


# -- synthetic inboxes and store snapshots ---------------------------------------------------

#: Edge of the synthetic test products, pixels on the 10 m grid (small: the tests stay fast).
PRODUCT_SIZE_PX = 512

#: (seed, layout) of the standard inbox: one product per on-disk layout.
INBOX_PRODUCTS = ((11, "safe"), (12, "cog"), (13, "geotiff"))


def write_inbox_product(inbox: Path, seed: int, layout: str, *, size_px: int = PRODUCT_SIZE_PX,
                        acquired: datetime | None = None) -> Path:
    """Write one synthetic L1C product into ``inbox`` as a delivery would leave it; returns its path."""
    from pipeline.synthetic import write_product

    staging = inbox.parent / f".staging-{seed}-{layout}"
    info = write_product(staging, seed=seed, size_px=size_px, layout=layout, level="L1C", n_vessels=5,
                         cloud_fraction=0.0, acquired=acquired)
    inbox.mkdir(parents=True, exist_ok=True)
    if layout == "safe":
        target = inbox / info.product_path.name
        shutil.move(str(info.product_path), target)
        shutil.rmtree(staging)
    else:  # the COG folder (STAC item + bands) or the GeoTIFF folder is the product
        target = inbox / f"{layout}-{seed}"
        shutil.move(str(staging), target)
    return target


@pytest.fixture(scope="session")
def synthetic_inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inbox of three small synthetic products (SAFE, COG + STAC item, GeoTIFF); do not modify it."""
    # Each test module importing this fixture gets its own copy of it: share the files instead.
    inbox = tmp_path_factory.getbasetemp() / "synthetic" / "inbox"
    if not (inbox.parent / "complete").exists():
        shutil.rmtree(inbox.parent, ignore_errors=True)
        for seed, layout in INBOX_PRODUCTS:
            write_inbox_product(inbox, seed, layout)
        _warm_heading_model_cache()
        (inbox.parent / "complete").touch()
    return inbox


def _warm_heading_model_cache() -> None:
    """Load the heading model once before passes run scenes concurrently.

    The first load exports an ONNX copy of the weights to a cache (``models.export``); two threads
    or processes doing that at once can collide, and the loser falls back to eager PyTorch, whose
    headings differ from ONNX Runtime's in the 5th decimal — enough to make two runs' rows differ.
    (Reported to the models owner; this keeps the comparisons here about the flows.)
    """
    from pipeline.heading import load_heading_model
    from vesselwatch.settings import Settings

    load_heading_model(Settings().resolved_heading_weights_path())


def store_rows(database_url: str) -> dict[str, list[dict]]:
    """Every row of the store's tables (registry excluded), sorted, without ``*_at`` timestamps.

    Two stores that hold the same scenes, detections (and whatever else the store keeps per scene)
    give equal snapshots, whatever the order or the time they were written in.
    """
    from pipeline import registry
    from pipeline.store import metadata

    skip = {registry.monitored_products.name, registry.quarantined_products.name}
    engine = sa.create_engine(database_url)
    snapshot = {}
    try:
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                if table.name in skip:
                    continue
                columns = [c for c in table.columns if not c.name.endswith("_at")]
                rows = connection.execute(sa.select(*columns)).mappings().all()
                normalised = [{k: _naive_utc(v) for k, v in row.items()} for row in rows]
                snapshot[table.name] = sorted(normalised, key=lambda r: repr(sorted(r.items())))
    finally:
        engine.dispose()
    return snapshot


def _naive_utc(value):
    """Datetimes as naive UTC, so SQLite (naive) and PostgreSQL (aware) snapshots compare equal."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


@pytest.fixture(scope="session")
def clean_run_rows(prefect_server, synthetic_inbox: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Store snapshot (see :func:`store_rows`) of one default pass over :func:`synthetic_inbox`."""
    from flows.monitor import DONE, monitor_inbox

    folder = tmp_path_factory.getbasetemp() / "clean-run"  # shared by the modules' copies of the fixture
    url = f"sqlite:///{folder / 'clean.sqlite'}"
    if not (folder / "complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        report = monitor_inbox(str(synthetic_inbox), database_url=url)
        assert [outcome.status for outcome in report.outcomes] == [DONE] * len(INBOX_PRODUCTS)
        (folder / "complete").touch()
    rows = store_rows(url)
    assert len(rows["scenes"]) == len(INBOX_PRODUCTS) and len(rows["detections"]) > len(INBOX_PRODUCTS)
    return rows


def assert_same_rows(actual: dict[str, list[dict]], expected: dict[str, list[dict]]) -> None:
    """Assert two :func:`store_rows` snapshots are equal, naming the first differing fields."""
    assert sorted(actual) == sorted(expected), "different tables"
    for table in expected:
        assert len(actual[table]) == len(expected[table]), f"{table}: {len(actual[table])} rows, " \
                                                           f"expected {len(expected[table])}"
        for got, want in zip(actual[table], expected[table]):
            differing = {key: (got.get(key), want[key]) for key in want if got.get(key) != want[key]}
            assert not differing, f"{table} row differs (got, expected): {differing}"
