"""The monitoring flow processes each product once, quarantines bad ones, retries transient errors."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from flows_fixtures import store_rows, synthetic_inbox, write_inbox_product  # noqa: F401

from flows import monitor as monitor_module
from flows.monitor import DONE, FAILED, QUARANTINED, SKIPPED, Candidate, is_transient, monitor_inbox, plan_pass
from pipeline import registry
from pipeline.store import Store
from vesselwatch.errors import ProductError

pytestmark = pytest.mark.slow


def _statuses(report) -> dict[str, str]:
    return {Path(outcome.path).name: outcome.status for outcome in report.outcomes}


def _sqlite(tmp_path: Path, name: str = "store.sqlite") -> str:
    return f"sqlite:///{tmp_path / name}"


def _latest_pass_markdown() -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["monitor-pass"])),
            sort=ArtifactSort.CREATED_DESC, limit=1,
        )
    return artifacts[0].data


def test_two_passes_process_each_product_once(prefect_server, synthetic_inbox, tmp_path):  # noqa: F811
    url = _sqlite(tmp_path)
    first = monitor_inbox(str(synthetic_inbox), database_url=url, concurrency=2)
    assert sorted(_statuses(first).values()) == [DONE, DONE, DONE]
    store = Store.connect(url)
    assert len(store.scene_ids()) == 3
    assert first.n_detections == store.count_detections() > 0
    processed_at = {scene_id: store.scene(scene_id).processed_at for scene_id in store.scene_ids()}

    markdown = _latest_pass_markdown()
    for outcome in first.outcomes:
        assert f"`{outcome.product_id}` | done | {outcome.n_detections} |" in markdown
    assert "heading (s)" in markdown and "store (s)" in markdown

    second = monitor_inbox(str(synthetic_inbox), database_url=url, concurrency=2)
    assert sorted(_statuses(second).values()) == [SKIPPED] * 3
    assert {s: store.scene(s).processed_at for s in store.scene_ids()} == processed_at
    entries = registry.product_entries(store.engine)
    assert sorted((e.status, e.attempts) for e in entries.values()) == [(DONE, 1)] * 3
    assert sum(e.n_detections for e in entries.values()) == store.count_detections()


def test_bad_products_are_quarantined_and_the_pass_goes_on(prefect_server, synthetic_inbox, tmp_path):  # noqa: F811
    inbox = tmp_path / "inbox"
    good = sorted(p.name for p in synthetic_inbox.iterdir())[0]
    for name in (good, "geotiff-13"):
        shutil.copytree(synthetic_inbox / name, inbox / name)
    corrupt = inbox / "geotiff-13"
    band = next(corrupt.glob("*_B08.tif"))
    band.write_bytes(b"this is not a GeoTIFF" * 100)
    (inbox / "not-a-product").mkdir()
    (inbox / "not-a-product" / "readme.txt").write_text("nothing to see")
    url = _sqlite(tmp_path)

    report = monitor_inbox(str(inbox), database_url=url, concurrency=2)
    statuses = _statuses(report)
    assert statuses == {good: DONE, "geotiff-13": QUARANTINED, "not-a-product": QUARANTINED}
    engine = Store.connect(url).engine
    reasons = {Path(q.path).name: q for q in registry.quarantined(engine)}
    assert set(reasons) == {"geotiff-13", "not-a-product"}
    assert "B08" in reasons["geotiff-13"].reason and reasons["geotiff-13"].error_type == "ProductError"
    assert "no band GeoTIFF" in reasons["not-a-product"].reason
    assert reasons["geotiff-13"].attempts == 1  # not retried: a corrupt file is no transient error

    again = monitor_inbox(str(inbox), database_url=url, concurrency=2)
    assert sorted(_statuses(again).values()) == [SKIPPED] * 3

    # Repairing the product changes its checksum: the next pass processes it.
    shutil.rmtree(corrupt)
    shutil.copytree(synthetic_inbox / "geotiff-13", corrupt)
    repaired = monitor_inbox(str(inbox), database_url=url, concurrency=2)
    assert _statuses(repaired) == {good: SKIPPED, "geotiff-13": DONE, "not-a-product": SKIPPED}
    assert len(Store.connect(url).scene_ids()) == 2


def test_a_changed_product_replaces_its_rows(prefect_server, tmp_path):
    inbox = tmp_path / "inbox"
    acquired = datetime(2024, 6, 12, 10, 56, 19, tzinfo=timezone.utc)
    write_inbox_product(inbox, 21, "geotiff", acquired=acquired)
    url = _sqlite(tmp_path)
    first = monitor_inbox(str(inbox), database_url=url)
    before = store_rows(url)

    # A new delivery of the same product (same id: same spacecraft and time), other content.
    shutil.rmtree(inbox / "geotiff-21")
    write_inbox_product(tmp_path / "next", 23, "geotiff", acquired=acquired).rename(inbox / "geotiff-21")
    second = monitor_inbox(str(inbox), database_url=url)
    (product_id,) = {first.outcomes[0].product_id, second.outcomes[0].product_id}
    assert second.outcomes[0].status == DONE
    assert second.outcomes[0].checksum != first.outcomes[0].checksum
    after = store_rows(url)
    assert [s["scene_id"] for s in after["scenes"]] == [product_id]
    assert after["detections"] != before["detections"]
    assert len(after["detections"]) == second.n_detections == after["scenes"][0]["n_detections"]


def _fake_products(inbox: Path, names: list[str]) -> None:
    for name in names:
        folder = inbox / name
        folder.mkdir(parents=True)
        for band in ("B02", "B03", "B04", "B08", "B11"):
            (folder / f"{name}_{band}.tif").write_bytes(name.encode())


def test_transient_errors_are_retried_then_left_for_later(prefect_server, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    _fake_products(inbox, ["flaky", "down"])
    calls: dict[str, int] = {}

    def fake_process_scene(product_path, database_url):
        name = Path(product_path).name
        calls[name] = calls.get(name, 0) + 1
        if name == "down" or calls[name] == 1:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return monitor_module.ProcessSummary(name, product_path, 0, 0, {"store": 0.01})

    monkeypatch.setattr(monitor_module, "process_scene", fake_process_scene)
    monkeypatch.setattr(monitor_module, "process_product",
                        monitor_module.process_product.with_options(retry_delay_seconds=0))
    url = _sqlite(tmp_path)

    first = monitor_inbox(str(inbox), database_url=url, max_attempts=2)
    assert _statuses(first) == {"flaky": DONE, "down": FAILED}
    assert calls == {"flaky": 2, "down": 3}  # one try plus the task's two retries
    entries = {k.product_id: e for k, e in registry.product_entries(Store.connect(url).engine).items()}
    assert (entries["flaky"].attempts, entries["down"].attempts) == (1, 1)  # retries count as one attempt
    assert "database is locked" in entries["down"].last_error

    second = monitor_inbox(str(inbox), database_url=url, max_attempts=2)
    assert _statuses(second) == {"flaky": SKIPPED, "down": QUARANTINED}
    assert calls == {"flaky": 2, "down": 6}
    (jailed,) = registry.quarantined(Store.connect(url).engine)
    assert (jailed.product_id, jailed.attempts, jailed.error_type) == ("down", 2, "OperationalError")
    assert jailed.reason.startswith("gave up after 2 attempts: OperationalError")

    third = monitor_inbox(str(inbox), database_url=url, max_attempts=2)
    assert _statuses(third) == {"flaky": SKIPPED, "down": SKIPPED} and calls["down"] == 6


def test_errors_are_sorted_into_transient_and_permanent():
    assert is_transient(sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert is_transient(TimeoutError()) and is_transient(MemoryError()) and is_transient(OSError(5, "EIO"))
    assert not is_transient(ProductError("/x.SAFE", "band B08 missing"))
    assert not is_transient(FileNotFoundError(2, "gone")) and not is_transient(ValueError("bad"))


def test_plan_skips_done_and_quarantines_exhausted_products():
    def candidate(name: str, problem: str | None = None) -> Candidate:
        return Candidate(f"/inbox/{name}", name, name[0] * 64, "f", problem, "ProductError" if problem else None)

    def entry(c: Candidate, status: str, attempts: int) -> registry.ProductEntry:
        return registry.ProductEntry(c.product_id, c.checksum, c.path, "f", status, attempts, None, None, None,
                                     None, None)

    new, done, jailed, crashed, exhausted = (candidate(n) for n in ("new", "done", "jail", "crash", "xhaust"))
    broken = candidate("broken", problem="unknown layout")
    copy_of_new = Candidate("/inbox/new-copy", "new", new.checksum, "g")
    entries = {e.key: e for e in (entry(done, DONE, 1), entry(jailed, QUARANTINED, 1),
                                  entry(crashed, registry.PROCESSING, 1), entry(exhausted, registry.PROCESSING, 3))}
    plan = plan_pass([new, done, jailed, crashed, exhausted, broken, copy_of_new], entries, max_attempts=3)
    assert [c.product_id for c in plan.to_process] == ["new", "crash"]
    assert [c.path for c in plan.skipped] == ["/inbox/done", "/inbox/jail", "/inbox/new-copy"]
    assert [(c.product_id, reason[:16]) for c, reason, _ in plan.to_quarantine] == [
        ("xhaust", "gave up after 3 "), ("broken", "unknown layout")]
