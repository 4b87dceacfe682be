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

:func:`sync_broker` brings the broker in line with the device registry (idempotent, run by
``cylwatch devices broker-sync``); :func:`apply_device_active` is the API's immediate hook
when a device is (de)activated. Disabling a client also disconnects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import aiomqtt
import orjson

from ingest.credentials import (
    INGEST_READ,
    INGEST_WRITE,
    device_read_filter,
    device_write_topics,
    is_safe_id,
    new_password,
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
    "DeviceEntry",
    "SyncReport",
    "apply_device_active",
    "device_acls",
    "device_role",
    "ingest_acls",
    "platform_acls",
    "set_device_enabled",
    "sync_broker",
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
        self._client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            tls_context=ssl.create_default_context() if address.tls else None,
            timeout=timeout_s,
        )
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


# ---------------------------------------------------------------------- sync


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """One row of the device registry, as the broker needs it."""

    device_id: str
    kind: str
    active: bool


@dataclass(slots=True)
class SyncReport:
    """What :func:`sync_broker` changed. ``passwords`` holds the passwords it set (new
    clients, ``rotate``): for the installers, once; the broker keeps only a hash."""

    passwords: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    """Clients whose roles had drifted (re-set; the broker disconnects them once)."""
    skipped: list[str] = field(default_factory=list)
    """Device ids unusable as MQTT usernames and topic levels."""
    admin_changed: bool = False


@dataclass(frozen=True, slots=True)
class _Client:
    roles: tuple[str, ...]
    disabled: bool


def _acl_set(acls: Iterable[Any]) -> frozenset[Acl]:
    return frozenset(
        Acl(str(a["acltype"]), str(a["topic"]), bool(a.get("allow", True)))
        for a in acls
        if isinstance(a, dict) and "topic" in a
    )


async def _state(control: BrokerControl) -> tuple[dict[str, frozenset[Acl]], dict[str, _Client]]:
    listing = {"verbose": True, "count": -1, "offset": 0}
    roles_r, clients_r = await control.check(
        [{"command": "listRoles", **listing}, {"command": "listClients", **listing}]
    )
    roles = {
        str(r["rolename"]): _acl_set(r.get("acls", ()))
        for r in roles_r.get("data", {}).get("roles", ())
    }
    clients = {
        str(c["username"]): _Client(
            tuple(sorted(str(r["rolename"]) for r in c.get("roles", ()))),
            bool(c.get("disabled", False)),
        )
        for c in clients_r.get("data", {}).get("clients", ())
    }
    return roles, clients


def _role_commands(
    existing: dict[str, frozenset[Acl]], name: str, acls: list[Acl]
) -> list[dict[str, Any]]:
    wanted = [a.as_json() for a in acls]
    if name not in existing:
        return [{"command": "createRole", "rolename": name, "acls": wanted}]
    if existing[name] != frozenset(acls):
        return [{"command": "modifyRole", "rolename": name, "acls": wanted}]
    return []


def _client_commands(
    report: SyncReport,
    clients: dict[str, _Client],
    username: str,
    role: str,
    password: str | None,
    *,
    set_password: bool,
) -> list[dict[str, Any]]:
    """Create *username* with exactly *role*, or bring an existing client back to it."""
    current = clients.get(username)
    if current is None:
        pw = password if password is not None else new_password()
        report.created.append(username)
        if password is None:
            report.passwords[username] = pw
        roles = [{"rolename": role}]
        return [{"command": "createClient", "username": username, "password": pw, "roles": roles}]
    commands: list[dict[str, Any]] = []
    if current.roles != (role,):
        report.repaired.append(username)
        commands.append(
            {"command": "modifyClient", "username": username, "roles": [{"rolename": role}]}
        )
    if current.disabled:
        report.enabled.append(username)
        commands.append({"command": "enableClient", "username": username})
    if set_password:
        pw = password if password is not None else new_password()
        if password is None:
            report.passwords[username] = pw
        commands.append({"command": "setClientPassword", "username": username, "password": pw})
    return commands


