"""CLI commands: ``vesselwatch synth`` writes a synthetic Sentinel-2 product and its truth."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from vesselwatch.errors import VesselwatchError


class Layout(str, Enum):
    safe = "safe"
    cog = "cog"
    geotiff = "geotiff"


class Level(str, Enum):
    L1C = "L1C"
    L2A = "L2A"


def _parse_offset(text: str) -> tuple[int, int]:
    try:
        row, col = (int(part) for part in text.split(","))
    except ValueError as error:
        raise typer.BadParameter(f"{text!r}: expected ROW,COL in pixels, e.g. 0,8000") from error
    return row, col


def register(app: typer.Typer) -> None:
    """Add this module's commands to the application."""

    @app.command("synth")
    def synth(
        out_dir: Path = typer.Argument(..., help="Output directory (product + truth.geojson)."),
        seed: int = typer.Option(0, "--seed", help="Random seed; same seed, same product."),
        size: int = typer.Option(1024, "--size", help="Product width and height in 10 m pixels (10980 = full tile)."),
        format: Layout = typer.Option(Layout.safe, "--format", help="safe (JP2 + ESA XML), cog (COG + STAC) or geotiff."),
        level: Level = typer.Option(Level.L1C, "--level", help="L1C (top of atmosphere) or L2A (surface, with SCL)."),
        vessels: Optional[int] = typer.Option(None, "--vessels", help="Vessels to place (default: one per 6 km² of water)."),
        tile: str = typer.Option("31UET", "--tile", help="MGRS tile, e.g. 31UET or 32VMK."),
        offset: str = typer.Option("0,0", "--offset", help="ROW,COL of the product's upper-left pixel in the tile."),
        cloud_fraction: Optional[float] = typer.Option(None, "--cloud-fraction", help="0..1 under thick cloud (default: from the seed)."),
        baseline: str = typer.Option("05.10", "--baseline", help="Processing baseline; >= 04.00 adds the -1000 offset."),
        land: Optional[Path] = typer.Option(None, "--land", help="Land polygons (GeoJSON[.gz]); default Natural Earth 10m."),
    ) -> None:
        """Write a synthetic Sentinel-2 product of a real MGRS tile, with vessels, wakes, clouds and truth.

        Prints a JSON summary (product path, truth path, vessels, cloud cover) on stdout.
        """
        from pipeline.synthetic import write_product

        try:
            info = write_product(
                out_dir, seed=seed, size_px=size, layout=format.value, level=level.value, tile_id=tile,
                offset_px=_parse_offset(offset), baseline=baseline, n_vessels=vessels,
                cloud_fraction=cloud_fraction, land_path=land,
            )
        except (VesselwatchError, ValueError) as error:
            typer.echo(f"vesselwatch synth: {error}", err=True)
            raise typer.Exit(code=2) from error
        summary = {
            "product_path": str(info.product_path),
            "truth_path": str(info.truth_path),
            "product_id": info.product_id,
            "layout": info.layout,
            "level": info.level,
            "tile_id": info.tile_id,
            "crs": info.crs.to_string(),
            "width": info.width,
            "height": info.height,
            "baseline": info.baseline,
            "n_vessels": info.n_vessels,
            "cloud_cover_pct": round(info.cloud_cover_pct, 3),
            "seconds": round(info.seconds, 2),
            "bands": {band: str(path) for band, path in info.band_paths.items()},
        }
        typer.echo(json.dumps(summary, indent=2))
