"""The agent platform's runs API in the sandbox: seeded agent runs per tenant.

``server.agent_world(tenant)`` is the live world; ``server.advance_agent_runs(tenant)``
finishes the runs in flight. See ``connectors/sandbox/README.md``.
"""

from connectors.sandbox.agent_platform.api import PREFIX, run_item, token_for
from connectors.sandbox.agent_platform.world import AdvanceResult, AgentPlatformWorld, Run, agent_platform_world

__all__ = ["PREFIX", "AdvanceResult", "AgentPlatformWorld", "Run", "agent_platform_world", "run_item", "token_for"]
