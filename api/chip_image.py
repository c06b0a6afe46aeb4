"""Chip pictures: a stored detection's chip re-cut from its product, drawn with keypoints and heading.

Chips are not stored (a 128 x 128 x 5 float chip is 320 kB per vessel); the store keeps the
product path of every scene and the detection's pixel centroid, so :func:`recut_chip` cuts the
same window again with :func:`pipeline.chips.cut_chips`. Keypoints are placed from their stored
lon/lat through the re-cut chip's transform, so the picture is right whatever chip size the
pipeline used. When the product has moved away the picture is unavailable (404), the numbers are not.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from pyproj import Transformer

from pipeline.chips import Chip

#: Keypoint colours (RGB): hull red, wake end yellow, Kelvin arm ends cyan.
KEYPOINT_COLOURS = {
    "hull": (255, 60, 60),
    "wake_end": (255, 220, 0),
    "arm_left_end": (0, 220, 255),
    "arm_right_end": (0, 220, 255),
}


@dataclass(frozen=True)
class _Centroids:
    """The two arrays :func:`pipeline.chips.cut_chips` reads from detections."""

    row: np.ndarray
    col: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


def recut_chip(product_path: str, row: float, col: float, size_px: int) -> Chip:
    """Cut the chip around scene pixel ``(row, col)`` again from the product on disk.

    Raises
    ------
    vesselwatch.errors.ProductError
        When the product is gone or unreadable.
    """
    from pipeline.ingest import open_scene

    with open_scene(product_path) as scene:
        from pipeline.chips import cut_chips

        return cut_chips(scene, _Centroids(np.array([row]), np.array([col])), size_px)[0]


def rgb_preview(data: np.ndarray, band_names: list[str]) -> np.ndarray:
    """True-colour uint8 ``(H, W, 3)`` from B04/B03/B02 (else the first bands), 2–98 % stretch per chip."""
    names = [name.upper() for name in band_names]
    if all(b in names for b in ("B04", "B03", "B02")):
        planes = [data[names.index(b)] for b in ("B04", "B03", "B02")]
    else:
        planes = [data[min(i, data.shape[0] - 1)] for i in range(3)]
    rgb = np.stack(planes, axis=-1).astype(np.float64)
    finite = rgb[np.isfinite(rgb)]
    low, high = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
    scaled = (rgb - low) / max(high - low, 1e-9)
    return (np.clip(np.nan_to_num(scaled), 0.0, 1.0) * 255).astype(np.uint8)


def keypoints_in_chip(keypoints: Mapping[str, Mapping[str, float] | None] | None, chip: Chip) -> dict[str, tuple]:
    """Stored keypoints (with ``lon``/``lat``) as ``(x, y)`` pixel coordinates of ``chip``."""
    named = {name: kp for name, kp in (keypoints or {}).items()
             if kp and kp.get("lon") is not None and kp.get("lat") is not None}
    if not named:
        return {}
    to_map = Transformer.from_crs("EPSG:4326", chip.crs, always_xy=True)
    lon = np.array([kp["lon"] for kp in named.values()], dtype=float)
    lat = np.array([kp["lat"] for kp in named.values()], dtype=float)
    mx, my = to_map.transform(lon, lat)
    px, py = ~chip.transform @ (np.asarray(mx), np.asarray(my))
    return {name: (float(x), float(y)) for name, x, y in zip(named, np.atleast_1d(px), np.atleast_1d(py))}


def draw_chip_png(
    rgb: np.ndarray,
    *,
    keypoints_px: Mapping[str, tuple[float, float]] | None = None,
    heading_grid_deg: float | None = None,
    ambiguous: bool = False,
    scale: int = 4,
) -> bytes:
    """PNG of a chip enlarged ``scale`` times with keypoints and a heading arrow from the centre.

    Parameters
    ----------
    rgb
        uint8 ``(H, W, 3)``.
    keypoints_px
        Name → ``(x, y)`` chip pixel coordinates (rasterio convention).
    heading_grid_deg
        Direction of travel, degrees clockwise from grid up; NaN/None draws no arrow.
    ambiguous
        Draw the arrow both ways (bow/stern not resolved).
    """
    height, width = rgb.shape[:2]
    image = Image.fromarray(rgb, "RGB").resize((width * scale, height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)
    for name, (x, y) in (keypoints_px or {}).items():
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        cx, cy, r = x * scale, y * scale, max(3, scale + 1)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=KEYPOINT_COLOURS.get(name, (255, 255, 255)), width=2)
    if heading_grid_deg is not None and math.isfinite(heading_grid_deg):
        cx, cy = width * scale / 2.0, height * scale / 2.0
        length = min(width, height) * scale * 0.35
        directions = (heading_grid_deg, heading_grid_deg + 180.0) if ambiguous else (heading_grid_deg,)
        for bearing in directions:
            angle = math.radians(bearing)
            tip = (cx + length * math.sin(angle), cy - length * math.cos(angle))
            draw.line((cx, cy, *tip), fill=(255, 255, 255), width=3)
            for side in (-1, 1):
                barb = angle + math.pi + side * math.radians(25)
                draw.line((*tip, tip[0] + 0.25 * length * math.sin(barb), tip[1] - 0.25 * length * math.cos(barb)),
                          fill=(255, 255, 255), width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
