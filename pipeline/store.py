"""The detection store: scenes, their detections and alerts in SQLite (default) or PostgreSQL.

Writes are per scene and atomic: :meth:`Store.replace_scene` deletes a scene's earlier rows
(detections and alerts) and inserts the new ones in one transaction, so re-processing a scene never
duplicates anything and a crash part-way leaves the previous state intact. With
``overlap_radius_m`` it also merges the copies of one vessel seen by two overlapping tiles of the
same pass (see :mod:`pipeline.dedup`), in the same transaction.

Examples
--------
>>> store = Store.connect("sqlite://")
>>> store.count_detections()
0
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from pipeline.dedup import DEFAULT_PASS_WINDOW_S, Copies, OverlapDecision, edge_distance_px, resolve_copies

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
    sa.Column("wake_on_land", sa.Boolean, nullable=True,
              doc="True when the heading was withdrawn because the wake the model found lies on land."),
    sa.Column("keypoints_json", sa.Text, nullable=True, doc="Keypoints in lon/lat and chip pixels."),
    sa.Column("enrichment_json", sa.Text, nullable=True, doc="Nearest platform, coast, areas."),
)

alerts_table = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(480), primary_key=True, doc="``<detection_id>/<area_id>``: stable."),
    sa.Column(
        "scene_id",
        sa.String(200),
        sa.ForeignKey("scenes.scene_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "detection_id",
        sa.String(240),
        sa.ForeignKey("detections.detection_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("area_id", sa.String(200), nullable=False, index=True),
    sa.Column("area_name", sa.Text, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False, doc="'inside' or 'approach'."),
    sa.Column("severity", sa.String(16), nullable=False, doc="'critical', 'high', 'medium' or 'low'."),
    sa.Column("acquired", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lon", sa.Float, nullable=False, doc="Vessel longitude, degrees WGS84."),
    sa.Column("lat", sa.Float, nullable=False, doc="Vessel latitude, degrees WGS84."),
    sa.Column("distance_km", sa.Float, nullable=False, doc="Vessel to the area boundary; 0 inside."),
    sa.Column("entry_km", sa.Float, nullable=True, doc="Along the heading to the entry point (nearest in the cone)."),
    sa.Column("entry_lon", sa.Float, nullable=True),
    sa.Column("entry_lat", sa.Float, nullable=True),
    sa.Column("cone_fraction", sa.Float, nullable=True, doc="Share of the +-2 sigma heading cone that enters."),
    sa.Column("heading_deg", sa.Float, nullable=True),
    sa.Column("heading_uncertainty_deg", sa.Float, nullable=True),
    sa.Column("heading_ambiguous", sa.Boolean, nullable=True),
    sa.Column("direction", sa.String(8), nullable=True, doc="'forward', 'reverse' or 'both' (ambiguous headings)."),
    sa.Column("speed_kn", sa.Float, nullable=True),
    sa.Column("time_to_entry_min", sa.Float, nullable=True, doc="NULL when no speed is known."),
    sa.Column("details_json", sa.Text, nullable=True, doc="Radius, look-ahead, cone samples, notes."),
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
    wake_on_land: bool | None = None
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


@dataclass(frozen=True)
class AlertRecord:
    """One protected-area alert as stored: a vessel inside an area, or heading into it.

    Distances in km, angles in degrees clockwise from true north, lon/lat in WGS84 degrees;
    see ``docs/alerts.md`` for the rules and severity levels.
    """

    alert_id: str
    scene_id: str
    detection_id: str
    area_id: str
    kind: str
    severity: str
    lon: float
    lat: float
    distance_km: float
    area_name: str | None = None
    acquired: datetime | None = None
    entry_km: float | None = None
    entry_lon: float | None = None
    entry_lat: float | None = None
    cone_fraction: float | None = None
    heading_deg: float | None = None
    heading_uncertainty_deg: float | None = None
    heading_ambiguous: bool | None = None
    direction: str | None = None
    speed_kn: float | None = None
    time_to_entry_min: float | None = None
    details: dict[str, Any] | None = None

    def to_row(self) -> dict[str, Any]:
        """The record as a row for the ``alerts`` table."""
        row = asdict(self)
        row["details_json"] = _dumps(row.pop("details"))
        return row

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> AlertRecord:
        """Build a record back from an ``alerts`` row."""
        values = dict(row)
        values["details"] = _loads(values.pop("details_json"))
        values["acquired"] = _as_utc(values["acquired"])
        return cls(**values)


@dataclass(frozen=True)
class StoredScene:
    """What :meth:`Store.replace_scene` wrote: counts after merging overlap copies."""

    scene_id: str
    n_detections: int
    n_alerts: int
    merged: list[tuple[str, str]] = field(default_factory=list)
    """``(new detection id, stored detection id)`` pairs found to be one vessel (one of each pair kept)."""


#: Key of the PostgreSQL advisory lock serialising overlap merges (any constant; "vesselw" in ASCII).
_OVERLAP_LOCK_KEY = 0x76657373656C77


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, allow_nan=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _posix(value: datetime | None) -> float:
    """POSIX seconds of an aware (or UTC-naive) time; NaN for ``None``."""
    if value is None:
        return float("nan")
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


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


def _create_tables(engine: sa.Engine, attempts: int = 5) -> None:
    """Create the missing tables, also when other processes do the same at the same moment.

    Several API workers or flow runs opening a new database all see no table and all issue
    ``CREATE TABLE``; the losers fail with "already exists" (SQLite) or a duplicate catalog row
    (PostgreSQL). Looking again then finds the winner's tables and creates only what is missing.
    """
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            _add_missing_columns(engine)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            log.debug("tables or columns added concurrently by another connection; checking again")


def _add_missing_columns(engine: sa.Engine) -> None:
    """Add the nullable columns a database made by an earlier version lacks (``ALTER TABLE ... ADD COLUMN``).

    Columns are only ever added to this schema, and only nullable ones, so an existing store opens with
    its rows intact: the new fields read ``None`` for what was stored before them. The role opening
    an older store needs the right to alter its tables; on PostgreSQL the change waits at most 30 s
    for the table's lock (then fails with a clear error rather than hang behind a long transaction).
    """
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column for column in table.columns if column.name not in present]
        for column in missing:
            if not column.nullable:
                raise RuntimeError(f"table {table.name!r} lacks the required column {column.name!r}: "
                                   "this database was made by an incompatible version")
            spec = sa.schema.CreateColumn(column).compile(dialect=engine.dialect)
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL lock_timeout = '30s'")
                connection.exec_driver_sql(f"ALTER TABLE {engine.dialect.identifier_preparer.quote(table.name)} "
                                           f"ADD COLUMN {spec}")
            log.info("added column %s.%s to the store", table.name, column.name)


class Store:
    """Scenes, detections and alerts behind one SQLAlchemy engine.

    Parameters
    ----------
    engine
        An engine for SQLite or PostgreSQL; tables are created when missing.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # An in-memory SQLite database is one connection that every thread shares (StaticPool):
        # without taking turns, two threads interleave statements in one transaction, and one's
        # rollback or cursor undoes the other's half-written scene.
        self._turns = threading.RLock() if isinstance(engine.pool, sa.pool.StaticPool) else nullcontext()
        _create_tables(engine)

    @contextmanager
    def connection(self) -> Iterator[sa.Connection]:
        """A connection for reading (``with store.connection() as c``); one thread at a time on a shared one."""
        with self._turns, self.engine.connect() as connection:
            yield connection

    def _rows(self, query: sa.Select) -> Iterator[sa.RowMapping]:
        """Rows of ``query`` streamed; on a shared connection fetched first, so that no turn is held between yields."""
        if isinstance(self._turns, nullcontext):
            with self.connection() as connection:
                yield from connection.execute(query).mappings()
        else:
            with self.connection() as connection:
                rows = connection.execute(query).mappings().all()
            yield from rows

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A connection in a transaction committed on success, rolled back on error; turns as :meth:`connection`."""
        with self._turns, self.engine.begin() as connection:
            yield connection

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

    def replace_scene(
        self,
        scene: SceneRecord,
        records: Sequence[DetectionRecord],
        alerts: Sequence[AlertRecord] | None = None,
        *,
        overlap_radius_m: float | None = None,
        pass_window_s: float = DEFAULT_PASS_WINDOW_S,
    ) -> StoredScene:
        """Store a scene, its detections and alerts, replacing earlier rows of that scene atomically.

        Parameters
        ----------
        scene
            The scene row; ``n_detections`` must equal ``len(records)``.
        records
            The scene's detections.
        alerts
            The scene's alerts; each must refer to one of ``records``. ``None`` stores none.
        overlap_radius_m
            When given, detections of *other* scenes of the same pass (acquired within
            ``pass_window_s``) within this distance are copies of the same vessel: one copy of each
            is kept (see :mod:`pipeline.dedup`), the other deleted with its alerts, in this same
            transaction. ``None`` (default) stores every record as it is.
        pass_window_s
            Largest acquisition-time difference (seconds) between scenes of one pass.

        Returns
        -------
        StoredScene
            Counts actually stored for this scene and the copies merged.
        """
        alerts = list(alerts or [])
        if scene.n_detections != len(records):
            raise ValueError(
                f"scene {scene.scene_id!r}: n_detections={scene.n_detections} but {len(records)} records"
            )
        foreign = {r.scene_id for r in records} - {scene.scene_id}
        foreign |= {a.scene_id for a in alerts} - {scene.scene_id}
        if foreign:
            raise ValueError(f"scene {scene.scene_id!r}: records belong to other scenes {sorted(foreign)}")
        orphans = {a.detection_id for a in alerts} - {r.detection_id for r in records}
        if orphans:
            raise ValueError(f"scene {scene.scene_id!r}: alerts refer to unknown detections {sorted(orphans)[:5]}")
        with self.transaction() as connection:
            if overlap_radius_m is not None and connection.dialect.name == "postgresql":
                # Two scenes of one pass stored at once would each miss the other's uncommitted
                # copies and both keep theirs: merging transactions take turns. (SQLite needs no
                # lock: the DELETE below already holds its database-wide write lock.)
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _OVERLAP_LOCK_KEY})
            connection.execute(sa.delete(alerts_table).where(alerts_table.c.scene_id == scene.scene_id))
            connection.execute(sa.delete(detections).where(detections.c.scene_id == scene.scene_id))
            connection.execute(sa.delete(scenes).where(scenes.c.scene_id == scene.scene_id))
            merged: list[tuple[str, str]] = []
            if overlap_radius_m is not None and records:
                decision = self._resolve_overlaps(connection, scene, records, overlap_radius_m, pass_window_s)
                records = [r for r, drop in zip(records, decision.drop_new) if not drop]
                self._delete_detections(connection, decision.drop_old)
                merged = decision.pairs
            kept_ids = {r.detection_id for r in records}
            alerts = [a for a in alerts if a.detection_id in kept_ids]
            connection.execute(sa.insert(scenes), [{**asdict(scene), "n_detections": len(records)}])
            if records:
                connection.execute(sa.insert(detections), [r.to_row() for r in records])
            if alerts:
                connection.execute(sa.insert(alerts_table), [a.to_row() for a in alerts])
        log.info(
            "stored scene %s with %d detections, %d alerts (%d overlap copies merged)",
            scene.scene_id, len(records), len(alerts), len(merged),
        )
        return StoredScene(scene.scene_id, len(records), len(alerts), merged)

    def _resolve_overlaps(
        self,
        connection: sa.Connection,
        scene: SceneRecord,
        records: Sequence[DetectionRecord],
        radius_m: float,
        pass_window_s: float,
    ) -> OverlapDecision:
        """Match ``records`` against stored detections of other scenes of the same pass."""
        new = Copies(
            detection_id=[r.detection_id for r in records],
            scene_id=[r.scene_id for r in records],
            lon=[r.lon for r in records],
            lat=[r.lat for r in records],
            edge_px=edge_distance_px([r.row for r in records], [r.col for r in records], scene.height, scene.width),
            acquired_s=[_posix(r.acquired or scene.acquired) for r in records],
        )
        times = [t for t in (r.acquired or scene.acquired for r in records) if t is not None]
        if not times:
            return OverlapDecision(np.zeros(len(records), dtype=bool))
        window = timedelta(seconds=pass_window_s)
        margin_deg = radius_m / 111_000.0 + 1e-6
        query = (
            sa.select(
                detections.c.detection_id, detections.c.scene_id, detections.c.lon, detections.c.lat,
                detections.c.row, detections.c.col, detections.c.acquired, scenes.c.width, scenes.c.height,
            )
            .join(scenes, scenes.c.scene_id == detections.c.scene_id)
            .where(
                detections.c.scene_id != scene.scene_id,
                detections.c.acquired >= min(times) - window,
                detections.c.acquired <= max(times) + window,
                detections.c.lat >= float(np.min(new.lat)) - margin_deg,
                detections.c.lat <= float(np.max(new.lat)) + margin_deg,
            )
        )
        rows = connection.execute(query).mappings().all()
        old = Copies(
            detection_id=[row["detection_id"] for row in rows],
            scene_id=[row["scene_id"] for row in rows],
            lon=[row["lon"] for row in rows],
            lat=[row["lat"] for row in rows],
            edge_px=edge_distance_px(
                [row["row"] for row in rows], [row["col"] for row in rows],
                [row["height"] for row in rows], [row["width"] for row in rows],
            ),
            acquired_s=[_posix(_as_utc(row["acquired"])) for row in rows],
        )
        return resolve_copies(new, old, radius_m=radius_m, pass_window_s=pass_window_s)

    @staticmethod
    def _delete_detections(connection: sa.Connection, detection_ids: Sequence[str]) -> None:
        """Delete stored detections (and their alerts), keeping their scenes' counts right."""
        if not detection_ids:
            return
        rows = connection.execute(
            sa.select(detections.c.scene_id, sa.func.count())
            .where(detections.c.detection_id.in_(detection_ids))
            .group_by(detections.c.scene_id)
        ).all()
        connection.execute(sa.delete(alerts_table).where(alerts_table.c.detection_id.in_(detection_ids)))
        connection.execute(sa.delete(detections).where(detections.c.detection_id.in_(detection_ids)))
        for scene_id, count in rows:
            connection.execute(
                sa.update(scenes)
                .where(scenes.c.scene_id == scene_id)
                .values(n_detections=scenes.c.n_detections - count)
            )

    def scene(self, scene_id: str) -> SceneRecord | None:
        """The stored scene with this id, or ``None``."""
        with self.connection() as connection:
            row = connection.execute(sa.select(scenes).where(scenes.c.scene_id == scene_id)).mappings().first()
        if row is None:
            return None
        values = dict(row)
        values["acquired"] = _as_utc(values["acquired"])
        values["processed_at"] = _as_utc(values["processed_at"])
        return SceneRecord(**values)

    def scene_ids(self) -> list[str]:
        """Ids of every stored scene, sorted."""
        with self.connection() as connection:
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
        query = _filtered(query, detections, scene_id=scene_id, bbox=bbox, start=start, end=end)
        for row in self._rows(query):
            yield DetectionRecord.from_row(row)

    def detection(self, detection_id: str) -> DetectionRecord | None:
        """The detection with this id, or ``None``."""
        query = sa.select(detections).where(detections.c.detection_id == detection_id)
        with self.connection() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else DetectionRecord.from_row(row)

    def count_detections(self, scene_id: str | None = None) -> int:
        """Number of stored detections (of one scene, or all)."""
        query = sa.select(sa.func.count()).select_from(detections)
        if scene_id is not None:
            query = query.where(detections.c.scene_id == scene_id)
        with self.connection() as connection:
            return int(connection.execute(query).scalar_one())

    def iter_alerts(
        self,
        *,
        scene_id: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        severities: Sequence[str] | None = None,
    ) -> Iterator[AlertRecord]:
        """Alerts ordered by id, filtered like :meth:`iter_detections` (bbox on the vessel position).

        Parameters
        ----------
        severities
            Only alerts of these severities (e.g. ``("critical", "high")``).
        """
        query = sa.select(alerts_table).order_by(alerts_table.c.alert_id)
        query = _filtered(query, alerts_table, scene_id=scene_id, bbox=bbox, start=start, end=end)
        if severities is not None:
            query = query.where(alerts_table.c.severity.in_(list(severities)))
        for row in self._rows(query):
            yield AlertRecord.from_row(row)

    def alert(self, alert_id: str) -> AlertRecord | None:
        """The alert with this id, or ``None``."""
        query = sa.select(alerts_table).where(alerts_table.c.alert_id == alert_id)
        with self.connection() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else AlertRecord.from_row(row)

    def count_alerts(self, scene_id: str | None = None) -> int:
        """Number of stored alerts (of one scene, or all)."""
        query = sa.select(sa.func.count()).select_from(alerts_table)
        if scene_id is not None:
            query = query.where(alerts_table.c.scene_id == scene_id)
        with self.connection() as connection:
            return int(connection.execute(query).scalar_one())


def _filtered(
    query: sa.Select,
    table: sa.Table,
    *,
    scene_id: str | None,
    bbox: tuple[float, float, float, float] | None,
    start: datetime | None,
    end: datetime | None,
) -> sa.Select:
    """Add scene, ``(west, south, east, north)`` bbox (west > east crosses 180°) and time filters."""
    if scene_id is not None:
        query = query.where(table.c.scene_id == scene_id)
    if bbox is not None:
        west, south, east, north = bbox
        query = query.where(table.c.lat >= south, table.c.lat <= north)
        if west <= east:
            query = query.where(table.c.lon >= west, table.c.lon <= east)
        else:
            query = query.where(sa.or_(table.c.lon >= west, table.c.lon <= east))
    if start is not None:
        query = query.where(table.c.acquired >= start)
    if end is not None:
        query = query.where(table.c.acquired <= end)
    return query
