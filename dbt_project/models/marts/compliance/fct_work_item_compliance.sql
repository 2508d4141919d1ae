{#- Done Means Tested: one row per work item that is done or in review (epics excluded), each
    DMT rule evaluated on its own column, then is_dmt_compliant and the list of failed rules.

    * rule_ac_quality: acceptance-criteria quality set and not "incomplete";
    * rule_unit_test_task: a unit-test task is present;
    * rule_unit_testing: unit testing done, or "exception approved" with a valid exception;
    * rule_coverage: coverage at or above the project's threshold (control.projects, 80% when
      the project is not registered), unless a valid exception is approved;
    * rule_pr_link: a story records a pull-request link (other types pass);
    * rule_ci_evidence: a CI run is linked as evidence;
    * rule_reviewer_signoff: the reviewer signed the DMT checklist.
    An exception is valid when it is approved and has not expired by as_of() (no expiry date:
    valid). "In review" is an in-progress status whose name says review, resolved (Azure's
    state for it), testing or QA.

    Built incrementally by changed work items (macros/incremental.sql, per_work_item_table):
    the items loaded since, and those whose count of linked pull requests, project coverage
    threshold or exception validity (as_of passed its expiry) is now otherwise
    (compliance_also in macros/incremental_compliance.sql). It records the items it rebuilt
    for fct_compliance_flags, for the health mart the moments done of the done rows it changed
    (keep_replaced_done_items before the batch is replaced, then log_done_item_changes) and,
    for the sprint marts, those whose verdict or coverage changed (post-hooks). -#}
{#- the sprint dashboard's open flags of a sprint (apps/streamlit/sprint_data.py) -#}
{{ per_work_item_table(
    also='compliance_also', primary_key=true, indexes=[{'columns': ['tenant_id', 'sprint_uid']}],
    before_replace='keep_replaced_done_items'
) }}
{#- the health mart's reads of a tenant's items done from a day on, and of its first one -#}
{{ config(
    post_hook=["{{ log_compliance_changes() }}", "{{ ensure_indexes() }}"],
    ensured_indexes=[{'columns': ['tenant_id', 'done_at'], 'where_set': 'done_at'}]
) }}
{#- what each sprint mart reads of an assessment (of the items a sprint completed) -#}
{{ logs_sprint_inputs({
    'fct_sprints': {'completed': 'row(input_row.is_dmt_compliant)'},
    'fct_developer_sprints': {'completed': 'row(input_row.is_dmt_compliant, input_row.dmt_coverage_pct)'}
}) }}
with

items as (
    select * from {{ ref('int_work_items_unified') }}
    where item_type <> 'epic' {{ and_tenant() }} {{ and_in_batch() }}
),

current_stints as (
    select tenant_id, work_item_uid, entered_at
    from {{ ref('int_work_item_status_history') }}
    where is_current {{ and_tenant() }} {{ and_in_batch() }}
),

projects as (
    select tenant_id, key as project_key, dmt_coverage_threshold
    from {{ source('control', 'projects') }}
    {{ tenant_filter() }}
),

pull_request_links as (
    select tenant_id, work_item_uid, count(*) as linked_pull_requests
    from {{ ref('int_pull_request_work_items') }}
    where true {{ and_tenant() }} {{ and_in_batch() }}
    group by tenant_id, work_item_uid
),

in_scope as (
    select
        items.*,
        items.status_category = 'done' as is_done,
        items.status_category = 'in_progress' and items.status ~* '(review|resolved|testing|(^|\W)qa(\W|$))'
            as is_in_review,
        current_stints.entered_at as status_since
    from items
    left join current_stints
        on current_stints.tenant_id = items.tenant_id and current_stints.work_item_uid = items.work_item_uid
),

evaluated as (
    select
        in_scope.*,
        coalesce(projects.dmt_coverage_threshold, 80)::numeric(5, 2) as coverage_threshold,
        coalesce(in_scope.dmt_exception, false)
            and (in_scope.dmt_exception_expires is null or in_scope.dmt_exception_expires >= ({{ as_of() }})::date)
            as has_valid_exception,
        coalesce(pull_request_links.linked_pull_requests, 0) as linked_pull_requests
    from in_scope
    left join projects
        on projects.tenant_id = in_scope.tenant_id and projects.project_key = in_scope.project_key
    left join pull_request_links
        on pull_request_links.tenant_id = in_scope.tenant_id
        and pull_request_links.work_item_uid = in_scope.work_item_uid
    where in_scope.is_done or in_scope.is_in_review
),

rules as (
    select
        evaluated.*,
        coalesce(dmt_ac_quality in ('testable', 'final'), false) as rule_ac_quality,
        coalesce(dmt_unit_test_task, false) as rule_unit_test_task,
        coalesce(
            dmt_unit_test_status = 'done' or (dmt_unit_test_status = 'exception_approved' and has_valid_exception),
            false
        ) as rule_unit_testing,
        has_valid_exception or coalesce(dmt_coverage_pct >= coverage_threshold, false) as rule_coverage,
        item_type <> 'story' or dmt_pr_links is not null as rule_pr_link,
        dmt_ci_evidence is not null as rule_ci_evidence,
        coalesce(dmt_reviewer_signoff, false) as rule_reviewer_signoff
    from evaluated
)

select
    tenant_id,
    work_item_uid,
    work_item_key,
    source_system,
    project_key,
    item_type,
    title,
    status,
    status_category,
    case when is_done then 'done' else 'in_review' end as dmt_stage,
    coalesce(done_at, status_since) as stage_since,
    sprint_uid,
    assignee_person_id,
    done_at,
    dmt_ac_quality,
    dmt_unit_test_status,
    dmt_coverage_pct,
    coverage_threshold,
    has_valid_exception,
    dmt_exception_reason,
    dmt_exception_approver,
    dmt_exception_expires,
    linked_pull_requests::integer as linked_pull_requests,
    rule_ac_quality,
    rule_unit_test_task,
    rule_unit_testing,
    rule_coverage,
    rule_pr_link,
    rule_ci_evidence,
    rule_reviewer_signoff,
    rule_ac_quality and rule_unit_test_task and rule_unit_testing and rule_coverage and rule_pr_link
        and rule_ci_evidence and rule_reviewer_signoff as is_dmt_compliant,
    array_to_string(
        array[
            case when not rule_ac_quality then 'ac_quality' end,
            case when not rule_unit_test_task then 'unit_test_task' end,
            case when not rule_unit_testing then 'unit_testing' end,
            case when not rule_coverage then 'coverage' end,
            case when not rule_pr_link then 'pr_link' end,
            case when not rule_ci_evidence then 'ci_evidence' end,
            case when not rule_reviewer_signoff then 'reviewer_signoff' end
        ],
        ', '
    ) as failed_rules,
    (
        (not rule_ac_quality)::integer + (not rule_unit_test_task)::integer + (not rule_unit_testing)::integer
        + (not rule_coverage)::integer + (not rule_pr_link)::integer + (not rule_ci_evidence)::integer
        + (not rule_reviewer_signoff)::integer
    ) as failed_rule_count,
    source_loaded_at
from rules
