"""How far each view test has read: the data tests of a staging view read only new loads.

A data test of a view reads every row behind the view at every build (a view cannot hold the
constraints that let a table's tests read no row: macros/enforced_tests.sql). For a view whose
rows are each a function of one raw row (its dlt load id says when that row was loaded, and a
changed record is loaded again under a new id), a row that passed a test passes it again: only
the rows loaded since need testing. Two tables hold what that needs (macros/tested_loads.sql):

- ``control.tested_loads``: per data test and tenant, the newest load whose rows the test has
  read and passed (``loaded_at``), and the ``version`` of the test and view it held for (a changed
  view or test reads every row again). Advanced only by a passing test: a failing one reads the
  same rows, and any loaded since, at the next build.
- ``control.tested_load_candidates``: per dbt invocation, the newest load of each tenant as the
  invocation began, which becomes the test's ``loaded_at`` when it passes (a row loaded during
  the run is read again by the next). Removed at the end of the invocation.

Written by dbt's hooks only; nothing else reads them. A full refresh reads every row again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table control.tested_loads (
            test_id     text not null,
            tenant_id   text not null,
            version     text not null,
            loaded_at   timestamptz not null,
            tested_at   timestamptz not null default now(),
            primary key (test_id, tenant_id)
        );
        create table control.tested_load_candidates (
            invocation_id  text not null,
            test_id        text not null,
            tenant_id      text not null,
            version        text not null,
            loaded_at      timestamptz not null,
            captured_at    timestamptz not null default now(),
            primary key (invocation_id, test_id, tenant_id)
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table control.tested_load_candidates; drop table control.tested_loads;")
