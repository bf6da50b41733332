"""Ctrl-C (SIGINT) or SIGTERM at a chunk boundary: the first signal asks the host loop to
stop, a second one aborts. SIGTERM is how `kill`, SLURM preemption and container shutdowns
stop a job: it gets the same flush and checkpoint, and `Terminated` (exit status 143).

The compiled chunk cannot be interrupted, and a KeyboardInterrupt raised between two host
statements could split a chunk's metrics from its state. `DeferredInterrupt` records the
signal instead; the loop checks `requested` after writing a chunk, checkpoints and stops.
Outside the main thread (where signals cannot be handled) it does nothing.
"""

from __future__ import annotations

import signal
import threading


class Terminated(KeyboardInterrupt):
    """The run stopped at a chunk boundary because of SIGTERM (KeyboardInterrupt: SIGINT)."""


class DeferredInterrupt:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signum: int | None = None
        self._old: dict = {}

    def _handle(self, signum, frame):
        if self.requested:  # a second signal: stop now
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    def stop(self) -> KeyboardInterrupt:
        """The exception that ends the run for the signal received."""
        return Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()

    def __enter__(self) -> "DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
