"""The leaf of the project: what every app shares, importing no project app (import-linter holds it to that).

Errors and their one JSON shape (`api`), the tenancy vocabulary (`tenancy`), the client's address (`http`),
links into a hospital's frontend (`links`), publishing Celery tasks by name (`tasks`), the OpenAPI helpers
(`openapi`) and the per-hospital CORS rule (`cors`).
"""
