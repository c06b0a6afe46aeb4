"""Protected-area alerts from one image: vessels inside an area, or heading into it.

Rules (``docs/alerts.md`` has the full text and the exported property names):

``inside``
    The vessel's centroid lies in the area (boundary included). Severity ``critical``, whatever
    the heading.
``approach``
    The vessel is outside, within the area's alert radius (``ALERT_RADIUS_KM``, default
    ``Settings.alert_radius_km`` = 10 km) of its boundary, has a heading, and a great-circle ray
    along some heading of its uncertainty cone enters the area within ``lookahead_km``. The cone is
    ``heading ± 2 sigma`` sampled at ``cone_samples`` evenly spaced bearings (all vessels and
    areas in one vectorised call); ``cone_fraction`` is the share of the samples whose ray enters.
    When the 180° ambiguity is unresolved both cones (heading and heading + 180°) are sampled, the
    fraction is over both, ``direction`` says which entered (``forward``, ``reverse``, ``both``)
    and the alert is flagged ``heading_ambiguous``.

Severity of an approach: ``high`` when the heading is resolved and at least half the cone enters;
``medium`` when at least ``0.2`` of the samples enter (an ambiguous heading with one whole cone
entering scores 0.5, so it is ``medium`` at most); ``low`` otherwise (only the edge of the cone).

Time to entry is ``entry_km / speed`` when a speed is known. From imagery the speed is the hull's
shift between B02 and B04 (:mod:`pipeline.motion`), measurable above about 11 kn at 10 m; it is used
only when its axis of motion runs along the heading (within ``MAX_SPEED_AXIS_MISMATCH_DEG``).
Without one ``time_to_entry_min`` is ``None`` and the alert says so in ``time_to_entry_note``.
Alert ids are ``<detection_id>/area/<area_id>``, so re-processing a scene replaces its alerts
instead of adding new ones.

Examples
--------
>>> import shapely
>>> from pipeline.reference import AreaMeasure, ProtectedAreas
>>> none = np.array([None], dtype=object)
>>> areas = ProtectedAreas(np.array(["MPA"], dtype=object), none, none, none, none, np.array([10.0]),
...                        np.array([shapely.box(3.1, 51.9, 3.3, 52.1)], dtype=object))
>>> vessels = Vessels(["S/1", "S/2"], ["S", "S"], lon=[3.0, 3.0], lat=[52.0, 52.0],
...                   heading_deg=[90.0, 270.0], uncertainty_deg=[5.0, 5.0], ambiguous=[False, False])
>>> [(a.detection_id, a.kind, a.severity, a.cone_fraction) for a in find_alerts(vessels, AreaMeasure(areas))]
[('S/1', 'approach', 'high', 1.0)]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo.angles import axis_difference_deg
from geo.earth import KNOT_KM_H
from pipeline.records import alert_id
from pipeline.reference import AreaMeasure
from pipeline.store import AlertRecord, DetectionRecord
from vesselwatch.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["AlertRules", "Vessels", "alerts_for_records", "find_alerts", "vessels_from_records", "SEVERITIES"]

#: Severity levels, most urgent first.
SEVERITIES = ("critical", "high", "medium", "low")
#: Why an alert has no time to entry.
NO_SPEED_NOTE = ("no speed: the hull did not move measurably between the image's bands (below about 11 kn), "
                 "or not along its heading, so no time to entry")
#: Largest angle between a measured axis of motion and the heading for the speed to be used, degrees.
MAX_SPEED_AXIS_MISMATCH_DEG = 30.0


@dataclass(frozen=True)
class AlertRules:
    """Parameters of the alert rules (distances in km, angles in degrees).

    Attributes
    ----------
    lookahead_km
        How far along the heading ray an entry counts (``Settings.alert_lookahead_km``).
    cone_sigmas
        Half-width of the heading cone in standard deviations (2 → about 95 %).
    cone_samples
        Bearings sampled across one cone (odd, so the heading itself is one of them).
    unknown_uncertainty_deg
        Sigma assumed for a heading that comes without one.
    high_fraction, medium_fraction
        Cone fractions from which an approach is ``high`` (resolved headings only) / ``medium``.
    """

    lookahead_km: float = 30.0
    cone_sigmas: float = 2.0
    cone_samples: int = 41
    unknown_uncertainty_deg: float = 10.0
    high_fraction: float = 0.5
    medium_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not (self.lookahead_km > 0 and math.isfinite(self.lookahead_km)):
            raise InputError(f"lookahead_km must be a positive number, got {self.lookahead_km}")
        if self.cone_samples < 1 or self.cone_samples % 2 == 0:
            raise InputError(f"cone_samples must be odd and >= 1, got {self.cone_samples}")
        if not self.cone_sigmas >= 0:
            raise InputError(f"cone_sigmas must be >= 0, got {self.cone_sigmas}")


@dataclass(frozen=True)
class Vessels:
    """The vessels of one scene to test, as equal-length arrays.

    Attributes
    ----------
    detection_id, scene_id : sequence of str
    lon, lat : array_like
        Centroids, degrees WGS84.
    heading_deg : array_like
        True bearing of travel (clockwise from north); NaN when unknown.
    uncertainty_deg : array_like
        One-sigma heading uncertainty; NaN when unknown.
    ambiguous : array_like of bool
        The 180° direction is unresolved.
    speed_kn : array_like, optional
        Speed over ground in knots; NaN (default) when unknown.
    acquired : sequence of datetime, optional
    """

    detection_id: Sequence[str]
    scene_id: Sequence[str]
    lon: ArrayLike
    lat: ArrayLike
    heading_deg: ArrayLike
    uncertainty_deg: ArrayLike
    ambiguous: ArrayLike
    speed_kn: ArrayLike | None = None
    acquired: Sequence[datetime | None] | None = None

    def __post_init__(self) -> None:
        n = len(self.detection_id)
        for name in ("lon", "lat", "heading_deg", "uncertainty_deg", "speed_kn"):
            value = getattr(self, name)
            value = np.full(n, np.nan) if value is None else np.asarray(value, dtype=np.float64).reshape(-1)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "ambiguous", np.asarray(self.ambiguous, dtype=bool).reshape(-1))
        object.__setattr__(self, "acquired", list(self.acquired) if self.acquired is not None else [None] * n)
        sizes = {len(self.scene_id), len(self.acquired), *(getattr(self, k).size for k in
                 ("lon", "lat", "heading_deg", "uncertainty_deg", "ambiguous", "speed_kn"))}
        if sizes != {n}:
            raise InputError(f"Vessels: arrays of unequal lengths {sorted(sizes | {n})}")

    def __len__(self) -> int:
        return len(self.detection_id)


def vessels_from_records(records: Sequence[DetectionRecord], speed_kn: ArrayLike | None = None) -> Vessels:
    """The :class:`Vessels` of stored detection records (``None`` headings become NaN).

    Speeds come from ``speed_kn`` when given, else from an ``enrichment["speed_kn"]`` a record
    may carry (the motion step's inter-band speed, an AIS match). A speed whose
    ``enrichment["motion_axis_deg"]`` is more than ``MAX_SPEED_AXIS_MISMATCH_DEG`` off the heading's
    axis is not used (the hull moved across its heading: one of the two is wrong).
    """
    if speed_kn is None:
        speed_kn = [_record_speed(r) for r in records]

    def column(name: str) -> NDArray[np.float64]:
        return np.array([np.nan if getattr(r, name) is None else getattr(r, name) for r in records], dtype=np.float64)

    return Vessels(
        detection_id=[r.detection_id for r in records],
        scene_id=[r.scene_id for r in records],
        lon=column("lon"),
        lat=column("lat"),
        heading_deg=column("heading_deg"),
        uncertainty_deg=column("heading_uncertainty_deg"),
        ambiguous=[bool(r.heading_ambiguous) for r in records],
        speed_kn=speed_kn,
        acquired=[r.acquired for r in records],
    )


def _record_speed(record: DetectionRecord) -> float:
    """Speed over ground of a stored detection, knots; NaN when unknown or not along its heading."""
    enrichment = record.enrichment or {}
    if enrichment.get("speed_kn") is None:
        return np.nan
    axis, heading = enrichment.get("motion_axis_deg"), record.heading_deg
    if axis is not None and heading is not None and math.isfinite(heading):
        if axis_difference_deg(float(axis), heading) > MAX_SPEED_AXIS_MISMATCH_DEG:
            return np.nan
    return float(enrichment["speed_kn"])


def cone_bearings_deg(
    heading_deg: NDArray[np.float64], sigma_deg: NDArray[np.float64], ambiguous: NDArray[np.bool_], rules: AlertRules
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Sampled bearings ``(n, 2 * cone_samples)``: the forward cone then the reverse cone.

    The reverse half is only *valid* (second output) for ambiguous headings. A cone wider than the
    full circle is clipped to ``± 180°``.

    >>> rules = AlertRules(cone_samples=3)
    >>> bearings, valid = cone_bearings_deg(np.array([10.0]), np.array([5.0]), np.array([True]), rules)
    >>> bearings.tolist()
    [[0.0, 10.0, 20.0, 180.0, 190.0, 200.0]]
    >>> valid.tolist()
    [[True, True, True, True, True, True]]
    """
    half_width = np.minimum(rules.cone_sigmas * sigma_deg, 180.0)
    unit = np.linspace(-1.0, 1.0, rules.cone_samples) if rules.cone_samples > 1 else np.zeros(1)
    forward = heading_deg[:, None] + half_width[:, None] * unit[None, :]
    bearings = np.mod(np.concatenate([forward, forward + 180.0], axis=1), 360.0)
    valid = np.concatenate(
        [np.ones_like(forward, dtype=bool), np.repeat(ambiguous[:, None], rules.cone_samples, axis=1)], axis=1
    )
    return bearings, valid


def _severity(kind: str, fraction: float, ambiguous: bool, rules: AlertRules) -> str:
    if kind == "inside":
        return "critical"
    if fraction >= rules.high_fraction and not ambiguous:
        return "high"
    if fraction >= rules.medium_fraction:
        return "medium"
    return "low"


def find_alerts(vessels: Vessels, areas: AreaMeasure, rules: AlertRules | None = None) -> list[AlertRecord]:
    """Every alert of one scene's vessels against the protected areas, ordered by alert id.

    Parameters
    ----------
    vessels
        The scene's detections (:func:`vessels_from_records`).
    areas
        The protected areas with their alert radii (:class:`pipeline.reference.AreaMeasure`).
    rules
        Look-ahead, cone and severity parameters.
    """
    rules = rules or AlertRules()
    vessel, area, distance, inside = areas.pairs_within(vessels.lon, vessels.lat)
    heading = vessels.heading_deg[vessel]
    sigma = vessels.uncertainty_deg[vessel]
    sigma = np.where(np.isfinite(sigma), sigma, rules.unknown_uncertainty_deg)
    ambiguous = vessels.ambiguous[vessel]
    approach = ~inside & np.isfinite(heading)

    k = rules.cone_samples
    fraction = np.full(vessel.size, np.nan)
    entry = np.full((vessel.size, 3), np.nan)  # km, lon, lat
    direction = np.full(vessel.size, None, dtype=object)
    rows = np.flatnonzero(approach)
    if rows.size:
        bearings, valid = cone_bearings_deg(heading[rows], sigma[rows], ambiguous[rows], rules)
        samples = np.repeat(rows, 2 * k)[valid.ravel()]  # the reverse cone only where ambiguous
        found = areas.ray_entry(
            vessels.lon[vessel[samples]], vessels.lat[vessel[samples]], bearings.ravel()[valid.ravel()],
            area[samples], rules.lookahead_km,
        )
        entry_km, entry_lon, entry_lat = (np.full(valid.size, np.nan) for _ in range(3))
        for full, sampled in zip((entry_km, entry_lon, entry_lat), found):
            full[valid.ravel()] = sampled
        enters = np.isfinite(entry_km).reshape(rows.size, 2 * k)
        fraction[rows] = enters.sum(axis=1) / valid.sum(axis=1)
        forward, reverse = enters[:, :k].any(axis=1), enters[:, k:].any(axis=1)
        direction[rows] = np.select([forward & reverse, forward, reverse], ["both", "forward", "reverse"], None)
        # the reported entry: the entering bearing closest to the heading (forward cone first)
        offset = np.abs(np.tile(np.linspace(-1.0, 1.0, k) if k > 1 else np.zeros(1), 2)) + np.repeat([0.0, 2.0], k)
        best = np.argmin(np.where(enters, offset[None, :], np.inf), axis=1)
        chosen = np.arange(rows.size) * 2 * k + best
        entry[rows] = np.stack([entry_km[chosen], entry_lon[chosen], entry_lat[chosen]], axis=1)

    alerts: list[AlertRecord] = []
    for p in range(vessel.size):
        i, j = int(vessel[p]), int(area[p])
        kind = "inside" if inside[p] else "approach"
        if kind == "approach" and not fraction[p] > 0:
            continue
        speed = float(vessels.speed_kn[i])
        known_speed = math.isfinite(speed) and speed > 0
        entry_km = 0.0 if inside[p] else float(entry[p, 0])
        minutes = entry_km / (speed * KNOT_KM_H) * 60.0 if known_speed else None
        details: dict[str, Any] = {
            "alert_radius_km": float(areas.areas.alert_radius_km[j]),
            "lookahead_km": rules.lookahead_km,
            "cone_sigmas": rules.cone_sigmas,
            "cone_samples": rules.cone_samples if kind == "approach" else None,
            "heading_sigma_used_deg": float(sigma[p]) if kind == "approach" else None,
        }
        if minutes is None:
            details["time_to_entry_note"] = NO_SPEED_NOTE if not inside[p] else "already inside"
        alerts.append(
            AlertRecord(
                alert_id=alert_id(vessels.detection_id[i], str(areas.areas.area_id[j])),
                scene_id=vessels.scene_id[i],
                detection_id=vessels.detection_id[i],
                area_id=str(areas.areas.area_id[j]),
                area_name=areas.areas.name[j],
                kind=kind,
                severity=_severity(kind, float(fraction[p]), bool(ambiguous[p]), rules),
                lon=float(vessels.lon[i]),
                lat=float(vessels.lat[i]),
                acquired=vessels.acquired[i],
                distance_km=float(distance[p]),
                entry_km=entry_km,
                entry_lon=float(vessels.lon[i]) if inside[p] else float(entry[p, 1]),
                entry_lat=float(vessels.lat[i]) if inside[p] else float(entry[p, 2]),
                cone_fraction=None if inside[p] else round(float(fraction[p]), 6),
                heading_deg=_finite(vessels.heading_deg[i]),
                heading_uncertainty_deg=_finite(vessels.uncertainty_deg[i]),
                heading_ambiguous=bool(vessels.ambiguous[i]) if math.isfinite(vessels.heading_deg[i]) else None,
                direction=None if inside[p] else direction[p],
                speed_kn=speed if known_speed else None,
                time_to_entry_min=minutes,
                details=details,
            )
        )
    alerts.sort(key=lambda a: a.alert_id)
    log.info("%d alerts for %d vessels near %d protected areas", len(alerts), len(vessels), len(areas.areas))
    return alerts


def alerts_for_records(
    records: Sequence[DetectionRecord], areas: AreaMeasure | None, rules: AlertRules | None = None
) -> list[AlertRecord]:
    """The alerts of one scene's stored detection records (none without protected areas)."""
    if areas is None or not records:
        return []
    return find_alerts(vessels_from_records(records), areas, rules)


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