async def sync_broker(
    control: BrokerControl,
    devices: Sequence[DeviceEntry],
    *,
    ingest_user: str,
    ingest_password: str | None,
    shared_group: str,
    admin_user: str | None,
    rotate: bool = False,
) -> SyncReport:
    """Bring the broker's roles and clients in line with the registry; idempotent.

    Active devices get a client (new ones a new password, in the report) holding only their
    own role; inactive ones are disabled (and disconnected); device clients whose device is
    gone are deleted. The ingest client gets :data:`INGEST_ROLE` (its password from
    ``CYL_MQTT_URL`` when that names one). The admin client named by *admin_user* is given
    exactly :data:`PLATFORM_ROLE`, last: the broker then drops its connection, so this is
    the final command of a run.
    """
    report = SyncReport()
    roles, clients = await _state(control)
    reserved = {ingest_user, admin_user}
    commands: list[dict[str, Any]] = [
        {
            "command": "setDefaultACLAccess",
            "acls": [{"acltype": t, "allow": allow} for t, allow in DEFAULT_ACCESS],
        },
    ]
    commands += _role_commands(roles, INGEST_ROLE, ingest_acls(shared_group))
    commands += _role_commands(roles, PLATFORM_ROLE, platform_acls())
    commands += _client_commands(
        report,
        clients,
        ingest_user,
        INGEST_ROLE,
        ingest_password,
        set_password=ingest_password is not None or rotate,
    )
    known: set[str] = set()
    for device in devices:
        if not is_safe_id(device.device_id) or device.device_id in reserved:
            report.skipped.append(device.device_id)
            continue
        known.add(device.device_id)
        role = device_role(device.device_id)
        current = clients.get(device.device_id)
        if not device.active:
            if current is not None and not current.disabled:
                report.disabled.append(device.device_id)
                commands.append({"command": "disableClient", "username": device.device_id})
            continue
        commands += _role_commands(roles, role, device_acls(device.kind, device.device_id))
        commands += _client_commands(
            report, clients, device.device_id, role, None, set_password=rotate
        )
    for username, client in sorted(clients.items()):
        owned = [r for r in client.roles if r.startswith(DEVICE_ROLE_PREFIX)]
        if owned and username not in known and username not in reserved:
            report.deleted.append(username)
            commands.append({"command": "deleteClient", "username": username})
            commands += [{"command": "deleteRole", "rolename": r} for r in owned]
    await control.check(commands)
    current_admin = clients.get(admin_user) if admin_user else None
    if current_admin is not None and current_admin.roles != (PLATFORM_ROLE,):
        report.admin_changed = True
        await _give_admin_platform_role(control, str(admin_user))
    return report


async def _give_admin_platform_role(control: BrokerControl, admin_user: str) -> None:
    """Changing a client's roles disconnects it — here our own connection — before the
    response can arrive; success is then checked on a fresh connection."""
    command = {
        "command": "modifyClient",
        "username": admin_user,
        "roles": [{"rolename": PLATFORM_ROLE}],
    }
    with contextlib.suppress(ServiceUnavailable):
        await control.run([command])
    async with BrokerControl(control.url, control.timeout_s) as again:
        (response,) = await again.check([{"command": "getClient", "username": admin_user}])
    roles = [r.get("rolename") for r in response.get("data", {}).get("client", {}).get("roles", [])]
    if roles != [PLATFORM_ROLE]:
        raise BrokerControlError("modifyClient", f"{admin_user} still holds roles {roles}")


async def apply_device_active(settings: Settings, device_id: str, active: bool) -> bool:
    """The API's hook after it has stored a device's ``active`` flag: the broker follows.

    The database is the truth and stays so: if the broker cannot be reached (tried twice,
    ``[ingest] reconnect_min_s`` apart) the change stands, a warning names the device, and
    ``cylwatch devices broker-sync`` puts the broker in line later (docs/SECURITY.md
    "Broker"). Returns whether the broker took the change. Without ``[services]
    mqtt_admin_url`` there is nothing to manage (a development broker).
    """
    url = settings.services.mqtt_admin_url
    if not url:
        return False
    problem: Exception | None = None
    for attempt in range(2):
        if attempt:
            await asyncio.sleep(settings.ingest.reconnect_min_s)
        try:
            await set_device_enabled(url, settings.services.connect_timeout_s, device_id, active)
        except (ServiceUnavailable, BrokerControlError) as exc:
            problem = exc
        else:
            return True
    log.warning(
        "device %s is %s in the registry but not on the broker (%s); run"
        " `cylwatch devices broker-sync`",
        device_id,
        "active" if active else "deactivated",
        problem,
    )
    return False
