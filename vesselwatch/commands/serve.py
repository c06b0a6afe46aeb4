"""``vesselwatch serve``: run the REST API with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from vesselwatch.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default from settings).")] = None,
    db: Annotated[str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL.")] = None,
) -> None:
    """Serve the API (``/health``, ``/collections/...``) until interrupted."""
    import uvicorn

    from api.app import create_app

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the application."""
    app.command("serve")(serve)
