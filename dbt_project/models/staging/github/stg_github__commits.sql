with

source as (
    {{ union_tenant_sources(source('github', 'commits'), 'github', [
        'sha', 'pull_request_id', 'repository_full_name', 'pull_number', 'author_login',
        'author_email', 'author_name', 'authored_at', 'committed_at', '_dlt_load_id'
    ]) }}
),

renamed as (
    select
        tenant_id,
        'github:' || pull_request_id::text as pull_request_id,
        sha::text as commit_sha,
        repository_full_name::text as repository,
        author_login::text as author_login,
        lower(author_email::text) as author_email,
        author_name::text as author_name,
        authored_at::timestamptz as authored_at,
        committed_at::timestamptz as committed_at,
        {{ raw_load_stamps() }}
    from source
)

select * from renamed
