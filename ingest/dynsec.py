"""The broker's clients and roles, managed live through Mosquitto's dynamic-security plugin.

The production broker (``config/mosquitto.conf``, docs/SECURITY.md "Broker") lets no one in
anonymously and checks every publish and subscribe against roles held by the
dynamic-security plugin. The platform manages those roles over the plugin's control topic
(``$CONTROL/dynamic-security/v1``: JSON commands in, JSON responses on ``.../response``), so
registering or deactivating a device takes effect at once, with no file to regenerate and no
broker to restart:

- each device is a broker client named by its ``device_id`` holding one role of its own:
  publish only its own topics, read only its own fill-authorization replies (the grants of
  :mod:`ingest.credentials`, shared with the password/ACL-file fallback);
- the ingest workers' client holds :data:`INGEST_ROLE`: consume ``cyl/v1/#`` through their
  shared subscription, publish replies;
- the platform's admin client holds :data:`PLATFORM_ROLE`: the control topic only, no data.

:func:`ingest.broker_sync.sync_broker` brings the broker in line with the device registry (idempotent, run by
``cylwatch devices broker-sync``); :func:`apply_device_active` is the API's immediate hook
when a device is (de)activated, and :func:`create_device_client` gives a device registered
through the API its client at once, with the password the API shows its registrant once.
Disabling a client also disconnects it.

The registry is the truth and a broker outage loses nothing: ingest refuses the messages and
fill requests of an inactive device whatever the broker does, and a change the broker could
not take now (outcome ``pending``) is applied by the next ``broker-sync`` — run from a timer,
it is the repair path after an outage (docs/SECURITY.md "Broker").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, Self

import aiomqtt
import orjson

from ingest.credentials import (
    INGEST_READ,
    INGEST_WRITE,
    device_read_filter,
    device_write_topics,
    is_safe_id,
)
from ingest.transport import parse_mqtt_url
from server.kernel.services import ServiceUnavailable
from server.kernel.settings import Settings

__all__ = [
    "DEVICE_ROLE_PREFIX",
    "INGEST_ROLE",
    "PLATFORM_ROLE",
    "Acl",
    "BrokerControl",
    "BrokerControlError",
    "BrokerOutcome",
    "apply_device_active",
    "broker_client",
    "create_device_client",
    "device_acls",
    "device_role",
    "ingest_acls",
    "may_have_client",
    "platform_acls",
    "reserved_usernames",
    "set_device_enabled",
]

log = logging.getLogger(__name__)

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC: Final = f"{CONTROL_TOPIC}/response"
CONTROL_FILTER: Final = "$CONTROL/dynamic-security/#"

DEVICE_ROLE_PREFIX: Final = "cylwatch-device-"
"""A client holding a role named so is a device the platform manages (and may delete)."""
INGEST_ROLE: Final = "cylwatch-ingest"
PLATFORM_ROLE: Final = "cylwatch-platform"

COMMANDS_PER_MESSAGE: Final = 100
"""Commands sent in one control message: a few KiB, far below the broker's
``max_packet_size`` (256 KiB in config/mosquitto.conf) however many devices change."""

NOT_FOUND: Final = "Client not found"
"""The plugin's answer about a username it does not hold (mosquitto 2.0)."""

DEFAULT_INGEST_USER: Final = "cylwatch-ingest"
"""The ingest workers' username when ``CYL_MQTT_URL`` names none (as ``broker-sync``)."""

BrokerOutcome = Literal["applied", "no_client", "pending", "unmanaged"]
"""What became of a device change on the broker, as the API reports it:

- ``applied``: the broker took it (a client created, enabled, or disabled and disconnected);
- ``no_client``: the broker holds no client for the device (never synced): nothing to cut,
  ``broker-sync`` creates one when the device is active;
- ``pending``: the broker could not be reached or refused; the registry stands (ingest
  already follows it) and the next ``broker-sync`` applies it;
- ``unmanaged``: no ``[services] mqtt_admin_url``: the platform does not manage the broker
  (a development broker, or the password-file fallback of ``devices mosquitto-config``).
"""

DEFAULT_ACCESS: Final = (
    ("publishClientSend", False),
    ("publishClientReceive", False),
    ("subscribe", False),
    ("unsubscribe", True),
)
"""What a client may do that no role of its grants: nothing but unsubscribe."""


class BrokerControlError(RuntimeError):
    """The plugin refused a command (its own message, e.g. "Role not found")."""

    def __init__(self, command: str, error: str) -> None:
        self.command = command
        self.error = error
        super().__init__(f"dynamic security: {command}: {error}")


