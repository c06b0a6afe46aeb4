"""``vesselwatch monitor INBOX`` (scheduled or one pass) and ``vesselwatch quarantine``."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from vesselwatch.commands.process import quiet_prefect_console
from vesselwatch.errors import InputError, VesselwatchError
from vesselwatch.settings import Settings

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> timedelta:
    """A duration such as ``"10m"``, ``"90s"``, ``"1h30m"``, ``"1d"`` or plain seconds ``"600"``.

    >>> parse_interval("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_interval("45")
    datetime.timedelta(seconds=45)
    """
    compact = text.strip().lower().replace(" ", "")
    try:
        seconds = float(compact)
    except ValueError:
        parts = _DURATION_PART.findall(compact)
        if not parts or "".join(f"{n}{u}" for n, u in parts) != compact:
            raise InputError(f"interval {text!r}: expected e.g. 30s, 10m, 1h30m, 1d or seconds") from None
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise InputError(f"interval {text!r}: must be positive")
    return timedelta(seconds=seconds)


class _ProgressBar:
    """A tqdm bar on stderr, created when the pass knows how many products it processes."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, outcome: Any, finished: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, unit="product", desc="monitor", dynamic_ncols=True)
        self.bar.set_postfix_str(f"{outcome.product_id[:40]} {outcome.status}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def monitor(
    inbox: Annotated[Path | None, typer.Argument(help="Folder of products, or a STAC catalog JSON "
                                                 "(default: the settings' inbox_dir, var/inbox).")] = None,
    every: Annotated[str | None, typer.Option("--every", help="Serve a deployment running a pass this often "
                                              "(30s, 10m, 1h).")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Serve a deployment on this cron schedule (UTC).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run a single pass now and print its summary.")] = False,
    db: Annotated[str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL (default from settings).")] = None,
    dask_address: Annotated[str | None, typer.Option("--dask-address", help="Dask scheduler to spread scenes "
                                                     "over, e.g. tcp://10.0.0.5:8786.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Scenes at once on this machine.")] = 2,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, help="Starts before a product that never "
                                              "finishes is quarantined.")] = 3,
    settle_seconds: Annotated[float, typer.Option("--settle-seconds", min=0, help="Skip products modified more "
                                                  "recently than this (still being copied).")] = 0.0,
    name: Annotated[str, typer.Option("--name", help="Deployment name (with --every/--cron).")] = "vesselwatch-monitor",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr (--once).")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs.")] = False,
) -> None:
    """Process new or changed products of an inbox: once, or on a schedule served to Prefect."""
    if sum([every is not None, cron is not None, once]) != 1:
        typer.echo("error: give exactly one of --every, --cron or --once", err=True)
        raise typer.Exit(2)
    settings = Settings()
    inbox = inbox or settings.resolved_inbox_dir()
    if not inbox.exists():
        typer.echo(f"error: inbox {inbox}: no such folder or file", err=True)
        raise typer.Exit(2)
    if not verbose:
        quiet_prefect_console()
    database_url = db or settings.resolved_database_url()
    options = {"database_url": database_url, "concurrency": concurrency, "dask_address": dask_address,
               "max_attempts": max_attempts, "settle_seconds": settle_seconds}
    try:
        if once:
            _run_once(inbox, progress=progress, **options)
            return
        from flows.deployments import serve_monitor

        serve_monitor(inbox, every=parse_interval(every) if every else None, cron=cron, name=name, **options)
    except VesselwatchError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _run_once(inbox: Path, *, progress: bool, **options: Any) -> None:
    from flows.monitor import DONE, FAILED, QUARANTINED, SKIPPED, monitor_inbox

    bar = _ProgressBar() if progress else None
    try:
        report = monitor_inbox(str(inbox), on_progress=bar, **options)
    finally:
        if bar is not None:
            bar.close()
    summary = {
        "inbox": report.inbox,
        "processed": report.count(DONE),
        "skipped": report.count(SKIPPED),
        "quarantined": report.count(QUARANTINED),
        "failed": report.count(FAILED),
        "detections": report.n_detections,
        "alerts": report.n_alerts,
        "seconds": {step: round(value, 3) for step, value in report.seconds.items()},
        "products": [asdict(outcome) for outcome in report.outcomes],
    }
    typer.echo(json.dumps(summary, indent=2))


def quarantine(
    db: Annotated[str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL (default from settings).")] = None,
    release: Annotated[str | None, typer.Option("--release", help="Release this product id so the next pass "
                                                "tries it again.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the products that failed for good, with the reason; or release one."""
    from pipeline import registry
    from pipeline.store import Store

    engine = Store.connect(db or Settings().resolved_database_url()).engine
    if release is not None:
        released = registry.release(engine, release)
        if not released:
            typer.echo(f"error: product {release!r} is not quarantined", err=True)
            raise typer.Exit(1)
        typer.echo(f"released {release} ({released} version{'s' if released > 1 else ''})")
        return
    entries = registry.quarantined(engine)
    if as_json:
        rows = [{**asdict(entry), "quarantined_at": entry.quarantined_at.isoformat()} for entry in entries]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not entries:
        typer.echo("no quarantined products")
        return
    for entry in entries:
        typer.echo(f"{entry.quarantined_at:%Y-%m-%dT%H:%M:%SZ}  {entry.product_id}  (attempts: {entry.attempts})\n"
                   f"    path:   {entry.path}\n    reason: {entry.reason}")


def register(app: typer.Typer) -> None:
    """Add ``monitor`` and ``quarantine`` to the application."""
    app.command("monitor")(monitor)
    app.command("quarantine")(quarantine)
