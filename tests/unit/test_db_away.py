"""Which errors hold a batch for a retry and which split it as bad data (``ingest.replies.
db_away``): a PostgreSQL restart in the middle of a commit surfaced as asyncpg's
InterfaceError and split the batch, where a message alone would have been dead-lettered."""

from __future__ import annotations

import asyncpg
import pytest

from ingest.replies import db_away


def _raised_while_handling(first: BaseException, second: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise second  # noqa: B904 — the implicit context is what is tested
    except BaseException as exc:
        return exc


def test_a_lost_connection_is_the_database_away() -> None:
    assert db_away(asyncpg.ConnectionDoesNotExistError("connection was closed"))
    assert db_away(ConnectionRefusedError(111, "refused"))
    assert db_away(
        asyncpg.InterfaceError(
            "cannot call Transaction.__aexit__(): the underlying connection is closed"
        )
    )


def test_an_error_raised_while_cleaning_up_after_a_lost_connection_is_too() -> None:
    exc = _raised_while_handling(
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    )
    assert db_away(exc)


@pytest.mark.parametrize(
    "exc",
    [
        # what a full data volume answers to a batch (tests/chaos/test_disk_full.py)
        asyncpg.exceptions.DiskFullError(
            'could not extend file "pg_tblspc/21481/PG_15_202209061/16384/21500":'
            " No space left on device"
        ),
        asyncpg.exceptions.OutOfMemoryError("out of memory"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    ],
)
def test_insufficient_resources_is_the_database_away_not_bad_data(exc: BaseException) -> None:
    """SQLSTATE class 53: the server cannot take the batch now, whatever is in it; taken for
    bad data, a full disk would split every batch down to single messages and dead-letter
    good ones."""
    assert db_away(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.DataError("invalid input"),
        ValueError("bad payload"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ],
)
def test_bad_data_and_programming_errors_are_not(exc: BaseException) -> None:
    assert not db_away(exc)
