"""Azure DevOps Git (Repos) simulator: the tenant's pull requests as Azure DevOps serves them.

``api.handle(server, request)`` answers every path below ``{sandbox}/azure`` that contains
``/_apis/git/``; ``payloads`` renders the GitHub world's repositories, pull requests, reviews
and commits in Azure DevOps' JSON shapes. See ``api.py`` for the endpoints and README.md.
"""
