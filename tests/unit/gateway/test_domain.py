"""The gateway's pure rules: sessions, callers, connection ids, credentials, operations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from terapi_common.errors import NotFoundError
from terapi_common.events import (
    AuthFailed,
    ConnectionStored,
    EndUser,
    EnvironmentIdentity,
    ErrorInfo,
    OperationFinished,
    OperationStarted,
)
from terapi_gateway import domain
from terapi_gateway.errors import (
    ConnectSessionExpiredError,
    ConnectSessionRequiredError,
    IntegrationNotAllowedError,
    InvalidConnectionIdError,
    MissingCredentialsError,
)

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
IDENTITY = EnvironmentIdentity(environment_id=7, environment_name="prod")


def opened(allowed: list[str] | None = None) -> domain.ConnectSession:
    request = domain.ConnectSessionRequest(
        end_user=EndUser(id="u-1"), allowed_integrations=allowed
    )
    return domain.open_connect_session(IDENTITY, request, now=NOW)


def attempt(**overrides) -> domain.Attempt:
    caller = domain.Caller(environment_id=7, environment_name="prod", end_user=EndUser(id="u-1"))
    fields = {"integration_id": "github", "connection_id": "c1", "auth_mode": "API_KEY"}
    return domain.begin_attempt(caller, **{**fields, **overrides}, now=NOW)


# ---------------------------------------------------------------- connect sessions


def test_session_lasts_thirty_minutes() -> None:
    session = opened()
    assert session.created_at == NOW
    assert session.expires_at == NOW + timedelta(minutes=30)


def test_session_keeps_allowed_integrations_once_each_in_order() -> None:
    assert opened(["b", "a", "b"]).allowed_integrations == ("b", "a")


def test_session_caller_is_the_sessions_environment_and_end_user() -> None:
    caller = domain.caller_from_session(opened(), now=NOW + timedelta(minutes=29))
    assert (caller.environment_id, caller.environment_name) == (7, "prod")
    assert caller.end_user == EndUser(id="u-1")


def test_session_is_expired_from_its_expiry_instant() -> None:
    with pytest.raises(ConnectSessionExpiredError):
        domain.caller_from_session(opened(), now=NOW + timedelta(minutes=30))


# ---------------------------------------------------------------- callers


def test_public_key_caller_has_no_end_user_and_no_allow_list() -> None:
    caller = domain.caller_from_public_key(IDENTITY)
    assert caller == domain.Caller(environment_id=7, environment_name="prod")


def test_public_key_refused_where_sessions_are_required() -> None:
    strict = IDENTITY.model_copy(update={"connect_sessions_required": True})
    with pytest.raises(ConnectSessionRequiredError):
        domain.caller_from_public_key(strict)


def test_caller_without_allow_list_may_use_any_integration() -> None:
    domain.check_integration_allowed(domain.caller_from_public_key(IDENTITY), "anything")


def test_caller_with_allow_list_is_refused_other_integrations() -> None:
    caller = domain.caller_from_session(opened(["github"]), now=NOW)
    domain.check_integration_allowed(caller, "github")
    with pytest.raises(IntegrationNotAllowedError):
        domain.check_integration_allowed(caller, "gitlab")


# ---------------------------------------------------------------- connection ids


def test_missing_connection_id_becomes_a_uuid4() -> None:
    assert uuid.UUID(domain.resolve_connection_id(None)).version == 4


@pytest.mark.parametrize("good", ["a", "A-z_0.9:x@y+z", "x" * 255])
def test_connection_id_in_the_allowed_set_is_kept(good: str) -> None:
    assert domain.resolve_connection_id(good) == good


@pytest.mark.parametrize("bad", ["", "x" * 256, "a b", "a/b", "a\n", "ü", "a#b"])
def test_connection_id_outside_the_allowed_set_is_refused(bad: str) -> None:
    with pytest.raises(InvalidConnectionIdError):
        domain.resolve_connection_id(bad)


# ---------------------------------------------------------------- credentials


@pytest.mark.parametrize("fields", [{}, {"api_key": ""}, {"api_key": " "}, {"api_key": 1}])
def test_required_credential_must_be_non_blank_text(fields: dict) -> None:
    with pytest.raises(MissingCredentialsError, match="^api_key"):
        domain.required_text(fields, "api_key")


def test_optional_credential_reads_absent_as_empty() -> None:
    assert domain.optional_text({}, "password") == ""


def test_optional_credential_must_be_text_when_given() -> None:
    with pytest.raises(MissingCredentialsError, match="^password"):
        domain.optional_text({"password": 5}, "password")


def test_credentials_payload_names_its_type_first() -> None:
    payload = domain.credentials_payload("BASIC", {"username": "u", "password": ""})
    assert payload == {"type": "BASIC", "username": "u", "password": ""}


# ---------------------------------------------------------------- operations


def test_attempt_outside_the_allow_list_never_begins() -> None:
    caller = domain.caller_from_session(opened(["github"]), now=NOW)
    with pytest.raises(IntegrationNotAllowedError):
        domain.begin_attempt(
            caller, integration_id="gitlab", connection_id="c", auth_mode="API_KEY", now=NOW
        )


def test_attempts_get_distinct_operation_ids() -> None:
    assert attempt().operation_id != attempt().operation_id


def test_started_attempt_is_announced_as_running() -> None:
    started = attempt().log("OAuth flow started", at=NOW).started()
    assert isinstance(started, OperationStarted)
    assert (started.environment_id, started.started_at, started.occurred_at) == (7, NOW, NOW)
    assert [m.message for m in started.messages] == ["OAuth flow started"]


def test_success_reports_the_vaults_provider_mode_and_operation() -> None:
    stored = ConnectionStored(
        connection_id="c1", integration_id="github", provider="github",
        auth_mode="API_KEY", environment_name="prod", operation="override",
    )
    later = NOW + timedelta(seconds=2)
    [finished] = attempt().succeeded(stored, now=later)
    assert isinstance(finished, OperationFinished)
    assert (finished.status, finished.operation, finished.provider) == (
        "success", "override", "github"
    )
    assert (finished.started_at, finished.ended_at, finished.occurred_at) == (NOW, later, later)
    assert finished.messages[-1].at == later


def test_failure_reports_operation_and_auth_failed_sharing_the_error() -> None:
    error = ErrorInfo(code="integration_not_found", message="no such integration")
    finished, failed = attempt().failed(error, now=NOW)
    assert isinstance(finished, OperationFinished) and isinstance(failed, AuthFailed)
    assert finished.status == "failed" and finished.error == failed.error == error
    assert failed.operation_id == finished.operation_id
    assert (failed.environment, failed.end_user, failed.operation) == (
        "prod", EndUser(id="u-1"), "creation"
    )
    assert finished.messages[-1].level == "error"


def test_error_info_keeps_terapi_codes_and_hides_bugs() -> None:
    assert domain.error_info(NotFoundError("gone", code="x_not_found")) == ErrorInfo(
        code="x_not_found", message="gone"
    )
    assert domain.error_info(KeyError("secret detail")) == ErrorInfo(
        code="internal_error", message="internal error"
    )


def test_log_line_keeps_its_meta_for_the_logs() -> None:
    line = attempt().log("provider said no", at=NOW, meta={"provider_error": "x"}).messages[-1]
    assert (line.message, line.meta) == ("provider said no", {"provider_error": "x"})
