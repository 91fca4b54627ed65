"""Which database errors answer 503 (the database cannot be reached or used right now)
and which stay the server's own failure (500)."""

from __future__ import annotations

import sqlite3

import psycopg.errors
import pytest
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from searchgate.api.errors import unreachable


def _wrapped(orig: Exception, invalidated: bool = False) -> OperationalError:
    return OperationalError("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.errors.ConnectionFailure("server closed the connection"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        psycopg.OperationalError("connection refused"),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("unable to open database file"),
    ],
)
def test_a_database_that_is_not_there_is_unreachable(orig: Exception) -> None:
    assert unreachable(_wrapped(orig))


@pytest.mark.parametrize(
    "orig",
    [
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        sqlite3.OperationalError("no such table: areas"),
    ],
)
def test_a_failing_statement_is_not(orig: Exception) -> None:
    assert not unreachable(_wrapped(orig))


def test_a_lost_connection_a_driver_failure_and_an_exhausted_pool_are() -> None:
    assert unreachable(_wrapped(sqlite3.OperationalError("no such table: x"), invalidated=True))
    assert unreachable(InterfaceError("SELECT 1", {}, Exception("connection already closed")))
    assert unreachable(PoolTimeout("QueuePool limit reached"))
    assert not unreachable(ValueError("not a database error"))
