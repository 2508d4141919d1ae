{#- One row per Jira issue, current state, in the staging contract of docs/sources.md.
    The connector put the mapped custom fields in canonical columns, drop-downs as their
    labels; here they are normalized (labels to codes, Yes/No to booleans). Emails Jira hid
    on the issue come from the users list.

    A table staged per issue (macros/incremental.sql): a run restages the issues loaded since
    it last ran, and a tenant whose users changed. -#}
{%- set loaded, lookups = 'jira_item_loads', 'jira_item_lookups' -%}
{{ per_source_item_table(loaded, lookups, [('jira', 'issues', 'id')], one_row_per_item=true) }}
with

issues as (
    select * from (
    {{ union_tenant_sources(source('jira', 'issues'), 'jira', [
        'id', 'key', 'project_key', 'project_name', 'issue_type', 'hierarchy_level', 'status',
        'status_category', 'summary', 'assignee_account_id', 'assignee_email', 'reporter_account_id',
        'reporter_email', 'parent_id', 'caused_by_id', 'created_at', 'updated_at', 'resolved_at', 'url',
        'story_points', 'sprint', 'dmt_ac_quality', 'dmt_unit_test_task', 'dmt_unit_test_status',
        'dmt_coverage_pct', 'dmt_pr_links', 'dmt_ci_evidence', 'dmt_reviewer_signoff', 'dmt_exception',
        'dmt_exception_reason', 'dmt_exception_approver', 'dmt_exception_expires', '_dlt_load_id'
    ]) }}
    ) as raw_issues
    where true {{ and_source_item_in_batch('id') }}
),

users as (
    select tenant_id, user_id, email from {{ ref('stg_jira__users') }}
),

flags as (
    {#- Yes/No drop-downs, checkboxes and true/false text as booleans. -#}
    select
        *,
        case
            when lower(trim(dmt_unit_test_task::text)) in ('yes', 'y', 'true', '1', 'done', 'checked') then true
            when lower(trim(dmt_unit_test_task::text)) in ('no', 'n', 'false', '0') then false
        end as unit_test_task_flag,
        case
            when lower(trim(dmt_reviewer_signoff::text)) in ('yes', 'y', 'true', '1', 'signed off', 'checked')
                then true
            when lower(trim(dmt_reviewer_signoff::text)) in ('no', 'n', 'false', '0') then false
        end as signoff_flag,
        case
            when lower(trim(dmt_exception::text)) in ('yes', 'y', 'true', '1', 'approved', 'checked') then true
            when lower(trim(dmt_exception::text)) in ('no', 'n', 'false', '0') then false
        end as exception_flag,
        replace(lower(trim(dmt_unit_test_status::text)), ' ', '_') as unit_test_status_code
    from issues
)

select
    flags.tenant_id,
    'jira'::text as source_system,
    flags.id::text as work_item_id,
    flags.key::text as work_item_key,
    flags.project_key::text as project_key,
    flags.project_name::text as project_name,
    case
        when flags.hierarchy_level::integer >= 1 or lower(flags.issue_type::text) = 'epic' then 'epic'
        when lower(flags.issue_type::text) = 'story' then 'story'
        when lower(flags.issue_type::text) = 'bug' then 'bug'
        when lower(flags.issue_type::text) in ('task', 'sub-task', 'subtask')
            or flags.hierarchy_level::integer < 0 then 'task'
        else 'other'
    end as item_type,
    flags.issue_type::text as native_type,
    flags.summary::text as title,
    flags.status::text as status,
    case flags.status_category::text
        when 'done' then 'done'
        when 'indeterminate' then 'in_progress'
        else 'todo'
    end as status_category,
    flags.story_points::numeric as story_points,
    flags.sprint::text as sprint_id,
    coalesce(lower(nullif(flags.assignee_email::text, '')), assignee.email) as assignee_email,
    coalesce(lower(nullif(flags.reporter_email::text, '')), reporter.email) as reporter_email,
    flags.parent_id::text as parent_id,
    flags.caused_by_id::text as caused_by_id,
    flags.created_at::timestamptz as created_at,
    flags.updated_at::timestamptz as updated_at,
    flags.resolved_at::timestamptz as resolved_at,
    flags.url::text as url,
    case
        when lower(trim(flags.dmt_ac_quality::text)) in ('incomplete', 'testable', 'final')
            then lower(trim(flags.dmt_ac_quality::text))
    end as dmt_ac_quality,
    flags.unit_test_task_flag as dmt_unit_test_task,
    case
        when flags.unit_test_status_code in ('not_started', 'in_progress', 'done', 'exception_approved')
            then flags.unit_test_status_code
    end as dmt_unit_test_status,
    flags.dmt_coverage_pct::numeric as dmt_coverage_pct,
    nullif(trim(flags.dmt_pr_links::text), '') as dmt_pr_links,
    nullif(trim(flags.dmt_ci_evidence::text), '') as dmt_ci_evidence,
    flags.signoff_flag as dmt_reviewer_signoff,
    coalesce(flags.exception_flag, false) as dmt_exception,
    nullif(trim(flags.dmt_exception_reason::text), '') as dmt_exception_reason,
    coalesce(
        approver.email,
        case when flags.dmt_exception_approver::text like '%@%' then lower(trim(flags.dmt_exception_approver::text)) end
    ) as dmt_exception_approver,
    case
        when flags.dmt_exception_expires::text ~ '^\d{4}-\d{2}-\d{2}' then left(flags.dmt_exception_expires::text, 10)::date
    end as dmt_exception_expires,
    loads.loaded_at,
    lookups.lookups_version
from flags
{{ join_staged_stamps('flags', 'flags.id::text', loaded, lookups) }}
left join users as assignee
    on assignee.tenant_id = flags.tenant_id and assignee.user_id = flags.assignee_account_id::text
left join users as reporter
    on reporter.tenant_id = flags.tenant_id and reporter.user_id = flags.reporter_account_id::text
left join users as approver
    on approver.tenant_id = flags.tenant_id and approver.user_id = flags.dmt_exception_approver::text
