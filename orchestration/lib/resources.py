"""Resources: the environment is decided here, inside the resources, never at import time."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from pulse.db import admin_engine
from pulse.settings import Settings, get_settings


class PulseWarehouse(dg.ConfigurableResource):
    """Pulse's PostgreSQL: the embedded cluster or PULSE_DATABASE_URL (see pulse.settings)."""

    def settings(self) -> Settings:
        return get_settings()

    def engine(self) -> sa.Engine:
        return admin_engine(self.settings())
