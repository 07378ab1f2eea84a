"""Read ahead: the frames of a source are read and decoded in a background thread, a bounded number ahead of the
consumer, so that detection and pose estimation of one chunk overlap the file reading and decoding of the next.

OpenCV's decoders (``cv2.imdecode``, ``cv2.VideoCapture.read``) and file reads release the GIL, so the reader runs
in parallel with the network. Order is kept (one reader, one FIFO queue); frames that cannot be decoded pass through
as they are (``Frame.image`` None with an ``error``); an exception raised by the source reaches the consumer after
the frames read before it. When the consumer stops (it finished, broke off, raised, or got ``KeyboardInterrupt``),
:meth:`Prefetcher.close` tells the reader to stop, and the reader closes the source's iterator (a video capture is
released) in its own thread.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterable, Iterator

_ITEM, _END, _ERROR = 0, 1, 2
POLL_S = 0.05  # how often a reader blocked on a full queue checks whether it should stop


class Prefetcher:
    """Iterate ``iterable`` in a background thread, at most ``depth`` items ahead of the consumer.

    Use it as a context manager (or call :meth:`close`) so the reader stops when the consumer does::

        with Prefetcher(source, depth=8) as frames:
            for frame in frames:
                ...

    Args:
        iterable: any iterable (a :class:`~kanpose_cli.core.data.sources.Source`, a list of frames, a generator).
            It is iterated in the reader thread only.
        depth: queue size ≥ 1: the most items read but not yet taken by the consumer (memory bound: ``depth``
            decoded frames, plus the one the reader is decoding).
        on_read: called in the reader thread with the seconds each item took to produce (read + decode).
        name: the reader thread's name.

    Attributes:
        read_seconds: total seconds the reader spent producing items. wait_seconds: total seconds the consumer
            waited for an item (0 when reading keeps ahead of the consumer).

    Raises (while iterating):
        Whatever the source raised, re-raised in the consumer in order.
    """

    def __init__(self, iterable: Iterable, depth: int = 8, on_read: Callable[[float], None] | None = None,
                 name: str = "kanpose-reader"):
        if int(depth) < 1:
            raise ValueError(f"depth must be ≥ 1, got {depth}")
        self._iterable, self._on_read = iterable, on_read
        self._queue: queue.Queue = queue.Queue(maxsize=int(depth))
        self._stop = threading.Event()
        self.read_seconds = self.wait_seconds = 0.0
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._started = False

    # ---------------------------------------------------------------------------------------------- reader side
    def _put(self, message) -> bool:
        """Queue ``message``; False (not queued) once the consumer has asked the reader to stop."""
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        iterator = None
        try:
            iterator = iter(self._iterable)
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                seconds = time.perf_counter() - start
                self.read_seconds += seconds
                if self._on_read is not None:
                    self._on_read(seconds)
                if not self._put((_ITEM, item)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((_ERROR, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()  # a generator's `finally` (e.g. VideoCapture.release) runs here, in the reader
                except Exception:  # noqa: BLE001 - nothing left to report it to
                    pass

    # -------------------------------------------------------------------------------------------- consumer side
    def __iter__(self) -> Iterator:
        """The items in the source's order; ends when the source ends, re-raises the source's exception."""
        if self._started:
            raise RuntimeError("a Prefetcher can be iterated once")
        self._started = True
        self._thread.start()
        try:
            while True:
                start = time.perf_counter()
                kind, value = self._queue.get()
                self.wait_seconds += time.perf_counter() - start
                if kind == _END:
                    return
                if kind == _ERROR:
                    raise value
                yield value
        finally:
            self.close()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the reader and wait up to ``timeout`` seconds for its thread to end.

        The reader stops at its next item boundary (a read in progress finishes first); items read but not taken
        are dropped. Safe to call more than once, and before or after iteration.
        """
        self._stop.set()
        self._drain()  # frees the queued frames now (and a reader blocked on a full queue)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._drain()  # an item the reader queued while stopping

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    @property
    def alive(self) -> bool:
        """Whether the reader thread is still running."""
        return self._thread.is_alive()

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
