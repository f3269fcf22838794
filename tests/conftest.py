"""Shared fixtures: a private MariaDB server for the whole test session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.manager import dbserver

_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dbserver.MariaDBInstance]:
    """A private `mariadbd` in a temp dir on its own socket and port, stopped after the session."""
    inst = dbserver.MariaDBInstance(basedir=tmp_path_factory.mktemp("mariadb"), port=dbserver.free_tcp_port())
    proc = dbserver.start(inst)
    try:
        yield inst
    finally:
        dbserver.stop(proc)


@pytest.fixture
def db_url(mariadb: dbserver.MariaDBInstance) -> Iterator[str]:
    """A fresh, empty database (and its own user) on the session's server; dropped afterwards."""
    name = f"t{next(_db_counter)}"
    dbserver.create_database(mariadb, name, user=f"u_{name}", password=f"pw-{name}")
    yield mariadb.url(f"u_{name}", f"pw-{name}", name)
    dbserver.drop_database(mariadb, name)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
