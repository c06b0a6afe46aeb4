"""Serve the ``monitor-inbox`` flow as a scheduled Prefect deployment.

``vesselwatch monitor INBOX --every 10m`` ends up in :func:`serve_monitor`: the flow is served by
this process (``flow.serve``), the deployment and its schedule are visible in the Prefect UI, and
each scheduled run is one :func:`flows.monitor.monitor_inbox` pass. Stop serving with Ctrl-C.

Examples
--------
>>> from datetime import timedelta
>>> options = deployment_options("/data/inbox", every=timedelta(minutes=10))
>>> options["interval"], options["parameters"]["inbox"]
(datetime.timedelta(seconds=600), '/data/inbox')
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flows.monitor import monitor_inbox
from vesselwatch.errors import InputError

#: Name of the deployment when none is given.
DEFAULT_NAME = "vesselwatch-monitor"


def deployment_options(
    inbox: str | Path,
    *,
    every: timedelta | None = None,
    cron: str | None = None,
    database_url: str | None = None,
    concurrency: int = 2,
    dask_address: str | None = None,
    max_attempts: int = 3,
    settle_seconds: float = 0.0,
    name: str = DEFAULT_NAME,
) -> dict[str, Any]:
    """Keyword arguments of ``monitor_inbox.serve`` / ``.to_deployment`` for one inbox.

    Exactly one of ``every`` (an interval) and ``cron`` (a cron expression, UTC) is required.
    The flow parameters are fixed in the deployment, so each scheduled run is the same pass.

    Raises
    ------
    InputError
        Neither or both schedules given, or an interval that is not positive.
    """
    if (every is None) == (cron is None):
        raise InputError("monitor schedule: give exactly one of an interval (every) or a cron expression")
    if every is not None and every <= timedelta(0):
        raise InputError(f"monitor schedule: interval {every} must be positive")
    parameters = {
        "inbox": str(Path(inbox).resolve()),
        "database_url": database_url,
        "concurrency": concurrency,
        "dask_address": dask_address,
        "max_attempts": max_attempts,
        "settle_seconds": settle_seconds,
    }
    return {
        "name": name,
        "interval": every,
        "cron": cron,
        "parameters": parameters,
        "description": f"Process new Sentinel-2 products arriving in {parameters['inbox']}.",
        "tags": ["vesselwatch", "monitor"],
    }


def serve_monitor(inbox: str | Path, **options: Any) -> None:
    """Serve the monitoring deployment until interrupted (see :func:`deployment_options`)."""
    monitor_inbox.serve(**deployment_options(inbox, **options))
