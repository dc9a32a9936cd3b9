"""The OpenAPI schemas: valid, warning-free, one per URLconf, served to anyone at /api/schema/."""

import pytest
import yaml
from django.core.management import call_command

from core.api import MethodPermissions
from tenants.services import hospital_host


@pytest.mark.parametrize("urlconf", ["config.urls_tenants", "config.urls_public"])
def test_schema_generates_valid_and_without_warnings(urlconf, tmp_path):
    out = tmp_path / "schema.yaml"
    # Equivalent of `manage.py spectacular --urlconf ... --validate --fail-on-warn`: raises on any warning.
    call_command("spectacular", urlconf=urlconf, validate=True, fail_on_warn=True, file=str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "detail"]
    # For generated clients (issue 14): `security: [{}]` reads as "needs auth" to openapi-python-client.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("security") != [{}], (method, path)
            assert {} not in operation.get("security", []), (method, path)
    assert "security" not in schema
    # A view's description is its own: never the docstring of a mixin such as core.api.MethodPermissions.
    helper_doc = MethodPermissions.__doc__.split()[:6]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description", "").split()[:6] != helper_doc, (method, path)
    names = schema["components"]["schemas"]
    assert not [name for name in names if name.endswith(("RequestRequest", "ResponseRequest"))]


def test_each_domain_serves_its_own_schema_without_authentication(api_for, hospital_a):
    hospital = api_for(hospital_a).get("/api/schema/?format=json")
    platform = api_for(None).get("/api/schema/?format=json")
    assert hospital.status_code == platform.status_code == 200
    hospital_paths, platform_paths = set(hospital.json()["paths"]), set(platform.json()["paths"])
    assert "/api/patients/" in hospital_paths and "/accounts/registration/" in hospital_paths
    assert "/api/platform/hospitals/" in platform_paths and "/accounts/registration/" not in platform_paths
    assert not hospital_paths & {p for p in platform_paths if p.startswith("/api/platform/")}
    for schema in (hospital.json(), platform.json()):
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                assert {"400", "401", "403", "404", "413", "429"} <= set(operation["responses"]), (method, path)
        assert (
            "262144 bytes" in schema["info"]["description"]
            or "DATA_UPLOAD_MAX_MEMORY_SIZE" in schema["info"]["description"]
        )
    # YAML by default, for tools that want it.
    assert api_for(hospital_a).get("/api/schema/").headers["Content-Type"].startswith("application/vnd.oai.openapi")


def test_unknown_host_gets_no_schema(api_for):
    assert api_for(host=hospital_host("no-such-hospital")).get("/api/schema/").status_code == 404
