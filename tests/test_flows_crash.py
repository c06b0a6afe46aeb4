"""A monitor killed with SIGKILL mid-scene loses nothing: the next pass ends with a clean run's rows.

The pass runs in a subprocess (``python -c``) against this session's Prefect server. A SQLAlchemy
event hook freezes it at a chosen point, the test kills it with SIGKILL there, and a later pass
runs over the same store:

1. inside the transaction that writes the second scene, just before COMMIT: the store must hold
   the first scene only, with no partial rows of the second;
2. right after a scene was committed but before the registry marked its product done: the
   product is processed again by the next pass, replacing its rows rather than duplicating them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flows_fixtures import assert_same_rows, clean_run_rows, store_rows, synthetic_inbox  # noqa: F401

from flows.monitor import DONE, SKIPPED, monitor_inbox
from pipeline import registry
from pipeline.store import Store

pytestmark = pytest.mark.slow

#: Run by the subprocess: freeze at the N-th scene commit, or at the N-th "mark done", then pass.
_FROZEN_PASS = r"""
import os, sys, time
from pathlib import Path
import sqlalchemy as sa

marker = Path(os.environ["VW_TEST_MARKER"])
point, nth = os.environ["VW_TEST_FREEZE_AT"].split(":")
seen = {"n": 0}

def freeze():
    marker.write_text(point)
    time.sleep(600)  # the test kills us here

if point == "commit":
    @sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
    def _flag(connection, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO SCENES"):
            connection.info["writes_scene"] = True

    @sa.event.listens_for(sa.engine.Engine, "commit")
    def _before_commit(connection):
        if connection.info.pop("writes_scene", False):
            seen["n"] += 1
            if seen["n"] == int(nth):
                freeze()
else:
    from pipeline import registry
    mark_done = registry.mark_done

    def _frozen_mark_done(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] == int(nth):
            freeze()
        return mark_done(*args, **kwargs)

    registry.mark_done = _frozen_mark_done

from flows.monitor import monitor_inbox
monitor_inbox(sys.argv[1], database_url=sys.argv[2], concurrency=1)
print("pass finished without being killed", file=sys.stderr)
"""


def _kill_pass_at(freeze_at: str, inbox: Path, database_url: str, workdir: Path) -> None:
    """Run a pass in a subprocess, wait until it is frozen at ``freeze_at`` and SIGKILL it."""
    from prefect.settings import PREFECT_API_URL

    marker = workdir / f"frozen-{freeze_at.replace(':', '-')}"
    log_path = workdir / f"pass-{freeze_at.replace(':', '-')}.log"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "VW_TEST_MARKER": str(marker),
           "VW_TEST_FREEZE_AT": freeze_at}
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-c", _FROZEN_PASS, str(inbox), database_url],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while not marker.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"pass never reached {freeze_at}; its log:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL


def _registry_state(database_url: str) -> dict[str, tuple[str, int]]:
    entries = registry.product_entries(Store.connect(database_url).engine).values()
    return {Path(e.path).name: (e.status, e.attempts) for e in entries}


def test_a_pass_killed_mid_scene_ends_like_a_clean_run(prefect_server, synthetic_inbox, clean_run_rows,  # noqa: F811
                                                       tmp_path):
    names = sorted(p.name for p in synthetic_inbox.iterdir())  # the order a one-at-a-time pass takes
    clean_rows = clean_run_rows
    crashed_url = f"sqlite:///{tmp_path / 'crashed.sqlite'}"
    first_scene = {r["scene_id"] for r in clean_rows["scenes"] if Path(r["path"]).name == names[0]}

    # 1. Killed inside the transaction writing the second scene: only the first scene is stored.
    _kill_pass_at("commit:2", synthetic_inbox, crashed_url, tmp_path)
    rows = store_rows(crashed_url)
    assert {r["scene_id"] for r in rows["scenes"]} == first_scene
    assert_same_rows({"detections": rows["detections"]},
                     {"detections": [d for d in clean_rows["detections"] if d["scene_id"] in first_scene]})
    assert _registry_state(crashed_url) == {names[0]: (DONE, 1), names[1]: ("processing", 1)}

    # 2. Killed after the second scene was committed, before its product was marked done.
    _kill_pass_at("mark_done:1", synthetic_inbox, crashed_url, tmp_path)
    assert len(store_rows(crashed_url)["scenes"]) == 2
    assert _registry_state(crashed_url) == {names[0]: (DONE, 1), names[1]: ("processing", 2)}

    # 3. The next pass completes the work: rows identical to the clean run, each product done.
    recovered = monitor_inbox(str(synthetic_inbox), database_url=crashed_url, concurrency=2)
    assert {Path(o.path).name: o.status for o in recovered.outcomes} == {
        names[0]: SKIPPED, names[1]: DONE, names[2]: DONE}
    assert_same_rows(store_rows(crashed_url), clean_rows)
    assert _registry_state(crashed_url) == {names[0]: (DONE, 1), names[1]: (DONE, 3), names[2]: (DONE, 1)}
