"""Ctrl-C at a chunk boundary: the first SIGINT asks the host loop to stop, a second one aborts.

The compiled chunk cannot be interrupted, and a KeyboardInterrupt raised between two host
statements could split a chunk's metrics from its state. `DeferredInterrupt` records the
signal instead; the loop checks `requested` after writing a chunk, checkpoints and stops.
Outside the main thread (where signals cannot be handled) it does nothing.
"""

from __future__ import annotations

import signal
import threading


class DeferredInterrupt:
    def __init__(self):
        self.requested = False
        self._old = None

    def _handle(self, signum, frame):
        if self.requested:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
