"""Done-Means-Tested compliance flags resolved by hand.

``marts.fct_compliance_flags`` is rebuilt from the data, so a person's decision that a flag
is dealt with ("the PR link is in the release notes; closing") must live outside it:
``control.compliance_flag_resolutions`` holds one row per resolution of a flag (tenant, work
item, flag type), who resolved it, when and why. The mart reads it and shows the flag resolved
by that person; the row survives every rebuild and full refresh. A flag that opens again after
the resolution (the condition came back later) is open again.

Who may resolve: org admins and team leads of the tenant, and platform admins, through
``control.resolve_compliance_flag`` (the CLI as admin) or ``control.app_resolve_compliance_flag``
(the app, checked against the user's grants in the database). Every resolution is audited.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FLAG_TYPES = (
    "missing_pr_link",
    "unit_testing_not_done",
    "ac_quality",
    "unit_test_task_missing",
    "coverage_below_threshold",
    "ci_evidence_missing",
    "reviewer_signoff_missing",
    "exception_expiring",
)


def upgrade() -> None:
    types = ", ".join(f"'{t}'" for t in FLAG_TYPES)
    op.execute(
        f"""
        create table control.compliance_flag_resolutions (
            resolution_id  bigint generated always as identity primary key,
            tenant_id      text not null references control.tenants (slug),
            work_item_uid  text not null check (work_item_uid ~ '^[a-z_]+:.+$'),
            flag_type      text not null check (flag_type in ({types})),
            resolved_by    text not null,
            resolved_at    timestamptz not null default now(),
            note           text not null check (length(trim(note)) > 0)
        );
        create index compliance_flag_resolutions_flag
            on control.compliance_flag_resolutions (tenant_id, work_item_uid, flag_type, resolved_at);

        create function control.resolve_compliance_flag(
            actor text, tenant text, item text, flag text, why text
        ) returns bigint
        language plpgsql as $$
        declare
            new_id bigint;
        begin
            if not exists (select from control.tenants where slug = tenant) then
                raise exception 'No tenant %.', tenant using errcode = 'no_data_found';
            end if;
            insert into control.compliance_flag_resolutions (tenant_id, work_item_uid, flag_type, resolved_by, note)
            values (tenant, item, flag, actor, why)
            returning resolution_id into new_id;
            insert into control.audit_log (actor, action, entity_type, entity_id, tenant_id, new_values)
            values (actor, 'compliance_flag.resolve', 'compliance_flag', item || '/' || flag, tenant,
                    jsonb_build_object('note', why, 'resolution_id', new_id));
            return new_id;
        end
        $$;

        create function control.may_resolve_flags(user_email text, tenant text) returns boolean
        language sql stable security definer set search_path = pg_catalog, control as $$
            select exists (
                select from control.users as u
                join control.role_grants as g on g.user_id = u.user_id
                where u.email = lower(user_email)
                  and (g.role = 'platform_admin'
                       or (g.role in ('org_admin', 'team_lead') and g.tenant_id = tenant))
            )
        $$;

        create function control.app_resolve_compliance_flag(
            user_email text, tenant text, item text, flag text, why text
        ) returns bigint
        language plpgsql security definer set search_path = pg_catalog, control as $$
        begin
            if not control.may_resolve_flags(user_email, tenant) then
                raise exception '% may not resolve compliance flags of %: org admins and team leads may.',
                    user_email, tenant using errcode = 'insufficient_privilege';
            end if;
            return control.resolve_compliance_flag(lower(user_email), tenant, item, flag, why);
        end
        $$;

        alter table control.compliance_flag_resolutions enable row level security;
        create policy flag_resolutions_tenant_read on control.compliance_flag_resolutions
            for select to pulse_reader using (control.tenant_visible(tenant_id));
        grant select on control.compliance_flag_resolutions to pulse_reader;
        revoke execute on function control.resolve_compliance_flag(text, text, text, text, text),
            control.may_resolve_flags(text, text),
            control.app_resolve_compliance_flag(text, text, text, text, text) from public;
        grant execute on function control.may_resolve_flags(text, text),
            control.app_resolve_compliance_flag(text, text, text, text, text) to pulse_reader;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        drop function control.app_resolve_compliance_flag(text, text, text, text, text);
        drop function control.may_resolve_flags(text, text);
        drop function control.resolve_compliance_flag(text, text, text, text, text);
        drop table control.compliance_flag_resolutions;
        """
    )
