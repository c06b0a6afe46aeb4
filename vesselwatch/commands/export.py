"""``vesselwatch export COLLECTION OUT``: write stored features as GeoJSON or GeoPackage."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from vesselwatch.settings import Settings

export_app = typer.Typer(help="Export a collection as GeoJSON (RFC 7946) or GeoPackage.", no_args_is_help=True)

DbOption = Annotated[str | None, typer.Option("--db", help="SQLite file or SQLAlchemy URL (default from settings).")]
BboxOption = Annotated[
    str | None, typer.Option("--bbox", help="west,south,east,north in degrees (west > east crosses 180°).")
]
StartOption = Annotated[str | None, typer.Option("--start", help="Earliest acquisition time, ISO 8601 (UTC if no zone).")]
EndOption = Annotated[str | None, typer.Option("--end", help="Latest acquisition time, ISO 8601 (UTC if no zone).")]


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``"w,s,e,n"`` → a tuple of floats, checked; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"bbox {text!r}: expected four numbers west,south,east,north") from None
    if not (-90 <= south <= north <= 90) or not (-180 <= west <= 180 and -180 <= east <= 180):
        raise typer.BadParameter(f"bbox {text!r}: need -180<=west,east<=180 and -90<=south<=north<=90")
    return west, south, east, north


def parse_time(text: str | None, name: str) -> datetime | None:
    """ISO 8601 text → an aware UTC datetime; naive times are taken as UTC."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{name} {text!r}: not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@export_app.command("detections")
def export_detections(
    out: Annotated[Path, typer.Argument(help="Output file: .geojson or .gpkg")],
    db: DbOption = None,
    bbox: BboxOption = None,
    start: StartOption = None,
    end: EndOption = None,
) -> None:
    """Export detected vessels (points at their centroids)."""
    from pipeline.export import detection_feature, write_features
    from pipeline.store import Store

    store = Store.connect(db or Settings().resolved_database_url())
    records = store.iter_detections(
        bbox=parse_bbox(bbox), start=parse_time(start, "--start"), end=parse_time(end, "--end")
    )
    try:
        count = write_features((detection_feature(r) for r in records), out, layer="detections")
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {count} detections to {out}")


def register(app: typer.Typer) -> None:
    """Add the ``export`` command group to the application."""
    app.add_typer(export_app, name="export")
