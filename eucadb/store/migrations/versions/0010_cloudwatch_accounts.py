"""cloudwatch tenancy: metric series and alarms belong to an account

Before this revision the CloudWatch service had one tenant: every series, alarm, dashboard, tag and
staged history event belonged to the one installation (dashboards, tags and the outbox were written
with the placeholder account 000000000000). They all move to the installation's default account
(installation_settings.default_account, made by 0008: the account of every key issued before
accounts existed and of keys created without --account), so the keys that made them still see them.

cw_series: the account becomes part of a series' identity (cw_series_key); the remote datapoints
keep referring to series ids, which do not change. cw_alarms: the key becomes (account, name).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ALARM_COLUMNS = ("name", "definition", "state", "state_reason", "state_reason_data", "state_updated_at",
                 "updated_at")


def _default_account() -> str:
    return op.get_bind().execute(sa.text(
        "SELECT value FROM installation_settings WHERE name = 'default_account'")).scalar_one()


def _alarms_table(name: str, keyed: bool) -> None:
    """cw_alarms as of 0004 (keyed by name) or as of this revision (keyed by account and name)."""
    op.create_table(
        name,
        *([sa.Column("account", sa.String(12), primary_key=True)] if keyed else []),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_reason", sa.Text, nullable=False),
        sa.Column("state_reason_data", sa.Text, nullable=True),
        sa.Column("state_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False))


def upgrade() -> None:
    account = _default_account()
    with op.batch_alter_table("cw_series") as batch:
        batch.add_column(sa.Column("account", sa.String(12), nullable=False, server_default=account))
        batch.drop_constraint("cw_series_key", type_="unique")
        batch.create_unique_constraint("cw_series_key", ["account", "namespace", "metric_name", "dimensions"])
    with op.batch_alter_table("cw_series") as batch:   # the default was for existing rows only
        batch.alter_column("account", server_default=None)
    op.create_index("cw_series_account_id", "cw_series", ["account", "id"])

    # A new primary key: build the keyed table, copy, swap (the same on SQLite and PostgreSQL).
    _alarms_table("cw_alarms_keyed", keyed=True)
    columns = ", ".join(ALARM_COLUMNS)
    op.get_bind().execute(sa.text(f"INSERT INTO cw_alarms_keyed (account, {columns}) "
                                  f"SELECT :account, {columns} FROM cw_alarms"), {"account": account})
    op.drop_table("cw_alarms")
    op.rename_table("cw_alarms_keyed", "cw_alarms")

    for table in ("cw_dashboards", "cw_tags", "cw_history_outbox"):
        op.get_bind().execute(sa.text(f"UPDATE {table} SET account = :account"), {"account": account})


def downgrade() -> None:
    _alarms_table("cw_alarms_unkeyed", keyed=False)
    columns = ", ".join(ALARM_COLUMNS)
    # one tenant again: the default account's alarms survive, other accounts' are dropped
    op.get_bind().execute(sa.text(f"INSERT INTO cw_alarms_unkeyed ({columns}) SELECT {columns} FROM cw_alarms "
                                  "WHERE account = :account"), {"account": _default_account()})
    op.drop_table("cw_alarms")
    op.rename_table("cw_alarms_unkeyed", "cw_alarms")
    op.drop_index("cw_series_account_id", "cw_series")
    op.execute(sa.text("DELETE FROM cw_series WHERE account <> :account").bindparams(account=_default_account()))
    with op.batch_alter_table("cw_series") as batch:
        batch.drop_constraint("cw_series_key", type_="unique")
        batch.create_unique_constraint("cw_series_key", ["namespace", "metric_name", "dimensions"])
        batch.drop_column("account")
