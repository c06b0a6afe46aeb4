"""``vesselwatch serve``: run the REST API with uvicorn (one or several worker processes)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from vesselwatch.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default from settings).")] = None,
    db: Annotated[str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL.")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (each loads the model once).")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request (costs throughput).")] = False,
) -> None:
    """Serve the API (OGC API – Features collections, nearest platform, headings, alerts, map) until interrupted."""
    import uvicorn

    if db:
        # Worker processes build their own app from the environment, so pass the override there.
        os.environ["VESSELWATCH_DATABASE_URL"] = db
    settings = Settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        access_log=access_log,
        log_level=settings.log_level.lower(),
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the application."""
    app.command("serve")(serve)
