"""deploy/compose.yaml, deploy/Dockerfile and what they mount, checked offline.

No Docker engine is needed. The compose file is validated by a Compose CLI — the ``docker
compose`` plugin, or the standalone ``docker-compose`` (Debian's package; .ci/run installs
it) — with the example env file, as ``docker compose config`` would before ``up``. Without
either CLI that one test is skipped on a developer's machine and fails in CI
(tests/tools.py); every other test here reads the files with PyYAML and checks what the
deployment relies on: start order, health checks, the proxy's address trusted and nothing
else, no secret in the repository, the broker's configuration derived from the one
production file.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from server.kernel.settings import load_settings
from tests.tools import missing

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "compose.env.example"
PLATFORM = ("migrate", "broker-sync", "serve-1", "serve-2", "ingest", "backup", "restore")
SERVERS = ("serve-1", "serve-2")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with *env*."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env and env[name] != "":
            return env[name]
        if op == ":-":
            return arg
        raise AssertionError(f"${{{name}}} is not set by {ENV_EXAMPLE.name}")

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:[-?])([^}]*))?\}", one, text)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_compose_cli_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        missing("a Compose CLI", "apt-get install -y docker-compose (or the docker compose plugin)")
    for profile in ([], ["--profile", "tools"]):
        done = subprocess.run(
            [*cli, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), *profile, "config"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        resolved = yaml.safe_load(done.stdout)
        expected = {"postgres", "redis", "mosquitto", "migrate", "broker-sync", "ingest", "proxy"}
        expected |= set(SERVERS)
        tools = {"backup", "restore"}
        got = set(resolved["services"])
        # Compose v1 (Debian's docker-compose) ignores profiles in `config`; v2 honours them
        assert got == expected | tools if profile else expected <= got <= expected | tools
        serve = resolved["services"]["serve-1"]
        assert serve["environment"]["CYL_HTTP__BASE_URL"] == _env_example()["CYLWATCH_PUBLIC_URL"]


def test_a_missing_secret_stops_compose_before_anything_starts() -> None:
    """Every password is a required variable: none has a default in the repository."""
    text = COMPOSE.read_text()
    refs = re.findall(r"\$\{([A-Z0-9_]*PASSWORD[A-Z0-9_]*)(:[-?])?", text)
    assert refs, "no password variables found"
    assert {op for _, op in refs} == {":?"}, "a password with a default or none required"
    assert "change-me" not in text
    example = _env_example()
    for name in set(re.findall(r"\$\{([A-Z0-9_]+)", text)):
        assert name in example, f"{name} is used by compose.yaml but not in {ENV_EXAMPLE.name}"


def test_start_order_migrations_before_any_platform_process() -> None:
    services = _compose()["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("broker-sync", *SERVERS, "ingest"):
        cond = services[name]["depends_on"]["migrate"]["condition"]
        assert cond == "service_completed_successfully", name
    assert services["ingest"]["depends_on"]["broker-sync"]["condition"] == (
        "service_completed_successfully"
    )
    for name in SERVERS:
        assert services["proxy"]["depends_on"][name]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "mosquitto"):
        assert services["serve-1"]["depends_on"][name]["condition"] == "service_healthy"


def test_health_checks_use_readyz_and_healthz() -> None:
    services = _compose()["services"]
    for name in SERVERS:
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "http://127.0.0.1:8080/readyz" in test, name
        assert (
            services[name]["command"][:1] == ["serve"]
            and "--no-ingest" in services[name]["command"]
        )
    assert "/healthz" in " ".join(services["proxy"]["healthcheck"]["test"])
    assert "/metrics" in " ".join(services["ingest"]["healthcheck"]["test"])
    for name in ("postgres", "redis", "mosquitto"):
        assert services[name]["healthcheck"]["test"], name
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "http://127.0.0.1:8080/healthz" in dockerfile


def test_only_the_proxy_is_trusted_and_it_reaches_only_the_servers() -> None:
    compose = _compose()
    services = compose["services"]
    subnet = ipaddress.ip_network(compose["networks"]["edge"]["ipam"]["config"][0]["subnet"])
    proxy_ip = services["proxy"]["networks"]["edge"]["ipv4_address"]
    assert set(services["proxy"]["networks"]) == {"edge"}  # no way to the database
    server_ips = {services[n]["networks"]["edge"]["ipv4_address"] for n in SERVERS}
    for name in PLATFORM:
        env = services[name]["environment"]
        assert env["CYL_HTTP__TRUSTED_PROXIES"] == proxy_ip, name
    upstream = (DEPLOY / "nginx" / "upstream-compose.conf").read_text()
    assert set(re.findall(r"server (\d+\.\d+\.\d+\.\d+):8080", upstream)) == server_ips
    for ip in (proxy_ip, *server_ips):
        assert ipaddress.ip_address(ip) in subnet
    # published ports: the proxy's 80/443 and MQTT over TLS, nothing else
    published = {n: s.get("ports", []) for n, s in services.items() if s.get("ports")}
    assert published == {"proxy": ["80:80", "443:443"], "mosquitto": ["8883:8883"]}


def test_platform_containers_are_locked_down() -> None:
    services = _compose()["services"]
    for name in PLATFORM:
        s = services[name]
        assert s["read_only"] is True and s["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in s["security_opt"], name
        assert s["build"]["dockerfile"] == "deploy/Dockerfile", name
    # only migrations (and the backup tools) hold the owner's password
    owners = {
        n for n in PLATFORM if "CYL_SERVICES__DATABASE_OWNER_URL" in services[n]["environment"]
    }
    assert owners == {"migrate", "backup", "restore"}


def test_the_platform_accepts_the_environment_compose_gives_it() -> None:
    """Every CYL_* variable names a real setting with a valid value (a typo stops the
    platform at start-up: docs/CONFIG.md)."""
    services = yaml.safe_load(_interpolate(COMPOSE.read_text(), _env_example()))["services"]
    for name in PLATFORM:
        env = {k: str(v) for k, v in services[name]["environment"].items() if k.startswith("CYL_")}
        settings = load_settings(environ=env)
        assert list(settings.http.trusted_proxies) == ["172.30.0.10"], name
        assert settings.http.base_url.startswith("https://"), name
        assert settings.services.database_url.startswith("postgresql://cylwatch_server:"), name


def test_dockerfile_runs_the_locked_runtime_dependencies_as_a_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages[-1].startswith("python:3.11-slim")
    assert "pip install -c requirements.lock ." in text  # constraints: runtime deps, locked
    assert "[dev]" not in text and "--extra dev" not in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^ENTRYPOINT \[\"cylwatch\"\]", text, re.MULTILINE)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for secret in ("**/*.key", "**/*.env", "state", ".git"):
        assert secret in ignore


def test_broker_config_is_the_production_file_rewritten_for_the_container() -> None:
    source = (ROOT / "config" / "mosquitto.conf").read_text().splitlines()
    done = subprocess.run(
        [
            "sed",
            "-f",
            str(DEPLOY / "mosquitto" / "container.sed"),
            str(ROOT / "config" / "mosquitto.conf"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rewritten = done.stdout.splitlines()
    changed = {(a, b) for a, b in zip(source, rewritten, strict=True) if a != b}
    assert changed == {
        ("listener 1883 127.0.0.1", "listener 1883"),
        (
            "plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
            "plugin /usr/lib/mosquitto_dynamic_security.so",
        ),
        ("persistence_location /var/lib/mosquitto/", "persistence_location /mosquitto/data/"),
        (
            "plugin_opt_config_file /var/lib/mosquitto/dynamic-security.json",
            "plugin_opt_config_file /mosquitto/data/dynamic-security.json",
        ),
    }, "config/mosquitto.conf changed: update deploy/mosquitto/container.sed"
    for kept in ("persistence true", "allow_anonymous false", "per_listener_settings false"):
        assert kept in rewritten
    start = (DEPLOY / "mosquitto" / "start.sh").read_text()
    assert "dynamic-security.json" in start and "exec /usr/sbin/mosquitto" in start


@pytest.mark.parametrize(
    "script", ["mosquitto/start.sh", "postgres/init-cylwatch.sh"], ids=lambda s: s.split("/")[0]
)
def test_container_scripts_are_valid_sh(script: str) -> None:
    done = subprocess.run(["sh", "-n", str(DEPLOY / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


async def test_database_init_script_makes_the_roles_of_security_md() -> None:
    """deploy/postgres/init-cylwatch.sh against the real PostgreSQL, under other names (the
    roles are cluster-wide), with passwords a shell or SQL could trip on."""
    import secrets

    import asyncpg

    from server.db.migrate import server_preloads_timescaledb
    from tests.conftest import ADMIN_DSN

    tag = secrets.token_hex(3)
    names = {n: f"t{tag}_{n}" for n in ("cylwatch_owner", "cylwatch_server", "cylwatch_app")}
    script = (DEPLOY / "postgres" / "init-cylwatch.sh").read_text()
    for old, new in names.items():
        script = script.replace(old, new)
    db = f"t{tag}_db"
    script = script.replace("DATABASE cylwatch OWNER", f"DATABASE {db} OWNER")
    script = script.replace("\\connect cylwatch\n", f"\\connect {db}\n")
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        timescale = await conn.fetchval(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ) and await server_preloads_timescaledb(conn)
        # the image has it installed and preloaded; a test machine may have neither, or the
        # extension installed but not preloaded (then creating it is refused)
        if not timescale:
            script = script.replace("CREATE EXTENSION IF NOT EXISTS timescaledb;", "SELECT 1;")
        host = urlsplit(ADMIN_DSN)
        env = {
            "PATH": os.environ["PATH"],
            "POSTGRES_USER": host.username or "postgres",
            "PGHOST": host.hostname or "127.0.0.1",
            "PGPORT": str(host.port or 5432),
            "CYLWATCH_DB_OWNER_PASSWORD": "o'wner\"$(x)`y`",
            "CYLWATCH_DB_SERVER_PASSWORD": "s;e r\\ver'--",
        }
        done = await asyncio.to_thread(
            subprocess.run, ["sh", "-c", script], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", db
        )
        assert owner == names["cylwatch_owner"]
        rows = await conn.fetch(
            "SELECT rolname, rolcanlogin, rolpassword IS NOT NULL AS has_password"
            " FROM pg_authid WHERE rolname = ANY($1::text[]) ORDER BY rolname",
            list(names.values()),
        )
        got = {r["rolname"]: (r["rolcanlogin"], r["has_password"]) for r in rows}
        assert got == {
            names["cylwatch_app"]: (False, False),
            names["cylwatch_owner"]: (True, True),
            names["cylwatch_server"]: (True, True),
        }
        member = await conn.fetchval(
            "SELECT pg_has_role($1, $2, 'MEMBER')", names["cylwatch_server"], names["cylwatch_app"]
        )
        assert member is True
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        for role in (names["cylwatch_server"], names["cylwatch_app"], names["cylwatch_owner"]):
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()
