"""Inbox discovery finds every product layout and checksums follow content, not names or times."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipeline.inbox import checksum, find_products, fingerprint, newest_change_age_s, product_files
from vesselwatch.errors import InputError


def _band_folder(folder: Path, payload: bytes = b"pixels") -> Path:
    folder.mkdir(parents=True)
    for band in ("B02", "B03", "B04", "B08", "B11"):
        (folder / f"T31UET_{band}.tif").write_bytes(payload + band.encode())
    (folder / "metadata.json").write_text(json.dumps({"product_id": folder.name}))
    return folder


def _stac_item(path: Path, assets: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    for href in assets.values():
        if "://" not in href:
            (path.parent / href).parent.mkdir(parents=True, exist_ok=True)
            (path.parent / href).write_bytes(b"cog " + href.encode())
    item = {"type": "Feature", "id": path.stem, "properties": {},
            "assets": {band: {"href": href} for band, href in assets.items()}, "links": []}
    path.write_text(json.dumps(item))
    return path


def test_inbox_lists_folders_zips_items_and_catalog_items(tmp_path):
    inbox = tmp_path / "inbox"
    safe = _band_folder(inbox / "S2A_MSIL1C_X.SAFE")
    tiffs = _band_folder(inbox / "scene_geotiff")
    zipped = inbox / "S2B_MSIL2A_Y.zip"
    zipped.write_bytes(b"PK zip")
    item = _stac_item(inbox / "item_a.json", {"B02": "item_a_B02.tif", "thumbnail": "https://x/y.png"})
    catalog_item = _stac_item(inbox / "catalog" / "items" / "c1" / "c1.json", {"B02": "B02.tif"})
    (inbox / "catalog" / "items" / "collection.json").write_text(json.dumps({
        "type": "Collection", "links": [{"rel": "item", "href": "c1/c1.json"}, {"rel": "root", "href": "../../catalog.json"}]}))
    (inbox / "catalog" / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "links": [{"rel": "child", "href": "./items/collection.json"}, {"rel": "self", "href": "x"}]}))
    (inbox / "truth.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    (inbox / "notes.txt").write_text("not a product")
    _band_folder(inbox / ".hidden")
    _band_folder(inbox / "copying.SAFE.part")
    (inbox / "half.zip.tmp").write_bytes(b"PK")

    found = find_products(inbox)
    # The catalog folder is storage of the catalog's items, not a product of its own.
    expected = sorted(p.resolve() for p in (safe, tiffs, zipped, item, catalog_item))
    assert found == expected
    assert find_products(inbox / "catalog" / "catalog.json") == [catalog_item.resolve()]


def test_a_missing_inbox_or_a_plain_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        find_products(tmp_path / "nowhere")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InputError, match="STAC catalog"):
        find_products(tmp_path / "x.json")


def test_item_files_are_the_item_and_its_local_assets(tmp_path):
    item = _stac_item(tmp_path / "a" / "item.json", {"B02": "bands/B02.tif", "B03": "bands/B03.tif",
                                                      "remote": "https://example.org/B04.tif"})
    files = product_files(item)
    assert files.files[0] == item
    assert [p.name for p in files.files[1:]] == ["B02.tif", "B03.tif"]
    assert files.relative_names() == ["item.json", "bands/B02.tif", "bands/B03.tif"]


def test_checksum_follows_content_and_fingerprint_follows_metadata(tmp_path):
    original = _band_folder(tmp_path / "inbox" / "S2A.SAFE")
    copy = tmp_path / "elsewhere" / "renamed.SAFE"
    shutil.copytree(original, copy)
    base = product_files(original)
    base_checksum, base_fingerprint = checksum(base), fingerprint(base)
    assert checksum(product_files(copy)) == base_checksum

    band = original / "T31UET_B08.tif"
    stat = band.stat()
    os.utime(band, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    touched = product_files(original)
    assert checksum(touched) == base_checksum and fingerprint(touched) != base_fingerprint

    band.write_bytes(b"pixelsB0X")  # same size, one byte differs
    assert checksum(product_files(original)) != base_checksum

    shutil.copytree(copy, tmp_path / "third.SAFE")
    (tmp_path / "third.SAFE" / "T31UET_B11.tif").rename(tmp_path / "third.SAFE" / "T31UET_B12.tif")
    assert checksum(product_files(tmp_path / "third.SAFE")) != checksum(product_files(copy))


def test_age_of_the_newest_change(tmp_path):
    product = _band_folder(tmp_path / "p")
    files = product_files(product)
    for file in files.files:
        os.utime(file, (1_000_000, 1_000_000))
    os.utime(files.files[2], (1_000_050, 1_000_050))
    assert newest_change_age_s(files, now=1_000_060) == pytest.approx(10.0)
