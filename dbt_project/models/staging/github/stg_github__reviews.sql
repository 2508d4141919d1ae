{#- its raw copies are indexed on its unique key (macros/tested_loads.sql, unique_key_indexes) -#}
{{ config(pre_hook="{{ index_unique_keys() }}") }}
with

source as (
    {{ union_tenant_sources(source('github', 'reviews'), 'github', [
        'id', 'pull_request_id', 'repository_full_name', 'pull_number', 'reviewer_login',
        'state', 'submitted_at', 'commit_id', '_dlt_load_id'
    ]) }}
),

renamed as (
    select
        tenant_id,
        'github:' || id::text as review_id,
        'github:' || pull_request_id::text as pull_request_id,
        repository_full_name::text as repository,
        pull_number::integer as pull_request_number,
        reviewer_login::text as reviewer_login,
        upper(state::text) as review_state,
        submitted_at::timestamptz as submitted_at,
        commit_id::text as commit_sha,
        {{ raw_load_stamps() }}
    from source
)

select * from renamed
