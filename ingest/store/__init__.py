"""The batch write path of ingest: device messages → rows, state, alerts, live events.

:mod:`ingest.store.batch` runs a batch (``BatchStore``) in one transaction; the steps it runs
are one module each — registry lookups, row building, the state and rules of each message
kind (filling, custody scans, valves, vehicles, device presence), the live-state writer, the
storage rule and the alerts. The worker (:mod:`ingest.worker`) commits the batch and only
then acknowledges its messages and publishes its live events (:mod:`ingest.live`).
"""
