"""Migrations create exactly the schema the code uses, and are recorded in the database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from appliance.manager import migrate
from appliance.manager.database import make_engine
from appliance.manager.dburl import parse_db_url
from appliance.manager.schema import metadata


def test_upgrade_records_revision_and_matches_schema(db_url: str) -> None:
    engine = make_engine(parse_db_url(db_url), pool_size=1)
    try:
        assert migrate.current_revision(engine) is None
        before, after = migrate.upgrade(engine)
        assert before is None and after == migrate.head_revision()
        assert migrate.is_current(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], f"schema.py and the migrations disagree: {diff}"
        assert migrate.upgrade(engine) == (after, after)  # idempotent
    finally:
        engine.dispose()
