"""Engine creation and connection errors a user can act on."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from appliance.errors import DatabaseError
from appliance.manager.dburl import DatabaseURL


def make_engine(url: DatabaseURL, *, pool_size: int = 16, autocommit: bool = False) -> Engine:
    """An engine for writes (transactions), or with ``autocommit`` one for reads.

    The read engine runs each statement in its own transaction, so a pooled connection never holds
    an old snapshot and needs no rollback round trip when it goes back to the pool. mysql-connector
    checks the connection itself when a cursor is made, so the pool does not ping as well.
    """
    extra: dict[str, object] = (
        {"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None} if autocommit else {}
    )
    return create_engine(
        url.sqlalchemy_url(),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=3600,
        **extra,
        # mysql-connector defaults to MySQL 8's utf8mb4_0900_ai_ci, which MariaDB does not know.
        connect_args={"charset": "utf8mb4", "collation": "utf8mb4_unicode_ci", "use_pure": False},
    )


def check_connection(engine: Engine, url: DatabaseURL) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as err:
        raise DatabaseError(
            f"cannot connect to the database {url.redacted()}: {err.orig}",
            "check that MariaDB is running and that the user, password and database in --db-url are right",
        ) from None
