"""access keys belong to accounts (admin keys act for all); installation settings

Keys issued before this revision get the installation's default account, made here once, and are not
admin keys: they keep signing CloudWatch requests as before, and Reporting only for that account.

Revision ID: 0008
Revises: 0007
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    settings = op.create_table(
        "installation_settings",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False))
    account = "".join(secrets.choice("0123456789") for _ in range(12))
    op.bulk_insert(settings, [{"name": "default_account", "value": account}])
    with op.batch_alter_table("api_access_keys") as batch:
        batch.add_column(sa.Column("account", sa.String(12), nullable=False, server_default=account))
        batch.add_column(sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("api_access_keys") as batch:   # the default was for existing rows only
        batch.alter_column("account", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_access_keys") as batch:
        batch.drop_column("admin")
        batch.drop_column("account")
    op.drop_table("installation_settings")
