"""CLI commands ``nearest`` and ``coast-distance``: exact geodesy queries printing JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from vesselwatch.errors import VesselwatchError
from vesselwatch.settings import Settings


def _fail(error: Exception) -> None:
    typer.echo(json.dumps({"error": str(error)}), err=True)
    raise typer.Exit(code=2)


def _km(value: float) -> float | None:
    return None if not math.isfinite(value) else round(float(value), 6)


def nearest(
    lat: float = typer.Option(..., "--lat", help="Latitude, degrees (-90..90)."),
    lon: float = typer.Option(..., "--lon", help="Longitude, degrees."),
    k: int = typer.Option(1, "--k", min=1, help="Also list the k nearest platforms."),
    platforms: Optional[Path] = typer.Option(None, "--platforms", help="Platform register (CSV/GeoJSON/GPKG)."),
    max_km: Optional[float] = typer.Option(None, "--max-km", help="Ignore platforms farther than this."),
    ellipsoidal: bool = typer.Option(False, "--ellipsoidal", help="Exact WGS84 geodesic distances."),
    lat_column: Optional[str] = typer.Option(None, "--lat-column"),
    lon_column: Optional[str] = typer.Option(None, "--lon-column"),
    id_column: Optional[str] = typer.Option(None, "--id-column"),
) -> None:
    """Print the nearest platform(s) to a point as JSON: distance km and every tied platform.

    The register is read as the API and the enrichment read it (BOEM ids
    ``<Complex ID Num>-<Structure Number>``, removed structures left out, names) unless column
    names are given, which read the file as a plain table of points.
    """
    from geo.nearest import PlatformIndex
    from pipeline.reference import load_platforms

    path = platforms or Settings().resolved_platforms_path()
    try:
        if lat_column or lon_column or id_column:
            index = PlatformIndex.from_file(path, lat_column=lat_column, lon_column=lon_column, id_column=id_column)
            names = [None] * len(index)
        else:
            register = load_platforms(path)
            index = PlatformIndex(register.lon, register.lat, ids=register.platform_id)
            names = list(register.name)
        result = index.query(lon, lat, k=k, max_km=max_km, ellipsoidal=ellipsoidal)
    except VesselwatchError as error:
        _fail(error)
        return

    def row(i: int) -> dict:
        return {"id": _plain(index.platform_ids[i]), "name": names[i], "lon": float(index.lon[i]),
                "lat": float(index.lat[i])}

    tied = result.tied_index(0)
    k_rows = [{**row(i), "distance_km": _km(d)} for i, d in zip(result.k_index[0], result.k_distance_km[0]) if i >= 0]
    typer.echo(json.dumps({
        "query": {"lon": lon, "lat": lat},
        "model": "WGS84 geodesic" if ellipsoidal else "sphere R=6371.0088 km",
        "platforms_file": str(path),
        "distance_km": _km(result.distance_km[0]),
        "nearest": [row(i) for i in tied],
        "k_nearest": k_rows,
    }))


def coast_distance(
    lat: float = typer.Option(..., "--lat", help="Latitude, degrees (-90..90)."),
    lon: float = typer.Option(..., "--lon", help="Longitude, degrees."),
    coastline: Optional[Path] = typer.Option(None, "--coastline", help="Coastline lines (GeoJSON[.gz], GPKG, SHP)."),
) -> None:
    """Print the exact distance (km) to the nearest coastline segment and the nearest coast point."""
    from geo.coastline import CoastlineIndex

    path = coastline or Settings().resolved_coastline_path()
    try:
        index = CoastlineIndex.from_file(path)
        result = index.query(lon, lat)
    except VesselwatchError as error:
        _fail(error)
        return
    typer.echo(json.dumps({
        "query": {"lon": lon, "lat": lat},
        "coastline_file": str(path),
        "distance_km": _km(float(result.distance_km)),
        "nearest_coast_point": {"lon": float(result.lon), "lat": float(result.lat)},
    }))


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""
    app.command("nearest")(nearest)
    app.command("coast-distance")(coast_distance)
