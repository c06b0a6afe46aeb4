"""The Earth model used by every spherical computation in :mod:`geo`.

One number, named once: the IUGG mean Earth radius ``R1 = (2a + b) / 3`` of WGS84. Distances on
the sphere of this radius differ from WGS84 geodesic distances by at most about 0.56 % (between
``-0.56 %`` for north-south lines at the equator and ``+0.45 %`` near the poles); functions that
need ellipsoidal accuracy say so and use :data:`WGS84_GEOD`.
"""

from __future__ import annotations

from pyproj import Geod

#: The international nautical mile, metres (one minute of arc of latitude, rounded by definition).
NAUTICAL_MILE_M: float = 1852.0
#: One knot (a nautical mile per hour), metres per second.
KNOT_M_S: float = NAUTICAL_MILE_M / 3600.0
#: One knot, kilometres per hour.
KNOT_KM_H: float = NAUTICAL_MILE_M / 1000.0

#: Mean Earth radius (IUGG R1 of WGS84), kilometres.
EARTH_RADIUS_KM: float = 6371.0088

#: WGS84 ellipsoid semi-major axis, kilometres.
WGS84_A_KM: float = 6378.137
#: WGS84 flattening.
WGS84_F: float = 1.0 / 298.257223563
#: WGS84 semi-minor axis, kilometres.
WGS84_B_KM: float = WGS84_A_KM * (1.0 - WGS84_F)

#: The smallest and largest radius of curvature of the WGS84 ellipsoid (meridional radius at the
#: equator ``b**2 / a`` and the polar radius ``a**2 / b``), kilometres. Every curve on the ellipsoid
#: is between ``MIN/R`` and ``MAX/R`` times as long as the same curve (same lat/lon) on the sphere of
#: radius :data:`EARTH_RADIUS_KM`; hence so is the geodesic distance between two points.
WGS84_MIN_CURVATURE_RADIUS_KM: float = WGS84_B_KM**2 / WGS84_A_KM
WGS84_MAX_CURVATURE_RADIUS_KM: float = WGS84_A_KM**2 / WGS84_B_KM

#: The WGS84 ellipsoid for exact geodesics (Karney's algorithm in PROJ).
WGS84_GEOD = Geod(ellps="WGS84")
