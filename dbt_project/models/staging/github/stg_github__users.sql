{#- GitHub does not give a pull request author's email; commits do. A login is matched to the
    email its commits were made with most often (bots' noreply addresses left out). -#}
with

commits as (
    select * from {{ ref('stg_github__commits') }}
    where author_login is not null
      and author_email is not null
      and author_email not like '%noreply.github.com'
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
    tenant_id,
    'github'::text as source_system,
    author_login as user_id,
    author_email as email,
    display_name
from ranked
where rank = 1
