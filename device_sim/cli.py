"""`cylwatch sim`: run the simulated city's devices against the broker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from .config import DEFAULT_MIX, SimConfig, parse_mix

_D = SimConfig()

DESCRIPTION = """\
Simulate the seeded city over MQTT (docs/ARCHITECTURE.md §5): filling guns at the seeded stations ask
for authorization and fill on "allow" (GB/T 38059 flow), smart valves report telemetry,
delivery vehicles drive between stations, customers and stores while their handhelds
scan dispatch / deliver / return / transfer / receive, and devices misbehave: illegal
fill attempts, circulation faults, duplicates, bad payloads, outages with buffered replay.

Reads the city from the database (run `cylwatch seed` first). Prints progress every
--report-every seconds and a summary at the end: messages per kind, auth allow/deny and
reasons, reply latency p50/p95/p99. Ingest must be running for replies to come back.
"""


def _rate(text: str) -> float:
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError("a rate is a share between 0 and 1")
    return v


def _positive(text: str) -> float:
    v = float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return v


def _mix(text: str) -> dict[str, float]:
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The simulator's flags (also used by the benchmarks to stay in step)."""
    p.add_argument(
        "--rate",
        type=_positive,
        default=_D.rate,
        help="target messages per second, everything included (default %(default)s)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=_D.duration,
        help="seconds to run, 0 = until Ctrl-C (default %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=_D.seed,
        help="random seed: same seed and city, same messages (default %(default)s)",
    )
    p.add_argument(
        "--stations",
        type=int,
        default=None,
        help="drive only the first N licensed stations and their companies' devices (default: all)",
    )
    mix = ",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items())
    p.add_argument(
        "--mix",
        type=_mix,
        default=None,
        help=f"weights of fresh traffic (default {mix}); 'gun' is an auth request, "
        "each allowed one is followed by its fill record",
    )
    p.add_argument(
        "--illegal-rate",
        type=_rate,
        default=_D.illegal_rate,
        help="share of fill requests that must be refused: another company's "
        "cylinder, overdue, scrapped, unknown tag (default %(default)s)",
    )
    p.add_argument(
        "--overfill-rate",
        type=_rate,
        default=_D.overfill_rate,
        help="share of fills above the model's max fill (default %(default)s)",
    )
    p.add_argument(
        "--underfill-rate",
        type=_rate,
        default=_D.underfill_rate,
        help="share of fills below max - tolerance (default %(default)s)",
    )
    p.add_argument(
        "--check-fail-rate",
        type=_rate,
        default=_D.check_fail_rate,
        help="share of fills with a failed pre/post check, sent as aborted (default %(default)s)",
    )
    p.add_argument(
        "--leak-rate",
        type=_rate,
        default=_D.leak_rate,
        help="share of valve readings above the leak threshold (default %(default)s)",
    )
    p.add_argument(
        "--circulation-rate",
        type=_rate,
        default=_D.circulation_rate,
        help="share of fresh messages that break a circulation rule: an overdue or scrapped "
        "cylinder dispatched, an empty delivered as full, another company's cylinder taken "
        "back, a tag read at two far places (default %(default)s)",
    )
    p.add_argument(
        "--dup-rate",
        type=_rate,
        default=_D.dup_rate,
        help="share of messages published twice with the same msg_id (default %(default)s)",
    )
    p.add_argument(
        "--bad-rate",
        type=_rate,
        default=_D.bad_rate,
        help="share of bad payloads: not JSON, missing field, wrong type, future "
        "ts, unknown device (default %(default)s)",
    )
    p.add_argument(
        "--offline-rate",
        type=_rate,
        default=_D.offline_rate,
        help="per message, probability its device goes offline first, buffers, "
        "and replays with original ts when back (default %(default)s)",
    )
    p.add_argument(
        "--offline-seconds",
        type=_positive,
        default=_D.offline_seconds,
        help="how long an outage lasts (default %(default)s)",
    )
    p.add_argument(
        "--fill-seconds",
        type=float,
        default=_D.fill_seconds,
        help="time from 'allow' to the fill record (default %(default)s)",
    )
    p.add_argument(
        "--auth-timeout",
        type=_positive,
        default=_D.auth_timeout,
        help="a gun gives up on a reply after this many seconds (default %(default)s)",
    )
    p.add_argument(
        "--vehicle-speed-kmh",
        type=_positive,
        default=_D.vehicle_speed_kmh,
        help="average vehicle speed, ±30%% per vehicle (default %(default)s)",
    )
    p.add_argument(
        "--connections",
        type=int,
        default=_D.connections,
        help="MQTT connections to spread devices over (default %(default)s)",
    )
    p.add_argument(
        "--report-every",
        type=float,
        default=_D.report_every,
        help="seconds between progress lines, 0 = none (default %(default)s)",
    )
    p.add_argument("--mqtt-url", default=None, help="broker (default: the settings' mqtt_url)")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        rate=args.rate,
        duration=args.duration,
        seed=args.seed,
        stations=args.stations,
        mix=args.mix if args.mix is not None else dict(DEFAULT_MIX),
        illegal_rate=args.illegal_rate,
        overfill_rate=args.overfill_rate,
        underfill_rate=args.underfill_rate,
        check_fail_rate=args.check_fail_rate,
        leak_rate=args.leak_rate,
        circulation_rate=args.circulation_rate,
        dup_rate=args.dup_rate,
        bad_rate=args.bad_rate,
        offline_rate=args.offline_rate,
        offline_seconds=args.offline_seconds,
        fill_seconds=args.fill_seconds,
        auth_timeout=args.auth_timeout,
        vehicle_speed_kmh=args.vehicle_speed_kmh,
        connections=args.connections,
        report_every=args.report_every,
    )


async def _cmd_sim(args: argparse.Namespace, settings: Any) -> int:
    from .runner import run_sim

    cfg = config_from_args(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await run_sim(settings, cfg, mqtt_url=args.mqtt_url, stop=stop)
    except RuntimeError as exc:
        print(f"cylwatch sim: {exc}")
        return 1
    return 0


def add_commands(sub: Any) -> None:
    """Register ``cylwatch sim``."""
    p = sub.add_parser(
        "sim",
        help="simulate the city's devices over MQTT (load and fault generator)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=_cmd_sim)
