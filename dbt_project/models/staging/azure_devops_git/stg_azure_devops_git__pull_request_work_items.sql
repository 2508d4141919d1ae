{#- Which Azure Boards work items a pull request implements: work_item_id is the Boards id as text. -#}
with

source as (
    {{ union_tenant_sources(source('azure_devops_git', 'pull_request_work_items'), 'azure_devops_git', [
        'pull_request_id', 'work_item_id', '_dlt_load_id'
    ]) }}
)

select
    tenant_id,
    'azure_devops_git:' || pull_request_id::text as pull_request_id,
    work_item_id::bigint::text as work_item_id,
    {{ raw_load_stamps() }}
from source
