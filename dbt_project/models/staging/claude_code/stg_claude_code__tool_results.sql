-- One row per tool execution Claude Code finished (event tool_result).
select
    tenant_id,
    claude_code_event_id,
    session_id,
    prompt_id,
    user_email,
    team_name,
    tool_name,
    is_success,
    duration_ms,
    event_at,
    received_at
from {{ ref('stg_claude_code__events') }}
where event_name = 'tool_result'