@dataclass(frozen=True, slots=True, order=True)
class Acl:
    """One ACL of a role, as the plugin stores it (priority 0, the default)."""

    acltype: str
    topic: str
    allow: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow}


def _read(topic_filter: str) -> list[Acl]:
    """Subscribe to *topic_filter* (or anything narrower) and receive what it matches."""
    return [Acl("subscribePattern", topic_filter), Acl("publishClientReceive", topic_filter)]


def device_role(device_id: str) -> str:
    return DEVICE_ROLE_PREFIX + device_id


def device_acls(kind: str, device_id: str) -> list[Acl]:
    """Publish only its own topics (the status one carries its last will); read only its
    own replies. Nothing else is granted, and the default for the rest is deny."""
    acls = [Acl("publishClientSend", topic) for topic in device_write_topics(kind, device_id)]
    reply = device_read_filter(kind, device_id)
    if reply is not None:
        acls += _read(reply)
    return sorted(acls)


def ingest_acls(shared_group: str) -> list[Acl]:
    """The workers' shared subscription (``$share/<group>/cyl/v1/#``, docs/CONFIG.md
    ``[ingest] shared_group``) and the replies they publish."""
    return sorted(
        [
            Acl("subscribePattern", f"$share/{shared_group}/{INGEST_READ}"),
            Acl("publishClientReceive", INGEST_READ),
            Acl("publishClientSend", INGEST_WRITE),
        ]
    )


def platform_acls() -> list[Acl]:
    """The control topic and its responses, and no device data."""
    return sorted([Acl("publishClientSend", CONTROL_FILTER), *_read(CONTROL_FILTER)])


def broker_client(
    url: str, timeout_s: float, username: str | None, password: str | None
) -> aiomqtt.Client:
    """An MQTT v5 client for the broker at *url* (TLS for ``mqtts://``) as *username*."""
    address = parse_mqtt_url(url)
    return aiomqtt.Client(
        address.host,
        address.port,
        username=username,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=ssl.create_default_context() if address.tls else None,
        timeout=timeout_s,
    )


