"""Account health: the VP-level role, the health-alert ledger and the health scope.

Why each part exists:

- Role ``account_director`` (VP customer success): platform staff who see the health of every
  tenant, like a platform admin, without a platform admin's power over tenants, sources and
  secrets. A platform-wide grant (no tenant), as ``platform_admin`` is; account managers keep
  one grant per tenant they look after.
- ``control.health_alerts``: the ledger that makes health alerts idempotent. One row per
  tenant and day at most (``unique (tenant_id, score_date)``): whatever re-runs, restarts or
  backfills the evaluator goes through, a tenant's declining health is announced once a day.
- ``control.notifications.health_alert_id``: the in-app notifications (and, through them, the
  email outbox) of migration 0003 serve health alerts too; this column links a notification to
  its health alert as ``alert_id`` links it to a budget alert, once per recipient.
- ``control.health_tenants(email)`` / ``control.declare_health_scope(email)``: who may see
  whose health, decided in the database from the grants: account directors and platform admins
  every active tenant, an account manager the tenants they are assigned to, anyone else none
  (``health_tenants`` also names each tenant's account managers, which the reader role cannot
  read otherwise).
  ``declare_health_scope`` declares exactly those tenants for the current transaction
  (``pulse.tenant_ids``) together with ``pulse.scope = 'account_health'``, which the restrictive
  row-level-security policy of ``marts.fct_account_health_daily`` requires: a transaction
  scoped for a tenant's own dashboards (org admins, members) sees no health rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ROLES_BEFORE = ("platform_admin", "account_manager", "org_admin", "team_lead", "member")
ROLES_AFTER = ("platform_admin", "account_director", "account_manager", "org_admin", "team_lead", "member")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute(
        f"""
        alter table control.role_grants drop constraint role_grants_role_check;
        alter table control.role_grants add constraint role_grants_role_check
            check (role in ({_in(ROLES_AFTER)}));
        -- platform-wide roles need no tenant; everyone else is scoped to one
        alter table control.role_grants drop constraint role_grants_check;
        alter table control.role_grants add constraint role_grants_check
            check (role in ('platform_admin', 'account_director') or tenant_id is not null);

        create table control.health_alerts (
            health_alert_id  bigint generated always as identity primary key,
            tenant_id        text not null references control.tenants (slug) on delete cascade,
            score_date       date not null,
            health_score     integer not null check (health_score between 0 and 100),
            health_band      text not null check (health_band in ('red', 'amber', 'green')),
            previous_score   integer not null check (previous_score between 0 and 100),
            previous_band    text not null check (previous_band in ('red', 'amber', 'green')),
            -- drop: fell by at least drop_threshold points; band: fell to a lower band
            reason           text not null check (reason in ('drop', 'band', 'drop_and_band')),
            drop_threshold   integer not null check (drop_threshold > 0),
            fired_at         timestamptz not null default now(),
            unique (tenant_id, score_date)
        );

        alter table control.notifications
            add column health_alert_id bigint references control.health_alerts (health_alert_id) on delete cascade,
            add constraint notifications_health_alert_once unique (health_alert_id, user_id),
            add constraint notifications_one_alert check (alert_id is null or health_alert_id is null);
        """
    )
    op.execute(
        """
        create function control.health_tenants(user_email text)
        returns table (tenant_id text, tenant_name text, account_managers text)
        language sql stable security definer set search_path = pg_catalog, control as $$
            select t.slug, t.name, (
                select string_agg(m.name || ' <' || m.email || '>', ', ' order by m.name, m.email)
                from control.role_grants as am
                join control.users as m on m.user_id = am.user_id
                where am.role = 'account_manager' and am.tenant_id = t.slug
            )
            from control.tenants as t
            where t.is_active and t.deleted_at is null
              and exists (
                  select from control.users as u
                  join control.role_grants as g on g.user_id = u.user_id
                  where u.email = lower(user_email)
                    and (g.role in ('platform_admin', 'account_director')
                         or (g.role = 'account_manager' and g.tenant_id = t.slug))
              )
            order by t.name, t.slug
        $$;

        create function control.declare_health_scope(user_email text) returns text[]
        language plpgsql volatile security definer set search_path = pg_catalog, control as $$
        declare
            visible text[];
        begin
            select coalesce(array_agg(h.tenant_id order by h.tenant_id), '{}') into visible
            from control.health_tenants(user_email) as h;
            perform set_config('pulse.tenant_ids', array_to_string(visible, ','), true);
            perform set_config(
                'pulse.scope', case when cardinality(visible) > 0 then 'account_health' else '' end, true
            );
            return visible;
        end
        $$;

        revoke execute on function control.health_tenants(text), control.declare_health_scope(text) from public;
        grant execute on function control.health_tenants(text), control.declare_health_scope(text) to pulse_reader;

        alter table control.health_alerts enable row level security;
        create policy health_alerts_tenant_read on control.health_alerts
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        grant select on control.health_alerts to pulse_reader;
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        drop function control.declare_health_scope(text);
        drop function control.health_tenants(text);
        alter table control.notifications
            drop constraint notifications_one_alert,
            drop constraint notifications_health_alert_once,
            drop column health_alert_id;
        drop table control.health_alerts;
        delete from control.role_grants where role = 'account_director';
        alter table control.role_grants drop constraint role_grants_check;
        alter table control.role_grants add constraint role_grants_check
            check (role = 'platform_admin' or tenant_id is not null);
        alter table control.role_grants drop constraint role_grants_role_check;
        alter table control.role_grants add constraint role_grants_role_check
            check (role in ({_in(ROLES_BEFORE)}));
        """
    )
