"""The client's address behind a reverse proxy (docs/SECURITY.md "Behind a reverse proxy").

Behind nginx or Caddy every request comes from the proxy's address: the whole city would
share one public rate-limit bucket, and ``/metrics`` (open to the machine itself) would be
open to anyone the proxy forwards. When the peer is one of ``[http] trusted_proxies``, the
client is the right-most address of ``X-Forwarded-For`` that is not itself a trusted proxy
(the left part of the header is whatever the client chose to send, so it is never
believed). The request is cloned with that address, so everything downstream — rate
limits, audit rows, the ``/metrics`` check — reads the real one from ``request.remote``.
With no trusted proxies configured the header is ignored altogether.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache

from aiohttp import web

from server.kernel.appkeys import SETTINGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(peer: str | None, forwarded_for: str | None, cidrs: Sequence[str]) -> str | None:
    """The client's address given the peer, its X-Forwarded-For header and the trusted list."""
    networks = _networks(tuple(cidrs))
    if peer is None or not networks or not _trusted(peer, networks) or not forwarded_for:
        return peer
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed hop: believe nothing beyond the proxy
        if not _trusted(hop, networks):
            return hop
    return peer


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def client_address_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    cidrs = request.app[SETTINGS].http.trusted_proxies
    if cidrs:
        real = client_address(request.remote, request.headers.get("X-Forwarded-For"), cidrs)
        if real is not None and real != request.remote:
            request = request.clone(remote=real)
    return await handler(request)
