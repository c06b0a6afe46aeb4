"""The product registry: which products were seen, processed or quarantined, keyed by content.

A product is identified by its product id *and* its content checksum (see :mod:`pipeline.inbox`),
so a product that changes on disk is processed again, while a copy of a processed product under
another name is not. Two tables live next to the store's own (they are registered on
:data:`pipeline.store.metadata`, so :meth:`pipeline.store.Store.connect` creates them):

``monitored_products``
    One row per (product id, checksum): status, attempts, counts, last error, and the fingerprint
    (names, sizes, times) its checksum was computed from, so unchanged files are not re-hashed.
``quarantined_products``
    Products that failed for good, with the reason; a later pass skips them until released.

Crash safety comes from the order of writes, not from this module alone: a product is *claimed*
(status ``processing``, ``attempts + 1``) before its scene is processed, the store writes the
scene in one transaction, and only after that commit is the product marked ``done``. A process
killed anywhere in between leaves the product ``processing``; the next pass processes it again and
the store's replace-by-scene makes the result identical. A product that keeps killing its process
runs out of attempts and is quarantined.

Every function takes a SQLAlchemy engine and works on SQLite and PostgreSQL.

Examples
--------
>>> from pipeline.store import Store
>>> engine = Store.connect("sqlite://").engine
>>> key = ProductKey("S2A_TEST", "ab" * 32)
>>> claim(engine, key, path="/inbox/S2A_TEST", fingerprint="f" * 64)
1
>>> mark_done(engine, key, n_detections=3)
>>> product_entries(engine)[key].status
'done'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

import sqlalchemy as sa

from pipeline.store import metadata

log = logging.getLogger(__name__)

#: Registry statuses: claimed and not finished (or its process died), processed, failed with a
#: transient error (tried again next pass), failed for good.
PROCESSING, DONE, FAILED, QUARANTINED = "processing", "done", "failed", "quarantined"
STATUSES = (PROCESSING, DONE, FAILED, QUARANTINED)

monitored_products = sa.Table(
    "monitored_products",
    metadata,
    sa.Column("product_id", sa.String(200), primary_key=True),
    sa.Column("checksum", sa.String(64), primary_key=True, doc="SHA-256 of the product's content."),
    sa.Column("path", sa.Text, nullable=False, doc="Where the product was last seen."),
    sa.Column("fingerprint", sa.String(64), nullable=False, doc="SHA-256 of names, sizes, mtimes."),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, doc="Times processing was started."),
    sa.Column("claimed_by", sa.String(64), nullable=True, doc="Run that last started it (a task run id)."),
    sa.Column("n_detections", sa.Integer, nullable=True),
    sa.Column("n_alerts", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_monitored_products_path", "path", "fingerprint"),
)

quarantined_products = sa.Table(
    "quarantined_products",
    metadata,
    sa.Column("product_id", sa.String(200), primary_key=True),
    sa.Column("checksum", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, doc="The error that made the product fail for good."),
    sa.Column("error_type", sa.String(200), nullable=False, doc="Class name of that error."),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
)


class ProductKey(NamedTuple):
    """What identifies a product version: its id and its content checksum."""

    product_id: str
    checksum: str


@dataclass(frozen=True)
class ProductEntry:
    """One row of ``monitored_products``; times are UTC."""

    product_id: str
    checksum: str
    path: str
    fingerprint: str
    status: str
    attempts: int
    n_detections: int | None
    n_alerts: int | None
    last_error: str | None
    first_seen_at: datetime
    updated_at: datetime
    claimed_by: str | None = None

    @property
    def key(self) -> ProductKey:
        """The registry key of this entry."""
        return ProductKey(self.product_id, self.checksum)


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantined product; ``reason`` is the error message, ``quarantined_at`` UTC."""

    product_id: str
    checksum: str
    path: str
    reason: str
    error_type: str
    attempts: int
    quarantined_at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    """Times as UTC: SQLite hands back naive datetimes, PostgreSQL those of the server's zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _entry(row: sa.RowMapping) -> ProductEntry:
    values = dict(row)
    values["first_seen_at"] = _utc(values["first_seen_at"])
    values["updated_at"] = _utc(values["updated_at"])
    return ProductEntry(**values)


def _insert(connection: sa.Connection, table: sa.Table) -> Any:
    """A dialect ``INSERT`` that supports ``ON CONFLICT`` (SQLite and PostgreSQL)."""
    name = connection.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"registry: database dialect {name!r} is not supported (SQLite, PostgreSQL)")
    return insert(table)


def _key_clause(table: sa.Table, key: ProductKey) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.product_id == key.product_id, table.c.checksum == key.checksum)


def _chunks(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# -- reading ---------------------------------------------------------------------------------

def known_checksums(engine: sa.Engine, fingerprints: Mapping[str, str]) -> dict[str, ProductKey]:
    """Keys already computed for products whose files have not changed since.

    Parameters
    ----------
    fingerprints
        Product path → current fingerprint (see :func:`pipeline.inbox.fingerprint`).

    Returns
    -------
    dict
        Product path → :class:`ProductKey`, for each path whose stored fingerprint is the current one.
    """
    table = monitored_products
    found: dict[str, ProductKey] = {}
    paths = sorted(fingerprints)
    with engine.connect() as connection:
        for chunk in _chunks(paths):
            query = sa.select(table.c.path, table.c.fingerprint, table.c.product_id, table.c.checksum).where(
                table.c.path.in_(chunk)
            )
            for row in connection.execute(query):
                if fingerprints[row.path] == row.fingerprint:
                    found[row.path] = ProductKey(row.product_id, row.checksum)
    return found


def product_entries(engine: sa.Engine, keys: Iterable[ProductKey] | None = None) -> dict[ProductKey, ProductEntry]:
    """Registry entries by key: all of them, or those of ``keys`` that exist."""
    table = monitored_products
    entries: dict[ProductKey, ProductEntry] = {}
    with engine.connect() as connection:
        if keys is None:
            for row in connection.execute(sa.select(table).order_by(table.c.product_id)).mappings():
                entry = _entry(row)
                entries[entry.key] = entry
            return entries
        wanted = set(keys)
        ids = sorted({key.product_id for key in wanted})
        for chunk in _chunks(ids):
            for row in connection.execute(sa.select(table).where(table.c.product_id.in_(chunk))).mappings():
                entry = _entry(row)
                if entry.key in wanted:
                    entries[entry.key] = entry
    return entries


def quarantined(engine: sa.Engine) -> list[QuarantineEntry]:
    """Every quarantined product, most recent first."""
    table = quarantined_products
    query = sa.select(table).order_by(table.c.quarantined_at.desc(), table.c.product_id)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [QuarantineEntry(**{**row, "quarantined_at": _utc(row["quarantined_at"])}) for row in rows]


# -- writing ---------------------------------------------------------------------------------

def claim(engine: sa.Engine, key: ProductKey, *, path: str, fingerprint: str, claimed_by: str | None = None) -> int:
    """Mark a product ``processing`` before its scene is processed; returns its attempt number.

    Creates the entry on first sight, otherwise increments ``attempts``; a process that dies
    before :func:`mark_done` therefore leaves a trace that the next pass counts. A claim repeated
    by the same run (``claimed_by``, e.g. a task retrying) does not count as a new attempt.
    """
    table = monitored_products
    now = _now()
    same_run = sa.and_(table.c.claimed_by.is_not(None), table.c.claimed_by == claimed_by)
    with engine.begin() as connection:
        insert = _insert(connection, table).values(
            product_id=key.product_id, checksum=key.checksum, path=path, fingerprint=fingerprint,
            status=PROCESSING, attempts=1, claimed_by=claimed_by, first_seen_at=now, updated_at=now,
        )
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.product_id, table.c.checksum],
            set_={"status": PROCESSING, "attempts": sa.case((same_run, table.c.attempts), else_=table.c.attempts + 1),
                  "claimed_by": claimed_by, "path": path, "fingerprint": fingerprint, "updated_at": now},
        ).returning(table.c.attempts)
        return int(connection.execute(statement).scalar_one())


def mark_done(engine: sa.Engine, key: ProductKey, *, n_detections: int, n_alerts: int | None = None) -> None:
    """Record that the product's scene is in the store (call only after the store committed)."""
    _update(engine, key, status=DONE, n_detections=n_detections, n_alerts=n_alerts, last_error=None)


