"""``vesselwatch monitor`` (one pass, or served on a schedule) and ``vesselwatch quarantine``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from flows_fixtures import (  # noqa: F401
    assert_same_rows,
    PROJECT_DIR,
    clean_run_rows,
    postgres_server_url,
    postgres_url,
    store_rows,
    synthetic_inbox,
)
from typer.testing import CliRunner

from flows.deployments import deployment_options
from flows.monitor import monitor_inbox
from pipeline import registry
from pipeline.store import Store
from vesselwatch.cli import app
from vesselwatch.commands.monitor import parse_interval
from vesselwatch.errors import InputError

runner = CliRunner()


@pytest.mark.slow
def test_monitor_once_on_postgresql_prints_the_pass_and_a_progress_bar(
    prefect_server, synthetic_inbox, clean_run_rows, postgres_url  # noqa: F811
):
    result = runner.invoke(app, ["monitor", str(synthetic_inbox), "--once", "--db", postgres_url,
                                 "--concurrency", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["processed"], summary["skipped"], summary["quarantined"]) == (3, 0, 0)
    assert summary["detections"] == len(clean_run_rows["detections"])
    assert {p["status"] for p in summary["products"]} == {"done"}
    assert "3/3" in result.stderr  # the progress bar's last state
    assert_same_rows(store_rows(postgres_url), clean_run_rows)

    again = json.loads(runner.invoke(app, ["monitor", str(synthetic_inbox), "--once", "--db", postgres_url,
                                           "--no-progress"]).stdout)
    assert (again["processed"], again["skipped"]) == (0, 3)


@pytest.mark.slow
def test_quarantine_lists_and_releases(prefect_server, tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "empty-folder").mkdir(parents=True)
    (inbox / "empty-folder" / "notes.txt").write_text("no bands here")
    db = str(tmp_path / "store.sqlite")
    monitor_inbox(str(inbox), database_url=db)

    listed = runner.invoke(app, ["quarantine", "--db", db, "--json"])
    assert listed.exit_code == 0
    (entry,) = json.loads(listed.stdout)
    assert entry["product_id"] == "empty-folder" and "no band GeoTIFF" in entry["reason"]
    assert "no band GeoTIFF" in runner.invoke(app, ["quarantine", "--db", db]).stdout

    assert runner.invoke(app, ["quarantine", "--db", db, "--release", "empty-folder"]).exit_code == 0
    assert runner.invoke(app, ["quarantine", "--db", db]).stdout.strip() == "no quarantined products"
    assert runner.invoke(app, ["quarantine", "--db", db, "--release", "empty-folder"]).exit_code == 1
    monitor_inbox(str(inbox), database_url=db)  # released: tried (and quarantined) again
    assert [q.product_id for q in registry.quarantined(Store.connect(db).engine)] == ["empty-folder"]


def test_monitor_needs_exactly_one_schedule(tmp_path):
    for arguments in ([], ["--once", "--every", "10m"], ["--every", "10m", "--cron", "* * * * *"]):
        result = runner.invoke(app, ["monitor", str(tmp_path), *arguments])
        assert result.exit_code == 2 and "exactly one of --every, --cron or --once" in result.stderr
    result = runner.invoke(app, ["monitor", str(tmp_path / "missing"), "--once"])
    assert result.exit_code == 2 and "no such folder" in result.stderr
    result = runner.invoke(app, ["monitor", str(tmp_path), "--every", "ten minutes"])
    assert result.exit_code == 2 and "interval 'ten minutes'" in result.stderr


def test_intervals_parse_with_units():
    assert parse_interval("10m") == timedelta(minutes=10)
    assert parse_interval("1h 30m") == timedelta(minutes=90)
    assert parse_interval("1.5s") == timedelta(seconds=1.5)
    assert parse_interval("2d") == timedelta(days=2)
    for bad in ("", "0", "-5", "10x", "m10", "10m10"):
        with pytest.raises(InputError):
            parse_interval(bad)


def test_deployment_carries_the_schedule_and_the_pass_parameters(tmp_path):
    every = monitor_inbox.to_deployment(**deployment_options(tmp_path, every=timedelta(minutes=10),
                                                             database_url="sqlite:///x.sqlite", concurrency=4))
    (schedule,) = every.schedules
    assert schedule.schedule.interval == timedelta(minutes=10)
    assert every.parameters["inbox"] == str(tmp_path.resolve()) and every.parameters["concurrency"] == 4
    assert every.entrypoint.endswith("monitor.py:monitor_inbox")

    cron = monitor_inbox.to_deployment(**deployment_options(tmp_path, cron="*/15 * * * *", name="nightly"))
    assert cron.name == "nightly" and cron.schedules[0].schedule.cron == "*/15 * * * *"
    with pytest.raises(InputError, match="exactly one"):
        deployment_options(tmp_path)
    with pytest.raises(InputError, match="positive"):
        deployment_options(tmp_path, every=timedelta(0))


@pytest.mark.slow
def test_served_deployment_runs_passes_on_its_schedule(prefect_server, tmp_path):
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Scheduled

    inbox = tmp_path / "inbox"
    (inbox / "junk").mkdir(parents=True)
    (inbox / "junk" / "x.txt").write_text("not a product")
    db = tmp_path / "store.sqlite"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "vesselwatch.cli", "monitor", str(inbox), "--every", "2s", "--db", str(db),
             "--name", "served-test"],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 180

            def wait(what: str) -> None:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{what}; serve log:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.5)

            with get_client(sync_client=True) as client:
                deployment = None
                while deployment is None:
                    wait("the deployment was never registered")
                    try:
                        deployment = client.read_deployment_by_name("monitor-inbox/served-test")
                    except ObjectNotFound:
                        pass
                assert deployment.parameters["inbox"] == str(inbox.resolve())
                assert deployment.schedules[0].schedule.interval == timedelta(seconds=2)
                # The test server runs no scheduler service: schedule the next run as it would.
                client.create_flow_run_from_deployment(deployment.id, state=Scheduled())

            quarantined = []
            while not quarantined:
                wait("the served deployment never ran its scheduled pass")
                if db.exists():
                    quarantined = registry.quarantined(Store.connect(str(db)).engine)
            assert [q.product_id for q in quarantined] == ["junk"]
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
