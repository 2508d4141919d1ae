{#- One row per work item and compliance flag: what is wrong, how bad, since when, and whether
    (and by whom) it was resolved.

    Flags come from the failed rules of fct_work_item_compliance — critical: missing_pr_link
    and unit_testing_not_done; warning: ac_quality, unit_test_task_missing,
    coverage_below_threshold, ci_evidence_missing, reviewer_signoff_missing — plus info
    exception_expiring for a valid DMT exception that expires within 14 days of as_of().

    The model remembers its previous rows (delete+insert of the changed ones): a flag keeps the moment it opened
    while it stays failing; a flag whose condition a later load shows cleared is resolved by
    Pulse at the item's last update (the change that cleared it); one failing again after that
    opens again. Moments are the data's (done or in-review since, the item's update), never
    the build's, so a re-run for the same data gives the same rows. A person's resolution lives
    in control.compliance_flag_resolutions and wins over an open flag opened before it; it
    survives every rebuild, including a full refresh.
    An incremental build re-evaluates only the items whose compliance was rebuilt since, and the
    few others the flags depend on (macros/incremental_compliance.sql). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tenant_id', 'work_item_uid', 'flag_type'],
        pre_hook="{{ take_flag_items() }}"
    )
}}

with

compliance as (
    select * from {{ ref('fct_work_item_compliance') }}
    where true {{ and_tenant() }} {{ and_flag_item_in_batch() }}
),

items as (
    select tenant_id, work_item_uid, work_item_key, updated_at
    from {{ ref('int_work_items_unified') }}
    where true {{ and_tenant() }} {{ and_flag_item_in_batch() }}
),

