"""The streaming end of ingest: chunks read ahead, parsed on a few threads and handed over in
order, and the writer that buffers events per day into the run's Parquet parts."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import polars as pl
import pyarrow.parquet as pq

from trafficlens.schema import EVENT_COLUMNS
from trafficlens.store import Transaction

FLUSH_ROWS = 400_000  # rows buffered before a file is written: bounds memory
PARSE_WORKERS = 2  # chunks parsed at once: more only adds memory
# Parsed chunks waiting for the writer: enough to keep parsing while a file is written.
WRITE_QUEUE = 8
_DICTIONARY_COLUMNS = [c for c in EVENT_COLUMNS if c not in ("line_no", "bytes")]

T = TypeVar("T")
F = TypeVar("F")


class PartWriter:
    """Buffers events per day and writes `events/date=YYYY-MM-DD/part-<run><tag>-<n>.parquet` files."""

    def __init__(self, tx: Transaction, tag: str = "") -> None:
        self.tx = tx
        # Beside the run's id in file names: writers of one run in several processes (`tag`
        # each) never write the same file.
        self.name = f"{tx.run_id}{tag}"
        self.buffers: dict[str, list[pl.DataFrame]] = {}
        self.rows: dict[str, int] = {}
        self.rejects: list[pl.DataFrame] = []
        self.reject_rows = 0
        self.seq = 0
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, events: pl.DataFrame, rejects: pl.DataFrame) -> None:
        """Hand a parsed chunk to the writing thread (raises its error, if it had one)."""
        if self._error is not None:
            raise self._error
        self._queue.put((events, rejects))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._add(*item)
                except BaseException as e:  # re-raised in the ingesting thread
                    self._error = e

    def _add(self, events: pl.DataFrame, rejects: pl.DataFrame) -> None:
        if events.height:
            lo, hi = events.select(lo=pl.col("ts").min(), hi=pl.col("ts").max()).row(0)
            if lo.date() == hi.date():
                pieces = {(lo.date().isoformat(),): events}
            else:
                dated = events.with_columns(_d=pl.col("ts").dt.date().cast(pl.String))
                pieces = dated.partition_by("_d", as_dict=True, include_key=False)
            for (day,), part in pieces.items():
                self.buffers.setdefault(day, []).append(part)
                self.rows[day] = self.rows.get(day, 0) + part.height
        if rejects.height:
            self.rejects.append(rejects)
            self.reject_rows += rejects.height
        # Bounded memory: the biggest day goes out once the buffers hold too much.
        while sum(self.rows.values()) > FLUSH_ROWS:
            self._flush(max(self.rows, key=self.rows.__getitem__))
        if self.reject_rows > FLUSH_ROWS:
            self._flush_rejects()

    def _flush(self, day: str) -> None:
        frames = self.buffers.pop(day)
        self.rows.pop(day)
        self.seq += 1
        out = self.tx.path(f"events/date={day}/part-{self.name}-{self.seq:05d}.parquet")
        # pyarrow's writer, fed polars' own string layout (no copy): the same values and
        # statistics as polars' writer for less work. Line numbers (consecutive) are
        # delta-encoded, byte counts plain, the rest dictionary-encoded.
        pq.write_table(
            pl.concat(frames).to_arrow(compat_level=pl.CompatLevel.newest()),
            out,
            compression="zstd",
            write_statistics=True,
            use_dictionary=_DICTIONARY_COLUMNS,
            column_encoding={"line_no": "DELTA_BINARY_PACKED"},
        )

    def _flush_rejects(self) -> None:
        if not self.rejects:
            return
        self.seq += 1
        out = self.tx.path(f"rejects/part-{self.name}-{self.seq:05d}.parquet")
        pl.concat(self.rejects).write_parquet(out, compression="zstd")
        self.rejects, self.reject_rows = [], 0

    def close(self) -> None:
        """Write what is buffered; raises the writing thread's error, if any."""
        self.stop()
        if self._error is not None:
            raise self._error
        for day in list(self.buffers):
            self._flush(day)
        self._flush_rejects()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def prefetch(it: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Read and decompress the next chunk while the current one is parsed."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False  # the consumer has gone

    def run() -> None:
        try:
            for item in it:
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer, which re-raises it
            put(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


@dataclass
class Parsed:
    """One chunk, parsed."""

    lines: int
    events: pl.DataFrame
    rejects: pl.DataFrame
    state: list[str] | None  # W3C fields in force after the chunk
    counts: dict[str, int]  # events per format
    skipped: dict[str, int]  # lines skipped, by reason
    end: tuple[int, bytes, int]  # after the chunk: byte offset, the bytes before it, line number


def parse_in_order(
    frames: Iterator[F], parse: Callable[[F, list[str] | None], Parsed], state: list[str] | None, workers: int
) -> Iterator[Parsed]:
    """Parse chunks on `workers` threads at once (polars releases the GIL), yielding in order.

    A few chunks are in flight at most, which bounds memory. With one worker, each chunk gets
    the state the previous one left. When reading fails, the chunks read before are still
    parsed and yielded, then the error is raised.
    """
    if workers <= 1:
        for frame in frames:
            done = parse(frame, state)
            state = done.state
            yield done
        return
    pending: deque[Future[Parsed]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="parse")
    try:
        try:
            for frame in frames:
                pending.append(pool.submit(parse, frame, state))
                if len(pending) > workers:
                    yield pending.popleft().result()
        except Exception:
            while pending:
                yield pending.popleft().result()
            raise
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
