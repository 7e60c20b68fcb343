"""rolled-up tiers as CloudWatch keeps them: 1-minute, 5-minute and 1-hour aggregates with sketches

Each tier is its own time-partitioned table (see tiers.py, rollups.py), one row per series, unit and
bucket: the exact SampleCount / Sum / Minimum / Maximum and a relative-error sketch (sketch.py) for
percentiles. The primary key makes a roll-up merge (ON CONFLICT) instead of ever counting twice.
Only the maintenance (admin) role writes them: INSERT is revoked from every other role, which keeps
SELECT (requests read the tiers as the writer role).

Revision ID: cw0005
Revises: cw0004
"""
from alembic import op

revision = "cw0005"
down_revision = "cw0004"
branch_labels = None
depends_on = None

TABLES = ("metric_rollup_1m", "metric_rollup_5m", "metric_rollup_1h")

# Roles other than superusers lose INSERT on the tiers (the writer's default privileges grant it).
REVOKE = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE NOT rolsuper AND rolname !~ '^pg_' LOOP
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %I FROM %I', '{table}', r.rolname);
  END LOOP;
END $$"""


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"""
            CREATE TABLE {table} (
                series_id     bigint           NOT NULL,
                ts            timestamptz      NOT NULL,
                unit          text             NOT NULL,
                sample_count  double precision NOT NULL,
                sum           double precision NOT NULL,
                minimum       double precision NOT NULL,
                maximum       double precision NOT NULL,
                sketch_keys   smallint[],
                sketch_counts real[],
                PRIMARY KEY (series_id, ts, unit)
            ) PARTITION BY RANGE (ts)""")
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        for name in (table, f"{table}_default"):
            op.execute(REVOKE.replace("{table}", name))


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE {table}")
