"""Budgets and alerts: monthly cost budgets, their thresholds, the alert ledger, in-app
notifications and the email outbox.

Why each table exists:

- ``control.budgets``: one monthly agent-cost budget (USD) per organisation (``team_id`` null)
  and per team. Months are calendar months in the tenant's time zone.
- ``control.budget_thresholds``: the percentages that raise an alert; 50, 80 and 100 are
  added with every new budget, an org admin may add others (e.g. 90 or 120).
- ``control.budget_alerts``: the ledger that makes alerts idempotent. A threshold alerts
  once per budget, month and threshold: the partial unique index refuses a second live row,
  whatever re-runs, restarts or backfills the evaluator goes through. Raising a budget
  re-arms the thresholds the new amount puts back out of reach (``rearmed_at``), so they
  can alert again at the new level.
- ``control.notifications``: in-app notifications, one per recipient of an alert.
- ``control.email_outbox``: one email per notification, delivered apart from the alert
  (status, attempts, last error, next attempt): a failed email is retried with backoff and
  never holds back the in-app notification, which is written with the alert.

The reader role (the app) may read the rows of the tenants declared for its transaction, and
change data only through security-definer functions that check the user's grants in the
database: ``mark_notifications_read`` (own notifications) and the ``app_*`` budget functions
(org admins of the tenant, or platform admins).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table control.budgets (
            budget_id    bigint generated always as identity primary key,
            tenant_id    text not null references control.tenants (slug),
            team_id      bigint references control.teams (team_id),
            amount_usd   numeric(14, 2) not null check (amount_usd > 0),
            created_at   timestamptz not null default now(),
            updated_at   timestamptz not null default now(),
            -- one organisation budget (team null) and one budget per team
            unique nulls not distinct (tenant_id, team_id)
        );

        create table control.budget_thresholds (
            budget_id      bigint not null references control.budgets (budget_id),
            tenant_id      text not null references control.tenants (slug),
            threshold_pct  integer not null check (threshold_pct between 1 and 1000),
            created_at     timestamptz not null default now(),
            primary key (budget_id, threshold_pct)
        );

        create table control.budget_alerts (
            alert_id           bigint generated always as identity primary key,
            tenant_id          text not null references control.tenants (slug),
            budget_id          bigint not null references control.budgets (budget_id),
            period_start       date not null check (extract(day from period_start) = 1),
            kind               text not null check (kind in ('threshold', 'forecast')),
            threshold_pct      integer not null,
            budget_amount_usd  numeric(14, 2) not null,
            spend_usd          numeric(18, 6) not null,
            projected_usd      numeric(18, 6),
            -- several thresholds crossed at once share one notification: the highest one's
            announced_by       bigint references control.budget_alerts (alert_id),
            fired_at           timestamptz not null default now(),
            rearmed_at         timestamptz
        );
        create unique index budget_alerts_once
            on control.budget_alerts (budget_id, period_start, kind, threshold_pct)
            where rearmed_at is null;

        create table control.notifications (
            notification_id  bigint generated always as identity primary key,
            tenant_id        text not null references control.tenants (slug),
            user_id          bigint not null references control.users (user_id) on delete cascade,
            recipient_email  text not null,
            kind             text not null,
            title            text not null,
            body             text not null,
            alert_id         bigint references control.budget_alerts (alert_id),
            created_at       timestamptz not null default now(),
            read_at          timestamptz,
            unique (alert_id, user_id)
        );
        create index notifications_recipient
            on control.notifications (tenant_id, recipient_email, created_at desc);

        create table control.email_outbox (
            email_id         bigint generated always as identity primary key,
            tenant_id        text not null references control.tenants (slug),
            notification_id  bigint not null unique
                             references control.notifications (notification_id) on delete cascade,
            recipient_email  text not null,
            subject          text not null,
            body             text not null,
            -- pending: not sent yet (attempts > 0: retrying); sent; failed: gave up after the last attempt
            status           text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
            attempts         integer not null default 0,
            last_error       text,
            next_attempt_at  timestamptz not null default now(),
            created_at       timestamptz not null default now(),
            sent_at          timestamptz
        );
        create index email_outbox_due on control.email_outbox (next_attempt_at) where status = 'pending';
        """
    )
    # Budget changes: one implementation for the CLI (admin role) and the app (org admins,
    # through the checked app_* wrappers below). Every change is audited.
    op.execute(
        """
        create function control.set_budget(actor text, tenant text, team bigint, amount numeric)
        returns bigint
        language plpgsql as $$
        declare
            found_id bigint;
            old_amount numeric;
        begin
            if amount is null or amount <= 0 then
                raise exception 'A budget is a positive amount in USD, not %.', amount
                    using errcode = 'check_violation';
            end if;
            if team is not null and not exists (
                select from control.teams where team_id = team and tenant_id = tenant
            ) then
                raise exception 'Team % is not a team of tenant %.', team, tenant
                    using errcode = 'foreign_key_violation';
            end if;
            select budget_id, amount_usd into found_id, old_amount
            from control.budgets
            where tenant_id = tenant and team_id is not distinct from team
            for update;
            if found_id is null then
                insert into control.budgets (tenant_id, team_id, amount_usd)
                values (tenant, team, round(amount, 2))
                returning budget_id into found_id;
                insert into control.budget_thresholds (budget_id, tenant_id, threshold_pct)
                select found_id, tenant, pct from unnest(array[50, 80, 100]) as pct;
            else
                update control.budgets set amount_usd = round(amount, 2), updated_at = now()
                where budget_id = found_id;
            end if;
            insert into control.audit_log (actor, action, entity_type, entity_id, tenant_id, old_values, new_values)
            values (actor, 'budget.set', 'budget', found_id::text, tenant,
                    case when old_amount is null then null else jsonb_build_object('amount_usd', old_amount) end,
                    jsonb_build_object('amount_usd', round(amount, 2), 'team_id', team));
            return found_id;
        end
        $$;

        create function control.add_budget_threshold(actor text, budget bigint, pct integer)
        returns void
        language plpgsql as $$
        declare
            tenant text;
        begin
            select tenant_id into tenant from control.budgets where budget_id = budget;
            if tenant is null then
                raise exception 'No budget %.', budget using errcode = 'no_data_found';
            end if;
            if pct is null or pct < 1 or pct > 1000 then
                raise exception 'A threshold is a whole percentage from 1 to 1000, not %.', pct
                    using errcode = 'check_violation';
            end if;
            insert into control.budget_thresholds (budget_id, tenant_id, threshold_pct)
            values (budget, tenant, pct) on conflict do nothing;
            if found then
                update control.budgets set updated_at = now() where budget_id = budget;
                insert into control.audit_log (actor, action, entity_type, entity_id, tenant_id, new_values)
                values (actor, 'budget.threshold.add', 'budget', budget::text, tenant,
                        jsonb_build_object('threshold_pct', pct));
            end if;
        end
        $$;

        create function control.remove_budget_threshold(actor text, budget bigint, pct integer)
        returns void
        language plpgsql as $$
        declare
            tenant text;
        begin
            delete from control.budget_thresholds where budget_id = budget and threshold_pct = pct
            returning tenant_id into tenant;
            if tenant is not null then
                update control.budgets set updated_at = now() where budget_id = budget;
                insert into control.audit_log (actor, action, entity_type, entity_id, tenant_id, old_values)
                values (actor, 'budget.threshold.remove', 'budget', budget::text, tenant,
                        jsonb_build_object('threshold_pct', pct));
            end if;
        end
        $$;

        -- The app's checked entry points: only an org admin of the budget's tenant (or a
        -- platform admin) may change it; the audit log names them.
        create function control.may_manage_budgets(user_email text, tenant text) returns boolean
        language sql stable security definer set search_path = pg_catalog, control as $$
            select exists (
                select from control.users as u
                join control.role_grants as g on g.user_id = u.user_id
                where u.email = lower(user_email)
                  and (g.role = 'platform_admin' or (g.role = 'org_admin' and g.tenant_id = tenant))
            )
        $$;

        create function control.app_set_budget(user_email text, tenant text, team bigint, amount numeric)
        returns bigint
        language plpgsql security definer set search_path = pg_catalog, control as $$
        begin
            if not control.may_manage_budgets(user_email, tenant) then
                raise exception '% is not an org admin of %: only org admins change budgets.', user_email, tenant
                    using errcode = 'insufficient_privilege';
            end if;
            return control.set_budget('app:' || lower(user_email), tenant, team, amount);
        end
        $$;

        create function control.app_add_budget_threshold(user_email text, budget bigint, pct integer)
        returns void
        language plpgsql security definer set search_path = pg_catalog, control as $$
        begin
            if not control.may_manage_budgets(
                user_email, (select tenant_id from control.budgets where budget_id = budget)
            ) then
                raise exception '% is not an org admin of the tenant of budget %.', user_email, budget
                    using errcode = 'insufficient_privilege';
            end if;
            perform control.add_budget_threshold('app:' || lower(user_email), budget, pct);
        end
        $$;

        create function control.mark_notifications_read(user_email text, ids bigint[]) returns integer
        language sql security definer set search_path = pg_catalog, control as $$
            with marked as (
                update control.notifications set read_at = now()
                where recipient_email = lower(user_email) and notification_id = any (ids) and read_at is null
                returning 1
            )
            select count(*)::integer from marked
        $$;
        """
    )
    op.execute(
        """
        revoke execute on function control.set_budget(text, text, bigint, numeric),
            control.add_budget_threshold(text, bigint, integer),
            control.remove_budget_threshold(text, bigint, integer),
            control.may_manage_budgets(text, text),
            control.app_set_budget(text, text, bigint, numeric),
            control.app_add_budget_threshold(text, bigint, integer),
            control.mark_notifications_read(text, bigint[]) from public;
        grant execute on function control.may_manage_budgets(text, text),
            control.app_set_budget(text, text, bigint, numeric),
            control.app_add_budget_threshold(text, bigint, integer),
            control.mark_notifications_read(text, bigint[]) to pulse_reader;

        alter table control.budgets enable row level security;
        alter table control.budget_thresholds enable row level security;
        alter table control.budget_alerts enable row level security;
        alter table control.notifications enable row level security;
        alter table control.email_outbox enable row level security;
        alter table control.teams enable row level security;
        create policy budgets_tenant_read on control.budgets
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        create policy budget_thresholds_tenant_read on control.budget_thresholds
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        create policy budget_alerts_tenant_read on control.budget_alerts
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        create policy notifications_tenant_read on control.notifications
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        create policy email_outbox_tenant_read on control.email_outbox
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        create policy teams_tenant_read on control.teams
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        grant select on control.budgets, control.budget_thresholds, control.budget_alerts,
            control.notifications to pulse_reader;
        -- delivery state, never the message body
        grant select (email_id, tenant_id, notification_id, recipient_email, subject, status, attempts,
                      last_error, next_attempt_at, created_at, sent_at)
            on control.email_outbox to pulse_reader;
        grant select (team_id, tenant_id, slug, name) on control.teams to pulse_reader;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop policy teams_tenant_read on control.teams;
        revoke select on control.teams from pulse_reader;
        alter table control.teams disable row level security;
        drop function control.mark_notifications_read(text, bigint[]);
        drop function control.app_add_budget_threshold(text, bigint, integer);
        drop function control.app_set_budget(text, text, bigint, numeric);
        drop function control.may_manage_budgets(text, text);
        drop function control.remove_budget_threshold(text, bigint, integer);
        drop function control.add_budget_threshold(text, bigint, integer);
        drop function control.set_budget(text, text, bigint, numeric);
        drop table control.email_outbox, control.notifications, control.budget_alerts,
                   control.budget_thresholds, control.budgets;
        """
    )
