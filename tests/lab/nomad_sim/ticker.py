"""One background thread that runs delayed state transitions in due order.

`flush()` runs everything due (and whatever those callbacks schedule) at once,
so tests can skip the waiting when timing is not what they test."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

Callback = Callable[[], None]


class Ticker:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock  # the cluster lock: callbacks run holding it
        self._wake = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Callback]] = []
        self._seq = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="nomad-sim-ticker", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._heap.clear()
            self._wake.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def call_later(self, delay: float, callback: Callback) -> None:
        with self._wake:
            heapq.heappush(
                self._heap, (time.monotonic() + delay, next(self._seq), callback)
            )
            self._wake.notify_all()

    def pending(self) -> int:
        with self._wake:
            return len(self._heap)

    def flush(self, max_rounds: int = 1000) -> None:
        """Run every scheduled callback now, including ones they schedule."""
        for _ in range(max_rounds):
            with self._wake:
                if not self._heap:
                    return
                _, _, callback = heapq.heappop(self._heap)
            with self._lock:
                callback()
        raise RuntimeError("nomad sim: timers keep rescheduling themselves")

    def _next_due(self) -> Callback | None:
        with self._wake:
            while not self._stopped:
                if self._heap and self._heap[0][0] <= time.monotonic():
                    return heapq.heappop(self._heap)[2]
                timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                self._wake.wait(timeout)
            return None

    def _run(self) -> None:
        while (callback := self._next_due()) is not None:
            with self._lock:
                callback()
