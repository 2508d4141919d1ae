-- One row per failed model API request (event api_error).
select
    tenant_id,
    claude_code_event_id,
    request_id,
    session_id,
    prompt_id,
    user_email,
    team_name,
    model_name,
    event_at,
    received_at,
    status_code,
    error_message
from {{ ref('stg_claude_code__events') }}
where event_name = 'api_error'
