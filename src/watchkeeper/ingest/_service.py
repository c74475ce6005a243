"""`IngestService`: accept (validate + spool durably) → process (decode, normalize) → write.

Threads: the group committer appends accepted bodies to the spool; one processor reads the
spool from the checkpoint, has each record decoded and normalized (in worker processes when
`ingest.workers` > 0, results taken back in spool order; see `_workers`) and builds
`ColumnBatch`es (rows as columns, one chunk per record); ONE writer calls
`store.write` (DuckDB's rule) and then moves the checkpoint. Between processor and writer
the queue holds one batch (one more is being built, one written); when it is full the
processor waits and the spool absorbs the difference.

Admission follows the writer (`_admission`): requests get 503 with `Retry-After` when the
backlog would put the store more than `lag_budget_s` behind, or passes its bytes.

No record stops the ones behind it: one that cannot be processed, or whose rows the store
refuses after bounded retries (found by halving the batch down to single records), is set
aside whole in the dead letter (`_dead_letter`), counted, and the checkpoint moves on.
A store that is down or full is retried without end: nothing is set aside for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from watchkeeper.config import Config
from watchkeeper.errors import Overloaded, StoreError
from watchkeeper.ingest._admission import Admission
from watchkeeper.ingest._commit import GroupCommitter
from watchkeeper.ingest._cost import Pricer
from watchkeeper.ingest._dead_letter import DeadLetter
from watchkeeper.ingest._decode import Decoded, count_protobuf, decode, parse_protobuf, split
from watchkeeper.ingest._gc import tune_gc
from watchkeeper.ingest._keeper import Keeper, Pending
from watchkeeper.ingest._metrics import IngestMetrics
from watchkeeper.ingest._normalize import DEFAULT_STEPS, Step
from watchkeeper.ingest._otlp_values import Encoding, decompress, encoding_of
from watchkeeper.ingest._spool import FLAG_PROJECT_FROM_RESOURCE, Entry, Record, Spool
from watchkeeper.ingest._workers import Processed, Processing, processing
from watchkeeper.malloc import trim_malloc, tune_malloc
from watchkeeper.model import ColumnBatch
from watchkeeper.store import Store

log = logging.getLogger("watchkeeper.ingest")

_READ_CHUNK = 8 * 1024 * 1024  # bytes of spool read per processor pass
_AGE_EVERY_S = 0.2  # how often admission re-reads the age of the backlog (a file read)
MAX_IN_FLIGHT = 64  # received requests being decoded and spooled at once
_RATE_BATCHES = 16  # the writer's pace is measured over its last batches written backlogged
#: Spans per spool record at most: a larger request is spooled as several records, so what
#: one worker decodes and one store batch holds stays bounded whatever a request carries.
MAX_SPANS_PER_RECORD = 4096


class Reception:
    """The bytes one request's body holds while it arrives, charged to a shared budget."""

    def __init__(self, service: IngestService) -> None:
        self._service = service
        self.bytes = 0

    def take(self, n: int) -> None:
        """Charge `n` more bytes; `Overloaded` when the budget of all senders is spent."""
        self._service._charge(n)
        self.bytes += n


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What an export request gets back: counts for OTLP `partial_success`."""

    accepted: int
    rejected: int = 0
    error_message: str = ""


def check(body: bytes, encoding: Encoding) -> Decoded:
    """Validate a decompressed body and count its spans (cheap for protobuf)."""
    if encoding == "protobuf":
        return count_protobuf(parse_protobuf(body))
    return decode(body, "json")


class IngestService:
    """The ingest path of one server process; see the module docstring."""

    def __init__(
        self,
        config: Config,
        store: Store,
        registry: CollectorRegistry,
        *,
        prices: Pricer | None = None,
        clock: Callable[[], float] = time.time,
        steps: Sequence[Step] = DEFAULT_STEPS,
        tune_gc: bool = True,
        on_written: Callable[[ColumnBatch], None] | None = None,
    ) -> None:
        self._cfg = config.ingest
        self._store = store
        self._clock = clock
        self._steps = tuple(steps)
        self._pricer = prices if prices is not None else Pricer(config.prices)
        self.spool = Spool(
            config.server.data_dir / "spool",
            segment_bytes=self._cfg.spool_segment_bytes,
            clock=clock,
        )
        self._committer = GroupCommitter(self.spool, group_commit_s=self._cfg.group_commit_ms / 1e3)
        self.dead_letter = DeadLetter(config.server.data_dir / "dead-letter")
        self.metrics = IngestMetrics(
            registry,
            lambda: self.backlog_bytes,
            lambda: self.backlog_age_s,
            self.dead_letter.count,
            lambda: self._work.running if self._work is not None else 0,
        )
        self._work: Processing | None = None  # the processor thread's, once it runs
        self._batches: queue.Queue[Pending | None] = queue.Queue(maxsize=1)
        self._stopping = threading.Event()
        self._failed = threading.Event()  # the processor stopped on an unexpected error
        self._cut_now = threading.Event()  # flush(): hand the partial batch over at once
        self._written = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._tune_gc = tune_gc
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._receiving = 0  # bytes of bodies being received, all requests together
        self._admission = Admission(
            self.spool,
            self._cfg,
            batches=_RATE_BATCHES,
            clock=clock,
            age_every_s=_AGE_EVERY_S,
            refused=lambda reason: self.metrics.queue_drops.labels(reason).inc(),
        )
        self._last_done: float | None = None  # when the writer finished its last batch
        # on_written: e.g. the span-derived metrics count what is stored
        self._keeper = Keeper(
            store, self.metrics, self.spool, self._set_aside, self._stopping, on_written
        )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spool (recovering it), then start the committer, processor and writer."""
        if self._started:
            return
        if self._tune_gc:
            tune_gc()
            tune_malloc()
        self.spool.open()
        if self.spool.truncated_bytes:
            log.warning("spool: cut a torn record of %d bytes", self.spool.truncated_bytes)
        self._committer.start()
        for target, name in (
            (self._process, "wk-ingest-process"),
            (self._write, "wk-ingest-write"),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self._started = True

    def stop(self) -> None:
        """Refuse new requests, write everything spooled, checkpoint, and stop the threads."""
        if not self._started:
            return
        self._committer.stop()
        self._stopping.set()
        for t in self._threads:
            t.join()
        self._threads.clear()
        self.spool.close()
        self._started = False

    # --- the request path -----------------------------------------------------------------

    async def accept(
        self,
        project: str,
        body: bytes,
        content_type: str,
        content_encoding: str | None,
        *,
        project_from_resource: bool = False,
    ) -> IngestResult:
        """Validate, spool durably, and return the counts; raises the errors of the route."""
        if not self._started:
            raise Overloaded("ingest is not running (starting or stopping); retry shortly", 1.0)
        encoding = encoding_of(content_type)
        raw = decompress(body, content_encoding, self._cfg.max_body_bytes)
        self._admission.check()
        checked = check(raw, encoding)
        if checked.rejected:
            self.metrics.spans_rejected.labels("invalid_span").inc(checked.rejected)
        result = IngestResult(checked.accepted, checked.rejected, checked.error_message)
        if not checked.accepted:
            return result
        flags = FLAG_PROJECT_FROM_RESOURCE if project_from_resource else 0
        bodies = [raw]
        if checked.accepted + checked.rejected > MAX_SPANS_PER_RECORD:
            bodies = split(raw, encoding, MAX_SPANS_PER_RECORD)
        try:
            futs = self._committer.submit(*(Entry(project, encoding, b, flags) for b in bodies))
        except Overloaded:
            self.metrics.queue_drops.labels("spool_commit").inc()
            raise
        for fut in futs:  # acknowledged only when every part is durable
            await asyncio.wrap_future(fut)
        self.metrics.spans_accepted.inc(checked.accepted)
        return result

    def _measure_rate(self, item: Pending, done: float) -> None:
        """Track the bytes per second the writer keeps while it has a backlog."""
        last, self._last_done = self._last_done, done
        if last is None or not self.spool.has_after(item.end or item.start) or done <= last:
            return  # idle in between: the time says nothing about the writer's pace
        self._admission.pace.add(item.bytes, done - last)

    @contextlib.contextmanager
    def receiving(self) -> Iterator[Reception]:
        """Account for one body while it arrives (and until it is spooled).

        Memory is bounded by bytes, not by connections: a sender that trickles its body
        holds the few bytes it sent, so slow senders cannot take the room of those that send.
        """
        reception = Reception(self)
        try:
            yield reception
        finally:
            with self._in_flight_lock:
                self._receiving -= reception.bytes

    def _charge(self, n: int) -> None:
        with self._in_flight_lock:
            if self._receiving + n > self._cfg.receive_budget_bytes:
                self.metrics.queue_drops.labels("receive_budget").inc()
                raise Overloaded("too many request bodies arriving at once; retry shortly", 1.0)
            self._receiving += n

    def count_slow_client(self) -> None:
        """Count one request whose body did not arrive within `body_timeout_s`."""
        self.metrics.slow_clients.inc()

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """Hold one of `MAX_IN_FLIGHT` slots to decode and spool a received body."""
        with self._in_flight_lock:
            if self._in_flight >= MAX_IN_FLIGHT:
                self.metrics.queue_drops.labels("in_flight").inc()
                raise Overloaded("too many export requests in flight; retry shortly", 1.0)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def count_request(self, code: int) -> None:
        """Count one export request by the status code it got (the route calls this)."""
        self.metrics.requests.labels(str(code)).inc()

    # --- backlog and flush ----------------------------------------------------------------

    @property
    def backlog_bytes(self) -> int:
        """Bytes spooled and not yet in the store."""
        return self.spool.backlog_bytes() if self._started else 0

    @property
    def backlog_age_s(self) -> float:
        """Age of the oldest spooled request not yet in the store (0 when none)."""
        return self._admission.age_s() if self._started else 0.0

    def problems(self) -> list[str]:
        """Why ingest is not keeping up, for readiness ([] when it is)."""
        out = []
        if self._failed.is_set():
            out.append("ingest processing stopped on an error; spooled data is kept (see the log)")
        since = self._keeper.failing_since
        if since is not None and time.monotonic() - since > 10:
            out.append(f"store writes have failed for {time.monotonic() - since:.0f} s")
        return out

    def flush(self, timeout: float) -> bool:
        """Block until everything acknowledged so far is in the store; False on timeout."""
        if not self._started:
            return True  # nothing runs, so nothing acknowledged by this instance is pending
        target = self.spool.end
        deadline = time.monotonic() + timeout
        self._cut_now.set()
        with self._written:
            while not self.spool.is_stored(target):
                if self._failed.is_set():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cut_now.set()
                self._written.wait(min(remaining, 0.05))
        return True

    # --- processor thread -----------------------------------------------------------------

    def _process(self) -> None:
        # A store that keeps payloads in its own encoding lets the workers encode them.
        packer = getattr(self._store, "payload_codec", None)
        idle_s = self._cfg.workers_idle_s or None
        work = processing(self._pricer, self._steps, self._cfg.workers, packer, idle_s)
        self._work = work
        try:
            self._process_loop(work)
        except Exception:  # a corrupt spool segment: stop loudly, keep what is stored
            log.critical("ingest processing stopped; spooled data is kept", exc_info=True)
            self._failed.set()
            self._batches.put(None)
        finally:
            work.close()

    def _process_loop(self, work: Processing) -> None:
        cursor = self.spool.checkpoint  # read up to here; `pending.end`: processed up to there
        pending = Pending(cursor, started=time.monotonic())
        wait_s = self._cfg.batch_max_wait_ms / 1e3
        while True:
            stopping = self._stopping.is_set()
            for rec in self.spool.read(cursor, _READ_CHUNK):
                while work.full:
                    pending = self._take(work, pending)
                work.submit(rec)
                cursor = rec.end
            while work.ready():
                pending = self._take(work, pending)
            if work and (stopping or self._cut_now.is_set() or not self.spool.has_after(cursor)):
                while work:  # caught up, cut or stopping: everything read goes to the batch
                    pending = self._take(work, pending)
            due = time.monotonic() - pending.started >= wait_s or self._cut_now.is_set()
            if due and not stopping and self.spool.has_after(cursor) and not self._cut_now.is_set():
                # A backlog: fill the batch to batch_max_spans first. Fewer, larger store
                # writes carry more spans per second; the wait only bounds lag when idle.
                continue
            if pending.end is not None and (due or stopping):
                self._cut_now.clear()
                pending = self._hand_over(pending)
            if stopping and not self.spool.has_after(cursor):
                break
            if pending.end is None:
                self._cut_now.clear()
                pending.started = time.monotonic()
                if not work and work.retire_if_idle():
                    log.info("ingest workers stopped: no record for %g s", self._cfg.workers_idle_s)
            self.spool.wait_for(cursor, min(wait_s, 0.05))
        self._batches.put(None)

    def _take(self, work: Processing, pending: Pending) -> Pending:
        """Add the oldest processed record to the batch; hand the batch over when full."""
        rec, out = work.take()
        self._add(pending, rec, out)
        if len(pending.batch) >= self._cfg.batch_max_spans:
            return self._hand_over(pending)
        return pending

    def _add(self, pending: Pending, rec: Record, out: Processed) -> None:
        batch, dropped = out.batch, out.dropped
        if out.reason:  # one poisoned record must not stall everything behind it
            log.error("spool record before %s cannot be processed\n%s", rec.end, out.error)
            self.metrics.spans_rejected.labels(out.reason).inc()
            self._set_aside(rec, f"{out.reason}: {(out.error.strip().splitlines() or [''])[-1]}")
        if out.failed:
            log.error("%d spans failed normalization; left out\n%s", out.failed, out.error)
            self.metrics.spans_rejected.labels("normalize_error").inc(out.failed)
        if dropped:
            self.metrics.spans_rejected.labels("dropped_by_pipeline").inc(dropped)
        pending.batch.extend(batch)
        pending.appended_ns.append(rec.appended_ns)
        pending.end = rec.end
        pending.bytes += len(rec.body)
        pending.records.append((rec.end, len(pending.batch.spans)))

    def _set_aside(self, rec: Record, reason: str) -> None:
        self.dead_letter.add(rec, reason)
        self.metrics.dead_letter_records.labels(reason.split(":", 1)[0]).inc()

    def _hand_over(self, pending: Pending) -> Pending:
        self._batches.put(pending)  # blocks when the writer is behind: the spool buffers
        assert pending.end is not None
        return Pending(pending.end, started=time.monotonic())

    # --- writer thread --------------------------------------------------------------------

    def _write(self) -> None:
        gave_up = False
        burst = False  # written since memory was last given back
        idle_s = self._cfg.idle_release_s or None
        while True:
            try:
                item = self._batches.get(timeout=idle_s if burst else None)
            except queue.Empty:  # idle for a while after writing: give the burst's memory back
                burst = not self._release_memory()
                continue
            if item is None:
                break
            burst = True
            if gave_up or (len(item.batch) and not self._keeper.keep(item)):
                # Gave up at shutdown: no checkpoint past it; the spool replays it next start.
                gave_up = True
                continue
            assert item.end is not None
            self.spool.set_checkpoint(item.end)
            self._measure_rate(item, time.monotonic())
            now = self._clock()
            for ns in item.appended_ns:
                self.metrics.lag_seconds.observe(max(now - ns / 1e9, 0.0))
            item = None  # the batch's rows go now, not when the next batch comes (idle: never)
            with self._written:
                self._written.notify_all()

    def _release_memory(self) -> bool:
        """What a burst of writes left cached, back to the system; False to try again later.

        The store drops its engine's cache (`DuckDBStore.release_memory`), then this process
        collects its garbage and returns the allocator's free pages. Without it the server
        stayed at its peak for as long as it ran (the engine's cache fills its limit).
        """
        release = getattr(self._store, "release_memory", None)
        try:
            done = bool(release()) if release is not None else True
        except StoreError as exc:  # closed or failing: its memory is not ours to free now
            log.warning("store memory not released: %s", exc)
            done = False
        gc.collect()
        trim_malloc()
        return done
