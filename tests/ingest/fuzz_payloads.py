"""Bad device payloads by family, and good ones to mix in: the MQTT fuzzer's material.

Shared by the pytest (``tests/ingest/test_fuzz_families.py``, a few thousand payloads) and
``bench/fuzz_mqtt.py`` (≥ 100,000). The families of issue 10 item 2, on top of the
mutations of ``tests/ingest/test_fuzz.py`` (which this reuses): random bytes, mutated valid
messages, huge payloads, deeply nested JSON, wrong encodings, wrong types.

Every bad payload is invalid *by construction* (the contract of docs/ARCHITECTURE.md §5, not
the parser under test, says so) and unique in its first bytes, so its dead letter — whose
payload is cut at ``[ingest] dead_letter_max_bytes`` (docs/CONFIG.md) — can be found again
and counted. Good payloads carry a fresh ``msg_id`` and are sometimes padded with unknown
fields (a newer firmware's), which the contract says to ignore.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tests.ingest.test_fuzz import good_payloads, mutate

HUGE_BYTES = (100_000, 200_000)
"""Size range of a huge payload: well past a dead letter's 64 KiB cut, and under the
broker's ``max_packet_size`` of 262,144 (config/mosquitto.conf), which refuses larger
packets before they reach any worker."""
DEEP = (2_000, 30_000)
"""Nesting depth of a deep bad payload: past what any decoder walks by recursion (Python's
default limit is 1,000 frames), and at 5 bytes a level under the broker's packet limit."""
GOOD_NESTING = 40
"""Depth of the unknown nested field some good payloads carry: ordinary for JSON."""
DEAD_LETTER_CUT = 65_536
"""``[ingest] dead_letter_max_bytes`` by default (docs/CONFIG.md): the bytes a dead letter keeps."""
GOOD_KINDS = ("auth", "fill", "telemetry", "scan", "position")
"""Good messages whose storing is counted (by msg_id); status messages carry none."""
PRIMARY_TABLE = {
    "auth": "events",  # fill_authorized / fill_refused
    "fill": "fills",
    "telemetry": "telemetry",
    "scan": "events",
    "position": "positions",
}
"""Where each good message leaves exactly one row under its msg_id."""


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    family: str
    kind: str = ""  # the good message's kind (its topic's leaf)
    msg_id: str = ""


def digest(payload: bytes, cut: int) -> str:
    """What a dead letter of *payload* is matched by: md5 of its kept bytes (as SQL md5())."""
    return hashlib.md5(payload[:cut]).hexdigest()


def _marker(i: int) -> bytes:
    return f'{{"fz":{i},'.encode()


def _random_bytes(i: int, rng: random.Random, topic: str, good: dict[str, Any]) -> bytes:
    return b"\x00" + str(i).encode() + b"\xff" + rng.randbytes(rng.randrange(0, 2048))


def _mutated(i: int, rng: random.Random, topic: str, good: dict[str, Any]) -> tuple[str, bytes]:
    return mutate(topic, good, i, rng)


