"""deploy/nginx/cylwatch.conf assembled for a test: the file as shipped, with only its file
locations and listening addresses pointed at a temporary directory and spare ports.

`assemble` writes a main ``nginx.conf`` around it (temp paths, no daemon) so that the real
nginx can check it (``nginx -t``) or run it in front of a test server.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEPLOY_NGINX = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
SITE = DEPLOY_NGINX / "cylwatch.conf"
UPSTREAM_INCLUDE = "/etc/nginx/cylwatch-upstream.conf"
TLS_DIR = "/etc/cylwatch/tls/"


@dataclass
class Rig:
    prefix: Path
    main: Path
    http_port: int
    https_port: int


def self_signed(tls: Path, name: str = "127.0.0.1") -> None:
    """fullchain.pem and privkey.pem for *name* (openssl, one day)."""
    tls.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={name}", "-addext", f"subjectAltName=IP:{name}",
            "-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def site_text(tls: Path, upstream: Path, http_port: int, https_port: int) -> str:
    text = SITE.read_text()
    for old, new in (
        (UPSTREAM_INCLUDE, str(upstream)),
        (TLS_DIR, f"{tls}/"),
        ("listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;"),
        ("listen 443 ssl http2 default_server;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen [::]:80 default_server;", ""),
        ("listen [::]:443 ssl http2 default_server;", ""),
    ):
        assert old in text, f"{SITE} no longer has {old!r}: update tests/deploy/nginx_rig.py"
        text = text.replace(old, new)
    return text


def assemble(prefix: Path, upstream_text: str, http_port: int, https_port: int) -> Rig:
    prefix.mkdir(parents=True, exist_ok=True)
    tls = prefix / "tls"
    self_signed(tls)
    upstream = prefix / "upstream.conf"
    upstream.write_text(upstream_text)
    (prefix / "site.conf").write_text(site_text(tls, upstream, http_port, https_port))
    temp = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = prefix / "nginx.conf"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\n"
        f"error_log {prefix}/error.log notice;\npid {prefix}/nginx.pid;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log off;\n{temp}    include {prefix}/site.conf;\n}}\n"
    )
    return Rig(prefix, main, http_port, https_port)


def check(nginx: str, rig: Rig) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(rig.prefix),
            "-e",
            str(rig.prefix / "error.log"),
            "-c",
            str(rig.main),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
