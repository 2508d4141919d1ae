{#- GitHub does not give a pull request author's email; commits do. A login is matched to the
    email its commits were made with most often (bots' noreply addresses left out).
    A table built incrementally by changed tenants (macros/incremental_tenants.sql): it counts
    every commit of its tenant, which each of its readers (the pull request and review views,
    int_people, the login mapping's version) would otherwise do again, on every build; a
    tenant is counted anew only when a GitHub load of it completed since.
    Every commit is read, but only its author's login, email and name: through an index on
    them of every tenant's raw commits (index_raw_load_ids' `covering`), not the raw rows, which
    hold each commit's payload (334 MB of rows against 20 MB of index at 50 tenants × 2 years). -#}
{{ per_tenant_loads_table(key=['tenant_id', 'user_id'], source_types=['github'], work_items=false) }}
{{ config(pre_hook="{{ index_raw_load_ids([], covering=[
    ('github', 'commits', 'authors', ['author_login', 'author_email', 'author_name'])
]) }}") }}

with

loads_versions as (
    {{ loads_versions(work_items=false) }}
),

commits as (
    select * from {{ ref('stg_github__commits') }}
    where author_login is not null
      and author_email is not null
      and author_email not like '%noreply.github.com'
      {{ and_tenant() }} {{ and_tenant_in_batch() }}
),

counted as (
    select
        tenant_id,
        author_login,
        author_email,
        max(author_name) as display_name,
        count(*) as commits
    from commits
    group by tenant_id, author_login, author_email
),

ranked as (
    select
        *,
        row_number() over (partition by tenant_id, author_login order by commits desc, author_email) as rank
    from counted
)

select
    ranked.tenant_id,
    'github'::text as source_system,
    ranked.author_login as user_id,
    ranked.author_email as email,
    ranked.display_name,
    loads_versions.loads_version
from ranked
left join loads_versions
    on loads_versions.tenant_id = ranked.tenant_id
where ranked.rank = 1
