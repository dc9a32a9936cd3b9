"""The API docs page (Swagger UI) on each domain: HTML reading that domain's schema, assets served by us."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from tenants.services import hospital_host


@pytest.mark.parametrize("domain", ["platform", "hospital"])
def test_docs_page_reads_its_own_schema_from_local_assets(api_for, hospital_a, domain):
    api = api_for(None if domain == "platform" else hospital_a)
    page = api.get("/api/docs/", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    assert '"/api/schema/"' in page.text  # relative: this domain's own schema
    urls = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert urls and not [u for u in urls if not u.startswith("/")], "an asset from another host"

    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
    }
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/")
        path = finders.find(asset.removeprefix("/static/"))
        assert path, asset
        response = api.get(asset)
        assert response.status_code == 200, asset
        assert response.content == Path(path).read_bytes()


def test_docs_page_is_not_in_the_schema(api_for, hospital_a):
    for api in (api_for(None), api_for(hospital_a)):
        assert "/api/docs/" not in api.get("/api/schema/?format=json").json()["paths"]


def test_unknown_host_gets_no_docs(api_for):
    assert api_for(host=hospital_host("no-such-hospital")).get("/api/docs/").status_code == 404
