"""Budget alerts: refresh the agent usage marts after the agent models, then evaluate every
budget of the refreshed tenants and deliver the alert emails (pulse.budgets)."""
