"""The OAuth flow's rules: what a connect request asks for, the flow it records, its result.

Pure: the standard library, pydantic and the shared events and errors only.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from pydantic import BaseModel, ConfigDict

from terapi_common.errors import InvalidInputError, TerapiError
from terapi_common.events import EndUser, ErrorInfo
from terapi_gateway.domain import Attempt
from terapi_gateway.errors import FlowNotStartedHereError, StateExpiredError

STATE_LIFETIME = timedelta(minutes=10)
RESULT_LIFETIME = timedelta(hours=1)
STATE_DIGEST_PURPOSE = "oauth_state"
OAUTH1_TOKEN_DIGEST_PURPOSE = "oauth1_request_token"
BROWSER_DIGEST_PURPOSE = "oauth_browser"
# Parameters Terapi sets itself; a caller overriding them would break or hijack the flow.
RESERVED_AUTHORIZATION_PARAMS = frozenset({
    "client_id", "redirect_uri", "state", "response_type", "code_challenge",
    "code_challenge_method", "oauth_token", "oauth_callback",
})
MAX_WAIT_SECONDS = 25.0
MAX_QUERY_JSON = 8 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
OAuthModeName = Literal["OAUTH2", "OAUTH1"]


# ---------------------------------------------------------------- where results go


@dataclass(frozen=True)
class ResultTarget:
    """Where a flow's outcome goes: the opener's exact origin, a return URL, the flow id."""

    flow_id: uuid.UUID | None = None
    origin: str | None = None
    return_url: str | None = None


def read_target(
    *, flow_id: str | None, origin: str | None, return_url: str | None
) -> tuple[ResultTarget, TerapiError | None]:
    """The valid parts of the caller's result target, and the first thing wrong with it."""
    problems: list[TerapiError] = []
    parsed_flow = _parse_uuid(flow_id, "flow_id", problems) if flow_id is not None else None
    checked_origin = _check_origin(origin, problems) if origin is not None else None
    checked_return = None
    if return_url is not None:
        if checked_origin is None:
            problems.append(InvalidInputError("return_url needs a valid origin beside it"))
        else:
            checked_return = _check_return_url(return_url, checked_origin, problems)
    target = ResultTarget(parsed_flow, checked_origin, checked_return)
    return target, problems[0] if problems else None


def parse_flow_id(raw: str) -> uuid.UUID:
    """A flow id from a path: a UUID, else a 400."""
    problems: list[TerapiError] = []
    parsed = _parse_uuid(raw, "flow_id", problems)
    if parsed is None:
        raise problems[0]
    return parsed


def _parse_uuid(raw: str, name: str, problems: list[TerapiError]) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        problems.append(InvalidInputError(f"{name} must be a UUID"))
        return None


def origin_of(url: str) -> str | None:
    """The serialized origin of an http(s) URL (RFC 6454), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    suffix = f":{port}" if port is not None and port != DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{host}{suffix}"


def _check_origin(origin: str, problems: list[TerapiError]) -> str | None:
    # Exactly what a browser reports as window.location.origin: postMessage must target it.
    if origin_of(origin) != origin:
        problems.append(
            InvalidInputError("origin must be an http(s) origin like https://app.example.com")
        )
        return None
    return origin


def _check_return_url(url: str, origin: str, problems: list[TerapiError]) -> str | None:
    if any(c.isspace() for c in url) or len(url) > 2048 or origin_of(url) != origin:
        problems.append(
            InvalidInputError("return_url must be an http(s) URL on the same origin as origin")
        )
        return None
    # Browsers read a backslash as `/` and ignore control characters, urlsplit does
    # neither: with them (or user info) the host checked may not be the one visited.
    if "\\" in url or "@" in urlsplit(url).netloc or any(c < " " or c == "\x7f" for c in url):
        problems.append(InvalidInputError(
            "return_url must not contain backslashes, control characters or user info"
        ))
        return None
    return url


# ---------------------------------------------------------------- what the caller asks for


@dataclass(frozen=True)
class ConnectRequest:
    """The caller's wishes for one OAuth flow, checked for shape (not yet for the provider)."""

    connection_config: dict[str, Any]
    scopes: tuple[str, ...] | None
    authorization_params: dict[str, str]


def read_connect_request(
    *, params: str | None, scopes: str | None, authorization_params: str | None
) -> ConnectRequest:
    """Parse the query's JSON objects and scope list; a malformed one is a 400 naming it."""
    extra = _json_object(authorization_params, "authorization_params")
    for name, value in extra.items():
        if name in RESERVED_AUTHORIZATION_PARAMS:
            raise InvalidInputError(f"authorization_params.{name} is set by Terapi itself")
        if not isinstance(value, str):
            raise InvalidInputError(f"authorization_params.{name} must be a string")
    return ConnectRequest(
        connection_config=_json_object(params, "params"),
        scopes=parse_scopes(scopes),
        authorization_params=extra,
    )


