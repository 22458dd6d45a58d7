"""The OAuth flows: start at /oauth/connect, finish at /oauth/callback, answer result polls.

Every way a flow ends is an `Outcome` (a redirect to the provider, or a result for the
browser); failures are results too, so the opener always hears back.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from terapi_common.errors import ProviderError, TerapiError

from terapi_gateway import domain, exchange
from terapi_gateway import flow as flows
from terapi_gateway.domain import Attempt, Caller
from terapi_gateway.errors import (
    AccessDeniedError,
    FlowNotFoundError,
    InvalidStateError,
    ProviderRefusedError,
)
from terapi_gateway.flow import FlowResult, OAuthFlow, ResultTarget
from terapi_gateway.handlers import (
    Gateway,
    authorize_caller,
    bind_attempt,
    report,
    report_failure,
    report_success,
    store_credentials,
)
from terapi_gateway.integrations import Integration, load_integration
from terapi_gateway.providers import oauth1, oauth2

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
    result: FlowResult | None = None
    target: ResultTarget = field(default_factory=ResultTarget)
    http_status: int = 200


# ---------------------------------------------------------------- start


async def start_flow(gateway: Gateway, query: ConnectQuery) -> Outcome:
    """Check everything, record the flow and send the end user to the provider."""
    target, problem = flows.read_target(
        flow_id=query.flow_id, origin=query.origin, return_url=query.return_url
    )
    try:
        if problem is not None:
            raise problem
        caller = await authorize_caller(
            gateway, connect_session_token=query.connect_session_token,
            public_key=query.public_key,
        )
    except TerapiError as exc:
        return await _refused(gateway, target, exc, environment_id=0)
    try:
        attempt = domain.begin_attempt(
            caller, integration_id=query.integration_id,
            connection_id=domain.resolve_connection_id(query.connection_id),
            auth_mode="OAUTH2", now=gateway.clock.now(),
        )
    except TerapiError as exc:
        return await _refused(gateway, target, exc, environment_id=caller.environment_id)
    return await _start_attempt(gateway, caller, attempt, query, target)


async def _start_attempt(
    gateway: Gateway, caller: Caller, attempt: Attempt, query: ConnectQuery, target: ResultTarget
) -> Outcome:
    bind_attempt(attempt)
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
        attempt = attempt.log("OAuth connection requested", at=attempt.started_at)
        url, attempt = await _leave_for_provider(gateway, attempt, integration, request, target)
    except Exception as exc:
        await report_failure(gateway, attempt, exc)
        return await _refused(gateway, target, exc, environment_id=caller.environment_id)
    await report(gateway, [attempt.started()])
    log.info("gateway.oauth_redirect", auth_mode=attempt.auth_mode)
    return Outcome(redirect_to=url, target=target, http_status=302)


async def _leave_for_provider(
    gateway: Gateway, attempt: Attempt, integration: Integration,
    request: flows.ConnectRequest, target: ResultTarget,
) -> tuple[str, Attempt]:
    """Record the flow; the provider's authorization URL to send the end user to."""
    provider = integration.provider
    config = provider.check_connection_config(request.connection_config)
    client = exchange.require_client(integration.client)
    ends = oauth2.endpoints(provider, client.provider_config)
    scopes = request.scopes or tuple(integration.info.scopes or provider.default_scopes)
    redirect_uri = integration.info.callback_url or gateway.default_callback_url
    flow = flows.record_flow(
        attempt, target=target, connection_config=config, requested_scopes=scopes,
        redirect_uri=redirect_uri, auth_mode=integration.info.auth_mode,  # type: ignore[arg-type]
    )
    if integration.info.auth_mode == "OAUTH1":
        answer = await exchange.oauth1_request_token(
            gateway.http, provider, client, callback_url=redirect_uri, connection_config=config
        )
        lookup, secret = answer["oauth_token"], {"oauth_token_secret": answer["oauth_token_secret"]}
        purpose = flows.OAUTH1_TOKEN_DIGEST_PURPOSE
        url = oauth1.authorization_url(
            provider, request_token=lookup, scopes=scopes, connection_config=config,
            extra_params=request.authorization_params,
        )
    else:
        lookup, purpose = secrets.token_urlsafe(32), flows.STATE_DIGEST_PURPOSE
        verifier, challenge = oauth2.pkce_pair() if ends.pkce else (None, None)
        secret = {"code_verifier": verifier} if verifier else None
        url = oauth2.authorization_url(
            provider, ends, client_id=client.client_id, redirect_uri=redirect_uri, state=lookup,
            scopes=scopes, code_challenge=challenge, connection_config=config,
            extra_params=request.authorization_params,
        )
    await gateway.store.add_flow(
        flow, lookup_digest=gateway.key_ring.digest(lookup, purpose=purpose),
        secret=gateway.key_ring.encrypt_json(secret, aad=flow.secret_aad) if secret else None,
        now=gateway.clock.now(),
    )
    return url, attempt.log(f"end user sent to {provider.display_name} for consent",
                            at=gateway.clock.now())


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
    log.info("gateway.oauth_refused", error=error.code)
    return Outcome(result=result, target=target, http_status=status)


