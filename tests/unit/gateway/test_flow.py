"""OAuth flow rules: where results go, what a connect request may ask for, result shapes."""

from __future__ import annotations

import uuid

import pytest

from terapi_common.errors import InvalidInputError
from terapi_common.events import ErrorInfo
from terapi_gateway import flow


def test_target_keeps_the_valid_parts() -> None:
    flow_id = uuid.uuid4()
    target, problem = flow.read_target(flow_id=str(flow_id), origin="http://localhost:5173",
                                       return_url="http://localhost:5173/done")
    assert problem is None
    assert target == flow.ResultTarget(flow_id, "http://localhost:5173",
                                       "http://localhost:5173/done")


def test_bad_return_url_is_dropped_but_origin_kept() -> None:
    target, problem = flow.read_target(flow_id=None, origin="https://a.example.com",
                                       return_url="https://b.example.com/x")
    assert isinstance(problem, InvalidInputError)
    assert (target.origin, target.return_url) == ("https://a.example.com", None)


def test_return_url_needs_an_origin() -> None:
    target, problem = flow.read_target(flow_id=None, origin=None, return_url="https://a/x")
    assert problem is not None and target.return_url is None


@pytest.mark.parametrize(("url", "origin"), [
    ("https://a.example.com:8443/x", "https://a.example.com:8443"),
    ("http://A.Example.com:80/x", "http://a.example.com"),
    ("http://[::1]:3000/", "http://[::1]:3000"),
    ("mailto:a@b", None),
])
def test_origin_of_serializes_like_a_browser(url: str, origin: str | None) -> None:
    assert flow.origin_of(url) == origin


def test_scopes_are_deduplicated_in_order() -> None:
    assert flow.parse_scopes("b,a,b") == ("b", "a")


@pytest.mark.parametrize("reserved", sorted(flow.RESERVED_AUTHORIZATION_PARAMS))
def test_reserved_authorization_params_are_refused(reserved: str) -> None:
    with pytest.raises(InvalidInputError, match=reserved):
        flow.read_connect_request(params=None, scopes=None,
                                  authorization_params=f'{{"{reserved}": "x"}}')


def test_empty_query_values_ask_for_nothing() -> None:
    request = flow.read_connect_request(params="", scopes="", authorization_params="")
    assert request == flow.ConnectRequest({}, None, {})


def test_result_shapes_are_what_the_sdk_reads() -> None:
    assert flow.pending("i", "c").to_dict() == {"status": "pending"}
    assert flow.succeeded("i", "c").to_dict() == {
        "status": "success", "integration_id": "i", "connection_id": "c"
    }
    error = ErrorInfo(code="access_denied", message="no")
    assert flow.failed(error).to_dict() == {
        "status": "failed", "error": {"code": "access_denied", "message": "no"}
    }


def test_result_redirect_keeps_the_return_urls_query() -> None:
    url = flow.result_redirect("https://a/x?tab=1#top", flow.succeeded("i", "c"))
    assert url == ("https://a/x?tab=1&terapi_status=success&terapi_integration_id=i"
                   "&terapi_connection_id=c#top")
