"""Reaching the platform's real services, and saying clearly when one is down.

docs/ARCHITECTURE.md §3: a command that needs a service that is not running says so in one line with the
URL it tried and the command that starts it — never a traceback.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

START_COMMANDS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --port 6379 --save "" --appendonly no',
    "Mosquitto": "mosquitto -d -c /etc/mosquitto/mosquitto.conf",
}


class ServiceUnavailable(RuntimeError):
    """A service the command needs cannot be reached."""

    def __init__(self, service: str, url: str, detail: str = "") -> None:
        self.service = service
        self.url = redact(url)
        self.detail = detail
        hint = START_COMMANDS.get(service, "")
        msg = f"{service} is not reachable at {self.url}"
        if detail:
            msg += f" ({detail})"
        if hint:
            msg += f" — start it with: {hint}"
        super().__init__(msg)


_SECRET_PARAMS = re.compile(r"(?i)(^|&)(password|passwd|pwd|sslpassword)=[^&]*")


def redact(url: str) -> str:
    """Hide the password of a service URL before it is printed or logged: the userinfo's
    (``postgresql://user:pw@host``, Redis' password-only ``redis://:pw@host``, a password
    holding an unencoded ``@``) and a libpq ``?password=`` parameter."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: say nothing of what it holds
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    query = _SECRET_PARAMS.sub(r"\1\2=***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))