# ---------------------------------------------------------------- callback


async def finish_flow(gateway: Gateway, query: Mapping[str, str]) -> Outcome:
    """Consume the flow the callback names, trade the grant for tokens and store them."""
    consumed = await _consume(gateway, query)
    if consumed is None:
        # No flow means no trusted origin: the page shows the failure to whoever is there.
        error = InvalidStateError("this authorization link is unknown or was used already")
        log.info("gateway.oauth_callback_refused", error=error.code)
        return Outcome(result=flows.failed(domain.error_info(error)), http_status=400)
    flow, secret = consumed
    attempt = flows.resume_attempt(flow)
    bind_attempt(attempt)
    attempt = attempt.log("end user came back from the provider", at=gateway.clock.now())
    try:
        flows.check_unexpired(flow, now=gateway.clock.now())
        _check_callback_errors(query, flow)
        complete = _complete_oauth1 if flow.auth_mode == "OAUTH1" else _complete_oauth2
        credentials, config, attempt = await complete(gateway, attempt, flow, secret, query)
        stored = await store_credentials(gateway, attempt, credentials, connection_config=config)
    except Exception as exc:
        await report_failure(gateway, _with_provider_error(attempt, exc, gateway), exc)
        return await _settle(gateway, flow, flows.failed(
            domain.error_info(exc), integration_id=flow.integration_id,
            connection_id=flow.connection_id,
        ), status=exc.http_status if isinstance(exc, TerapiError) else 500)
    await report_success(gateway, attempt, stored)
    return await _settle(gateway, flow, flows.succeeded(flow.integration_id, flow.connection_id))


async def _consume(
    gateway: Gateway, query: Mapping[str, str]
) -> tuple[OAuthFlow, bytes | None] | None:
    if query.get("state"):
        lookup, purpose = query["state"], flows.STATE_DIGEST_PURPOSE
    elif query.get("oauth_token") or query.get("denied"):
        lookup = query.get("oauth_token") or query["denied"]
        purpose = flows.OAUTH1_TOKEN_DIGEST_PURPOSE
    else:
        return None
    digest = gateway.key_ring.digest(lookup, purpose=purpose)
    return await gateway.store.consume_flow(digest, now=gateway.clock.now())


def _check_callback_errors(query: Mapping[str, str], flow: OAuthFlow) -> None:
    """The provider's own verdict on the consent (RFC 6749 §4.1.2.1; Trello's `denied`)."""
    error = query.get("error")
    if error == "access_denied" or (flow.auth_mode == "OAUTH1" and "denied" in query):
        raise AccessDeniedError("the end user did not grant access")
    if error:
        description = query.get("error_description")
        detail = f"{error[:200]}" + (f": {description[:300]}" if description else "")
        raise ProviderRefusedError(
            f"the provider refused the authorization: {detail}", provider_error=error[:200],
            provider_error_description=description[:500] if description else None,
        )
    needed = "oauth_verifier" if flow.auth_mode == "OAUTH1" else "code"
    if not query.get(needed):
        raise ProviderRefusedError(f"the provider sent the end user back without {needed}")


