"""Control plane: tenants, teams, users, role grants, projects, sources, audit log, sync requests.

Also the row-level-security building blocks every tenant-scoped relation uses:
``control.visible_tenant_ids()`` reads the tenants the current transaction declared
(``set_config('pulse.tenant_ids', 'a,b', true)``); no declaration means no tenant.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLES = ("platform_admin", "account_manager", "org_admin", "team_lead", "member")
SOURCE_TYPES = (
    "github",
    "jira",
    "clickup",
    "azure_boards",
    "azure_devops_git",
    "agent_platform",
    "claude_code",
)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute(
        f"""
        create table control.tenants (
            slug        text primary key check (slug ~ '^[a-z][a-z0-9_]{{1,39}}$'),
            name        text not null,
            timezone    text not null default 'UTC',
            is_active   boolean not null default true,
            created_at  timestamptz not null default now(),
            deleted_at  timestamptz
        );

        create table control.teams (
            team_id     bigint generated always as identity primary key,
            tenant_id   text not null references control.tenants (slug),
            slug        text not null,
            name        text not null,
            created_at  timestamptz not null default now(),
            unique (tenant_id, slug)
        );

        create table control.users (
            user_id           bigint generated always as identity primary key,
            email             text not null unique check (email = lower(email) and email like '%@%'),
            name              text not null,
            external_subject  text unique,
            created_at        timestamptz not null default now()
        );

        create table control.role_grants (
            grant_id    bigint generated always as identity primary key,
            user_id     bigint not null references control.users (user_id) on delete cascade,
            role        text not null check (role in ({_in(ROLES)})),
            tenant_id   text references control.tenants (slug),
            team_id     bigint references control.teams (team_id),
            created_at  timestamptz not null default now(),
            -- platform admins need no tenant; everyone else is scoped to one
            check (role = 'platform_admin' or tenant_id is not null),
            check (role <> 'team_lead' or team_id is not null),
            unique nulls not distinct (user_id, role, tenant_id, team_id)
        );

        create table control.projects (
            project_id              bigint generated always as identity primary key,
            tenant_id               text not null references control.tenants (slug),
            key                     text not null,
            name                    text not null,
            dmt_coverage_threshold  numeric(5, 2) not null default 80
                                    check (dmt_coverage_threshold between 0 and 100),
            created_at              timestamptz not null default now(),
            unique (tenant_id, key)
        );

        create table control.sources (
            source_id              bigint generated always as identity primary key,
            tenant_id              text not null references control.tenants (slug),
            project_id             bigint references control.projects (project_id),
            type                   text not null check (type in ({_in(SOURCE_TYPES)})),
            name                   text not null,
            base_url               text not null,
            credentials_encrypted  text,
            config                 jsonb not null default '{{}}',
            field_mappings         jsonb not null default '{{}}',
            is_active              boolean not null default true,
            last_sync_status       text not null default 'never'
                                   check (last_sync_status in ('never', 'running', 'succeeded', 'failed')),
            last_sync_at           timestamptz,
            last_sync_error        text,
            consecutive_failures   integer not null default 0,
            created_at             timestamptz not null default now(),
            updated_at             timestamptz not null default now(),
            unique (tenant_id, name)
        );

        create table control.sync_requests (
            sync_request_id  bigint generated always as identity primary key,
            tenant_id        text not null references control.tenants (slug),
            source_id        bigint references control.sources (source_id),
            requested_by     text not null,
            requested_at     timestamptz not null default now(),
            status           text not null default 'pending'
                             check (status in ('pending', 'running', 'succeeded', 'failed')),
            dagster_run_id   text,
            started_at       timestamptz,
            finished_at      timestamptz,
            error            text
        );

        create table control.audit_log (
            audit_id     bigint generated always as identity primary key,
            occurred_at  timestamptz not null default clock_timestamp(),
            actor        text not null,
            action       text not null,
            entity_type  text not null,
            entity_id    text,
            tenant_id    text,
            old_values   jsonb,
            new_values   jsonb
        );
        create index audit_log_tenant_time on control.audit_log (tenant_id, occurred_at);

        -- The audit log is append-only, enforced by the database for every role.
        create function control.refuse_audit_change() returns trigger
        language plpgsql as $$
        begin
            raise exception 'control.audit_log is append-only: % is not allowed', tg_op
                using errcode = 'insufficient_privilege';
        end
        $$;
        create trigger audit_log_no_update_delete
            before update or delete on control.audit_log
            for each row execute function control.refuse_audit_change();
        create trigger audit_log_no_truncate
            before truncate on control.audit_log
            for each statement execute function control.refuse_audit_change();

        -- Row-level security building blocks.
        create function control.visible_tenant_ids() returns text[]
        language sql stable as $$
            select coalesce(
                string_to_array(nullif(current_setting('pulse.tenant_ids', true), ''), ','),
                '{{}}'::text[]
            )
        $$;
        create function control.tenant_visible(candidate text) returns boolean
        language sql stable as $$
            select candidate = any (control.visible_tenant_ids())
        $$;
        """
    )
    # The reader role the app and analysts use: no BYPASSRLS, no ownership of anything.
    op.execute(
        """
        do $$
        begin
            if not exists (select from pg_roles where rolname = 'pulse_reader') then
                create role pulse_reader login nobypassrls nosuperuser nocreatedb nocreaterole;
            end if;
        end
        $$;
        grant usage on schema control to pulse_reader;
        grant execute on function control.visible_tenant_ids() to pulse_reader;
        grant execute on function control.tenant_visible(text) to pulse_reader;

        -- Source status (never the credentials) is visible to the tenant's readers.
        alter table control.sources enable row level security;
        create policy sources_tenant_read on control.sources
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        grant select (source_id, tenant_id, type, name, last_sync_status, last_sync_at,
                      consecutive_failures)
            on control.sources to pulse_reader;

        -- Sign-in: what a user may see is decided from their grants. These functions are the
        -- reader role's only window on users and grants (security definer, fixed search_path).
        create function control.user_grants(user_email text)
        returns table (email text, name text, role text, tenant_id text, tenant_name text,
                       team_id bigint, team_name text)
        language sql stable security definer set search_path = pg_catalog, control as $$
            select u.email, u.name, g.role, g.tenant_id, t.name, g.team_id, tm.name
            from control.users as u
            join control.role_grants as g on g.user_id = u.user_id
            left join control.tenants as t on t.slug = g.tenant_id
            left join control.teams as tm on tm.team_id = g.team_id
            where u.email = lower(user_email)
              and (g.tenant_id is null or (t.is_active and t.deleted_at is null))
        $$;
        create function control.active_tenants()
        returns table (tenant_id text, tenant_name text)
        language sql stable security definer set search_path = pg_catalog, control as $$
            select slug, name from control.tenants
            where is_active and deleted_at is null order by slug
        $$;
        create function control.dev_sign_in_choices()
        returns table (email text, name text, role text, tenant_id text, tenant_name text,
                       team_id bigint, team_name text)
        language sql stable security definer set search_path = pg_catalog, control as $$
            select ug.* from control.users as u, control.user_grants(u.email) as ug
            order by ug.tenant_id nulls first, ug.role, ug.email
        $$;
        revoke execute on function control.user_grants(text), control.active_tenants(),
            control.dev_sign_in_choices() from public;
        grant execute on function control.user_grants(text), control.active_tenants(),
            control.dev_sign_in_choices() to pulse_reader;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop table control.audit_log, control.sync_requests, control.sources, control.projects,
                   control.role_grants, control.users, control.teams, control.tenants cascade;
        drop function control.refuse_audit_change();
        drop function control.dev_sign_in_choices();
        drop function control.active_tenants();
        drop function control.user_grants(text);
        drop function control.tenant_visible(text);
        drop function control.visible_tenant_ids();
        """
    )
