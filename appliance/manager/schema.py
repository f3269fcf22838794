"""Tables of the manager database (SQLAlchemy Core). Migrations in ``migrations/`` create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import DATETIME

metadata = MetaData()
Time = DATETIME(fsp=6)

settings = Table(
    "settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("description", String(255), nullable=False, default=""),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
)

server_pools = Table(
    "server_pools",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", String(255), nullable=False, default=""),
    Column("virtual_ip", String(45), nullable=True),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
)

servers = Table(
    "servers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("address", String(255), nullable=False),
    Column("description", String(255), nullable=False, default=""),
    Column("pool_id", String(36), ForeignKey("server_pools.id", ondelete="SET NULL"), nullable=True),
    Column("state", String(16), nullable=False),
    Column("agent_fingerprint", String(95), nullable=True),
    Column("hardware", JSON, nullable=True),
    Column("agent_port", Integer, nullable=False, default=8899),
    Column("last_contact_at", Time, nullable=True),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Index("ix_servers_pool", "pool_id"),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("uri", String(1024), nullable=False),
    Column("description", String(255), nullable=False, default=""),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
)

vms = Table(
    "vms",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", String(255), nullable=False, default=""),
    Column("server_id", String(36), ForeignKey("servers.id", ondelete="SET NULL"), nullable=True),
    Column("pool_id", String(36), ForeignKey("server_pools.id", ondelete="SET NULL"), nullable=True),
    Column("repository_id", String(36), ForeignKey("repositories.id", ondelete="SET NULL"), nullable=True),
    Column("domain_type", String(8), nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("memory_mib", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("ha", Boolean, nullable=False, default=False),
    Column("disks", JSON, nullable=False),
    Column("nics", JSON, nullable=False),
    Column("boot", JSON, nullable=True),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Index("ix_vms_server", "server_id"),
    Index("ix_vms_pool", "pool_id"),
    Index("ix_vms_state", "state"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("summary", String(255), nullable=False),
    Column("object_type", String(32), nullable=True),
    Column("object_id", String(64), nullable=True),
    Column("state", String(16), nullable=False),
    Column("progress", Integer, nullable=False, default=0),
    Column("request", JSON, nullable=False),
    Column("result", JSON, nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("abort_requested", Boolean, nullable=False, default=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("started_at", Time, nullable=True),
    Column("finished_at", Time, nullable=True),
    Index("ix_jobs_state", "state"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("time", Time, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("type", String(64), nullable=False),
    Column("object_type", String(32), nullable=True),
    Column("object_id", String(64), nullable=True),
    Column("message", Text, nullable=False),
    Column("job_id", BigInteger, nullable=True),
    Column("source", String(64), nullable=False),
    Column("source_event_id", String(64), nullable=True),
    Column("acknowledged", Boolean, nullable=False, default=False),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_at", Time, nullable=True),
    UniqueConstraint("source", "source_event_id", name="uq_events_source"),
    Index("ix_events_object", "object_type", "object_id"),
    Index("ix_events_ack", "acknowledged", "severity"),
)

stat_samples = Table(
    "stat_samples",
    metadata,
    Column("object_type", String(16), primary_key=True),
    Column("object_id", String(36), primary_key=True),
    Column("metric", String(32), primary_key=True),
    Column("ts", Double(), primary_key=True),
    Column("value", Double(), nullable=False),
    Index("ix_stat_samples_ts", "ts"),
)

stat_rollups = Table(
    "stat_rollups",
    metadata,
    Column("resolution", Integer, primary_key=True),
    Column("object_type", String(16), primary_key=True),
    Column("object_id", String(36), primary_key=True),
    Column("metric", String(32), primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("samples", Integer, nullable=False),
    Column("avg", Double(), nullable=False),
    Column("min", Double(), nullable=False),
    Column("max", Double(), nullable=False),
    Index("ix_stat_rollups_ts", "resolution", "ts"),
)

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("uses_left", Integer, nullable=False),
    Column("uses_total", Integer, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
)

certificates = Table(
    "certificates",
    metadata,
    Column("serial", String(40), primary_key=True),
    Column("server_id", String(36), nullable=False),
    Column("fingerprint", String(95), nullable=False),
    Column("not_before", Time, nullable=False),
    Column("not_after", Time, nullable=False),
    Column("issued_at", Time, nullable=False),
    Column("revoked_at", Time, nullable=True),
    Column("revoke_reason", String(255), nullable=True),
    Index("ix_certificates_server", "server_id"),
)

user_ssh_keys = Table(
    "user_ssh_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("comment", String(255), nullable=False),
    Column("created_at", Time, nullable=False),
    UniqueConstraint("user_id", "fingerprint", name="uq_user_ssh_keys"),
)
