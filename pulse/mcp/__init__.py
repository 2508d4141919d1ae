"""MCP server for AI agents: report runs and read one's own usage, authenticated by agent tokens.

`runs` holds the logic (validation, storage, summary), `auth` the token cache, `server` the thin
MCP layer, `cli` the `pulse mcp` command. See README.md in this folder for client setup.
"""
