"""The ingest worker process's garbage-collector tuning (ingest/runtime.py): the configured
young threshold is in force, CPython's own is kept with 0, and what existed when the worker
became ready is frozen out of the collector's walks."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ingest.runtime import tune_gc
from server.kernel.settings import Settings, load_settings
from server.kernel.settings.base import ConfigError


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def _settings(young: int) -> Settings:
    return load_settings(environ={"CYL_INGEST__GC_YOUNG_THRESHOLD": str(young)})


@pytest.mark.usefixtures("restored")
def test_the_configured_threshold_and_a_frozen_start() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(10)]
    _, mid, old = gc.get_threshold()
    assert tune_gc(_settings(50_000)) == (50_000, mid, old)
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() >= len(kept)


@pytest.mark.usefixtures("restored")
def test_zero_keeps_cpythons_own() -> None:
    before = gc.get_threshold()
    assert tune_gc(_settings(0)) == before


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected an integer >= 0"):
        _settings(-1)
