"""The product registry keeps one entry per (product id, checksum), on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timezone

import pytest
import sqlalchemy as sa
from flows_fixtures import database_url, postgres_server_url, postgres_url  # noqa: F401

from pipeline import registry
from pipeline.registry import ProductKey
from pipeline.store import Store

KEY = ProductKey("S2B_MSIL1C_20240501T105619_N0510_R094_T31UET_20240501T112233", "a" * 64)


@pytest.fixture
def engine(database_url):  # noqa: F811
    store = Store.connect(database_url)
    yield store.engine
    store.engine.dispose()


def test_store_connect_creates_registry_tables(engine):
    names = set(sa.inspect(engine).get_table_names())
    assert {"monitored_products", "quarantined_products", "scenes", "detections"} <= names


def test_claim_counts_attempts_and_done_is_recorded(engine):
    assert registry.claim(engine, KEY, path="/inbox/a", fingerprint="f1") == 1
    assert registry.claim(engine, KEY, path="/inbox/a2", fingerprint="f2") == 2
    entry = registry.product_entries(engine)[KEY]
    assert (entry.status, entry.attempts, entry.path, entry.fingerprint) == ("processing", 2, "/inbox/a2", "f2")
    assert entry.first_seen_at.tzinfo == timezone.utc and entry.updated_at >= entry.first_seen_at

    registry.mark_done(engine, KEY, n_detections=7, n_alerts=2)
    entry = registry.product_entries(engine, [KEY, ProductKey("other", "b" * 64)])[KEY]
    assert (entry.status, entry.n_detections, entry.n_alerts, entry.attempts) == ("done", 7, 2, 2)


def test_a_changed_product_is_a_new_entry(engine):
    registry.claim(engine, KEY, path="/inbox/a", fingerprint="f1")
    registry.mark_done(engine, KEY, n_detections=1)
    changed = ProductKey(KEY.product_id, "c" * 64)
    assert registry.claim(engine, changed, path="/inbox/a", fingerprint="f9") == 1
    entries = registry.product_entries(engine)
    assert entries[KEY].status == "done" and entries[changed].status == "processing"


def test_a_run_claiming_again_is_the_same_attempt(engine):
    assert registry.claim(engine, KEY, path="/a", fingerprint="f", claimed_by="run-1") == 1
    assert registry.claim(engine, KEY, path="/a", fingerprint="f", claimed_by="run-1") == 1
    assert registry.claim(engine, KEY, path="/a", fingerprint="f", claimed_by="run-2") == 2
    assert registry.claim(engine, KEY, path="/a", fingerprint="f") == 3
    assert registry.claim(engine, KEY, path="/a", fingerprint="f") == 4  # no run id: always a new attempt
    assert registry.product_entries(engine)[KEY].claimed_by is None


def test_marking_an_unclaimed_product_is_an_error(engine):
    with pytest.raises(LookupError, match="never claimed"):
        registry.mark_done(engine, KEY, n_detections=0)


def test_known_checksums_require_the_same_fingerprint(engine):
    registry.claim(engine, KEY, path="/inbox/a", fingerprint="f1")
    assert registry.known_checksums(engine, {"/inbox/a": "f1", "/inbox/b": "f1"}) == {"/inbox/a": KEY}
    assert registry.known_checksums(engine, {"/inbox/a": "touched"}) == {}


def test_quarantine_lists_reason_and_release_allows_a_retry(engine):
    registry.claim(engine, KEY, path="/inbox/a", fingerprint="f1")
    registry.quarantine(engine, KEY, path="/inbox/a", fingerprint="f1",
                        reason="ProductError: /inbox/a: band(s) B08 missing", error_type="ProductError")
    never_claimed = ProductKey("junk", "d" * 64)
    registry.quarantine(engine, never_claimed, path="/inbox/junk", fingerprint="f3",
                        reason="not a product", error_type="ProductError")

    listed = {entry.product_id: entry for entry in registry.quarantined(engine)}
    assert set(listed) == {KEY.product_id, "junk"}
    assert listed[KEY.product_id].reason.endswith("B08 missing")
    assert listed[KEY.product_id].attempts == 1 and listed["junk"].attempts == 0
    assert listed["junk"].quarantined_at.tzinfo == timezone.utc
    assert registry.product_entries(engine)[KEY].status == "quarantined"

    assert registry.release(engine, KEY.product_id) == 1
    assert registry.release(engine, KEY.product_id) == 0
    assert [entry.product_id for entry in registry.quarantined(engine)] == ["junk"]
    assert KEY not in registry.product_entries(engine)


def test_concurrent_claims_never_lose_an_attempt(engine):
    with ThreadPoolExecutor(max_workers=6) as pool:
        attempts = list(pool.map(lambda i: registry.claim(engine, KEY, path=f"/p{i}", fingerprint="f"), range(12)))
    assert sorted(attempts) == list(range(1, 13))
    assert registry.product_entries(engine)[KEY].attempts == 12