def _json_object(raw: str | None, name: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if len(raw) > MAX_QUERY_JSON:
        raise InvalidInputError(f"{name} is too long")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInputError(f"{name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{name} must be a JSON object")
    return value


def parse_scopes(raw: str | None) -> tuple[str, ...] | None:
    """A comma-separated scope list; None when the caller keeps the integration's scopes."""
    if raw is None or raw == "":
        return None
    scopes = raw.split(",")
    if any(not s or any(c.isspace() for c in s) or len(s) > 255 for s in scopes):
        raise InvalidInputError("scopes must be a comma-separated list without blanks or spaces")
    return tuple(dict.fromkeys(scopes))


def parse_wait(raw: str | None) -> float:
    """How long a result poll may wait, 0 to 25 seconds."""
    if raw is None or raw == "":
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise InvalidInputError(f"wait must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}")
    return seconds


# ---------------------------------------------------------------- the recorded flow


class OAuthFlow(BaseModel):
    """One authorization round trip, recorded between the redirect and the callback."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    environment_id: int
    environment_name: str
    integration_id: str
    connection_id: str
    provider: str
    auth_mode: OAuthModeName
    end_user: EndUser | None
    connection_config: dict[str, str]
    requested_scopes: list[str]
    redirect_uri: str
    origin: str | None
    return_url: str | None
    flow_id: uuid.UUID | None
    operation_id: str
    started_at: datetime
    expires_at: datetime
    browser_digest: str | None = None  # keyed digest of the starting browser's cookie

    @property
    def target(self) -> ResultTarget:
        return ResultTarget(self.flow_id, self.origin, self.return_url)

    @property
    def secret_aad(self) -> str:
        """Binds the flow's encrypted secret (PKCE verifier, request token secret) to its row."""
        return f"oauth_flow:{self.environment_id}:{self.id}"


def record_flow(
    attempt: Attempt, *, target: ResultTarget, connection_config: Mapping[str, str],
    requested_scopes: tuple[str, ...], redirect_uri: str, auth_mode: OAuthModeName,
    browser_digest: str,
) -> OAuthFlow:
    """The flow row for an attempt about to leave for the provider."""
    return OAuthFlow(
        id=uuid.uuid4(),
        environment_id=attempt.environment_id,
        environment_name=attempt.environment_name,
        integration_id=attempt.integration_id,
        connection_id=attempt.connection_id,
        provider=attempt.provider or "",
        auth_mode=auth_mode,
        end_user=attempt.end_user,
        connection_config=dict(connection_config),
        requested_scopes=list(requested_scopes),
        redirect_uri=redirect_uri,
        origin=target.origin,
        return_url=target.return_url,
        flow_id=target.flow_id,
        operation_id=attempt.operation_id,
        started_at=attempt.started_at,
        expires_at=attempt.started_at + STATE_LIFETIME,
        browser_digest=browser_digest,
    )


def resume_attempt(flow: OAuthFlow) -> Attempt:
    """The attempt a callback continues (its earlier log lines were published at the start)."""
    return Attempt(
        operation_id=flow.operation_id,
        environment_id=flow.environment_id,
        environment_name=flow.environment_name,
        integration_id=flow.integration_id,
        connection_id=flow.connection_id,
        auth_mode=flow.auth_mode,
        end_user=flow.end_user,
        started_at=flow.started_at,
        provider=flow.provider,
    )


def check_unexpired(flow: OAuthFlow, *, now: datetime) -> None:
    """A consumed flow still has to be in time."""
    if now >= flow.expires_at:
        raise StateExpiredError("the authorization took longer than 10 minutes; start again")


def check_started_here(flow: OAuthFlow, browser_digests: Sequence[str]) -> None:
    """The callback must come to the browser that started the flow.

    Otherwise an attacker could start a flow for their own connection and send the
    provider's link to a victim, whose tokens would then land in that connection.
    """
    expected = flow.browser_digest
    if expected is None or not any(
        hmac.compare_digest(expected, digest) for digest in browser_digests
    ):
        raise FlowNotStartedHereError(
            "this authorization was not started in this browser; start it again from the app"
        )


# ---------------------------------------------------------------- results


class FlowResult(BaseModel):
    """A flow's outcome as the SDK reads it."""

    model_config = ConfigDict(frozen=True)

    status: Literal["pending", "success", "failed"]
    integration_id: str | None = None
    connection_id: str | None = None
    error: ErrorInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.status == "pending":
            return {"status": "pending"}
        if self.status == "success":
            return {"status": "success", "integration_id": self.integration_id,
                    "connection_id": self.connection_id}
        return {"status": "failed", "error": self.error.model_dump() if self.error else None}


def pending(integration_id: str, connection_id: str) -> FlowResult:
    return FlowResult(status="pending", integration_id=integration_id, connection_id=connection_id)


def succeeded(integration_id: str, connection_id: str) -> FlowResult:
    return FlowResult(status="success", integration_id=integration_id, connection_id=connection_id)


def failed(error: ErrorInfo, *, integration_id: str | None = None,
           connection_id: str | None = None) -> FlowResult:
    return FlowResult(status="failed", integration_id=integration_id,
                      connection_id=connection_id, error=error)


def result_redirect(return_url: str, result: FlowResult) -> str:
    """The return URL with the outcome in its query (redirect mode)."""
    if result.status == "success":
        params = [("terapi_status", "success"),
                  ("terapi_integration_id", result.integration_id or ""),
                  ("terapi_connection_id", result.connection_id or "")]
    else:
        error = result.error or ErrorInfo(code="internal_error", message="internal error")
        params = [("terapi_status", "error"), ("terapi_error", error.code),
                  ("terapi_error_message", error.message)]
    parts = urlsplit(return_url)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query), fragment=parts.fragment))
