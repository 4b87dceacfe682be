"""`cylwatch`: one command-line entry point for operators.

Each command lives in the module that owns its concern and registers itself through
`add_commands(subparsers)`; this file only assembles them, loads settings, runs the chosen
command under uvloop, and turns a down service or bad setting into one clear line and a
non-zero exit code instead of a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from server.commands import ServeInline, serve_inline
from server.kernel.request_ids import configure_logging
from server.kernel.services import ServiceUnavailable
from server.kernel.settings import ConfigError, Settings, load_settings

Command = Callable[[argparse.Namespace, Settings], Awaitable[int | None]]

# Modules that contribute commands. Each defines add_commands(subparsers).
COMMAND_MODULES: Sequence[str] = (
    "server.commands",
    "server.seed",
    "server.archive",
    "server.cli_ingest",
    "server.cli_devices",
    "server.cli_audit",
    "server.cli_uploads",
    "server.cli_reports",
    "server.cli_chaos",
    "device_sim.cli",
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cylwatch",
        description="CylinderWatch 气瓶安全追溯监管平台 — LPG cylinder supervision platform.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--config", help="TOML file overriding config/default.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def run_command(func: Command, args: argparse.Namespace, settings: Settings) -> int:
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    result = runner(func(args, settings))
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(args.config)
        configure_logging(
            settings.logging.format, level=logging.DEBUG if args.verbose else logging.INFO
        )
        try:
            return run_command(args.func, args, settings)
        except ServeInline as serve:
            serve_inline(serve, settings)
            return 0
    except ConfigError as exc:
        print(f"cylwatch: configuration error: {exc}", file=sys.stderr)
        return 2
    except ServiceUnavailable as exc:
        print(f"cylwatch: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