def _huge(i: int, rng: random.Random, topic: str, good: dict[str, Any]) -> bytes:
    size = rng.randrange(*HUGE_BYTES)
    how = rng.randrange(4)
    if how == 0:  # a huge required string (a tag, a msg_id: both have a length limit)
        field = "tag" if "tag" in good else "msg_id" if "msg_id" in good else "online"
        return _marker(i) + orjson.dumps({**good, field: "T" * size})[1:]
    if how == 1:  # a huge array where an object is expected
        return b"[" + str(i).encode() + b"," + b"1," * (size // 2) + b"1]"
    if how == 2:  # megabytes of random bytes
        return _marker(i) + rng.randbytes(size)
    # a huge object with the required fields of the wrong type
    return _marker(i) + orjson.dumps({**good, "ts": "x" * size})[1:]


def _deep(i: int, rng: random.Random, topic: str, good: dict[str, Any]) -> bytes:
    depth = rng.randrange(*DEEP)
    how = rng.randrange(3)
    if how == 0:  # the whole body: arrays in arrays
        return f"[{i},".encode() + b"[" * depth + b"]" * depth + b"]"
    if how == 1:  # deep objects in an unknown field of an otherwise good message
        return (
            _marker(i)
            + b'"x":'
            + b'{"a":' * depth
            + b"1"
            + b"}" * depth
            + b","
            + orjson.dumps(good)[1:]
        )
    # deep arrays in place of a required field
    key = "ts"
    return _marker(i) + f'"{key}":'.encode() + b"[" * depth + b"]" * depth + b"}"


def _encoding(i: int, rng: random.Random, topic: str, good: dict[str, Any]) -> bytes:
    text = orjson.dumps({"fz": i, **good}).decode()
    how = rng.randrange(4)
    if how == 0:
        return text.encode("utf-16")  # with its BOM
    if how == 1:
        return text.encode("utf-16-be")
    if how == 2:
        return text.encode("utf-32")
    # a string with bytes that are not UTF-8 (a lone byte, an overlong form, an encoded
    # surrogate, GBK), in an otherwise good message
    bad = rng.choice(NOT_UTF8)
    key = "tag" if "tag" in good else "msg_id" if "msg_id" in good else None
    body = {"fz": i, **good}
    if key is None:  # status: no string field: put it in an unknown one
        return orjson.dumps(body)[:-1] + b',"note":"' + bad + b'"}'
    body[key] = "@@"
    return orjson.dumps(body).replace(b'"@@"', b'"' + bad + b'"')


def _wrong_types(i: int, rng: random.Random, topic: str, good: dict[str, Any]) -> bytes:
    """Every field of a good message turned into a string (``"12"`` is not a number),
    or every field into null, or the body an array of its values."""
    body: dict[str, Any] = {"fz": i}
    how = rng.randrange(3)
    if how == 0:
        # ts (in every message) is an integer: as a string it is refused
        body.update({k: str(v) for k, v in good.items()})
    elif how == 1:
        body.update(dict.fromkeys(good))
    else:
        return orjson.dumps([i, *good.values()])
    return orjson.dumps(body)


NOT_UTF8 = (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xe6\xb0", "气瓶".encode("gbk"))
"""Byte strings no UTF-8 decoder may accept."""

BadMaker = Callable[[int, random.Random, str, dict[str, Any]], bytes]
FAMILIES: dict[str, tuple[int, BadMaker | None]] = {
    # family: (weight, maker; None = the mutations of tests/ingest/test_fuzz.py)
    "random_bytes": (20, _random_bytes),
    "mutated": (40, None),
    "huge": (1, _huge),
    "deep": (3, _deep),
    "encoding": (16, _encoding),
    "wrong_types": (20, _wrong_types),
}
"""Bad families and their shares: huge and deep ones are few (each costs the broker and the
dead-letter table up to 200 KB), the rest share the count."""


def _good(rng: random.Random) -> Message:
    payloads = good_payloads(rng)
    topic = rng.choice([t for t in payloads if not t.endswith("/status")])
    body = payloads[topic]
    kind = topic.rsplit("/", 1)[1]
    raw = orjson.dumps(body)
    if rng.random() < 0.2:  # a newer firmware's unknown fields: ignored, the message stored
        extra = b'"fw":' + b'{"n":' * GOOD_NESTING + '"固件"'.encode() + b"}" * GOOD_NESTING + b","
        raw = b"{" + extra + raw[1:]
    return Message(topic, raw, "good", kind, body["msg_id"])


def traffic(bad: int, good: int, seed: int) -> list[Message]:
    """*bad* bad and *good* good messages, shuffled; every bad payload unique."""
    rng = random.Random(seed)
    names = list(FAMILIES)
    weights = [FAMILIES[n][0] for n in names]
    out: list[Message] = [_good(rng) for _ in range(good)]
    seen: set[str] = set()
    i = 0
    while len(out) < bad + good:
        i += 1
        family = rng.choices(names, weights)[0]
        payloads = good_payloads(rng)
        topic = rng.choice(list(payloads))
        maker = FAMILIES[family][1]
        if maker is None:
            topic, payload = _mutated(i, rng, topic, payloads[topic])
        else:
            payload = maker(i, rng, topic, payloads[topic])
        key = digest(payload, DEAD_LETTER_CUT)
        if key in seen:
            continue  # a twin could not be told apart in the dead letters
        seen.add(key)
        out.append(Message(topic, payload, family))
    rng.shuffle(out)
    return out
