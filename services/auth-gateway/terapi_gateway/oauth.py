"""Starting OAuth flows at /oauth/connect, and answering polls for their results.

Every way a flow request ends is an `Outcome` (a redirect to the provider, or a result
for the browser); failures are results too, so the opener always hears back. The
callback half lives in `oauth_callback`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass, field, replace

import structlog

from terapi_common.errors import ProviderError, TerapiError
from terapi_gateway import browser_binding, domain, exchange
from terapi_gateway import flow as flows
from terapi_gateway.domain import Attempt, Caller
from terapi_gateway.errors import FlowNotFoundError
from terapi_gateway.flow import FlowResult, OAuthFlow, ResultTarget
from terapi_gateway.handlers import (
    Gateway,
    authorize_caller,
    bind_attempt,
    report_failure,
)
from terapi_gateway.integrations import Integration, load_integration
from terapi_gateway.providers import oauth1, oauth2
from terapi_gateway.providers.oauth2 import OAuthClient

log = structlog.get_logger("terapi.gateway")
OAUTH_MODES = ("OAUTH2", "OAUTH1")
POLL_INTERVAL_SECONDS = 0.25


@dataclass(frozen=True)
class ConnectQuery:
    """The query of GET /oauth/connect/{integration_id}, as sent."""

    integration_id: str
    connection_id: str | None = None
    connect_session_token: str | None = None
    public_key: str | None = None
    params: str | None = None
    scopes: str | None = None
    authorization_params: str | None = None
    flow_id: str | None = None
    origin: str | None = None
    return_url: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How an OAuth request ends for the browser: go to the provider, or see a result."""

    redirect_to: str | None = None
    browser_cookie: str | None = None  # the binding value to set beside the redirect
    result: FlowResult | None = None
    target: ResultTarget = field(default_factory=ResultTarget)
    http_status: int = 200


# ---------------------------------------------------------------- start


async def start_flow(
    gateway: Gateway, query: ConnectQuery, *, browser_cookie: str | None = None
) -> Outcome:
    """Check everything, record the flow and send the end user to the provider."""
    target, problem = flows.read_target(
        flow_id=query.flow_id, origin=query.origin, return_url=query.return_url
    )
    try:
        caller = await authorize_caller(
            gateway, connect_session_token=query.connect_session_token,
            public_key=query.public_key,
        )
    except TerapiError as exc:
        return _refused_unknown_caller(target, exc)
    try:
        if problem is not None:
            raise problem
        attempt = domain.begin_attempt(
            caller, integration_id=query.integration_id,
            connection_id=domain.resolve_connection_id(query.connection_id),
            auth_mode="OAUTH2", now=gateway.clock.now(),
        )
    except TerapiError as exc:
        return await _refused(gateway, target, exc, environment_id=caller.environment_id)
    browser = browser_binding.browser_value(browser_cookie)
    return await _start_attempt(gateway, caller, attempt, query, target, browser=browser)


async def _start_attempt(
    gateway: Gateway, caller: Caller, attempt: Attempt, query: ConnectQuery, target: ResultTarget,
    *, browser: str,
) -> Outcome:
    bind_attempt(attempt)
    attempt = attempt.log("OAuth connection requested", at=attempt.started_at)
    try:
        request = flows.read_connect_request(
            params=query.params, scopes=query.scopes,
            authorization_params=query.authorization_params,
        )
        integration = await load_integration(
            gateway, caller.environment_id, query.integration_id, modes=OAUTH_MODES
        )
        attempt = replace(attempt, provider=integration.info.provider,
                          auth_mode=integration.info.auth_mode)
        url, attempt = await _leave_for_provider(
            gateway, attempt, integration, request, target,
            browser_digest=gateway.key_ring.digest(browser, purpose=flows.BROWSER_DIGEST_PURPOSE),
        )
    except Exception as exc:
        await report_failure(gateway, attempt, exc)
        return await _refused(gateway, target, exc, environment_id=caller.environment_id)
    # Only a log record: it goes out after the redirect, without holding it up.
    gateway.publisher.publish_soon([attempt.started()])
    log.info("gateway.oauth_redirect", auth_mode=attempt.auth_mode)
    return Outcome(redirect_to=url, browser_cookie=browser, target=target, http_status=302)


