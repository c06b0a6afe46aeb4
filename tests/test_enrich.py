"""Enrichment and reference loading: tied platforms, coast distance, areas; BOEM/WDPA-style files."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import shapely
from geopandas import GeoDataFrame

from geo.haversine import cross_track_distance_km, distance_km
from pipeline.enrich import enrich_positions
from pipeline.reference import (
    AreaMeasure,
    CoastDistance,
    ProtectedAreas,
    load_platforms,
    load_protected_areas,
    load_reference_layers,
    split_antimeridian,
)
from vesselwatch.errors import InputError
from vesselwatch.settings import Settings

BOEM_CSV = """Complex ID Num,Structure Number,Structure Name,Removal Date,Latitude,Longitude
10,1,WEST A,,0.0,-1.0
10,2,WEST B,,0.0,-1.0
11,1,EAST,,0.0,1.0
12,1,GONE,2019-01-01,0.0,0.5
13,1,FAR,,5.0,5.0
"""


def test_vessel_equidistant_to_two_platforms_keeps_every_tie(tmp_path):
    path = tmp_path / "platstruc.csv"
    path.write_text(BOEM_CSV)
    platforms = load_platforms(path)
    assert platforms.platform_id.tolist() == ["10-1", "10-2", "11-1", "13-1"]  # the removed one left out
    assert platforms.name.tolist() == ["WEST A", "WEST B", "EAST", "FAR"]
    found = enrich_positions([0.0, 0.9], [0.0, 0.0], platforms=platforms.index()).as_dicts()
    # exactly between the two sites: both structures of the west site and the east one tie
    assert found[0]["nearest_platform_ids"] == ["10-1", "10-2", "11-1"]
    assert found[0]["nearest_platform_count"] == 3
    assert found[0]["nearest_platform_km"] == pytest.approx(float(distance_km(0, 0, 1, 0)), abs=1e-6)
    assert found[1]["nearest_platform_ids"] == ["11-1"]
    assert len(load_platforms(path, include_removed=True)) == 5


def test_platforms_from_geojson_and_geopackage(tmp_path):
    frame = GeoDataFrame({"id": ["P1", "P2"], "name": ["a", "b"]},
                         geometry=[shapely.Point(3.0, 52.0), shapely.Point(-179.5, -16.0)], crs="EPSG:4326")
    for name in ("p.geojson", "p.gpkg"):
        pyogrio.write_dataframe(frame, tmp_path / name)
        platforms = load_platforms(tmp_path / name)
        assert platforms.platform_id.tolist() == ["P1", "P2"]
        assert platforms.lon.tolist() == [3.0, -179.5]
    utm = frame.to_crs(32631).iloc[:1]
    pyogrio.write_dataframe(utm, tmp_path / "utm.gpkg")
    assert load_platforms(tmp_path / "utm.gpkg").lat[0] == pytest.approx(52.0, abs=1e-9)


def test_platform_register_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,x_coord\nA,1\n")
    with pytest.raises(InputError, match="bad.csv.*longitude"):
        load_platforms(path)
    path.write_text("Latitude,Longitude\n95,3\n")
    with pytest.raises(InputError, match="rows \\[0\\]"):
        load_platforms(path)
    with pytest.raises(InputError, match="does not exist"):
        load_platforms(tmp_path / "missing.csv")


def test_wdpa_fields_shapefile_and_reprojection(tmp_path):
    frame = GeoDataFrame(
        {"WDPAID": [555.0, 777.0], "NAME": ["Reef", "Bank"], "DESIG": ["MPA", "SAC"], "IUCN_CAT": ["II", "IV"],
         "MARINE": ["2", "0"], "ALERT_RADIUS_KM": [5.0, None]},
        geometry=[shapely.box(3.0, 52.0, 3.1, 52.1), shapely.box(4.0, 52.0, 4.1, 52.1)], crs="EPSG:4326",
    ).to_crs(32631)
    pyogrio.write_dataframe(frame, tmp_path / "wdpa.shp")
    areas = load_protected_areas(tmp_path / "wdpa.shp", default_radius_km=12.0)
    assert areas.area_id.tolist() == ["555", "777"]
    assert areas.name.tolist() == ["Reef", "Bank"] and areas.iucn_category.tolist() == ["II", "IV"]
    assert areas.alert_radius_km.tolist() == [5.0, 12.0]
    assert areas.geometry[0].bounds == pytest.approx((3.0, 52.0, 3.1, 52.1), abs=1e-7)
    marine = load_protected_areas(tmp_path / "wdpa.shp", marine_only=True)
    assert marine.area_id.tolist() == ["555"]


def test_areas_in_every_antimeridian_form_are_the_same_area():
    unwrapped = shapely.Polygon([(179.0, 0.0), (181.0, 0.0), (181.0, 1.0), (179.0, 1.0)])
    jumping = shapely.Polygon([(179.0, 0.0), (-179.0, 0.0), (-179.0, 1.0), (179.0, 1.0)])
    presplit = shapely.MultiPolygon([shapely.box(179.0, 0.0, 180.0, 1.0), shapely.box(-180.0, 0.0, -179.0, 1.0)])
    pieces = [split_antimeridian(g) for g in (unwrapped, jumping, presplit)]
    for piece in pieces:
        assert piece.geom_type == "MultiPolygon"
        assert piece.area == pytest.approx(2.0)
        assert all(-180.0 <= x <= 180.0 for x in shapely.get_coordinates(piece)[:, 0])
        assert all(shapely.is_ccw(p.exterior) for p in piece.geoms)
        assert piece.equals(pieces[0])


def test_enrichment_areas_inside_near_and_far():
    areas = AreaMeasure(ProtectedAreas.from_geometries(
        ["in", "near", "far"],
        [shapely.box(-0.1, -0.1, 0.1, 0.1), shapely.box(0.13, -0.1, 0.3, 0.1), shapely.box(2.0, 2.0, 2.1, 2.1)],
    ))
    # the first vessel is inside "in" and 8.9 km from "near"; the second 22 km from everything
    found = enrich_positions([0.05, 0.5], [0.0, 0.0], areas=areas).as_dicts()
    assert found[0]["inside_area_ids"] == ["in"]
    assert found[0]["near_area_ids"] == ["near"]
    assert found[0]["nearest_area_id"] == "in" and found[0]["nearest_area_km"] == 0.0
    assert found[1]["inside_area_ids"] == [] and found[1]["near_area_ids"] == []  # 22 km away
    assert found[1]["nearest_area_id"] is None and found[1]["nearest_area_km"] is None
    assert found[0]["nearest_platform_ids"] == [] and found[0]["coast_km"] is None  # layers not given


def test_coast_distance_matches_the_exact_distance_to_a_straight_coast():
    # a coastline along the meridian 1° E: the distance of (0, lat) is its cross-track distance
    coast = CoastDistance.from_lines([np.array([[1.0, -1.0], [1.0, 1.0]])])
    lat = np.array([-0.5, 0.0, 0.7])
    expected = np.abs(cross_track_distance_km(0.0, lat, 1.0, -1.0, 1.0, 1.0))
    assert coast(np.zeros(3), lat) == pytest.approx(expected, abs=1e-6)


def test_natural_earth_coastline_near_the_dutch_coast():
    coast = CoastDistance.from_file(Settings().resolved_coastline_path())
    # Hook of Holland (4.12 E, 51.98 N) is on the coast; 3.0 E lies well offshore
    near, far = coast(np.array([4.12, 3.0]), np.array([51.98, 52.3]))
    assert near < 3.0 and 60.0 < far < 100.0


def test_bundled_demo_layers_load():
    settings = Settings()
    layers = load_reference_layers(
        platforms_path=settings.resolved_platforms_path(),
        protected_areas_path=settings.resolved_protected_areas_path(),
        coastline_path=None,
    )
    assert len(layers.platforms) == 7 and len(layers.areas.areas) == 5
    assert layers.coast_distance_km is None
    names = layers.areas.areas.name.tolist()
    assert all("SYNTHETIC" in name for name in names)


def test_detection_records_carry_the_enrichment():
    from types import SimpleNamespace

    from pyproj import CRS

    from pipeline.records import detection_records

    metadata = SimpleNamespace(product_id="P", acquired=None, crs=CRS.from_epsg(32631))
    detections = SimpleNamespace(row=np.array([1.0]), col=np.array([2.0]), lon=np.array([3.0]), lat=np.array([52.0]),
                                 length_m=np.array([50.0]), width_m=np.array([9.0]), score=np.array([0.8]))
    enrichment = [{"coast_km": 12.5, "nearest_platform_ids": ["A"]}]
    record = detection_records(metadata, detections, None, enrichment)[0]
    assert record.enrichment == enrichment[0]
    with pytest.raises(ValueError, match="2 enrichment entries"):
        detection_records(metadata, detections, None, enrichment * 2)


def _two_detections():
    """Scene metadata and two detections, as the pipeline hands them to :func:`detection_records`."""
    from types import SimpleNamespace

    metadata = SimpleNamespace(product_id="P", acquired=None)
    detections = SimpleNamespace(row=np.array([1.0, 5.0]), col=np.array([2.0, 6.0]), lon=np.array([3.0, 3.1]),
                                 lat=np.array([52.0, 52.1]), length_m=np.array([50.0, 60.0]),
                                 width_m=np.array([9.0, 10.0]), score=np.array([0.8, 0.9]))
    return metadata, detections


def test_detection_records_say_when_a_heading_was_withdrawn_for_a_wake_on_land():
    from pipeline.heading import HeadingResults
    from pipeline.records import detection_records

    metadata, detections = _two_detections()
    nan = np.full(2, np.nan)
    headings = HeadingResults(np.array([np.nan, 45.0]), np.array([np.nan, 3.0]), np.array([True, False]), nan,
                              np.array([0.99, 0.99]), np.full((2, 4, 2), np.nan), np.full((2, 4), np.nan),
                              np.full((2, 4), np.nan), wake_on_land=np.array([True, False]))
    moored, under_way = detection_records(metadata, detections, headings)
    assert moored.wake_on_land is True and moored.heading_deg is None and moored.heading_ambiguous is True
    assert under_way.wake_on_land is False and under_way.heading_deg == 45.0
    assert detection_records(metadata, detections, None)[0].wake_on_land is None  # no heading step ran


def test_detection_records_carry_the_measured_speed_beside_the_enrichment():
    from pipeline.motion import Motion
    from pipeline.records import detection_records

    metadata, detections = _two_detections()
    motion = Motion(np.array([[0.0, 1.04], [0.1, 0.0]]), np.array([20.04, np.nan]), np.array([91.96, np.nan]))
    moving, moored = detection_records(metadata, detections, None, [{"coast_km": 1.0}, {"coast_km": 2.0}], motion)
    assert moving.enrichment == {"coast_km": 1.0, "speed_kn": 20.0, "motion_axis_deg": 92.0}
    assert moored.enrichment == {"coast_km": 2.0, "speed_kn": None, "motion_axis_deg": None}
    from_ais = detection_records(metadata, detections, None, [{"speed_kn": 9.0}, {"speed_kn": 12.0}], motion)
    assert [r.enrichment["speed_kn"] for r in from_ais] == [9.0, 12.0]  # a speed already known is kept
    alone = detection_records(metadata, detections, None, None, motion)[0]
    assert alone.enrichment == {"speed_kn": 20.0, "motion_axis_deg": 92.0}
    with pytest.raises(ValueError, match="1 motion entries for 2 detections"):
        detection_records(metadata, detections, None, None, Motion(np.zeros((1, 2)), np.zeros(1), np.zeros(1)))
