"""The detection store: scenes and their detections in SQLite (default) or PostgreSQL.

Writes are per scene and atomic: :meth:`Store.replace_scene` deletes a scene's earlier rows and
inserts the new ones in one transaction, so re-processing a scene never duplicates anything and a
crash part-way leaves the previous state intact.

Examples
--------
>>> store = Store.connect("sqlite://")
>>> store.count_detections()
0
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

metadata = sa.MetaData()

scenes = sa.Table(
    "scenes",
    metadata,
    sa.Column("scene_id", sa.String(200), primary_key=True, doc="Product id, e.g. the SAFE name."),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("acquired", sa.DateTime(timezone=True), nullable=True, doc="Acquisition start, UTC."),
    sa.Column("tile_id", sa.String(16), nullable=True),
    sa.Column("level", sa.String(8), nullable=True),
    sa.Column("baseline", sa.String(8), nullable=True),
    sa.Column("crs", sa.Text, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("footprint_wkt", sa.Text, nullable=True, doc="Valid-data footprint, lon/lat WKT."),
    sa.Column("n_detections", sa.Integer, nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)

detections = sa.Table(
    "detections",
    metadata,
    sa.Column("detection_id", sa.String(240), primary_key=True),
    sa.Column(
        "scene_id",
        sa.String(200),
        sa.ForeignKey("scenes.scene_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("acquired", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lon", sa.Float, nullable=False, doc="Centroid longitude, degrees WGS84."),
    sa.Column("lat", sa.Float, nullable=False, doc="Centroid latitude, degrees WGS84."),
    sa.Column("row", sa.Float, nullable=False, doc="Centroid row in the scene grid (pixel units)."),
    sa.Column("col", sa.Float, nullable=False, doc="Centroid column in the scene grid (pixel units)."),
    sa.Column("length_m", sa.Float, nullable=False),
    sa.Column("width_m", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("heading_deg", sa.Float, nullable=True, doc="Clockwise from true north; NULL if unknown."),
    sa.Column("heading_uncertainty_deg", sa.Float, nullable=True, doc="One sigma, degrees."),
    sa.Column("heading_ambiguous", sa.Boolean, nullable=True, doc="True when 180° is unresolved."),
    sa.Column("keypoints_json", sa.Text, nullable=True, doc="Keypoints in lon/lat and chip pixels."),
    sa.Column("enrichment_json", sa.Text, nullable=True, doc="Nearest platform, coast, areas."),
)


@dataclass(frozen=True)
class SceneRecord:
    """One processed scene as stored."""

    scene_id: str
    path: str
    crs: str
    width: int
    height: int
    n_detections: int
    acquired: datetime | None = None
    tile_id: str | None = None
    level: str | None = None
    baseline: str | None = None
    footprint_wkt: str | None = None
    processed_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True)
class DetectionRecord:
    """One detected vessel as stored; angles in degrees, lengths in metres, lon/lat in WGS84."""

    detection_id: str
    scene_id: str
    lon: float
    lat: float
    row: float
    col: float
    length_m: float
    width_m: float
    score: float
    acquired: datetime | None = None
    heading_deg: float | None = None
    heading_uncertainty_deg: float | None = None
    heading_ambiguous: bool | None = None
    keypoints: dict[str, Any] | None = None
    enrichment: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        """The record as a row for the ``detections`` table (JSON fields serialised)."""
        row = asdict(self)
        row["keypoints_json"] = _dumps(row.pop("keypoints"))
        row["enrichment_json"] = _dumps(row.pop("enrichment"))
        return row

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> DetectionRecord:
        """Build a record back from a ``detections`` row."""
        values = dict(row)
        values["keypoints"] = _loads(values.pop("keypoints_json"))
        values["enrichment"] = _loads(values.pop("enrichment_json"))
        values["acquired"] = _as_utc(values["acquired"])
        return cls(**values)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _as_utc(value: datetime | None) -> datetime | None:
    """SQLite drops tzinfo; every time the store holds is UTC, so put it back."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def sqlite_url(path: str | Path) -> str:
    """SQLAlchemy URL of a SQLite database file."""
    return f"sqlite:///{Path(path).resolve().as_posix()}"


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store:
    """Scenes and detections behind one SQLAlchemy engine.

    Parameters
    ----------
    engine
        An engine for SQLite or PostgreSQL; tables are created when missing.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    @classmethod
    def connect(cls, url: str) -> Store:
        """Open (and create if needed) the store at a SQLAlchemy URL or a SQLite file path."""
        if "://" not in url:
            url = sqlite_url(url)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if url in {"sqlite://", "sqlite:///:memory:"}:
            # One shared connection, or each thread (FastAPI's worker pool) sees its own empty database.
            options = {"poolclass": sa.pool.StaticPool, "connect_args": {"check_same_thread": False}}
        engine = sa.create_engine(url, **options)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return cls(engine)

    def replace_scene(self, scene: SceneRecord, records: Sequence[DetectionRecord]) -> None:
        """Store a scene and its detections, replacing earlier rows of that scene atomically."""
        if scene.n_detections != len(records):
            raise ValueError(
                f"scene {scene.scene_id!r}: n_detections={scene.n_detections} but {len(records)} records"
            )
        foreign = {r.scene_id for r in records} - {scene.scene_id}
        if foreign:
            raise ValueError(f"scene {scene.scene_id!r}: records belong to other scenes {sorted(foreign)}")
        with self.engine.begin() as connection:
            connection.execute(sa.delete(detections).where(detections.c.scene_id == scene.scene_id))
            connection.execute(sa.delete(scenes).where(scenes.c.scene_id == scene.scene_id))
            connection.execute(sa.insert(scenes), [asdict(scene)])
            if records:
                connection.execute(sa.insert(detections), [r.to_row() for r in records])
        log.info("stored scene %s with %d detections", scene.scene_id, len(records))

    def scene(self, scene_id: str) -> SceneRecord | None:
        """The stored scene with this id, or ``None``."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(scenes).where(scenes.c.scene_id == scene_id)).mappings().first()
        if row is None:
            return None
        values = dict(row)
        values["acquired"] = _as_utc(values["acquired"])
        values["processed_at"] = _as_utc(values["processed_at"])
        return SceneRecord(**values)

    def scene_ids(self) -> list[str]:
        """Ids of every stored scene, sorted."""
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(scenes.c.scene_id).order_by(scenes.c.scene_id)).scalars())

    def iter_detections(
        self,
        *,
        scene_id: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Iterator[DetectionRecord]:
        """Detections ordered by id, optionally filtered.

        Parameters
        ----------
        scene_id
            Only this scene's detections.
        bbox
            ``(west, south, east, north)`` in degrees; ``west > east`` crosses the antimeridian.
        start, end
            Inclusive acquisition-time bounds (timezone-aware, UTC).
        """
        query = sa.select(detections).order_by(detections.c.detection_id)
        if scene_id is not None:
            query = query.where(detections.c.scene_id == scene_id)
        if bbox is not None:
            west, south, east, north = bbox
            query = query.where(detections.c.lat >= south, detections.c.lat <= north)
            if west <= east:
                query = query.where(detections.c.lon >= west, detections.c.lon <= east)
            else:
                query = query.where(sa.or_(detections.c.lon >= west, detections.c.lon <= east))
        if start is not None:
            query = query.where(detections.c.acquired >= start)
        if end is not None:
            query = query.where(detections.c.acquired <= end)
        with self.engine.connect() as connection:
            for row in connection.execute(query).mappings():
                yield DetectionRecord.from_row(row)

    def detection(self, detection_id: str) -> DetectionRecord | None:
        """The detection with this id, or ``None``."""
        query = sa.select(detections).where(detections.c.detection_id == detection_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else DetectionRecord.from_row(row)

    def count_detections(self, scene_id: str | None = None) -> int:
        """Number of stored detections (of one scene, or all)."""
        query = sa.select(sa.func.count()).select_from(detections)
        if scene_id is not None:
            query = query.where(detections.c.scene_id == scene_id)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