async def _leave_for_provider(
    gateway: Gateway, attempt: Attempt, integration: Integration,
    request: flows.ConnectRequest, target: ResultTarget, *, browser_digest: str,
) -> tuple[str, Attempt]:
    """Record the flow; the provider's authorization URL to send the end user to."""
    provider = integration.provider
    config = provider.check_connection_config(request.connection_config)
    client = exchange.require_client(integration.client)
    scopes = request.scopes or tuple(integration.info.scopes or provider.default_scopes)
    flow = flows.record_flow(
        attempt, target=target, connection_config=config, requested_scopes=scopes,
        redirect_uri=integration.info.callback_url or gateway.default_callback_url,
        auth_mode=integration.info.auth_mode,  # type: ignore[arg-type]  # checked by load
        browser_digest=browser_digest,
    )
    leave = _oauth1_redirect if flow.auth_mode == "OAUTH1" else _oauth2_redirect
    url, lookup, purpose, secret = await leave(gateway, integration, client, flow, request)
    if flow.return_url is not None:
        # The hosted page's own URL, session token included: kept sealed, not in the row.
        secret = {**(secret or {}), "return_url": flow.return_url}
    await gateway.store.add_flow(
        flow.model_copy(update={"return_url": None}),
        lookup_digest=gateway.key_ring.digest(lookup, purpose=purpose),
        secret=gateway.key_ring.encrypt_json(secret, aad=flow.secret_aad) if secret else None,
        now=gateway.clock.now(),
    )
    return url, attempt.log(f"end user sent to {provider.display_name} for consent",
                            at=gateway.clock.now())


Redirect = tuple[str, str, str, dict[str, str] | None]  # url, lookup value, purpose, secret


async def _oauth2_redirect(
    gateway: Gateway, integration: Integration, client: OAuthClient, flow: OAuthFlow,
    request: flows.ConnectRequest,
) -> Redirect:
    """A fresh state (and PKCE pair when the provider wants one) for the authorization URL."""
    state = secrets.token_urlsafe(32)
    verifier, challenge = oauth2.pkce_pair() if integration.provider.pkce else (None, None)
    url = oauth2.authorization_url(
        integration.provider, client_id=client.client_id, redirect_uri=flow.redirect_uri,
        state=state, scopes=flow.requested_scopes, code_challenge=challenge,
        connection_config=flow.connection_config, extra_params=request.authorization_params,
    )
    secret = {"code_verifier": verifier} if verifier else None
    return url, state, flows.STATE_DIGEST_PURPOSE, secret


async def _oauth1_redirect(
    gateway: Gateway, integration: Integration, client: OAuthClient, flow: OAuthFlow,
    request: flows.ConnectRequest,
) -> Redirect:
    """A request token from the provider; its token names the flow on the callback."""
    answer = await exchange.oauth1_request_token(
        gateway.http, integration.provider, client, callback_url=flow.redirect_uri,
        connection_config=flow.connection_config,
    )
    token = answer["oauth_token"]
    url = oauth1.authorization_url(
        integration.provider, request_token=token, scopes=flow.requested_scopes,
        connection_config=flow.connection_config, extra_params=request.authorization_params,
    )
    secret = {"oauth_token_secret": answer["oauth_token_secret"]}
    return url, token, flows.OAUTH1_TOKEN_DIGEST_PURPOSE, secret


def _refused_unknown_caller(target: ResultTarget, exc: TerapiError) -> Outcome:
    """A request whose caller is unknown: its failure on the page, nowhere else.

    Neither the caller's return URL (an open redirect for anyone) nor a stored result
    (a row for every unauthenticated request) is trusted before the caller is.
    """
    log.info("gateway.oauth_refused", error=exc.code)
    return Outcome(
        result=flows.failed(domain.error_info(exc)),
        target=replace(target, return_url=None), http_status=exc.http_status,
    )


async def _refused(
    gateway: Gateway, target: ResultTarget, exc: Exception, *, environment_id: int
) -> Outcome:
    """A flow that never reached the provider: its failure, where the opener will see it."""
    error = domain.error_info(exc)
    result = flows.failed(error)
    if target.flow_id is not None:
        await gateway.store.record_result(
            environment_id, target.flow_id, result, now=gateway.clock.now()
        )
    status = exc.http_status if isinstance(exc, TerapiError) else 500
    if status >= 500 and not isinstance(exc, ProviderError):
        log.error("gateway.oauth_failed", error_type=type(exc).__name__)
    log.info("gateway.oauth_refused", error=error.code)
    return Outcome(result=result, target=target, http_status=status)


# ---------------------------------------------------------------- results


async def await_result(gateway: Gateway, flow_id: uuid.UUID, *, wait: float) -> FlowResult:
    """The flow's result; while pending, poll up to `wait` seconds for it to settle."""
    deadline = time.monotonic() + wait
    while True:
        result = await gateway.store.find_result(flow_id)
        if result is None:
            raise FlowNotFoundError("no OAuth flow was started with this flow_id")
        if result.status != "pending" or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(min(POLL_INTERVAL_SECONDS, max(deadline - time.monotonic(), 0)))
