"""``vesselwatch process PRODUCT``: run the ``process-scene`` flow on one product."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from vesselwatch.errors import VesselwatchError
from vesselwatch.settings import Settings

log = logging.getLogger(__name__)


def quiet_prefect_console() -> None:
    """Keep Prefect's own task-failure tracebacks and its client's request log off the console.

    Our one-line error says what failed; ``--verbose`` leaves all of it on.
    """
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise


def process(
    product: Annotated[Path, typer.Argument(help="SAFE folder/zip, STAC item JSON, or GeoTIFF folder.")],
    db: Annotated[
        str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL (default from settings).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs.")] = False,
) -> None:
    """Detect vessels in one product, infer their headings and store them."""
    from flows.process_scene import process_scene

    settings = Settings()
    if not verbose:
        quiet_prefect_console()
    if not product.exists():
        typer.echo(f"error: {product}: no such file or folder", err=True)
        raise typer.Exit(2)
    try:
        summary = process_scene(str(product), db or settings.resolved_database_url())
    except VesselwatchError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(asdict(summary), indent=2))


def register(app: typer.Typer) -> None:
    """Add ``process`` to the application."""
    app.command("process")(process)
