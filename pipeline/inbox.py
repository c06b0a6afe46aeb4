"""Find the Sentinel-2 products waiting in an inbox folder or a local STAC catalog.

An inbox holds products side by side: ``.SAFE`` folders and their ``.zip``, folders of band
GeoTIFFs, and STAC item JSON files. A STAC catalog or collection JSON (given as the inbox, or
lying in it) is followed through its ``child`` and ``item`` links to the item files.

Each product is reduced to a :class:`Product`: its path, the files that make it up, a cheap
*fingerprint* (relative names, sizes and modification times; no bytes read) and a content
*checksum* (SHA-256 over the relative names and bytes of those files). The fingerprint says
whether a product may have changed since the checksum was last computed, so an unchanged inbox is
scanned without reading any image.

Examples
--------
>>> from pathlib import Path
>>> import tempfile
>>> inbox = Path(tempfile.mkdtemp())
>>> find_products(inbox)
[]
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from vesselwatch.errors import InputError

log = logging.getLogger(__name__)

#: Names that mark a file or folder still being written (or hidden): never picked up.
_IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".incomplete")

#: A folder holding one of these is a STAC catalog to follow, not a product.
_CATALOG_NAMES = ("catalog.json", "collection.json")

#: Bytes read at a time while hashing.
_HASH_BLOCK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ProductFiles:
    """A product on disk and the files whose bytes define it.

    Attributes
    ----------
    path : Path
        The product as it is opened (SAFE folder or zip, band folder, STAC item JSON).
    files : tuple of Path
        Every file of the product, sorted; for a STAC item the item JSON then its local assets.
    root : Path
        Folder the file names are made relative to in the fingerprint and checksum, so a product
        moved elsewhere keeps its checksum.
    """

    path: Path
    files: tuple[Path, ...]
    root: Path

    def relative_names(self) -> list[str]:
        """POSIX names of :attr:`files` relative to :attr:`root`."""
        return [_relative(file, self.root) for file in self.files]


def _relative(file: Path, root: Path) -> str:
    try:
        return file.relative_to(root).as_posix()
    except ValueError:  # an asset outside the item's folder: keep its absolute name
        return file.as_posix()


def _is_in_progress(path: Path) -> bool:
    name = path.name
    return name.startswith((".", "~")) or name.lower().endswith(_IN_PROGRESS_SUFFIXES)


def _read_json(path: Path) -> dict | None:
    try:
        if path.stat().st_size > 10_000_000:
            return None
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _is_stac_item(document: dict) -> bool:
    return document.get("type") == "Feature" and isinstance(document.get("assets"), dict)


def _is_stac_catalog(document: dict) -> bool:
    return document.get("type") in {"Catalog", "Collection"} and isinstance(document.get("links"), list)


def _local_href(base: Path, href: str) -> Path | None:
    """The local file an href names (relative to ``base``'s folder), or None for remote ones."""
    parsed = urlparse(href)
    if parsed.scheme in {"", "file"}:
        raw = unquote(parsed.path if parsed.scheme == "file" else href)
        target = Path(raw)
        return target if target.is_absolute() else (base.parent / target)
    return None


def _catalog_items(catalog: Path, seen: set[Path]) -> Iterator[Path]:
    """STAC item files reachable from a catalog/collection through ``child`` and ``item`` links."""
    catalog = catalog.resolve()
    if catalog in seen:
        return
    seen.add(catalog)
    document = _read_json(catalog)
    if document is None:
        return
    for link in document.get("links", []):
        if not isinstance(link, dict) or link.get("rel") not in {"child", "item"}:
            continue
        target = _local_href(catalog, str(link.get("href", "")))
        if target is None or not target.is_file():
            continue
        linked = _read_json(target)
        if linked is None:
            continue
        if _is_stac_item(linked):
            yield target.resolve()
        elif _is_stac_catalog(linked):
            yield from _catalog_items(target, seen)


def find_products(inbox: str | Path) -> list[Path]:
    """Products in an inbox folder or reachable from a STAC catalog file, sorted by path.

    Parameters
    ----------
    inbox : str or Path
        A folder whose entries are products (``.SAFE`` folders, ``.zip`` files, band-GeoTIFF
        folders, STAC item ``.json`` files) or STAC catalogs to follow (a catalog or collection
        JSON, or a folder holding ``catalog.json`` / ``collection.json``); or a STAC catalog JSON.

    Returns
    -------
    list of Path
        One path per product, as :func:`pipeline.ingest.open_scene` accepts it. Hidden entries and
        names that mark an unfinished copy (``.part``, ``.tmp``, ...) are left out.

    Raises
    ------
    InputError
        ``inbox`` does not exist, or is a file that is not a STAC catalog.
    """
    inbox = Path(inbox)
    found: set[Path] = set()
    seen_catalogs: set[Path] = set()
    if inbox.is_file():
        document = _read_json(inbox)
        if document is None or not _is_stac_catalog(document):
            raise InputError(f"inbox {inbox}: a file inbox must be a STAC catalog or collection JSON")
        found.update(_catalog_items(inbox, seen_catalogs))
        return sorted(found)
    if not inbox.is_dir():
        raise InputError(f"inbox {inbox}: no such folder or STAC catalog")
    for entry in sorted(inbox.iterdir()):
        if _is_in_progress(entry):
            continue
        if entry.is_dir():
            catalogs = [entry / name for name in _CATALOG_NAMES if (entry / name).is_file()]
            if catalogs:
                for catalog in catalogs:
                    found.update(_catalog_items(catalog, seen_catalogs))
            else:
                found.add(entry.resolve())
        elif entry.suffix.lower() == ".zip":
            found.add(entry.resolve())
        elif entry.suffix.lower() == ".json":
            document = _read_json(entry)
            if document is None:
                continue
            if _is_stac_item(document):
                found.add(entry.resolve())
            elif _is_stac_catalog(document):
                found.update(_catalog_items(entry, seen_catalogs))
    # A folder that holds a catalog's items is the catalog's storage, not a product itself.
    items = [p for p in found if p.is_file() and p.suffix.lower() == ".json"]
    return sorted(p for p in found if not (p.is_dir() and any(p in item.parents for item in items)))


def product_files(path: str | Path) -> ProductFiles:
    """The files that make up a product.

    A folder contributes every file below it; a zip itself; a STAC item JSON itself plus every
    asset whose href names an existing local file.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return ProductFiles(path, tuple(files), path)
    files = [path]
    if path.suffix.lower() == ".json":
        document = _read_json(path) or {}
        assets = document.get("assets") if isinstance(document.get("assets"), dict) else {}
        for asset in assets.values():
            if not isinstance(asset, dict):
                continue
            target = _local_href(path, str(asset.get("href", "")))
            if target is not None and target.is_file():
                files.append(target)
        files = [files[0], *sorted(set(files[1:]) - {files[0]})]
    return ProductFiles(path, tuple(files), path.parent)


def fingerprint(product: ProductFiles) -> str:
    """SHA-256 (hex) of relative names, sizes and modification times (ns): cheap change detection."""
    digest = hashlib.sha256()
    for name, file in zip(product.relative_names(), product.files):
        stat = file.stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def checksum(product: ProductFiles) -> str:
    """SHA-256 (hex) of the product's content: each file's relative name, size and bytes, in order.

    Two copies of a product in different places have the same checksum; touching a file without
    changing it keeps the checksum; changing any byte, adding or renaming a file changes it.
    """
    digest = hashlib.sha256()
    for name, file in zip(product.relative_names(), product.files):
        digest.update(f"{name}\0{file.stat().st_size}\n".encode())
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(_HASH_BLOCK_BYTES), b""):
                digest.update(block)
    return digest.hexdigest()


def newest_change_age_s(product: ProductFiles, now: float | None = None) -> float:
    """Seconds since the most recent modification of any file of the product (inf if no file)."""
    now = time.time() if now is None else now
    mtimes = [file.stat().st_mtime for file in product.files]
    return now - max(mtimes) if mtimes else float("inf")


def iter_product_files(paths: Iterable[Path]) -> Iterator[ProductFiles]:
    """:func:`product_files` of each path, skipping any that vanished meanwhile."""
    for path in paths:
        try:
            yield product_files(path)
        except FileNotFoundError:
            log.info("product %s vanished while being listed", path)
