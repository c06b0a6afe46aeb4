"""Names, times and sun geometry of a synthetic product, as ESA would name and describe it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from pipeline.synthetic.radiometry import parse_baseline
from pipeline.synthetic.tiles import MgrsTile

__all__ = ["ProductIdentity", "make_identity", "sun_angles_deg"]

_LAUNCH = {"S2A": datetime(2015, 6, 23, 1, 52, tzinfo=timezone.utc), "S2B": datetime(2017, 3, 7, 1, 49, tzinfo=timezone.utc)}
_ORBIT_MINUTES = 100.6


@dataclass(frozen=True)
class ProductIdentity:
    """Who and when: spacecraft, sensing and processing times, orbits, product and file names."""

    spacecraft: str  # "S2A" or "S2B"
    level: str  # "L1C" or "L2A"
    baseline: str  # "05.10"
    tile: MgrsTile
    acquired: datetime  # UTC sensing start
    processed: datetime  # UTC generation time
    relative_orbit: int
    absolute_orbit: int

    @property
    def product_id(self) -> str:
        """SAFE product name without ``.SAFE``, e.g. ``S2B_MSIL1C_20240612T105619_N0510_R051_T31UET_20240612T125433``."""
        major, minor = parse_baseline(self.baseline)
        return (f"{self.spacecraft}_MSI{self.level}_{_compact(self.acquired)}_N{major:02d}{minor:02d}"
                f"_R{self.relative_orbit:03d}_T{self.tile.tile_id}_{_compact(self.processed)}")

    @property
    def granule_id(self) -> str:
        """Granule folder name, e.g. ``L1C_T31UET_A037938_20240612T105619``."""
        return f"{self.level}_T{self.tile.tile_id}_A{self.absolute_orbit:06d}_{_compact(self.acquired)}"

    @property
    def file_stem(self) -> str:
        """Band file prefix, e.g. ``T31UET_20240612T105619``."""
        return f"T{self.tile.tile_id}_{_compact(self.acquired)}"

    @property
    def datatake_id(self) -> str:
        """Datatake identifier, e.g. ``GS2B_20240612T105619_037938_N05.10``."""
        return f"G{self.spacecraft}_{_compact(self.acquired)}_{self.absolute_orbit:06d}_N{self.baseline}"

    @property
    def platform(self) -> str:
        """STAC platform name, e.g. ``sentinel-2b``."""
        return f"sentinel-2{self.spacecraft[-1].lower()}"


def make_identity(tile: MgrsTile, level: str, baseline: str, seed: int, acquired: datetime | None = None) -> ProductIdentity:
    """A plausible identity for a product of ``tile``; the date and spacecraft follow the seed."""
    if acquired is None:
        day = datetime(2024, 3, 1, 10, 56, 19, tzinfo=timezone.utc) + timedelta(days=int(seed) % 200)
        acquired = day + timedelta(seconds=int(seed) % 37, microseconds=24000)
    acquired = acquired.astimezone(timezone.utc)
    spacecraft = "S2B" if seed % 2 else "S2A"
    absolute = 1 + int((acquired - _LAUNCH[spacecraft]).total_seconds() / 60.0 / _ORBIT_MINUTES)
    relative = 51 if tile.zone == 31 else (tile.zone * 7) % 143 + 1
    processed = acquired + timedelta(hours=1, minutes=27, seconds=14)
    return ProductIdentity(spacecraft=spacecraft, level=level, baseline=baseline, tile=tile, acquired=acquired,
                           processed=processed.replace(microsecond=0), relative_orbit=relative, absolute_orbit=absolute)


def sun_angles_deg(when: datetime, lon_deg: float, lat_deg: float) -> tuple[float, float]:
    """Solar zenith and azimuth (clockwise from north), degrees, NOAA's low-precision formulae.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> zenith, azimuth = sun_angles_deg(datetime(2024, 6, 21, 12, 0, tzinfo=timezone.utc), 0.0, 52.0)
    >>> round(zenith), 170 < azimuth < 190
    (29, True)
    """
    when = when.astimezone(timezone.utc)
    day_of_year = when.timetuple().tm_yday
    hour = when.hour + when.minute / 60.0 + when.second / 3600.0
    gamma = 2.0 * math.pi / 365.0 * (day_of_year - 1 + (hour - 12.0) / 24.0)
    equation_of_time_min = 229.18 * (0.000075 + 0.001868 * math.cos(gamma) - 0.032077 * math.sin(gamma)
                                     - 0.014615 * math.cos(2 * gamma) - 0.040849 * math.sin(2 * gamma))
    declination = (0.006918 - 0.399912 * math.cos(gamma) + 0.070257 * math.sin(gamma) - 0.006758 * math.cos(2 * gamma)
                   + 0.000907 * math.sin(2 * gamma) - 0.002697 * math.cos(3 * gamma) + 0.00148 * math.sin(3 * gamma))
    true_solar_min = hour * 60.0 + equation_of_time_min + 4.0 * lon_deg
    hour_angle = math.radians(true_solar_min / 4.0 - 180.0)
    lat = math.radians(lat_deg)
    cos_zenith = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(declination) * math.cos(hour_angle)
    zenith = math.degrees(math.acos(float(np.clip(cos_zenith, -1.0, 1.0))))
    azimuth = math.degrees(math.atan2(math.sin(hour_angle),
                                      math.cos(hour_angle) * math.sin(lat) - math.tan(declination) * math.cos(lat))) + 180.0
    return zenith, azimuth % 360.0


def earth_sun_distance_factor(when: datetime) -> float:
    """ESA's ``U``: the square of the inverse Earth-Sun distance in astronomical units."""
    day_of_year = when.timetuple().tm_yday
    return 1.0 / (1.0 - 0.01672 * math.cos(math.radians(0.9856 * (day_of_year - 4)))) ** 2


def _compact(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%S")
