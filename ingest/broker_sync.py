"""``cylwatch devices broker-sync``: the broker's clients and roles in line with the registry.

The live hook (:func:`ingest.dynsec.apply_device_active`) covers a device (de)activated
through the API; this covers everything else and repairs what a broker outage made the hook
miss (docs/SECURITY.md "Broker"): devices registered or removed, roles that drifted, the
ingest and admin clients, passwords to rotate. Only what differs is changed, because the
broker disconnects a client whose roles or password change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from ingest.credentials import is_safe_id, new_password
from ingest.dynsec import (
    DEFAULT_ACCESS,
    DEVICE_ROLE_PREFIX,
    INGEST_ROLE,
    PLATFORM_ROLE,
    Acl,
    BrokerControl,
    BrokerControlError,
    broker_client,
    device_acls,
    device_role,
    ingest_acls,
    platform_acls,
)

__all__ = ["DeviceEntry", "SyncReport", "sync_broker"]


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
    ingest_password_set: bool = False
    """The ingest client's password was set to the one in ``CYL_MQTT_URL`` (it differed)."""


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
        set_password=ingest_password is None and rotate,
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
    if (
        ingest_password is not None
        and ingest_user in clients
        and not await _password_works(control, ingest_user, ingest_password)
    ):
        report.ingest_password_set = True
        await control.check(
            [{"command": "setClientPassword", "username": ingest_user, "password": ingest_password}]
        )
    current_admin = clients.get(admin_user) if admin_user else None
    if current_admin is not None and current_admin.roles != (PLATFORM_ROLE,):
        report.admin_changed = True
        await _give_admin_platform_role(control, str(admin_user))
    return report


async def _password_works(control: BrokerControl, username: str, password: str) -> bool:
    """Whether the broker lets *username* in with *password*. Setting a password
    disconnects the client (mosquitto 2.0), so the ingest workers' password is set only
    when it differs — not at every run of a periodic sync."""
    client = broker_client(control.url, control.timeout_s, username, password)
    try:
        async with client:
            return True
    except aiomqtt.MqttError:
        return False


async def _give_admin_platform_role(control: BrokerControl, admin_user: str) -> None:
    """Changing a client's roles disconnects it — here our own connection — before the
    response can arrive; the change is then checked on a fresh connection."""
    command = {
        "command": "modifyClient",
        "username": admin_user,
        "roles": [{"rolename": PLATFORM_ROLE}],
    }
    await control.send_to_be_disconnected(command)
    async with BrokerControl(control.url, control.timeout_s) as again:
        (response,) = await again.check([{"command": "getClient", "username": admin_user}])
    roles = [r.get("rolename") for r in response.get("data", {}).get("client", {}).get("roles", [])]
    if roles != [PLATFORM_ROLE]:
        raise BrokerControlError("modifyClient", f"{admin_user} still holds roles {roles}")
