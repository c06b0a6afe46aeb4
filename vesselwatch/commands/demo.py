"""``vesselwatch demo``: the whole job on the bundled sample data, then the API.

It processes every product under ``data/sample/`` with the ``process-scene`` flow into the
default SQLite store (local Prefect, no server to set up), writes the GeoJSON exports under
``var/exports/`` and serves the API, so a fresh clone shows the product working end to end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vesselwatch.errors import VesselwatchError
from vesselwatch.settings import Settings


def sample_products(sample_dir: Path) -> list[Path]:
    """The products bundled under ``sample_dir``: one per sub-folder (any layout ingest opens), sorted."""
    if not sample_dir.is_dir():
        return []
    return sorted(child for child in sample_dir.iterdir() if child.is_dir())


def demo(
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API afterwards.")] = True,
    db: Annotated[str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL.")] = None,
) -> None:
    """Process the bundled sample products, export GeoJSON, then serve the API."""
    from flows.process_scene import process_scene
    from vesselwatch.commands.export import export_collection
    from vesselwatch.commands.process import quiet_prefect_console

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    database_url = settings.resolved_database_url()
    quiet_prefect_console()
    products = sample_products(settings.data_dir / "sample")
    if not products:
        typer.echo(f"error: {settings.data_dir / 'sample'}: no sample products", err=True)
        raise typer.Exit(2)
    for product in products:
        try:
            summary = process_scene(str(product), database_url)
        except VesselwatchError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        typer.echo(json.dumps({"product": product.name, "scene_id": summary.scene_id,
                               "detections": summary.n_detections, "headings": summary.n_headings,
                               "alerts": summary.n_alerts}))
    exports = settings.var_dir / "exports"
    for collection in ("detections", "alerts"):
        count = export_collection(collection, exports / f"{collection}.geojson", database_url=database_url)
        typer.echo(f"wrote {count} {collection} to {exports / f'{collection}.geojson'}")
    if serve:
        from vesselwatch.commands.serve import serve as serve_api

        typer.echo(f"serving on http://{settings.api_host}:{settings.api_port}/  (map: /map)")
        serve_api(host=None, port=None, db=db, workers=1, access_log=False)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the application."""
    app.command("demo")(demo)
