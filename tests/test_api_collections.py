"""OGC API – Features Part 1 core + GeoJSON: the rules a client (QGIS) relies on, checked offline."""

from __future__ import annotations

import pytest

from api_fixtures import api_client, assert_problem, make_resources, make_store

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON_CLASS = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    resources = make_resources(tmp_path_factory.mktemp("reference"))
    with api_client(make_store(), resources) as client:
        yield client


def _rels(document: dict) -> dict[str, dict]:
    return {link["rel"]: link for link in document["links"]}


def test_landing_page_links_definition_conformance_and_data(client):
    body = client.get("/").json()
    rels = _rels(body)
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert client.get(rels["service-desc"]["href"]).json()["openapi"].startswith("3.")
    conformance = client.get(rels["conformance"]["href"]).json()["conformsTo"]
    assert CORE in conformance and GEOJSON_CLASS in conformance


def test_collections_describe_extent_and_items_links(client):
    body = client.get("/collections").json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == ["detections", "alerts", "platforms", "protected-areas"]
    for collection in body["collections"]:
        rels = _rels(collection)
        assert rels["items"]["type"] == "application/geo+json"
        assert collection["itemType"] == "feature"
        assert len(collection["extent"]["spatial"]["bbox"][0]) == 4
    detections = client.get("/collections/detections").json()
    assert detections["extent"]["temporal"]["interval"][0] == ["2024-05-01T10:56:31Z", "2024-06-01T10:57:36Z"] or \
        detections["extent"]["temporal"]["interval"][0][0] == "2024-05-01T10:56:31Z"
    assert_problem(client.get("/collections/ships"), 404, "collectionId")


def test_items_are_geojson_with_counts_and_next_links_that_page_through_everything(client):
    seen = []
    url = "/collections/detections/items?limit=2"
    pages = 0
    while url:
        response = client.get(url)
        assert response.headers["content-type"].startswith("application/geo+json")
        body = response.json()
        assert body["type"] == "FeatureCollection" and body["numberMatched"] == 5
        assert body["numberReturned"] == len(body["features"]) <= 2
        for feature in body["features"]:
            assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
            lon, lat = feature["geometry"]["coordinates"]
            assert -180 <= lon <= 180 and -90 <= lat <= 90
        seen += [f["id"] for f in body["features"]]
        url = _rels(body).get("next", {}).get("href")
        pages += 1
    assert pages == 3 and seen == ["A/0", "A/1", "A/2", "B/0", "B/1"]


def test_bbox_across_the_antimeridian_selects_both_sides(client):
    body = client.get("/collections/detections/items", params={"bbox": "179,-1,-179,1"}).json()
    assert sorted(f["id"] for f in body["features"]) == ["B/0", "B/1"]
    normal = client.get("/collections/detections/items", params={"bbox": "3,52,3.5,52.5"}).json()
    assert sorted(f["id"] for f in normal["features"]) == ["A/0", "A/1"]
    # The same rule applies to the reference layers.
    platforms = client.get("/collections/platforms/items", params={"bbox": "179,-1,-179,1"}).json()
    assert sorted(f["id"] for f in platforms["features"]) == ["P-E", "P-W"]
    areas = client.get("/collections/protected-areas/items", params={"bbox": "179.5,-1,-179.5,1"}).json()
    assert [f["id"] for f in areas["features"]] == ["777"]


def test_datetime_instants_and_open_intervals(client):
    def ids(value):
        return sorted(f["id"] for f in client.get("/collections/detections/items",
                                                  params={"datetime": value}).json()["features"])

    assert ids("2024-05-01T10:56:31Z") == ["A/0", "A/1", "A/2"]
    assert ids("2024-05-15T00:00:00Z/..") == ["B/0", "B/1"]
    assert ids("../2024-05-15T00:00:00Z") == ["A/0", "A/1", "A/2"]
    assert ids("2024-06-01") == ["B/0", "B/1"]  # a date is the whole day
    assert ids("2024-06-01T10:56:31Z/2024-06-01T10:56:32Z") == ["B/0"]


@pytest.mark.parametrize("params, field", [
    ({"bbox": "0,91,1,92"}, "bbox"),             # latitude 91
    ({"bbox": "0,NaN,1,2"}, "bbox"),             # NaN
    ({"bbox": "0,10,1,5"}, "bbox"),              # south > north
    ({"bbox": "0,1,2"}, "bbox"),                 # three numbers
    ({"bbox": "-190,0,10,1"}, "bbox"),           # longitude out of range
    ({"datetime": "yesterday"}, "datetime"),
    ({"datetime": "../.."}, "datetime"),
    ({"datetime": "2024-06-01T00:00:00/.."}, "datetime"),   # no offset: not RFC 3339
    ({"datetime": "2024-06-02T00:00:00Z/2024-06-01T00:00:00Z"}, "datetime"),
    ({"limit": "0"}, "limit"),
    ({"limit": "10001"}, "limit"),
    ({"limit": "NaN"}, "limit"),
    ({"colour": "red"}, "colour"),               # unknown parameter (OGC: 400)
])
def test_bad_query_parameters_are_400_problems_naming_the_field(client, params, field):
    body = assert_problem(client.get("/collections/detections/items", params=params), 400, field)
    assert field in body["detail"]


def test_single_features_by_id_including_ids_with_slashes(client):
    feature = client.get("/collections/detections/items/A/0").json()
    assert feature["id"] == "A/0" and feature["properties"]["heading_deg"] == 45.0
    assert _rels(feature)["collection"]["href"].endswith("/collections/detections")
    assert client.get("/collections/alerts/items/A/0/555").json()["properties"]["severity"] == "critical"
    assert client.get("/collections/platforms/items/P-B").json()["properties"]["name"] == "Alpha B"
    area = client.get("/collections/protected-areas/items/777").json()
    assert area["geometry"]["type"] == "MultiPolygon" and len(area["geometry"]["coordinates"]) == 2
    assert_problem(client.get("/collections/detections/items/Z/9"), 404, "featureId")


def test_exports_are_attachments_that_gdal_reads(client, tmp_path):
    import pyogrio

    response = client.get("/exports/detections.geojson")
    assert response.headers["content-type"].startswith("application/geo+json")
    assert 'attachment; filename="detections.geojson"' in response.headers["content-disposition"]
    assert len(response.json()["features"]) == 5
    gpkg = client.get("/exports/alerts.gpkg")
    assert gpkg.headers["content-type"] == "application/geopackage+sqlite3"
    assert "attachment" in gpkg.headers["content-disposition"]
    path = tmp_path / "alerts.gpkg"
    path.write_bytes(gpkg.content)
    frame = pyogrio.read_dataframe(path, layer="alerts")
    assert sorted(frame["alert_id"]) == ["A/0/555", "A/1/555"] and frame.crs.to_epsg() == 4326
    areas = client.get("/exports/protected-areas.gpkg")
    path.write_bytes(areas.content)
    assert len(pyogrio.read_dataframe(path)) == 2
    assert_problem(client.get("/exports/detections.shp"), 404, "filename")
    assert_problem(client.get("/exports/ships.geojson"), 404, "filename")