class BrokerControl:
    """An admin connection to the dynamic-security plugin (``[services] mqtt_admin_url``).

    :meth:`run` sends commands in one message, each with its own correlation data, and
    waits for their responses; responses meant for another admin connection (every admin
    hears the one response topic) are skipped.
    """

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        address = parse_mqtt_url(url)
        self._client = broker_client(url, timeout_s, address.username, address.password)
        self._token = secrets.token_hex(8)
        self._serial = itertools.count()

    async def __aenter__(self) -> Self:
        try:
            await self._client.__aenter__()
            await self._client.subscribe(RESPONSE_TOPIC, qos=1)
        except aiomqtt.MqttError as exc:
            raise ServiceUnavailable("Mosquitto", self.url, f"admin client: {exc}") from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # a connection the broker has already dropped (see _give_admin_platform_role)
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(exc_type, exc, tb)

    async def run(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each command's response (``data`` and/or ``error``), in the commands' order."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(commands), COMMANDS_PER_MESSAGE):
            results += await self._run_chunk(commands[start : start + COMMANDS_PER_MESSAGE])
        return results

    async def _run_chunk(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [f"{self._token}-{next(self._serial)}" for _ in commands]
        body = [{**c, "correlationData": i} for c, i in zip(commands, ids, strict=True)]
        pending = dict.fromkeys(ids)
        try:
            await self._client.publish(CONTROL_TOPIC, orjson.dumps({"commands": body}), qos=1)
            async with asyncio.timeout(self.timeout_s):
                async for message in self._client.messages:
                    for response in _responses(message.payload):
                        key = response.get("correlationData")
                        if key in pending:
                            pending[key] = response
                    if all(v is not None for v in pending.values()):
                        break
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise ServiceUnavailable("Mosquitto", self.url, f"dynamic security: {exc}") from None
        return [r or {} for r in pending.values()]

    async def send_to_be_disconnected(self, command: dict[str, Any]) -> None:
        """Send one command that makes the broker close this very connection (a change of
        its own client): at QoS 0, since no PUBACK would come, then wait for the close."""
        try:
            await self._client.publish(CONTROL_TOPIC, orjson.dumps({"commands": [command]}))
            async with asyncio.timeout(self.timeout_s):
                async for _ in self._client.messages:
                    pass
        except (aiomqtt.MqttError, TimeoutError):
            return

    async def check(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`run`, raising :class:`BrokerControlError` on the first refusal."""
        responses = await self.run(commands)
        for command, response in zip(commands, responses, strict=True):
            if "error" in response:
                raise BrokerControlError(command["command"], str(response["error"]))
        return responses


def _responses(payload: Any) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(payload)
    except (orjson.JSONDecodeError, TypeError):
        return []
    found = doc.get("responses") if isinstance(doc, dict) else None
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


# ---------------------------------------------------------------------- the immediate hook


async def set_device_enabled(url: str, timeout_s: float, device_id: str, enabled: bool) -> bool:
    """Enable or disable one device's broker client now; disabling also disconnects it.

    Returns False when the broker holds no such client (nothing to cut off; a device never
    synced gets its client from ``cylwatch devices broker-sync``). Raises
    :class:`~server.kernel.services.ServiceUnavailable` when the broker cannot be reached.
    """
    command = "enableClient" if enabled else "disableClient"
    async with BrokerControl(url, timeout_s) as control:
        (response,) = await control.run([{"command": command, "username": device_id}])
    error = response.get("error")
    if error == NOT_FOUND:
        return False
    if error is not None:
        raise BrokerControlError(command, str(error))
    return True


async def apply_device_active(settings: Settings, device_id: str, active: bool) -> BrokerOutcome:
    """The API's hook after it has stored a device's ``active`` flag: the broker follows.

    The database is the truth and stays so: if the broker cannot be reached (tried twice,
    ``[ingest] reconnect_min_s`` apart) the change stands, a warning names the device, and
    ``cylwatch devices broker-sync`` puts the broker in line later (docs/SECURITY.md
    "Broker"). Without ``[services] mqtt_admin_url`` there is nothing to manage (a
    development broker).
    """
    url = settings.services.mqtt_admin_url
    if not url:
        return "unmanaged"
    problem: Exception | None = None
    for attempt in range(2):
        if attempt:
            await asyncio.sleep(settings.ingest.reconnect_min_s)
        try:
            held = await set_device_enabled(
                url, settings.services.connect_timeout_s, device_id, active
            )
        except (ServiceUnavailable, BrokerControlError) as exc:
            problem = exc
        else:
            return "applied" if held else "no_client"
    log.warning(
        "device %s is %s in the registry but not on the broker (%s); run"
        " `cylwatch devices broker-sync`",
        device_id,
        "active" if active else "deactivated",
        problem,
    )
    return "pending"


def reserved_usernames(settings: Settings) -> frozenset[str]:
    """Broker usernames that are not devices': the ingest workers' and the admin client's."""
    names = {parse_mqtt_url(settings.services.mqtt_url).username or DEFAULT_INGEST_USER}
    if settings.services.mqtt_admin_url:
        admin = parse_mqtt_url(settings.services.mqtt_admin_url).username
        if admin:
            names.add(admin)
    return frozenset(names)


def may_have_client(settings: Settings, device_id: str) -> bool:
    """Whether *device_id* can be a broker client: usable as an MQTT username and topic
    level, and not the name of the platform's own clients (``broker-sync`` skips it too)."""
    return is_safe_id(device_id) and device_id not in reserved_usernames(settings)


async def create_device_client(
    settings: Settings, device_id: str, kind: str, password: str
) -> BrokerOutcome:
    """Give a device just registered its broker client and own role now, with *password*.

    A role of that name left by an earlier device is given this device's grants; a client of
    that name already on the broker is left alone (``pending``: its password is not the
    caller's, so the caller must not hand *password* out; ``broker-sync --rotate`` issues
    one). Unreachable broker: ``pending`` and a warning; ``broker-sync`` creates the client
    with a password of its own later.
    """
    url = settings.services.mqtt_admin_url
    if not url:
        return "unmanaged"
    role = device_role(device_id)
    acls = [a.as_json() for a in device_acls(kind, device_id)]
    try:
        async with BrokerControl(url, settings.services.connect_timeout_s) as control:
            (made,) = await control.run([{"command": "createRole", "rolename": role, "acls": acls}])
            if "error" in made:
                await control.check([{"command": "modifyRole", "rolename": role, "acls": acls}])
            await control.check(
                [
                    {
                        "command": "createClient",
                        "username": device_id,
                        "password": password,
                        "roles": [{"rolename": role}],
                    }
                ]
            )
    except (ServiceUnavailable, BrokerControlError) as exc:
        log.warning(
            "device %s is registered but has no broker client yet (%s); run"
            " `cylwatch devices broker-sync`",
            device_id,
            exc,
        )
        return "pending"
    return "applied"
