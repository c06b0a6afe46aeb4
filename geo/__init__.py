"""geo: exact geodesy on the sphere (and WGS84 where asked), pure NumPy/SciPy/shapely/pyproj.

One module per family of questions:

- :mod:`geo.haversine` — distance, bearing, destination, cross-track (broadcasting, ``lon, lat``).
- :mod:`geo.nearest` — :class:`~geo.nearest.PlatformIndex`: nearest platform(s) with exact ties.
- :mod:`geo.coastline` — :class:`~geo.coastline.CoastlineIndex`: exact distance to the coast.
- :mod:`geo.areas` — :class:`~geo.areas.ProtectedAreas`: inside, boundary distance, ray entry.
- :mod:`geo.validation`, :mod:`geo.earth`, :mod:`geo.unit_vectors`, :mod:`geo.cube_cells` — shared parts.
"""
