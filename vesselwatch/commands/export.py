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


#: The collections ``vesselwatch export`` writes.
COLLECTIONS = ("detections", "alerts", "platforms", "areas")


def export_collection(
    collection: str,
    out: str | Path,
    *,
    database_url: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    settings: Settings | None = None,
) -> int:
    """Write one collection to ``out`` (``.geojson`` or ``.gpkg``); returns the number of features.

    ``detections`` and ``alerts`` come from the store, ``platforms`` and ``areas`` from the
    reference files named by the settings (bundled synthetic demo sets by default); the time
    filters apply to acquisition times, so only to the first two.

    Raises
    ------
    ValueError
        Unknown collection or output format, or a time filter given for a reference collection.
    """
    from pipeline.export import alert_feature, area_features, detection_feature, platform_features, write_features

    settings = settings or Settings()
    if collection not in COLLECTIONS:
        raise ValueError(f"collection {collection!r}: expected one of {', '.join(COLLECTIONS)}")
    if collection in {"detections", "alerts"}:
        from pipeline.store import Store

        store = Store.connect(database_url or settings.resolved_database_url())
        if collection == "detections":
            features = (detection_feature(r) for r in store.iter_detections(bbox=bbox, start=start, end=end))
        else:
            features = (alert_feature(r) for r in store.iter_alerts(bbox=bbox, start=start, end=end))
        return write_features(features, out, layer=collection)
    if start is not None or end is not None:
        raise ValueError(f"{collection} are reference data without acquisition times: --start/--end do not apply")
    if collection == "platforms":
        from pipeline.reference import load_platforms

        platforms = load_platforms(settings.resolved_platforms_path())
        return write_features(platform_features(platforms, bbox=bbox), out, layer=collection)
    from pipeline.reference import load_protected_areas

    areas = load_protected_areas(settings.resolved_protected_areas_path(), default_radius_km=settings.alert_radius_km)
    return write_features(area_features(areas, bbox=bbox), out, layer=collection)


def _command(collection: str, help_text: str):
    def command(
        out: Annotated[Path, typer.Argument(help="Output file: .geojson or .gpkg")],
        db: DbOption = None,
        bbox: BboxOption = None,
        start: StartOption = None,
        end: EndOption = None,
    ) -> None:
        try:
            count = export_collection(
                collection, out, database_url=db, bbox=parse_bbox(bbox),
                start=parse_time(start, "--start"), end=parse_time(end, "--end"),
            )
        except ValueError as error:  # includes InputError: a bad reference file or output name
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"wrote {count} {collection} to {out}")

    command.__doc__ = help_text
    return command


export_app.command("detections")(_command("detections", "Export detected vessels (points at their centroids)."))
export_app.command("alerts")(_command("alerts", "Export protected-area alerts (points at the vessels)."))
export_app.command("platforms")(_command("platforms", "Export the platform register in use (points)."))
export_app.command("areas")(_command("areas", "Export the protected areas in use (multipolygons, split at 180°)."))


def register(app: typer.Typer) -> None:
    """Add the ``export`` command group to the application."""
    app.add_typer(export_app, name="export")
