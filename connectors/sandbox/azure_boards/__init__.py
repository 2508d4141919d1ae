"""Azure Boards simulator: the tenant's planning world as Azure DevOps work item tracking (REST 7.1).

``api.handle(server, request)`` answers every path under ``/azure`` that is not Azure DevOps
Git; ``render`` maps the world onto the Agile process (states, revisions, fields, iterations);
``wiql`` is the query subset it understands. See ``api.py`` for the endpoints.
"""
