"""Process-level tuning of a ``cylwatch ingest`` worker process (docs/ARCHITECTURE.md §5;
the measurement: docs/BENCHMARKS.md "Ingest worker CPU per message").

Why the garbage collector: a batch builds tens of thousands of short-lived containers (the
parsed messages, their rows, the live events), and CPython's default young-generation
threshold (700 allocations) runs a collection every few messages, each one also walking the
objects that survive until the batch is committed — 3.6 % of the worker's instructions were
the collector's. Nothing in the worker makes reference cycles on purpose, so collecting less
often costs memory only in proportion to the threshold. The objects made at start-up (the
modules, the settings, the lookup tables) are frozen out of the collector's sight once the
worker is ready, so the old generations it does walk are the batches' own.

Only the ingest processes are tuned: ``cylwatch serve`` runs a worker beside the web server,
whose allocation pattern is another, and keeps CPython's defaults.
"""

from __future__ import annotations

import gc

from server.kernel.settings import Settings

__all__ = ["tune_gc"]


def tune_gc(settings: Settings) -> tuple[int, int, int]:
    """Apply ``[ingest] gc_young_threshold`` (0: CPython's own) and freeze what exists now;
    returns the thresholds in force."""
    young = settings.ingest.gc_young_threshold
    if young:
        _, mid, old = gc.get_threshold()
        gc.set_threshold(young, mid, old)
    gc.collect()
    gc.freeze()
    return gc.get_threshold()
