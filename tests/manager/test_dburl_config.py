from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.manager.config import ManagerConfig, StatePaths, load_config, parse_listen, save_config
from appliance.manager.dburl import parse_db_url


def test_tcp_url() -> None:
    url = parse_db_url("mysql://ovm:s%40cret@db.example:3307/ovs")
    assert (url.user, url.password, url.host, url.port, url.database) == (
        "ovm",
        "s@cret",
        "db.example",
        3307,
        "ovs",
    )
    assert url.unix_socket is None
    assert url.sqlalchemy_url().drivername == "mysql+mysqlconnector"
    assert "s@cret" not in url.redacted()


def test_socket_url() -> None:
    url = parse_db_url("mysql://ovm:pw@localhost/ovs?unix_socket=/run/mysqld/mysqld.sock")
    assert url.unix_socket == "/run/mysqld/mysqld.sock"
    assert url.port == 3306
    assert url.client_options()[0] == "--socket=/run/mysqld/mysqld.sock"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("postgres://u:p@h/db", "must start with mysql://"),
        ("mysql://h/db", "no user name"),
        ("mysql://u:p@h/", "names no valid database"),
        ("mysql://u:p@h/db;drop", "names no valid database"),
        ("mysql://u:p@h:99999/db", "bad port"),
        ("mysql://u:p@h/db?sslmode=x", "unknown options"),
    ],
)
def test_bad_urls_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_db_url(text)
    assert fragment in str(err.value)
    assert err.value.hint


def test_listen_forms() -> None:
    assert parse_listen("0.0.0.0:7002") == ("0.0.0.0", 7002)
    assert parse_listen("localhost") == ("localhost", 7002)
    assert parse_listen("[::1]:8000") == ("::1", 8000)
    for bad in ("host:port", "h:0", ":80"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_config_round_trip_is_private(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    cfg = ManagerConfig(manager_uuid="u", db_url="mysql://a:b@h/db", job_workers=2)
    save_config(paths, cfg)
    assert paths.config.stat().st_mode & 0o077 == 0
    assert load_config(paths) == cfg


def test_config_unknown_key_named(tmp_path: Path) -> None:
    paths = StatePaths(tmp_path)
    paths.config.write_text('manager_uuid = "u"\ndb_url = "mysql://a:b@h/db"\nlisten_port = 1\n')
    with pytest.raises(ConfigError, match="listen_port"):
        load_config(paths)


def test_missing_state_dir_hints_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="appliance manager init"):
        load_config(StatePaths(tmp_path / "nothing"))
