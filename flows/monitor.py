"""The ``monitor-inbox`` flow: one pass over an inbox, each new or changed product processed once.

Read top to bottom, a pass is: discover the products in the inbox (or STAC catalog) and key each by
product id and content checksum → skip those the registry knows as done or quarantined → run
:func:`flows.process_scene.process_scene` for the others, a bounded number at a time (threads
here, or a Dask cluster) → record each result in the registry → publish a table of the pass as a
Prefect artifact.

Failures: errors that may go away (database busy or unreachable, I/O hiccups, memory) are retried
with exponential backoff by the task itself; if they persist the product is marked ``failed`` and
tried again by a later pass, up to ``max_attempts`` starts. Anything else (a corrupt or unreadable
product, a bug that a product triggers) quarantines the product with its reason at once, and the
pass goes on. See :mod:`pipeline.registry` for why a process killed mid-scene loses nothing.
"""

# No `from __future__ import annotations`: Prefect builds the flow's parameter model from these
# annotations in the flow-run process, where names such as ProgressCallback must be real objects.

import errno
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from flows.process_scene import ProcessSummary, process_scene
from pipeline import inbox as inbox_files
from pipeline import registry
from pipeline.ingest import describe_product
from pipeline.store import Store
from vesselwatch.errors import VesselwatchError
from vesselwatch.settings import Settings

log = logging.getLogger(__name__)

#: OS errors worth a retry: the file system or the network is busy, not the product broken.
_TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ENFILE, errno.EMFILE, errno.ESTALE,
                     errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.EINTR}

#: Statuses of a product in a pass report.
DONE, SKIPPED, QUARANTINED, FAILED = "done", "skipped", "quarantined", "failed"


@dataclass(frozen=True)
class Candidate:
    """A product found in the inbox, keyed for the registry.

    ``problem`` is set when the product could not even be described (unknown layout, unreadable
    metadata): it is quarantined without being processed.
    """

    path: str
    product_id: str
    checksum: str
    fingerprint: str
    problem: str | None = None
    problem_type: str | None = None

    @property
    def key(self) -> registry.ProductKey:
        """The registry key (product id, checksum)."""
        return registry.ProductKey(self.product_id, self.checksum)


@dataclass(frozen=True)
class ProductOutcome:
    """What a pass did with one product; ``seconds`` are the steps of :class:`ProcessSummary`."""

    product_id: str
    checksum: str
    path: str
    status: str
    n_detections: int | None = None
    n_alerts: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class PassReport:
    """One pass of the monitor over an inbox; ``seconds`` holds discovery and total wall time."""

    inbox: str
    outcomes: list[ProductOutcome]
    seconds: dict[str, float] = field(default_factory=dict)

    def count(self, status: str) -> int:
        """Number of products with this status."""
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def n_detections(self) -> int:
        """Detections stored by this pass."""
        return sum(outcome.n_detections or 0 for outcome in self.outcomes if outcome.status == DONE)

    @property
    def n_alerts(self) -> int:
        """Alerts raised by this pass."""
        return sum(outcome.n_alerts or 0 for outcome in self.outcomes if outcome.status == DONE)


@dataclass
class PassPlan:
    """How a pass treats the candidates: process, skip, or quarantine (with the reason)."""

    to_process: list[Candidate] = field(default_factory=list)
    skipped: list[Candidate] = field(default_factory=list)
    to_quarantine: list[tuple[Candidate, str, str]] = field(default_factory=list)


# -- plain functions (no Prefect) ------------------------------------------------------------

def is_transient(error: BaseException) -> bool:
    """Whether an error may go away by itself, so retrying the same product is worthwhile.

    Errors about the product itself (:class:`~vesselwatch.errors.VesselwatchError`, a missing
    file, bad values) are permanent; database connection trouble, timeouts, busy or flaky I/O and
    running out of memory are transient.
    """
    if isinstance(error, VesselwatchError):
        return False
    if isinstance(error, (sa.exc.OperationalError, sa.exc.DisconnectionError, sa.exc.TimeoutError)):
        return True
    if isinstance(error, (TimeoutError, ConnectionError, MemoryError)):
        return True
    if isinstance(error, OSError):
        return error.errno in _TRANSIENT_ERRNOS
    return False


