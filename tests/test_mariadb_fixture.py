from __future__ import annotations

import mysql.connector

from appliance.manager import dbserver


def test_private_server_answers_on_socket_and_port(mariadb: dbserver.MariaDBInstance) -> None:
    for kwargs in ({"unix_socket": str(mariadb.socket_path)}, {"host": mariadb.host, "port": mariadb.port}):
        conn = mysql.connector.connect(user="root", password="", **kwargs)
        cur = conn.cursor()
        cur.execute("SELECT VERSION()")
        (version,) = cur.fetchone()  # type: ignore[misc]
        assert "MariaDB" in str(version)
        conn.close()


def test_each_test_gets_its_own_database(db_url: str) -> None:
    assert db_url.startswith("mysql://u_t")
