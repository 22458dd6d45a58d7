"""The capture request a catalog entry asks for after authorization, and reading its answer."""

from __future__ import annotations

import json

from terapi_common.providers import load_catalog
from terapi_gateway.providers.capture import capture_request, read_captured

CATALOG = load_catalog()
SITE = {"id": "1324a887-45db-1bf4-1e99-ef0ff456d421", "url": "https://acme.atlassian.net",
        "name": "Acme", "scopes": ["read:jira-work"]}


def test_mailchimp_metadata_request_carries_the_token_its_way() -> None:
    mailchimp = CATALOG.require("mailchimp")
    assert mailchimp.capture_from_request is not None
    request = capture_request(mailchimp.capture_from_request, access_token="tok-1",
                              connection_config={})
    assert (request.method, request.url) == ("GET", "https://login.mailchimp.com/oauth2/metadata")
    assert request.headers["Authorization"] == "OAuth tok-1"


def test_without_an_authorization_header_the_token_is_a_bearer() -> None:
    jira = CATALOG.require("jira")
    assert jira.capture_from_request is not None
    request = capture_request(jira.capture_from_request, access_token="tok-2",
                              connection_config={})
    assert request.headers["Authorization"] == "Bearer tok-2"
    assert request.headers["Accept"] == "application/json"


def test_first_accessible_site_gives_the_cloud_id_and_site_url() -> None:
    jira = CATALOG.require("jira")
    assert jira.capture_from_request is not None
    answer = json.dumps([SITE, {**SITE, "id": "ffffffff-45db-1bf4-1e99-ef0ff456d421"}])
    found, unusable = read_captured(jira.capture_from_request, jira.connection_config, answer)
    assert found == {"cloud_id": SITE["id"], "site_url": SITE["url"]}
    assert unusable == []


def test_no_site_or_a_hostile_value_is_unusable() -> None:
    jira = CATALOG.require("jira")
    assert jira.capture_from_request is not None
    capture, specs = jira.capture_from_request, jira.connection_config
    assert read_captured(capture, specs, "[]") == ({}, ["cloud_id", "site_url"])
    hostile = json.dumps([{**SITE, "url": "https://acme.atlassian.net.evil.com"}])
    assert read_captured(capture, specs, hostile) == ({"cloud_id": SITE["id"]}, ["site_url"])
    assert read_captured(capture, specs, "<html>oops</html>") == ({}, ["cloud_id", "site_url"])
