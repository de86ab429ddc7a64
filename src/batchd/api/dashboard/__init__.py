"""The web dashboard: server-rendered pages on the API's port (see routes.Dashboard)."""

from batchd.api.dashboard.routes import Dashboard

__all__ = ["Dashboard"]
