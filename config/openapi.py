"""The OpenAPI schema's composition: core.openapi's views, plus each app's annotations.

The apps' modules register drf-spectacular extensions when imported; the URLconfs import
this module for the schema and docs routes, so the annotations are in place first.
"""

from core.openapi import docs_path, schema_path

__all__ = ("docs_path", "schema_path")
