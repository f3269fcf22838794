"""Alembic environment: migrations run against the connection the manager hands over."""

from __future__ import annotations

from alembic import context

from appliance.manager.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through appliance.manager.migrate, which supplies the connection")

context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
