"""`python -m pulse.mcp [--transport stdio|http] ...`: the same as `pulse mcp`."""

from pulse.mcp.cli import mcp

if __name__ == "__main__":
    mcp(prog_name="python -m pulse.mcp")
