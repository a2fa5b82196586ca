"""A server process's background work, beside its requests: delivering the outbox
(`delivery.worker`), and — under `serve --test-controls` — following the test controls
kept in the database (the clock's offset, the faults): at once when the cache hears they
changed (`CachedStore.on_controls_change`), and every 0.25 s as a safety net; and saying
so with a heartbeat the command line looks for."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from marketmeter.clock import OffsetClock
from marketmeter.domain.controls import ActiveControls
from marketmeter.domain.ports import Store

log = logging.getLogger("marketmeter.controls")
FOLLOW_EVERY = 0.25
HEARTBEAT_EVERY = 2.0


class ControlsFollower:
    def __init__(self, store: Store, clock: OffsetClock, active: ActiveControls) -> None:
        self._store = store
        self._clock = clock
        self._active = active
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-controls", daemon=True)

    def start(self) -> None:
        self.follow()  # before the first request
        self._thread.start()

    def follow(self) -> None:
        controls = self._store.test_controls()
        self._clock.offset = controls.clock_offset
        self._active.follow(controls)

    def _run(self) -> None:
        beats = 0.0
        while not self._stop.wait(FOLLOW_EVERY):
            try:
                self.follow()
                beats += FOLLOW_EVERY
                if beats >= HEARTBEAT_EVERY:
                    beats = 0.0
                    with self._store.transaction() as tx:
                        tx.mark_test_controls_served(datetime.now(UTC))
            except Exception as exc:  # the database away: keep the last controls
                log.warning("following the test controls failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