def describe_error(error: BaseException) -> str:
    """One line naming the error: ``Type: message`` (first line only)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def discover_candidates(inbox: str | Path, engine: sa.Engine, *, settle_seconds: float = 0.0) -> list[Candidate]:
    """Products in ``inbox`` with their registry keys.

    Checksums are read from the registry when a product's fingerprint (names, sizes, modification
    times) is unchanged, and computed from the bytes otherwise. Products modified less than
    ``settle_seconds`` ago are left for a later pass (they may still be being copied).
    """
    candidates = []
    listed = list(inbox_files.iter_product_files(inbox_files.find_products(inbox)))
    now = time.time()
    settled = [p for p in listed if inbox_files.newest_change_age_s(p, now) >= settle_seconds]
    for product in set(listed) - set(settled):
        log.info("event=product-settling path=%s", product.path)
    fingerprints = {str(p.path): inbox_files.fingerprint(p) for p in settled}
    known = registry.known_checksums(engine, fingerprints)
    for product in settled:
        path = str(product.path)
        key = known.get(path)
        problem = problem_type = None
        if key is None:
            try:
                product_id = describe_product(product.path).product_id
            except Exception as error:  # noqa: BLE001 - any failure to describe quarantines the product
                product_id, problem, problem_type = product.path.name, describe_error(error), type(error).__name__
            key = registry.ProductKey(product_id, inbox_files.checksum(product))
        candidates.append(Candidate(path, key.product_id, key.checksum, fingerprints[path], problem, problem_type))
    return candidates


def plan_pass(
    candidates: Sequence[Candidate], entries: dict[registry.ProductKey, registry.ProductEntry], *, max_attempts: int
) -> PassPlan:
    """Decide what a pass does with each candidate, given the registry entries of their keys.

    Done and quarantined products are skipped; products that could not be described, or that were
    started ``max_attempts`` times without finishing, are quarantined; the rest (new, changed,
    failed before, or left ``processing`` by a process that died) are processed.
    """
    plan = PassPlan()
    seen: set[registry.ProductKey] = set()
    for candidate in candidates:
        entry = entries.get(candidate.key)
        if candidate.key in seen or (entry is not None and entry.status in {registry.DONE, registry.QUARANTINED}):
            plan.skipped.append(candidate)  # done, quarantined, or a second copy of the same content
        elif candidate.problem is not None:
            plan.to_quarantine.append((candidate, candidate.problem, candidate.problem_type or "ProductError"))
        elif entry is not None and entry.attempts >= max_attempts:
            why = entry.last_error or "its process died before the scene was stored"
            plan.to_quarantine.append((candidate, f"gave up after {entry.attempts} attempts: {why}", "GaveUp"))
        else:
            plan.to_process.append(candidate)
        seen.add(candidate.key)
    return plan


def pass_markdown(report: PassReport) -> str:
    """The pass as a markdown summary and table: products, detections, alerts, seconds per step."""
    steps: list[str] = []
    for outcome in report.outcomes:
        steps += [step for step in outcome.seconds if step not in steps]
    lines = [
        f"# Monitoring pass over `{report.inbox}`",
        "",
        f"{len(report.outcomes)} products: {report.count(DONE)} processed, {report.count(SKIPPED)} already done, "
        f"{report.count(QUARANTINED)} quarantined, {report.count(FAILED)} failed (retried next pass). "
        f"Detections stored: {report.n_detections}; alerts: {report.n_alerts}. "
        + ", ".join(f"{name}: {seconds:.1f} s" for name, seconds in report.seconds.items()) + ".",
        "",
        "| product | status | detections | alerts | " + " | ".join(f"{s} (s)" for s in steps) + " | total (s) | note |",
        "|---|---|---:|---:|" + "---:|" * len(steps) + "---:|---|",
    ]
    for outcome in report.outcomes:
        cells = [f"{outcome.seconds[s]:.2f}" if s in outcome.seconds else "" for s in steps]
        total = f"{sum(outcome.seconds.values()):.2f}" if outcome.seconds else ""
        note = (outcome.error or "").replace("|", "\\|")
        lines.append(
            f"| `{outcome.product_id}` | {outcome.status} | {_blank(outcome.n_detections)} | "
            f"{_blank(outcome.n_alerts)} | " + " | ".join(cells) + f"{' | ' if cells else ''}{total} | {note} |"
        )
    return "\n".join(lines) + "\n"


def _blank(value: int | None) -> str:
    return "" if value is None else str(value)


def alerts_of(summary: ProcessSummary) -> int | None:
    """Alerts a processed scene raised, when the flow reports them."""
    value = getattr(summary, "n_alerts", None)
    return None if value is None else int(value)


# -- Prefect tasks ---------------------------------------------------------------------------

def _retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    error = state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and is_transient(error)


@task(name="discover-products", cache_policy=NO_CACHE)
def discover_products(inbox: str, database_url: str, settle_seconds: float = 0.0) -> list[Candidate]:
    """List the inbox's products with their registry keys."""
    store = Store.connect(database_url)
    try:
        return discover_candidates(inbox, store.engine, settle_seconds=settle_seconds)
    finally:
        store.engine.dispose()


