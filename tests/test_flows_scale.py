"""Scale-out: scenes spread over a real local Dask cluster, written to a real PostgreSQL server.

The same inbox must give exactly the rows of the default run (threads, SQLite).
"""

from __future__ import annotations

import pytest
from flows_fixtures import (  # noqa: F401
    assert_same_rows,
    clean_run_rows,
    postgres_server_url,
    postgres_url,
    store_rows,
    synthetic_inbox,
)

from flows.monitor import DONE, SKIPPED, monitor_inbox
from pipeline import registry
from pipeline.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dask_cluster():
    """Two worker processes, one thread each: scenes really run in parallel, in other processes."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="3GiB") as cluster:
        yield cluster


def test_dask_workers_writing_to_postgresql_store_the_default_rows(
    prefect_server, synthetic_inbox, clean_run_rows, dask_cluster, postgres_url  # noqa: F811
):
    report = monitor_inbox(str(synthetic_inbox), database_url=postgres_url,
                           dask_address=dask_cluster.scheduler_address)
    assert [outcome.status for outcome in report.outcomes] == [DONE] * 3
    assert_same_rows(store_rows(postgres_url), clean_run_rows)

    # The scenes ran in the workers' processes, not in this one.
    assert dask_cluster.scheduler.task_prefixes["process_product"].state_counts["memory"] == 3
    entries = registry.product_entries(Store.connect(postgres_url).engine)
    assert sorted((e.status, e.attempts) for e in entries.values()) == [(DONE, 1)] * 3

    again = monitor_inbox(str(synthetic_inbox), database_url=postgres_url,
                          dask_address=dask_cluster.scheduler_address)
    assert [outcome.status for outcome in again.outcomes] == [SKIPPED] * 3
