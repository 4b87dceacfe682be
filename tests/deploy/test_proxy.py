"""deploy/nginx: the reverse proxy a city runs in front of the platform.

The real nginx checks the shipped file with either upstream file (``nginx -t``), then runs it
(TLS on a spare port, a self-signed certificate) in front of a real platform server, and a
client sees what a browser would: a redirect to https, HSTS once, the websocket upgraded,
the platform's own 413 for a route's limit and nginx's for the largest, /metrics hidden,
and the platform reading the client's real address from X-Forwarded-For while the part of
that header the client wrote itself is not believed.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from server.kernel.settings import load_settings
from tests.deploy.nginx_rig import DEPLOY_NGINX, SITE, Rig, assemble, check
from tests.deploy.tcp_proxy import free_port
from tests.tools import missing

CLIENT_ADDRESS = "127.0.0.2"
"""The browser's address: another loopback address than the proxy's (127.0.0.1), so that the
platform, trusting only the proxy, must tell them apart."""


def _nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        missing("nginx", "apt-get install -y nginx-light")
    return found


# ---------------------------------------------------------------- the file, as text


def test_body_limit_and_timeouts_match_the_platforms_settings() -> None:
    """The proxy takes the largest body a route takes and waits longer than the heartbeat."""
    text = SITE.read_text()
    settings = load_settings(environ={})
    assert f"client_max_body_size {settings.http.max_upload_mb}m;" in text
    ws = text[text.index("location = /ws {") :]
    ws = ws[: ws.index("}")]
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $cylwatch_connection;" in ws
    read_timeout = int(ws.split("proxy_read_timeout ")[1].split("s;")[0])
    assert read_timeout > 2 * settings.realtime.ws_heartbeat_s
    # every location that proxies passes the client's address on
    assert text.count("proxy_pass http://cylwatch_app;") == text.count(
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
    )
    assert f'"max-age={settings.auth.hsts_max_age_s}" always;' in text


@pytest.mark.parametrize("upstream", ["upstream-host.conf", "upstream-compose.conf"])
def test_nginx_accepts_the_config(tmp_path: Path, upstream: str) -> None:
    nginx = _nginx()
    rig = assemble(tmp_path, (DEPLOY_NGINX / upstream).read_text(), free_port(), free_port())
    done = check(nginx, rig)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


# ---------------------------------------------------------------- nginx in front of the platform


@pytest.fixture
async def proxied(
    aiohttp_server: Any, settings: Any, database: str, tmp_path: Path
) -> AsyncIterator[Rig]:
    from server.app import create_app

    nginx = _nginx()
    https_port, http_port = free_port(), free_port()
    http = msgspec.structs.replace(
        settings.http, trusted_proxies=["127.0.0.1"], base_url=f"https://127.0.0.1:{https_port}"
    )
    app = create_app(msgspec.structs.replace(settings, http=http), with_pages=False)

    async def remote(request: web.Request) -> web.Response:
        return web.json_response({"remote": request.remote})

    app.router.add_get("/_test/remote", remote)
    server = await aiohttp_server(app)
    rig = assemble(
        tmp_path,
        f"upstream cylwatch_app {{ server 127.0.0.1:{server.port}; keepalive 4; }}\n",
        http_port,
        https_port,
    )
    proc = await asyncio.create_subprocess_exec(
        *(nginx, "-p", str(rig.prefix), "-e", str(rig.prefix / "error.log"), "-c", str(rig.main)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", https_port), 0.2):
                    break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError((rig.prefix / "error.log").read_text())
        yield rig
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


def _session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=False, local_addr=(CLIENT_ADDRESS, 0))
    return aiohttp.ClientSession(connector=connector)


async def test_through_the_proxy_a_client_sees_the_platform(proxied: Rig) -> None:
    base = f"https://127.0.0.1:{proxied.https_port}"
    async with _session() as http:
        async with http.get(
            f"http://127.0.0.1:{proxied.http_port}/cylinders?x=1", allow_redirects=False
        ) as r:
            assert r.status == 301
            assert r.headers["Location"] == "https://127.0.0.1/cylinders?x=1"
        async with http.get(f"{base}/readyz") as r:
            assert r.status == 200
            assert r.headers.getall("Strict-Transport-Security") == ["max-age=31536000"]
        async with http.get(f"{base}/metrics") as r:
            assert r.status == 404

        # the client's real address, not the proxy's, and not what the client claims
        async with http.get(
            f"{base}/_test/remote", headers={"X-Forwarded-For": "203.0.113.9"}
        ) as r:
            assert await r.json() == {"remote": CLIENT_ADDRESS}

        # a route's own limit is the platform's JSON 413 (login: [http] max_small_body_kb)
        body = b'{"username": "' + b"a" * 20_000 + b'", "password": "x"}'
        async with http.post(
            f"{base}/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 413
            assert (await r.json())["error"]["code"] == "payload_too_large"

        # the live socket is upgraded through the proxy: anonymous, it is told so and closed
        async with http.ws_connect(f"{base}/ws", origin=base) as ws:
            first = await ws.receive_json(timeout=10)
            assert first["error"]["code"] == "unauthorized"
            closing = await ws.receive(timeout=10)
            assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4401
        # another site's page may not open it (the Origin check sees the public https origin)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/ws", origin="https://evil.example")
        assert refused.value.status == 403


def test_a_body_over_the_largest_limit_is_refused_by_the_proxy(proxied: Rig) -> None:
    """Over [http] max_upload_mb nginx answers 413 from Content-Length, reading nothing."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", proxied.https_port), 5) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        tls.sendall(
            b"POST /api/v1/cylinders/import HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: text/csv\r\nContent-Length: 262144000\r\n\r\n"
        )
        status = tls.recv(200).split(b"\r\n")[0]
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
