"""trust and orchestration: enrollment tokens, issued certificates, agent port and last contact of
servers, boot settings of VMs

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("servers", sa.Column("agent_port", sa.Integer(), nullable=False, server_default="8899"))
    op.alter_column(
        "servers", "agent_port", server_default=None, existing_type=sa.Integer(), existing_nullable=False
    )
    op.add_column("servers", sa.Column("last_contact_at", mysql.DATETIME(fsp=6), nullable=True))
    op.add_column("vms", sa.Column("boot", sa.JSON(), nullable=True))
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("uses_left", sa.Integer(), nullable=False),
        sa.Column("uses_total", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("expires_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "certificates",
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("fingerprint", sa.String(length=95), nullable=False),
        sa.Column("not_before", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("not_after", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("issued_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("revoked_at", mysql.DATETIME(fsp=6), nullable=True),
        sa.Column("revoke_reason", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("serial"),
    )
    op.create_index("ix_certificates_server", "certificates", ["server_id"], unique=False)


def downgrade() -> None:
    raise RuntimeError("manager migrations are forward-only; restore a backup instead")
