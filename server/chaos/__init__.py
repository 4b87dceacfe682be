"""The chaos suite (`cylwatch chaos`, tests/chaos/): faults injected while a simulated city
runs, and what each costs (docs/RELIABILITY.md "Chaos runs").

Part of the app root (docs/ARCHITECTURE.md §2): it composes every package into processes —
a private PostgreSQL cluster, a private Mosquitto with the production config, a private
Redis, `cylwatch ingest` — drives the simulator's message mix at them
(``device_sim.loadgen``), breaks one thing at a time and checks the promise of
docs/ARCHITECTURE.md §10: a QoS 1 message the broker acknowledged is stored exactly once,
every alert it raises counted once, and fill authorization and the live bus work again soon
after. Nothing it starts is shared with the machine's own services, and everything is removed
afterwards, even on failure.
"""

from server.chaos.runner import FAULTS, ChaosConfig, Outcome, format_table, run_chaos

__all__ = ["FAULTS", "ChaosConfig", "Outcome", "format_table", "run_chaos"]