failures as (
    select
        compliance.tenant_id,
        compliance.work_item_uid,
        compliance.work_item_key,
        compliance.stage_since as detected_at,
        rule.flag_type,
        rule.severity,
        case rule.flag_type
            when 'missing_pr_link' then
                compliance.work_item_key || ' is ' || replace(compliance.dmt_stage, '_', ' ')
                || ' but records no pull-request link: add the PR URL to its DMT "PR links" field.'
            when 'unit_testing_not_done' then
                compliance.work_item_key || ' is ' || replace(compliance.dmt_stage, '_', ' ') || ' while unit testing is '
                || coalesce(replace(compliance.dmt_unit_test_status, '_', ' '), 'not recorded')
                || ': finish the unit tests, or have a lead approve a DMT exception.'
            when 'ac_quality' then
                compliance.work_item_key || ' has '
                || coalesce(compliance.dmt_ac_quality || ' acceptance criteria', 'no acceptance-criteria rating')
                || ': make them testable or final.'
            when 'unit_test_task_missing' then
                compliance.work_item_key || ' has no unit-test task: add one.'
            when 'coverage_below_threshold' then
                compliance.work_item_key || ' has '
                || coalesce('coverage of ' || trim_scale(compliance.dmt_coverage_pct)::text || '%', 'no coverage figure')
                || ', under the project''s ' || trim_scale(compliance.coverage_threshold)::text
                || '%: add tests or record the coverage.'
            when 'ci_evidence_missing' then
                compliance.work_item_key || ' links no CI run as evidence that its tests pass: add the run''s URL.'
            when 'reviewer_signoff_missing' then
                compliance.work_item_key || ' has no reviewer DMT sign-off: ask the reviewer to sign the checklist.'
        end as message
    from compliance
    cross join lateral (
        values
            ('missing_pr_link', 'critical', not compliance.rule_pr_link),
            ('unit_testing_not_done', 'critical', not compliance.rule_unit_testing),
            ('ac_quality', 'warning', not compliance.rule_ac_quality),
            ('unit_test_task_missing', 'warning', not compliance.rule_unit_test_task),
            ('coverage_below_threshold', 'warning', not compliance.rule_coverage),
            ('ci_evidence_missing', 'warning', not compliance.rule_ci_evidence),
            ('reviewer_signoff_missing', 'warning', not compliance.rule_reviewer_signoff)
    ) as rule (flag_type, severity, failed)
    where rule.failed

    union all

    select
        tenant_id,
        work_item_uid,
        work_item_key,
        (dmt_exception_expires - 14)::timestamp at time zone 'UTC' as detected_at,
        'exception_expiring' as flag_type,
        'info' as severity,
        work_item_key || '''s DMT exception (' || coalesce(dmt_exception_reason, 'no reason given')
        || ', approved by ' || coalesce(dmt_exception_approver, 'unknown') || ') expires on '
        || to_char(dmt_exception_expires, 'YYYY-MM-DD') || ': finish the tests or renew it.' as message
    from compliance
    where has_valid_exception
      and dmt_exception_expires is not null
      and dmt_exception_expires <= ({{ as_of() }})::date + 14
),

previous as (
    {%- if is_incremental() %}
    select tenant_id, work_item_uid, work_item_key, flag_type, severity, message, opened_at, auto_resolved_at
    from {{ this }}
    where true {{ and_tenant() }} {{ and_flag_item_in_batch() }}
    {%- else %}
    select
        null::text as tenant_id, null::text as work_item_uid, null::text as work_item_key, null::text as flag_type,
        null::text as severity, null::text as message, null::timestamptz as opened_at,
        null::timestamptz as auto_resolved_at
    where false
    {%- endif %}
),

merged as (
    select
        coalesce(failures.tenant_id, previous.tenant_id) as tenant_id,
        coalesce(failures.work_item_uid, previous.work_item_uid) as work_item_uid,
        coalesce(failures.work_item_key, previous.work_item_key) as work_item_key,
        coalesce(failures.flag_type, previous.flag_type) as flag_type,
        coalesce(failures.severity, previous.severity) as severity,
        coalesce(failures.message, previous.message) as message,
        case
            -- still failing: it keeps the moment it opened
            when failures.flag_type is not null and previous.flag_type is not null
                and previous.auto_resolved_at is null then previous.opened_at
            -- failing again after Pulse had resolved it: open again from the item's update
            when failures.flag_type is not null and previous.flag_type is not null
                then greatest(failures.detected_at, items.updated_at, previous.auto_resolved_at)
            when failures.flag_type is not null then failures.detected_at
            else previous.opened_at
        end as opened_at,
        case
            when failures.flag_type is not null then null
            when previous.auto_resolved_at is not null then previous.auto_resolved_at
            -- cleared: resolved by the change that cleared it (the item's last update)
            else greatest(coalesce(items.updated_at, {{ as_of() }}), previous.opened_at)
        end as auto_resolved_at
    from failures
    full outer join previous
        on previous.tenant_id = failures.tenant_id
        and previous.work_item_uid = failures.work_item_uid
        and previous.flag_type = failures.flag_type
    left join items
        on items.tenant_id = coalesce(failures.tenant_id, previous.tenant_id)
        and items.work_item_uid = coalesce(failures.work_item_uid, previous.work_item_uid)
),

manual as (
    select distinct on (tenant_id, work_item_uid, flag_type)
        tenant_id, work_item_uid, flag_type, resolved_by, resolved_at, note
    from {{ source('control', 'compliance_flag_resolutions') }}
    where true {{ and_tenant() }} {{ and_flag_item_in_batch() }}
    order by tenant_id, work_item_uid, flag_type, resolved_at desc
),

resolved as (
    select
        merged.*,
        manual.resolved_at >= merged.opened_at
            and (merged.auto_resolved_at is null or manual.resolved_at <= merged.auto_resolved_at) as by_hand,
        manual.resolved_by as manual_by,
        manual.resolved_at as manual_at,
        manual.note as manual_note
    from merged
    left join manual
        on manual.tenant_id = merged.tenant_id
        and manual.work_item_uid = merged.work_item_uid
        and manual.flag_type = merged.flag_type
),

flags as (
    select
        tenant_id,
        work_item_uid,
        work_item_key,
        flag_type,
        severity,
        message,
        opened_at,
        auto_resolved_at,
        case when coalesce(by_hand, false) then manual_at else auto_resolved_at end as resolved_at,
        case
            when coalesce(by_hand, false) then manual_by
            when auto_resolved_at is not null then 'pulse'
        end as resolved_by,
        case
            when coalesce(by_hand, false) then 'manual'
            when auto_resolved_at is not null then 'cleared'
        end as resolution,
        case when coalesce(by_hand, false) then manual_note end as resolution_note,
        not coalesce(by_hand, false) and auto_resolved_at is null as is_open
    from resolved
)

{%- set columns = [
    'tenant_id', 'work_item_uid', 'work_item_key', 'flag_type', 'severity', 'message', 'opened_at',
    'auto_resolved_at', 'resolved_at', 'resolved_by', 'resolution', 'resolution_note', 'is_open'
] %}

select flags.*
from flags
{%- if is_incremental() %}
-- only the flags that differ from the stored ones are replaced (delete+insert on the key); a
-- day changes a few hundred of a million rows, and rewriting them all was most of the cost
left join {{ this }} as stored
    on stored.tenant_id = flags.tenant_id
    and stored.work_item_uid = flags.work_item_uid
    and stored.flag_type = flags.flag_type
where stored.tenant_id is null
    or (
        {%- for column in columns %}stored.{{ column }}{% if not loop.last %}, {% endif %}{% endfor -%}
    ) is distinct from (
        {%- for column in columns %}flags.{{ column }}{% if not loop.last %}, {% endif %}{% endfor -%}
    )
{%- endif %}
