"""The OAuth callback: consume the flow, trade the grant for tokens, store them, report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from terapi_common.crypto import DecryptionError
from terapi_common.errors import TerapiError
from terapi_common.oauth2 import normalize_token_response
from terapi_gateway import domain, exchange
from terapi_gateway import flow as flows
from terapi_gateway.domain import Attempt
from terapi_gateway.errors import AccessDeniedError, InvalidStateError, ProviderRefusedError
from terapi_gateway.flow import FlowResult, OAuthFlow, ResultTarget
from terapi_gateway.handlers import (
    Gateway,
    bind_attempt,
    report_failure,
    report_success,
    store_credentials,
)
from terapi_gateway.integrations import Integration, load_integration
from terapi_gateway.oauth import Outcome
from terapi_gateway.providers import oauth1, oauth2

log = structlog.get_logger("terapi.gateway")


async def finish_flow(
    gateway: Gateway, query: Mapping[str, str], *, browser_cookie: str | None
) -> Outcome:
    """Consume the flow the callback names, trade the grant for tokens and store them."""
    consumed = await _consume(gateway, query)
    if consumed is None:
        # No flow means no trusted origin: the page shows the failure to whoever is there.
        error = InvalidStateError("this authorization link is unknown or was used already")
        log.info("gateway.oauth_callback_refused", error=error.code)
        return Outcome(result=flows.failed(domain.error_info(error)), http_status=400)
    flow, secret = consumed
    flow = _with_return_url(gateway, flow, secret)
    attempt = flows.resume_attempt(flow)
    bind_attempt(attempt)
    attempt = attempt.log("end user came back from the provider", at=gateway.clock.now())
    try:
        flows.check_started_here(flow, gateway.key_ring.digests(
            browser_cookie or "", purpose=flows.BROWSER_DIGEST_PURPOSE))
    except TerapiError as exc:
        return await _refuse_other_browser(gateway, attempt, flow, exc)
    try:
        flows.check_unexpired(flow, now=gateway.clock.now())
        _check_callback_errors(query, flow)
        complete = _complete_oauth1 if flow.auth_mode == "OAUTH1" else _complete_oauth2
        credentials, config, attempt = await complete(gateway, attempt, flow, secret, query)
        stored = await store_credentials(gateway, attempt, credentials, connection_config=config)
    except Exception as exc:
        await report_failure(gateway, attempt, exc)
        if not isinstance(exc, TerapiError):
            log.error("gateway.oauth_failed", error_type=type(exc).__name__)
        return await _settle(gateway, flow, flows.failed(
            domain.error_info(exc), integration_id=flow.integration_id,
            connection_id=flow.connection_id,
        ), status=exc.http_status if isinstance(exc, TerapiError) else 500)
    await report_success(gateway, attempt, stored)
    return await _settle(gateway, flow, flows.succeeded(flow.integration_id, flow.connection_id))


async def _refuse_other_browser(
    gateway: Gateway, attempt: Attempt, flow: OAuthFlow, exc: TerapiError
) -> Outcome:
    """Fail a flow that came back to a browser that did not start it; nothing is stored.

    The page stays here: this browser may be a victim's, and the flow's return URL is
    whatever its starter chose.
    """
    await report_failure(gateway, attempt, exc)
    outcome = await _settle(gateway, flow, flows.failed(
        domain.error_info(exc), integration_id=flow.integration_id,
        connection_id=flow.connection_id,
    ), status=exc.http_status)
    return Outcome(result=outcome.result, target=ResultTarget(flow.flow_id, flow.origin),
                   http_status=outcome.http_status)


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
    # Every listed key's digest: a flow started before the newest key was added has an
    # older one.
    digests = gateway.key_ring.digests(lookup, purpose=purpose)
    return await gateway.store.consume_flow(digests, now=gateway.clock.now())


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
    grant = {"grant_type": "authorization_code", "code": query["code"],
             "redirect_uri": flow.redirect_uri}
    verifier = _unseal(gateway, flow, secret).get("code_verifier") if secret else None
    if verifier:  # RFC 7636 §4.5
        grant["code_verifier"] = verifier
    body = await exchange.fetch_oauth2_token(
        gateway.http, integration.provider, client, grant=grant,
        connection_config=flow.connection_config,
    )
    credentials = normalize_token_response(
        integration.provider, body, now=gateway.clock.now(),
        requested_scopes=flow.requested_scopes,
    )
    attempt = attempt.log("authorization code exchanged for tokens", at=gateway.clock.now())
    config, attempt = _capture(gateway, attempt, integration, flow, body, query)
    if integration.provider.capture_from_request is not None:
        config |= await exchange.fetch_captured_config(
            gateway.http, integration.provider, access_token=credentials["access_token"],
            connection_config=config,
        )
        attempt = attempt.log(f"connection details read from {integration.display_name}: "
                              f"{', '.join(integration.provider.capture_from_request.fields)}",
                              at=gateway.clock.now())
    return credentials, config, attempt


async def _complete_oauth1(
    gateway: Gateway, attempt: Attempt, flow: OAuthFlow, secret: bytes | None,
    query: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, str], Attempt]:
    integration = await load_integration(
        gateway, flow.environment_id, flow.integration_id, modes=["OAUTH1"]
    )
    token_secret = _unseal(gateway, flow, secret)["oauth_token_secret"]
    values = await exchange.oauth1_access_token(
        gateway.http, integration.provider, exchange.require_client(integration.client),
        token=query["oauth_token"], token_secret=token_secret,
        verifier=query["oauth_verifier"], connection_config=flow.connection_config,
    )
    attempt = attempt.log("request token exchanged for an access token", at=gateway.clock.now())
    config, attempt = _capture(gateway, attempt, integration, flow, values, query)
    return oauth1.oauth1_credentials(values), config, attempt


def _with_return_url(gateway: Gateway, flow: OAuthFlow, secret: bytes | None) -> OAuthFlow:
    """The flow with its return URL, which travels sealed with its secret."""
    if secret is None or flow.return_url is not None:  # none, or a row from before
        return flow
    try:
        return_url = gateway.key_ring.decrypt_json(secret, aad=flow.secret_aad).get("return_url")
    except DecryptionError:
        return flow  # the failure shows where the secret itself is needed
    return flow.model_copy(update={"return_url": return_url})


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


async def _settle(gateway: Gateway, flow: OAuthFlow, result: FlowResult, *, status: int = 200
                  ) -> Outcome:
    if flow.flow_id is not None:
        await gateway.store.finish_result(
            flow.environment_id, flow.flow_id, result, now=gateway.clock.now()
        )
    return Outcome(result=result, target=flow.target, http_status=status)
