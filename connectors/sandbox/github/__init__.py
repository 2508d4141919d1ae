"""The simulated GitHub: a tenant's world (``world.py``), its JSON (``payloads.py``), the endpoints (``api.py``)."""
