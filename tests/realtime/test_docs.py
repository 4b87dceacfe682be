"""docs/WEBSOCKET.md documents every message type, channel, error code and close code the
code has (the constants in realtime/protocol.py are the single source)."""

from __future__ import annotations

from pathlib import Path

from realtime import protocol

DOC = Path(__file__).resolve().parents[2] / "docs" / "WEBSOCKET.md"


def test_every_protocol_constant_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = [
        *protocol.COMMAND_TYPES,
        *protocol.SERVER_TYPES,
        *protocol.CHANNELS,
        *protocol.ERROR_CODES,
        *protocol.RESYNC_REASONS,
    ]
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"not documented in {DOC.name}: {missing}"
    missing_close = [code for code in protocol.CLOSE_CODES if f"`{code}`" not in text]
    assert not missing_close, f"close codes not documented: {missing_close}"


def test_error_codes_are_unique_constants() -> None:
    assert len(set(protocol.ERROR_CODES)) == len(protocol.ERROR_CODES)
    module_codes = {
        value
        for name, value in vars(protocol).items()
        if name.isupper()
        and isinstance(value, str)
        and name
        not in (
            "SUBSCRIBE",
            "UNSUBSCRIBE",
            "PING",
            "RESULT",
            "EVENT",
            "PONG",
            "RESYNC",
            "RESYNC_GAP",
            "RESYNC_RECONNECTED",
            "POSITIONS",
            "ALERTS",
            "FILLS",
            "KPIS",
            "EVENTS",
            "DEVICES",
        )
    }
    assert module_codes == set(protocol.ERROR_CODES)
