"""per-sample counts next to the samples, so Values+Counts keep exact percentiles without expansion

Revision ID: cw0002
Revises: cw0001
"""
from alembic import op

revision = "cw0002"
down_revision = "cw0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE metric_datapoints ADD COLUMN sample_counts double precision[]")


def downgrade() -> None:
    op.execute("ALTER TABLE metric_datapoints DROP COLUMN sample_counts")