@task(
    name="process-product",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_if_transient,
)
def process_product(candidate: Candidate, database_url: str) -> ProcessSummary:
    """Claim the product, process its scene into the store, then mark it done.

    The claim carries the task run's id, so the task's retries within a pass count as one attempt;
    the product is marked done only after :func:`process_scene` returned, i.e. after the store
    committed the scene.
    """
    store = Store.connect(database_url)
    context = TaskRunContext.get()
    try:
        registry.claim(store.engine, candidate.key, path=candidate.path, fingerprint=candidate.fingerprint,
                       claimed_by=str(context.task_run.id) if context is not None else None)
        summary = process_scene(candidate.path, database_url)
        registry.mark_done(
            store.engine, candidate.key, n_detections=summary.n_detections, n_alerts=alerts_of(summary)
        )
        return summary
    finally:
        store.engine.dispose()


def task_runner(concurrency: int, dask_address: str | None) -> AbstractContextManager[Any]:
    """Threads on this machine (at most ``concurrency`` scenes at once), or a Dask cluster."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=concurrency)


# -- the flow --------------------------------------------------------------------------------

ProgressCallback = Callable[[ProductOutcome, int, int], None]


@flow(name="monitor-inbox", log_prints=False)
def monitor_inbox(
    inbox: str,
    database_url: str | None = None,
    concurrency: int = 2,
    dask_address: str | None = None,
    max_attempts: int = 3,
    settle_seconds: float = 0.0,
    on_progress: ProgressCallback | None = None,
) -> PassReport:
    """Process every new or changed product of an inbox folder or STAC catalog, each once.

    Parameters
    ----------
    inbox
        Folder of products (SAFE folders/zips, band-GeoTIFF folders, STAC item JSON) or a STAC
        catalog JSON.
    database_url
        SQLAlchemy URL or SQLite file of the store (and registry); default from settings.
    concurrency
        Scenes processed at once on this machine (ignored with ``dask_address``).
    dask_address
        Address of a Dask scheduler (``tcp://host:8786``) to spread scenes over its workers.
    max_attempts
        Starts after which a product that never finished is quarantined.
    settle_seconds
        Leave products modified more recently than this for a later pass.
    on_progress
        Called in this process as ``on_progress(outcome, n_finished, n_to_process)`` after each
        processed product (the CLI's progress bar).
    """
    logger = get_run_logger()
    database_url = database_url or Settings().resolved_database_url()
    engine = Store.connect(database_url).engine
    started = time.perf_counter()

    candidates = discover_products(str(inbox), database_url, settle_seconds)
    plan = plan_pass(candidates, registry.product_entries(engine, [c.key for c in candidates]),
                     max_attempts=max_attempts)
    seconds = {"discovery": time.perf_counter() - started}
    logger.info(
        "event=pass-start inbox=%s found=%d to_process=%d skipped=%d to_quarantine=%d",
        inbox, len(candidates), len(plan.to_process), len(plan.skipped), len(plan.to_quarantine),
    )

    outcomes = [ProductOutcome(c.product_id, c.checksum, c.path, SKIPPED) for c in plan.skipped]
    for candidate, reason, error_type in plan.to_quarantine:
        registry.quarantine(engine, candidate.key, path=candidate.path, fingerprint=candidate.fingerprint,
                            reason=reason, error_type=error_type)
        logger.warning("event=product-quarantined product=%s path=%s reason=%r",
                       candidate.product_id, candidate.path, reason)
        outcomes.append(ProductOutcome(candidate.product_id, candidate.checksum, candidate.path, QUARANTINED,
                                       error=reason))

    with task_runner(concurrency, dask_address) if plan.to_process else nullcontext() as runner:
        futures = {
            runner.submit(process_product, {"candidate": candidate, "database_url": database_url}): candidate
            for candidate in plan.to_process
        }
        for finished, future in enumerate(as_completed(list(futures)), start=1):
            future.wait()  # holds the final state locally; the API's copy may lag behind
            outcome = _settle(engine, futures[future], future.state, max_attempts=max_attempts, logger=logger)
            outcomes.append(outcome)
            if on_progress is not None:
                on_progress(outcome, finished, len(futures))

    seconds["total"] = time.perf_counter() - started
    report = PassReport(str(inbox), sorted(outcomes, key=lambda o: (o.product_id, o.path)), seconds)
    create_markdown_artifact(pass_markdown(report), key="monitor-pass",
                             description=f"Monitoring pass over {inbox}")
    logger.info(
        "event=pass-end inbox=%s processed=%d skipped=%d quarantined=%d failed=%d detections=%d alerts=%d "
        "seconds=%.1f", inbox, report.count(DONE), report.count(SKIPPED), report.count(QUARANTINED),
        report.count(FAILED), report.n_detections, report.n_alerts, seconds["total"],
    )
    engine.dispose()
    return report


def _settle(engine: sa.Engine, candidate: Candidate, state: Any, *, max_attempts: int, logger: Any) -> ProductOutcome:
    """Turn a finished task's state into an outcome, quarantining or marking failures."""
    result = state.result(raise_on_failure=False)
    if state.is_completed():
        summary: ProcessSummary = result
        logger.info(
            "event=product-done product=%s checksum=%s detections=%d alerts=%s seconds=%.2f",
            candidate.product_id, candidate.checksum[:12], summary.n_detections, alerts_of(summary),
            sum(summary.seconds.values()),
        )
        return ProductOutcome(candidate.product_id, candidate.checksum, candidate.path, DONE,
                              summary.n_detections, alerts_of(summary), dict(summary.seconds))
    error = result if isinstance(result, BaseException) else RuntimeError(f"task ended {state.type.value}")
    reason = describe_error(error)
    failed = ProductOutcome(candidate.product_id, candidate.checksum, candidate.path, FAILED, error=reason)
    try:
        entry = registry.product_entries(engine, [candidate.key]).get(candidate.key)
        attempts = entry.attempts if entry is not None else 0
        if is_transient(error) and attempts < max_attempts:
            if entry is not None:
                registry.mark_failed(engine, candidate.key, reason)
            logger.warning("event=product-failed product=%s attempts=%d error=%r (tried again next pass)",
                           candidate.product_id, attempts, reason)
            return failed
        if is_transient(error):
            reason = f"gave up after {attempts} attempts: {reason}"
        registry.quarantine(engine, candidate.key, path=candidate.path, fingerprint=candidate.fingerprint,
                            reason=reason, error_type=type(error).__name__)
    except sa.exc.SQLAlchemyError as registry_error:  # the database itself is down: leave it for next pass
        logger.error("event=registry-unavailable product=%s error=%r", candidate.product_id,
                     describe_error(registry_error))
        return failed
    logger.warning("event=product-quarantined product=%s path=%s reason=%r",
                   candidate.product_id, candidate.path, reason)
    return ProductOutcome(candidate.product_id, candidate.checksum, candidate.path, QUARANTINED, error=reason)
