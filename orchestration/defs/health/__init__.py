"""Account health: refresh the health mart after the usage marts and every half hour, then
alert the account managers of tenants whose health fell (pulse.health)."""