def mark_failed(engine: sa.Engine, key: ProductKey, error: str) -> None:
    """Record a transient failure; the product is tried again by the next pass."""
    _update(engine, key, status=FAILED, last_error=error)


def _update(engine: sa.Engine, key: ProductKey, **values: Any) -> None:
    table = monitored_products
    with engine.begin() as connection:
        result = connection.execute(sa.update(table).where(_key_clause(table, key)).values(updated_at=_now(), **values))
    if result.rowcount != 1:
        raise LookupError(f"registry: product {key.product_id!r} (checksum {key.checksum[:12]}) was never claimed")


def quarantine(
    engine: sa.Engine, key: ProductKey, *, path: str, fingerprint: str, reason: str, error_type: str
) -> None:
    """Put a product in quarantine with the reason it failed for good (one transaction)."""
    now = _now()
    products, jail = monitored_products, quarantined_products
    with engine.begin() as connection:
        upsert = _insert(connection, products).values(
            product_id=key.product_id, checksum=key.checksum, path=path, fingerprint=fingerprint,
            status=QUARANTINED, attempts=0, last_error=reason, first_seen_at=now, updated_at=now,
        )
        connection.execute(upsert.on_conflict_do_update(
            index_elements=[products.c.product_id, products.c.checksum],
            set_={"status": QUARANTINED, "last_error": reason, "path": path, "fingerprint": fingerprint,
                  "updated_at": now},
        ))
        attempts = connection.execute(
            sa.select(products.c.attempts).where(_key_clause(products, key))
        ).scalar_one()
        row = {"path": path, "reason": reason, "error_type": error_type, "attempts": attempts, "quarantined_at": now}
        connection.execute(
            _insert(connection, jail)
            .values(product_id=key.product_id, checksum=key.checksum, **row)
            .on_conflict_do_update(index_elements=[jail.c.product_id, jail.c.checksum], set_=row)
        )
    log.warning("quarantined product=%s checksum=%s reason=%s", key.product_id, key.checksum[:12], reason)


def release(engine: sa.Engine, product_id: str) -> int:
    """Take every version of a product out of quarantine so the next pass tries it afresh.

    Returns the number of quarantined versions released (0 if the product was not quarantined).
    """
    products, jail = monitored_products, quarantined_products
    with engine.begin() as connection:
        released = connection.execute(sa.delete(jail).where(jail.c.product_id == product_id)).rowcount
        connection.execute(
            sa.delete(products).where(products.c.product_id == product_id, products.c.status == QUARANTINED)
        )
    return int(released)
