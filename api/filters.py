"""Parsing of the OGC API – Features query parameters ``bbox`` and ``datetime``.

Both raise :class:`api.problems.Problem` (400, the parameter named) for anything malformed, so a
bad filter is a problem document, never a 500.

Examples
--------
>>> parse_bbox("170,-10,-170,10")          # west > east: the box crosses the antimeridian
(170.0, -10.0, -170.0, 10.0)
>>> parse_datetime("2024-05-01T00:00:00Z/..")[1] is None
True
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone

from api.problems import Problem

Bbox = tuple[float, float, float, float]


def _bad(name: str, reason: str) -> Problem:
    return Problem(400, f"{name}: {reason}", invalid_params=[(name, reason)])


def parse_bbox(text: str | None, name: str = "bbox") -> Bbox | None:
    """``"west,south,east,north"`` (or 6 numbers with heights) in CRS84 degrees.

    ``west > east`` is a box crossing the antimeridian (OGC API – Features, RFC 7946 §5.2).

    Raises
    ------
    Problem
        400 when the text is not 4 or 6 finite numbers, a latitude is outside [-90, 90], a
        longitude outside [-180, 180], or south > north.
    """
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (4, 6):
        raise _bad(name, f"expected 4 (or 6) comma-separated numbers, got {len(parts)}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise _bad(name, f"not a number in {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise _bad(name, "values must be finite (no NaN or infinity)")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    west, south, east, north = values
    for value, label in ((west, "west"), (east, "east")):
        if not -180.0 <= value <= 180.0:
            raise _bad(name, f"{label} longitude {value} is outside [-180, 180]")
    for value, label in ((south, "south"), (north, "north")):
        if not -90.0 <= value <= 90.0:
            raise _bad(name, f"{label} latitude {value} is outside [-90, 90]")
    if south > north:
        raise _bad(name, f"south {south} is greater than north {north}")
    return west, south, east, north


def _instant(text: str, name: str, *, end: bool) -> datetime | None:
    """One end of an interval: RFC 3339 date-time, a full date (whole day), or ``..``/empty (open)."""
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=timezone.utc)
            return moment + timedelta(days=1) - timedelta(microseconds=1) if end else moment
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise _bad(name, f"{text!r} is not an RFC 3339 date-time or date") from None
    if moment.tzinfo is None:
        raise _bad(name, f"{text!r} has no time zone offset (RFC 3339 needs one, e.g. 'Z')")
    return moment.astimezone(timezone.utc)


def parse_datetime(text: str | None, name: str = "datetime") -> tuple[datetime | None, datetime | None] | None:
    """An RFC 3339 instant or ``start/end`` interval (``..`` or empty = open end) as UTC bounds.

    A date alone (``2024-05-01``) means that whole day. Returns ``None`` without a filter.

    Raises
    ------
    Problem
        400 when an end is not RFC 3339, both ends are open, or start is after end.
    """
    if text is None:
        return None
    pieces = text.split("/")
    if len(pieces) == 1:
        if pieces[0].strip() in ("", ".."):
            raise _bad(name, "an instant cannot be open ('..')")
        start = _instant(pieces[0], name, end=False)
        end = _instant(pieces[0], name, end=True) if len(pieces[0].strip()) == 10 else start
        return start, end
    if len(pieces) != 2:
        raise _bad(name, f"expected an instant or 'start/end', got {text!r}")
    start = _instant(pieces[0], name, end=False)
    end = _instant(pieces[1], name, end=True)
    if start is None and end is None:
        raise _bad(name, "an interval needs at least one closed end ('../..' is not allowed)")
    if start is not None and end is not None and start > end:
        raise _bad(name, f"start {start.isoformat()} is after end {end.isoformat()}")
    return start, end
