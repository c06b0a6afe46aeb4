"""Alert rules on known geometry: toward, away, tangent, inside, ambiguous, antimeridian, speed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from geo.haversine import distance_km, initial_bearing_deg
from pipeline.alerts import NO_SPEED_NOTE, AlertRules, Vessels, cone_bearings_deg, find_alerts
from pipeline.reference import AreaMeasure, ProtectedAreas

# A 0.2° x 0.2° box on the equator east of the origin: its west edge is the meridian 0.1° E.
BOX = shapely.box(0.1, -0.1, 0.3, 0.1)


def _areas(*geometries, radius_km=10.0) -> AreaMeasure:
    ids = [f"A{i}" for i in range(len(geometries))]
    return AreaMeasure(ProtectedAreas.from_geometries(ids, geometries, alert_radius_km=radius_km, names=ids))


def _vessels(lon, lat, heading, sigma=2.0, ambiguous=False, speed_kn=None) -> Vessels:
    lon, lat, heading, sigma, ambiguous = np.broadcast_arrays(
        np.atleast_1d(lon).astype(float), np.atleast_1d(lat).astype(float), np.atleast_1d(heading).astype(float),
        np.atleast_1d(sigma).astype(float), np.atleast_1d(ambiguous),
    )
    ids = [f"S/{i}" for i in range(lon.size)]
    return Vessels(ids, ["S"] * lon.size, lon, lat, heading, sigma, ambiguous,
                   speed_kn=None if speed_kn is None else np.broadcast_to(speed_kn, lon.shape))


def test_heading_toward_the_area_alerts_with_the_exact_entry_point():
    alerts = find_alerts(_vessels(0.05, 0.0, 90.0, sigma=3.0), _areas(BOX))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.kind, alert.severity, alert.direction) == ("approach", "high", "forward")
    assert alert.cone_fraction == 1.0
    expected_km = float(distance_km(0.05, 0.0, 0.1, 0.0))
    assert alert.entry_km == pytest.approx(expected_km, abs=0.001)  # along the equator: a great circle
    assert alert.distance_km == pytest.approx(expected_km, abs=1e-6)  # the west edge is a meridian
    assert (alert.entry_lon, alert.entry_lat) == (pytest.approx(0.1, abs=1e-5), pytest.approx(0.0, abs=1e-9))
    assert alert.alert_id == "S/0/area/A0"


def test_heading_away_or_out_of_range_raises_nothing():
    vessels = _vessels([0.05, 0.05, -0.2], [0.0, 0.0, 0.0], [270.0, 0.0, 90.0], sigma=3.0)
    # west-bound, north-bound (parallel to the west edge, 5.6 km off), and 33 km away heading in
    assert find_alerts(vessels, _areas(BOX)) == []


def test_tangent_ray_alerts_only_for_the_part_of_the_cone_that_enters():
    # 0.02° (2.2 km) north of the box's top edge, heading due east, parallel to the edge
    lon, lat = 0.05, 0.12
    narrow = find_alerts(_vessels(lon, lat, 90.0, sigma=0.5), _areas(BOX))
    assert narrow == []
    rules = AlertRules(cone_samples=401)
    wide = find_alerts(_vessels(lon, lat, 90.0, sigma=10.0), _areas(BOX), rules)
    assert len(wide) == 1
    # bearings between the one to the far top corner and the cone's edge (110°) enter
    corner = float(initial_bearing_deg(lon, lat, 0.3, 0.1))
    expected = (110.0 - corner) / 40.0
    assert wide[0].cone_fraction == pytest.approx(expected, abs=0.01)
    assert wide[0].severity == "medium" and 0.2 < wide[0].cone_fraction < 0.5
    assert wide[0].direction == "forward"


def test_severity_low_when_only_the_edge_of_the_cone_enters():
    # bearings from 94.57° (the far top corner) enter; the cone 88 ± 8° holds a sliver of them
    sliver = find_alerts(_vessels(0.05, 0.12, 88.0, sigma=4.0), _areas(BOX), AlertRules(cone_samples=201))
    assert len(sliver) == 1 and sliver[0].severity == "low" and 0 < sliver[0].cone_fraction < 0.2


def test_inside_alerts_whatever_the_heading():
    vessels = _vessels([0.2, 0.2], [0.0, 0.05], [np.nan, 270.0], sigma=np.nan)
    alerts = find_alerts(vessels, _areas(BOX))
    assert [(a.kind, a.severity, a.distance_km, a.cone_fraction) for a in alerts] == [
        ("inside", "critical", 0.0, None), ("inside", "critical", 0.0, None)
    ]
    assert alerts[0].heading_deg is None and alerts[1].heading_deg == 270.0
    assert alerts[0].details["time_to_entry_note"] == "already inside"


def test_no_heading_outside_raises_nothing():
    assert find_alerts(_vessels(0.05, 0.0, np.nan, sigma=np.nan), _areas(BOX)) == []


def test_ambiguous_heading_considers_both_directions_and_is_flagged():
    # heading 270 points away; the unresolved reverse (90) points at the box
    alerts = find_alerts(_vessels(0.05, 0.0, 270.0, sigma=3.0, ambiguous=True), _areas(BOX))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.heading_ambiguous is True and alert.direction == "reverse"
    assert alert.cone_fraction == pytest.approx(0.5)
    assert alert.severity == "medium"  # never high while the direction is unknown
    assert alert.entry_km == pytest.approx(float(distance_km(0.05, 0.0, 0.1, 0.0)), abs=0.001)
    resolved = find_alerts(_vessels(0.05, 0.0, 270.0, sigma=3.0, ambiguous=False), _areas(BOX))
    assert resolved == []


def test_ambiguous_between_two_areas_enters_both_ways():
    west = shapely.box(-0.3, -0.1, -0.1, 0.1)
    # 11 km from each: inside a 15 km alert radius
    alerts = find_alerts(_vessels(0.0, 0.0, 90.0, sigma=2.0, ambiguous=True), _areas(BOX, west, radius_km=15.0))
    assert sorted((a.area_id, a.direction) for a in alerts) == [("A0", "forward"), ("A1", "reverse")]
    one_area = shapely.MultiPolygon([BOX, west])
    both = find_alerts(_vessels(0.0, 0.0, 90.0, sigma=2.0, ambiguous=True), _areas(one_area, radius_km=15.0))
    assert both[0].direction == "both" and both[0].cone_fraction == 1.0


def test_area_across_the_antimeridian():
    crossing = shapely.Polygon([(179.9, -0.1), (180.1, -0.1), (180.1, 0.1), (179.9, 0.1)])  # unwrapped input
    areas = _areas(crossing)
    assert areas.geometry[0].geom_type == "MultiPolygon"
    vessels = _vessels([179.85, -179.85, 179.99, -179.99, 179.85], [0.0, 0.0, 0.0, 0.0, 0.0],
                       [90.0, 270.0, 0.0, 0.0, 270.0], sigma=2.0)
    alerts = {a.detection_id: a for a in find_alerts(vessels, areas)}
    assert alerts["S/0"].kind == "approach"
    assert alerts["S/0"].entry_km == pytest.approx(float(distance_km(179.85, 0, 179.9, 0)), abs=0.001)
    assert alerts["S/1"].kind == "approach"  # heading west across 180° into the other half
    assert alerts["S/1"].entry_lon == pytest.approx(-179.9, abs=1e-5)
    assert alerts["S/2"].kind == alerts["S/3"].kind == "inside"
    assert "S/4" not in alerts  # heading away
    # the cut at 180° is not a boundary: a vessel inside right next to it is 0 km from the area,
    # and a vessel outside is measured to the real edge
    near = areas.boundary_distance_km(np.array([179.85, -179.85]), np.array([0.05, 0.05]), np.array([0, 0]))
    assert near == pytest.approx(float(distance_km(179.85, 0.05, 179.9, 0.05)), abs=1e-3)
    assert alerts["S/0"].distance_km == pytest.approx(float(distance_km(179.85, 0, 179.9, 0)), abs=1e-6)


def test_per_area_radius_and_two_areas():
    far_box = shapely.box(0.25, -0.1, 0.45, 0.1)  # 22 km east of the vessel
    areas = AreaMeasure(ProtectedAreas.from_geometries(["near", "far"], [BOX, far_box], alert_radius_km=[10.0, 25.0]))
    alerts = find_alerts(_vessels(0.05, 0.0, 90.0), areas, AlertRules(lookahead_km=40.0))
    assert [a.area_id for a in alerts] == ["far", "near"]
    assert all(a.details["alert_radius_km"] in (10.0, 25.0) for a in alerts)
    small = AreaMeasure(ProtectedAreas.from_geometries(["near", "far"], [BOX, far_box], alert_radius_km=[10.0, 15.0]))
    assert [a.area_id for a in find_alerts(_vessels(0.05, 0.0, 90.0), small, AlertRules(lookahead_km=40.0))] == ["near"]


def test_lookahead_limits_the_ray():
    # 5.6 km from the edge, within the 10 km radius, but only 3 km of ray
    assert find_alerts(_vessels(0.05, 0.0, 90.0), _areas(BOX), AlertRules(lookahead_km=3.0)) == []


def test_time_to_entry_only_with_a_speed():
    with_speed = find_alerts(_vessels(0.05, 0.0, 90.0, speed_kn=10.0), _areas(BOX))[0]
    expected_min = with_speed.entry_km / (10.0 * 1.852) * 60.0
    assert with_speed.time_to_entry_min == pytest.approx(expected_min)
    assert with_speed.speed_kn == 10.0
    without = find_alerts(_vessels(0.05, 0.0, 90.0), _areas(BOX))[0]
    assert without.time_to_entry_min is None and without.speed_kn is None
    assert without.details["time_to_entry_note"] == NO_SPEED_NOTE


def test_alerts_are_deterministic():
    rng = np.random.default_rng(3)
    vessels = _vessels(rng.uniform(-0.1, 0.4, 60), rng.uniform(-0.2, 0.2, 60), rng.uniform(0, 360, 60),
                       sigma=rng.uniform(1, 20, 60), ambiguous=rng.random(60) < 0.3)
    first, second = find_alerts(vessels, _areas(BOX)), find_alerts(vessels, _areas(BOX))
    assert first == second
    assert len({a.alert_id for a in first}) == len(first) > 10


def test_cone_is_clipped_to_the_full_circle():
    rules = AlertRules(cone_samples=5)
    bearings, valid = cone_bearings_deg(np.array([0.0]), np.array([200.0]), np.array([False]), rules)
    assert bearings[0, :5].tolist() == [180.0, 270.0, 0.0, 90.0, 180.0]
    assert valid[0].tolist() == [True] * 5 + [False] * 5


def test_rules_are_checked():
    with pytest.raises(ValueError, match="cone_samples"):
        AlertRules(cone_samples=4)
    with pytest.raises(ValueError, match="lookahead_km"):
        AlertRules(lookahead_km=math.nan)


@pytest.mark.parametrize(
    "name", ["pipeline.alerts", "pipeline.dedup", "pipeline.enrich", "pipeline.export", "pipeline.records",
             "pipeline.reference"],
)
def test_module_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_speed_carried_by_a_record_gives_a_time_to_entry():
    from pipeline.alerts import vessels_from_records
    from pipeline.store import DetectionRecord

    base = dict(scene_id="S", lon=0.05, lat=0.0, row=1.0, col=1.0, length_m=50.0, width_m=9.0, score=0.9,
                heading_deg=90.0, heading_uncertainty_deg=2.0, heading_ambiguous=False)
    records = [DetectionRecord(detection_id="S/0", enrichment={"speed_kn": 20.0}, **base),
               DetectionRecord(detection_id="S/1", enrichment={"coast_km": 3.0}, **base)]
    timed, untimed = find_alerts(vessels_from_records(records), _areas(BOX))
    assert timed.time_to_entry_min == pytest.approx(timed.entry_km / (20.0 * 1.852) * 60.0)
    assert untimed.time_to_entry_min is None


def test_a_measured_speed_is_used_only_when_the_hull_moved_along_its_heading():
    from pipeline.alerts import NO_SPEED_NOTE, vessels_from_records
    from pipeline.store import DetectionRecord

    base = dict(scene_id="S", lon=0.05, lat=0.0, row=1.0, col=1.0, length_m=50.0, width_m=9.0, score=0.9,
                heading_deg=90.0, heading_uncertainty_deg=2.0, heading_ambiguous=False)
    records = [  # the motion step gives an axis, 0-180°: 92° runs along a 90° heading, as would 272°
        DetectionRecord(detection_id="S/0", enrichment={"speed_kn": 20.0, "motion_axis_deg": 92.0}, **base),
        DetectionRecord(detection_id="S/1", enrichment={"speed_kn": 20.0, "motion_axis_deg": 178.0}, **base),
        DetectionRecord(detection_id="S/2", enrichment={"speed_kn": None, "motion_axis_deg": None}, **base),
    ]
    vessels = vessels_from_records(records)
    assert vessels.speed_kn[0] == 20.0 and np.isnan(vessels.speed_kn[1:]).all()
    along, across, slow = find_alerts(vessels, _areas(BOX))
    assert along.time_to_entry_min == pytest.approx(along.entry_km / (20.0 * 1.852) * 60.0)
    assert across.time_to_entry_min is None and across.details["time_to_entry_note"] == NO_SPEED_NOTE
    assert slow.time_to_entry_min is None
    westward = DetectionRecord(detection_id="S/3", enrichment={"speed_kn": 20.0, "motion_axis_deg": 88.0},
                               **{**base, "heading_deg": 272.0})
    assert vessels_from_records([westward]).speed_kn[0] == 20.0  # an axis has no direction