async def _complete_oauth2(
    gateway: Gateway, attempt: Attempt, flow: OAuthFlow, secret: bytes | None,
    query: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, str], Attempt]:
    integration = await load_integration(
        gateway, flow.environment_id, flow.integration_id, modes=["OAUTH2"]
    )
    client = exchange.require_client(integration.client)
    ends = oauth2.endpoints(integration.provider, client.provider_config)
    grant = {"grant_type": "authorization_code", "code": query["code"],
             "redirect_uri": flow.redirect_uri}
    if secret is not None:  # RFC 7636 §4.5
        grant["code_verifier"] = _unseal(gateway, flow, secret)["code_verifier"]
    body = await exchange.fetch_oauth2_token(
        gateway.http, integration.provider, ends, client, grant=grant,
        connection_config=flow.connection_config,
    )
    credentials = oauth2.token_credentials(
        body, integration.provider.token_response, auth_mode="OAUTH2",
        requested_scopes=flow.requested_scopes, separator=ends.scope_separator,
        now=gateway.clock.now(),
    )
    attempt = attempt.log("authorization code exchanged for tokens", at=gateway.clock.now())
    config, attempt = _capture(gateway, attempt, integration, flow, body, query)
    return credentials, config, attempt


async def _complete_oauth1(
    gateway: Gateway, attempt: Attempt, flow: OAuthFlow, secret: bytes | None,
    query: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, str], Attempt]:
    integration = await load_integration(
        gateway, flow.environment_id, flow.integration_id, modes=["OAUTH1"]
    )
    values = await exchange.oauth1_access_token(
        gateway.http, integration.provider, exchange.require_client(integration.client),
        token=query["oauth_token"], token_secret=_unseal(gateway, flow, secret)["oauth_token_secret"],
        verifier=query["oauth_verifier"], connection_config=flow.connection_config,
    )
    attempt = attempt.log("request token exchanged for an access token", at=gateway.clock.now())
    config, attempt = _capture(gateway, attempt, integration, flow, values, query)
    return oauth1.oauth1_credentials(values), config, attempt


def _unseal(gateway: Gateway, flow: OAuthFlow, secret: bytes | None) -> dict[str, str]:
    if secret is None:
        raise InvalidStateError("this authorization has no secret to finish with")
    return gateway.key_ring.decrypt_json(secret, aad=flow.secret_aad)


def _capture(
    gateway: Gateway, attempt: Attempt, integration: Integration, flow: OAuthFlow,
    token: Mapping[str, Any], query: Mapping[str, str],
) -> tuple[dict[str, str], Attempt]:
    found, refused = oauth2.captured_values(integration.provider, token=token, callback=query)
    for name in refused:
        attempt = attempt.log(f"ignored {name} from the provider: it does not have the expected "
                              "shape", at=gateway.clock.now(), level="warning")
    return {**flow.connection_config, **found}, attempt


def _with_provider_error(attempt: Attempt, exc: Exception, gateway: Gateway) -> Attempt:
    """Keep the provider's own error fields on the operation, for whoever reads the logs."""
    if not isinstance(exc, ProviderError) or not exc.provider_error:
        return attempt
    meta = {"provider_error": exc.provider_error,
            "provider_error_description": exc.provider_error_description}
    return attempt.log("the provider answered with an error", at=gateway.clock.now(),
                       level="warning", meta={k: v for k, v in meta.items() if v})


async def _settle(gateway: Gateway, flow: OAuthFlow, result: FlowResult, *, status: int = 200
                  ) -> Outcome:
    if flow.flow_id is not None:
        await gateway.store.finish_result(
            flow.environment_id, flow.flow_id, result, now=gateway.clock.now()
        )
    return Outcome(result=result, target=flow.target, http_status=status)


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
