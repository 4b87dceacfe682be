"""Outbound delivery's pure rules (docs/OUTBOUND.md): what an HTTP outcome means, the
backoff, templates, phone numbers, and the settings an enabled feed needs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from server.kernel.settings import ConfigError, load_settings, template_fields
from server.outbound.delivery import ERROR_MAX_CHARS, Verdict, backoff_s, describe, verdict_of
from server.outbound.sms import mask_phone, normalize_phone


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (400, Verdict.PERMANENT),
        (401, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (408, Verdict.TRANSIENT),
        (429, Verdict.TRANSIENT),
        (500, Verdict.TRANSIENT),
        (503, Verdict.TRANSIENT),
        (302, Verdict.TRANSIENT),
    ],
)
def test_what_a_status_means(status: int, verdict: Verdict) -> None:
    assert verdict_of(status) is verdict


def test_backoff_doubles_within_its_bounds() -> None:
    rng = random.Random(7)
    for attempts in range(1, 200):
        delay = min(600.0, 5.0 * 2 ** min(attempts - 1, 100))
        got = backoff_s(attempts, 5.0, 600.0, rng)
        assert delay / 2 <= got <= delay


def test_error_texts_are_short_and_on_one_line() -> None:
    text = describe(502, "<html>\n  bad gateway\n</html>" + "x" * 1000)
    assert text.startswith("HTTP 502: <html> bad gateway </html>")
    assert len(text) == ERROR_MAX_CHARS and "\n" not in text
    assert describe(None, "ConnectionRefusedError: refused") == "ConnectionRefusedError: refused"


def test_templates_take_plain_names_only() -> None:
    assert template_fields("{a}，{b}{{literal}}") == ["a", "b"]
    for bad in ("{a.__class__}", "{0}", "{a!r}", "{a:>9}"):
        with pytest.raises(ValueError, match="not a plain name"):
            template_fields(bad)


def test_phone_numbers() -> None:
    assert normalize_phone("+86 138-0013-8000") == "+8613800138000"
    assert normalize_phone("(010) 6552 8888") == "01065528888"
    for bad in ("", "12", "1380013800012345678", "138abc"):
        with pytest.raises(ValueError):
            normalize_phone(bad)
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("+8613800138000") == "+86*******8000"
    assert mask_phone("12345") == "***45"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[sms]\nenabled = true\n", "sms.gateway_url: an http:// or https:// URL is required"),
        ("[upstream]\nenabled = true\n", "upstream.endpoint_url: an http:// or https:// URL"),
        ("[sms]\nbackoff_min_s = 900.0\n", "sms.backoff_min_s: 900.0 is above backoff_max_s"),
        ("[upstream]\nclaim_timeout_s = 1.0\n", "upstream.timeout_s: 30.0 is above"),
        ("[sms.templates]\nx = '{a.b}'\n", "sms.templates: x: placeholder {a.b} is not a plain"),
    ],
)
def test_outbound_settings_are_checked(tmp_path: Path, toml: str, message: str) -> None:
    f = tmp_path / "city.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match="^" + message.replace("{", r"\{").replace(".", r"\.")):
        load_settings(f, environ={})


def test_credentials_never_show_in_a_repr() -> None:
    s = load_settings(
        environ={"CYL_SMS__API_SECRET": "s3cret-sms", "CYL_UPSTREAM__API_KEY": "s3cret-up"}
    )
    assert s.sms.api_secret == "s3cret-sms"
    assert "s3cret" not in repr(s) and "s3cret" not in repr(s.sms) + repr(s.upstream)
