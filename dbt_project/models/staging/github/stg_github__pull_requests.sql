{#- its raw copies are indexed on its unique key (macros/tested_loads.sql, unique_key_indexes) -#}
{{ config(pre_hook="{{ index_unique_keys() }}") }}
with

source as (
    {{ union_tenant_sources(source('github', 'pull_requests'), 'github', [
        'id', 'node_id', 'repository_full_name', 'number', 'title', 'body', 'state', 'is_draft',
        'author_login', 'head_ref', 'base_ref', 'created_at', 'updated_at', 'closed_at',
        'merged_at', 'html_url', '_dlt_load_id'
    ]) }}
),

renamed as (
    select
        tenant_id,
        'github:' || id::text as pull_request_id,
        id::bigint as github_pull_request_id,
        node_id::text as github_node_id,
        repository_full_name::text as repository,
        number::integer as pull_request_number,
        title::text as title,
        body::text as description,
        state::text as github_state,
        coalesce(is_draft::boolean, false) as is_draft,
        author_login::text as author_login,
        head_ref::text as head_branch,
        base_ref::text as base_branch,
        created_at::timestamptz as opened_at,
        updated_at::timestamptz as updated_at,
        closed_at::timestamptz as closed_at,
        merged_at::timestamptz as merged_at,
        html_url::text as url,
        {{ raw_load_stamps() }}
    from source
)

select * from renamed
