"""Platform settings: `config/default.toml`, an optional override file, then `CYL_*` variables.

Every number the platform acts on comes from here so that a city can change a rule by
configuration, not by a code change (docs/CONFIG.md). Each section is a frozen msgspec
Struct that refuses keys it does not declare, checks types, and checks ranges with
``Meta`` constraints: a typo in a safety threshold, a negative batch size or a port out
of range stops start-up with one line naming the key, instead of being silently ignored
or failing later, far from its cause.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec

from server.kernel.settings.base import (
    _FALSE,
    _TRUE,
    CONFIG_DIR,
    DEFAULT_FILE,
    ENV_PREFIX,
    SHORT_ENV,
    ConfigError,
    Section,
)
from server.kernel.settings.platform import (
    Auth,
    BigScreen,
    Http,
    Logs,
    MapSettings,
    Privacy,
    Realtime,
    Seed,
    Services,
    Sms,
    Storage,
    Uploads,
    Upstream,
    template_fields,
)
from server.kernel.settings.rules import (
    Alerts,
    Circulation,
    CylinderModel,
    Dates,
    Filling,
    GunCodes,
    Ingest,
    Public,
)
from server.kernel.settings.work import (
    Complaints,
    Credit,
    Enterprise,
    Messages,
    Reports,
    Risk,
    Safety,
)

__all__ = [
    "CONFIG_DIR",
    "Alerts",
    "Auth",
    "BigScreen",
    "Circulation",
    "Complaints",
    "ConfigError",
    "Credit",
    "CylinderModel",
    "Dates",
    "Enterprise",
    "Filling",
    "GunCodes",
    "Http",
    "Ingest",
    "MapSettings",
    "Messages",
    "Privacy",
    "Public",
    "Realtime",
    "Reports",
    "Risk",
    "Safety",
    "Seed",
    "Services",
    "Settings",
    "Sms",
    "Storage",
    "Uploads",
    "Upstream",
    "load_settings",
    "settings_doc",
    "template_fields",
]


class Settings(msgspec.Struct, frozen=True):
    services: Services
    http: Http
    logging: Logs
    auth: Auth
    dates: Dates
    filling: Filling
    gun_codes: GunCodes
    alerts: Alerts
    circulation: Circulation
    ingest: Ingest
    realtime: Realtime
    public: Public
    map: MapSettings
    seed: Seed
    big_screen: BigScreen
    storage: Storage
    privacy: Privacy
    uploads: Uploads
    sms: Sms
    upstream: Upstream
    complaints: Complaints
    enterprise: Enterprise
    credit: Credit
    messages: Messages
    safety: Safety
    reports: Reports
    risk: Risk
    models: Mapping[str, CylinderModel]
    """Cylinder models keyed by their spec code (e.g. ``"YSP35.5"``)."""

    def model(self, spec: str) -> CylinderModel | None:
        return self.models.get(spec)


_SECTIONS: dict[str, type[Section]] = {
    "services": Services,
    "http": Http,
    "logging": Logs,
    "auth": Auth,
    "dates": Dates,
    "filling": Filling,
    "gun_codes": GunCodes,
    "alerts": Alerts,
    "circulation": Circulation,
    "ingest": Ingest,
    "realtime": Realtime,
    "public": Public,
    "map": MapSettings,
    "seed": Seed,
    "big_screen": BigScreen,
    "storage": Storage,
    "privacy": Privacy,
    "uploads": Uploads,
    "sms": Sms,
    "upstream": Upstream,
    "complaints": Complaints,
    "enterprise": Enterprise,
    "credit": Credit,
    "messages": Messages,
    "safety": Safety,
    "reports": Reports,
    "risk": Risk,
}
_MODELS = "models"

_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true/false", "str": "a string"}
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def _lookup(raw: Any, path: str) -> Any:
    """The raw value at a msgspec error path such as ``.YSP12.max_fill_kg`` (or ``...``)."""
    for part in filter(None, path.split(".")):
        if not isinstance(raw, Mapping) or part not in raw:
            return ...
        raw = raw[part]
    return raw


def _allowed(typ: Any, path: str) -> str:
    """``must be one of a, b`` for a Literal *typ*, or the Literal key at *path* of a section."""
    if isinstance(typ, type) and issubclass(typ, Section):
        key = path.removeprefix(".")
        typ = next((f.type for f in msgspec.structs.fields(typ) if f.name == key), None)
    if get_origin(typ) is Literal:
        return "must be one of " + ", ".join(map(str, get_args(typ)))
    return "is not an allowed value"


def _problem(exc: msgspec.ValidationError, where: str, raw: Any, typ: Any) -> ConfigError:
    """One line naming ``section.key`` and what is wrong, from a msgspec validation error."""
    text = str(exc)
    match = _AT.search(text)
    path = match["path"] if match else ""
    text = text[: match.start()] if match else text
    if not match and (m := re.fullmatch(r"(\w+): (.+)", text)):
        return ConfigError(f"{where}.{m[1]}: {m[2]}")  # a __post_init__ check (see Section)
    if m := re.fullmatch(r"Object contains unknown field `(.+)`", text):
        return ConfigError(f"{where}{path}: unknown key {m[1]!r}")
    if m := re.fullmatch(r"Object missing required field `(.+)`", text):
        return ConfigError(f"{where}{path}: missing key {m[1]!r}")
    if text.startswith("Invalid enum value"):
        text = _allowed(typ, path)
    text = re.sub(r", got `\w+`$", "", text)
    text = re.sub(r"Expected `(\w+)`", lambda m: "expected " + _TYPE_WORDS.get(m[1], m[1]), text)
    value = _lookup(raw, path)
    got = f", got {value!r}" if path and value is not ... else ""
    return ConfigError(f"{where}{path}: {text[:1].lower()}{text[1:].replace('`', '')}{got}")


def _convert(raw: Any, typ: Any, where: str) -> Any:
    """*raw* (TOML values, environment values already typed) as *typ*, strictly."""
    try:
        return msgspec.convert(raw, typ)
    except msgspec.ValidationError as exc:
        raise _problem(exc, where, raw, typ) from None


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _field_type(section: str, key: str) -> Any:
    for f in msgspec.structs.fields(_SECTIONS[section]):
        if f.name == key:
            return f.type
    return None


def _from_env(name: str, text: str, section: str, key: str) -> Any:
    """An environment string as the key's declared type (its range is checked here too).
    Booleans accept true/false, 1/0, yes/no, on/off; arrays are comma-separated."""
    typ = _field_type(section, key)
    if typ is None:
        raise ConfigError(f"{name}: no key {section}.{key}")
    base = get_args(typ)[0] if get_origin(typ) is Annotated else typ
    value: Any = text
    if base is bool and text.lower() in _TRUE | _FALSE:
        value = text.lower() in _TRUE
    elif get_origin(base) in (list, tuple, frozenset):  # a TOML array: comma-separated text
        value = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return msgspec.convert(value, typ, strict=False)
    except msgspec.ValidationError as exc:
        problem = _problem(exc, f"{section}.{key}", {}, typ)
        raise ConfigError(f"{name}: {problem}, got {text!r}") from None


def _env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Apply ``CYL_<SECTION>__<KEY>`` and the short service names. Any variable with the
    ``__`` separator is a setting, so a misspelt section is refused like a misspelt key."""
    for name, text in environ.items():
        if name in SHORT_ENV:
            section, key = SHORT_ENV[name]
        elif name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
            if section not in _SECTIONS:
                raise ConfigError(f"{name}: no settings section [{section}]")
        else:
            continue  # other CYL_ variables (e.g. CYL_CONFIG) are not settings
        raw.setdefault(section, {})[key] = _from_env(name, text, section, key)


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read defaults, the optional override file (``CYL_CONFIG`` or *path*), then env vars."""
    env = os.environ if environ is None else environ
    with DEFAULT_FILE.open("rb") as fh:
        raw: dict[str, Any] = tomllib.load(fh)
    override = path or env.get("CYL_CONFIG")
    if override:
        try:
            with Path(override).open("rb") as fh:
                _merge(raw, tomllib.load(fh))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {override}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {override} is not valid TOML: {exc}") from None
    extra = set(raw) - set(_SECTIONS) - {_MODELS}
    if extra:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(extra))}")
    _env_overrides(raw, env)
    sections = {name: _convert(raw.get(name, {}), cls, name) for name, cls in _SECTIONS.items()}
    tables = _convert(raw.get(_MODELS, {}), dict[str, dict[str, Any]], _MODELS)
    models = [_convert(t, CylinderModel, f"{_MODELS}.{name}") for name, t in tables.items()]
    return Settings(models={m.spec: m for m in models}, **sections)


def settings_doc() -> dict[str, list[str]]:
    """Every section and its keys (``models.*`` for the per-model tables), for the tests
    that prove each setting is documented in docs/CONFIG.md and read by the product."""
    doc = {name: [f.name for f in msgspec.structs.fields(cls)] for name, cls in _SECTIONS.items()}
    doc[f"{_MODELS}.*"] = [f.name for f in msgspec.structs.fields(CylinderModel)]
    return doc
