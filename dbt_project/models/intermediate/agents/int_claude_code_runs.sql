-- A Claude Code run is one prompt: the events that share a prompt.id. Events of versions that
-- send no prompt.id are grouped by session instead. Tokens and cost are summed over the run's
-- API requests (priced per request in int_agent_usage_lines, since one prompt may use
-- several models).

with

events as (
    select
        *,
        coalesce('prompt:' || prompt_id, 'session:' || session_id) as run_key
    from {{ ref('stg_claude_code__events') }}
    where (prompt_id is not null or session_id is not null)
        and event_name in ('user_prompt', 'api_request', 'api_error', 'tool_result')
),

runs as (
    select
        tenant_id,
        run_key,
        min(user_email) as user_email,
        min(team_name) as team_name,
        min(event_at) as started_at,
        max(event_at + coalesce(duration_ms, 0) * interval '1 millisecond') as ended_at,
        max(received_at) as updated_at,
        max(loaded_at) as loaded_at,
        count(*) filter (where event_name = 'api_request') as api_requests,
        count(*) filter (where event_name = 'api_error') as api_errors,
        (array_agg(model_name order by event_at desc) filter (
            where event_name = 'api_request' and model_name is not null
        ))[1] as model_name,
        (array_agg(error_message order by event_at desc) filter (where event_name = 'api_error'))[1]
            as last_error_message
    from events
    group by tenant_id, run_key
)

select
    tenant_id,
    'claude_code:' || run_key as agent_run_id,
    'claude_code'::text as origin,
    'claude-code'::text as agent_type,
    user_email,
    team_name,
    -- a prompt whose every API call failed failed; otherwise it produced an answer
    case when api_requests = 0 and api_errors > 0 then 'failed' else 'succeeded' end as status,
    model_name,
    null::text as model_version,
    started_at,
    ended_at,
    updated_at,
    case when api_requests = 0 and api_errors > 0 then 'api_error' end as error_category,
    case when api_requests = 0 and api_errors > 0 then last_error_message end as error_message,
    loaded_at
from runs
