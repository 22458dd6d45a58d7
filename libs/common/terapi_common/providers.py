"""The provider catalog: how each external API authorizes, read from YAML and validated.

`catalog/providers.yaml` ships with Terapi; files named in `TERAPI_PROVIDERS_PATH`
(separated by `:`) add or replace entries with the same schema. `docs/providers.md`
documents every field. URLs and parameter values may interpolate
`${connection_config.<name>}` and `${credentials.<name>}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from terapi_common.errors import InvalidInputError

CATALOG_FILE = Path(__file__).parent / "catalog" / "providers.yaml"
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
GENERIC = "generic"
_PLACEHOLDER = re.compile(r"\$\{(connection_config|credentials)\.([A-Za-z_][A-Za-z0-9_]*)\}")
_IMPLICIT_CREDENTIALS = frozenset({"api_key", "username", "password", "access_token"})

AuthModeName = Literal["API_KEY", "BASIC", "OAUTH2", "OAUTH1", "OAUTH2_CC", "APP", "CUSTOM"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(Strict):
    """One value the end user or the app supplies (a credential or connection config)."""

    title: str
    description: str | None = None
    pattern: str | None = None  # a regex the whole value must match (re.fullmatch)
    example: str | None = None
    optional: bool = False
    secret: bool = False
    doc_section: str | None = None
    default: str | None = None  # used when no value is given (Freshdesk's password is "X")
    captured: bool = False  # filled from the token response or callback, never asked for

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    def matches(self, value: str) -> bool:
        """Whether `value` satisfies the pattern (no pattern accepts anything)."""
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None


class TokenResponse(Strict):
    """Where the token response keeps each value (dotted paths for nested JSON)."""

    access_token: str = "access_token"
    refresh_token: str = "refresh_token"
    expires_in: str | None = "expires_in"
    expires_at: str | None = None  # an absolute expiry some providers send instead
    scopes: str | None = "scope"


class Verification(Strict):
    """A cheap request that proves API-key or Basic credentials work.

    BASIC providers send HTTP Basic auth built from `credentials.username` and
    `credentials.password`; API_KEY providers send only the headers listed here.
    """

    method: Literal["GET", "POST", "HEAD"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    success_statuses: list[int] = Field(default_factory=lambda: [200])


class CaptureRequest(Strict):
    """A GET made with the new access token right after an authorization, for connection
    config that only the provider's API tells (Mailchimp's data centre, the cloud id of the
    Atlassian site the user picked). Without the values the connection is not usable, so an
    answer that lacks them fails the authorization."""

    url: str
    # Sent as they are after interpolation; with no Authorization header the token goes as
    # `Authorization: Bearer ${credentials.access_token}`.
    headers: dict[str, str] = Field(default_factory=dict)
    # connection_config field -> dotted path into the JSON answer; a number picks a list item
    # (`0.id`: the first accessible resource's id).
    fields: dict[str, str] = Field(min_length=1)


class Provider(Strict):
    """One external API and how to authorize against it."""

    name: str
    display_name: str
    auth_mode: AuthModeName
    categories: list[str] = Field(default_factory=list)
    docs: str | None = None

    # OAuth 2 / OAuth 1 / client credentials
    authorization_url: str | None = None
    token_url: str | None = None
    refresh_url: str | None = None  # defaults to token_url
    revocation_url: str | None = None  # RFC 7009: POST token=…, client auth as for tokens
    request_token_url: str | None = None  # OAuth 1.0a
    default_scopes: list[str] = Field(default_factory=list)
    scope_separator: str = " "
    scope_param: str = "scope"  # the authorization URL parameter carrying the scopes
    authorization_params: dict[str, str] = Field(default_factory=dict)
    token_params: dict[str, str] = Field(default_factory=dict)
    refresh_params: dict[str, str] = Field(default_factory=dict)
    body_format: Literal["form", "json"] = "form"  # how token requests encode their body
    pkce: bool = False  # send an S256 code challenge (RFC 7636)
    token_request_auth: Literal["client_secret_post", "client_secret_basic"] = (
        "client_secret_post"
    )
    token_response: TokenResponse = Field(default_factory=TokenResponse)
    refreshable: bool = True
    signature_method: Literal["HMAC-SHA1", "PLAINTEXT", "RSA-SHA1"] | None = None  # OAuth 1

    # What the end user supplies
    credentials: dict[str, FieldSpec] = Field(default_factory=dict)
    connection_config: dict[str, FieldSpec] = Field(default_factory=dict)
    # Values copied into the connection config after authorization: field -> where to read it
    capture_from_token_response: dict[str, str] = Field(default_factory=dict)
    capture_from_request: CaptureRequest | None = None
    capture_from_callback: dict[str, str] = Field(default_factory=dict)

    verification: Verification | None = None
    base_url: str | None = None  # where the provider's API lives, for docs and proxies

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not PROVIDER_NAME.match(value):
            raise ValueError("provider names are lower-case letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def _complete(self) -> Provider:
        missing = [f for f in _required_urls(self) if not getattr(self, f)]
        if missing:
            raise ValueError(f"{self.auth_mode} needs {', '.join(missing)}")
        if self.capture_from_request and self.auth_mode != "OAUTH2":
            raise ValueError("capture_from_request needs an OAUTH2 access token")
        from_request = self.capture_from_request.fields if self.capture_from_request else {}
        for field in (*self.capture_from_token_response, *self.capture_from_callback,
                      *from_request):
            spec = self.connection_config.get(field)
            if spec is None or not spec.captured:
                raise ValueError(
                    f"captured value {field!r} needs a connection_config field with captured: true"
                )
        return self

    @property
    def is_generic(self) -> bool:
        """A template whose URLs come from the integration's settings."""
        return GENERIC in self.categories

    def urls(self) -> dict[str, str]:
        """Every URL this entry names, by field (verification as `verification.url`)."""
        found = {
            f: getattr(self, f) for f in (
                "authorization_url", "token_url", "refresh_url", "revocation_url",
                "request_token_url", "base_url", "docs",
            ) if getattr(self, f)
        }
        if self.verification:
            found["verification.url"] = self.verification.url
        if self.capture_from_request:
            found["capture_from_request.url"] = self.capture_from_request.url
        return found

    def placeholders(self) -> set[tuple[str, str]]:
        """Every `${…}` named in this provider's URLs and parameters, as (namespace, field)."""
        texts = [
            *self.urls().values(),
            *(self.verification.headers.values() if self.verification else ()),
            *(self.capture_from_request.headers.values() if self.capture_from_request else ()),
            *self.authorization_params.values(), *self.token_params.values(),
            *self.refresh_params.values(),
        ]
        return {m.groups() for t in texts for m in _PLACEHOLDER.finditer(t)}

    def check_connection_config(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The connection config with defaults applied; a bad or missing value is a 400."""
        return _check_fields(self.connection_config, values, "connection_config")

    def check_credentials(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The end user's credentials with defaults applied; a bad or missing value is a 400."""
        return _check_fields(self.credentials, values, "credentials")

    def to_public_dict(self) -> dict[str, Any]:
        """What `GET /providers` shows: everything, all of it public facts."""
        return self.model_dump(mode="json", exclude_none=True)


def _required_urls(provider: Provider) -> tuple[str, ...]:
    if provider.is_generic:
        return ()
    return {
        "OAUTH2": ("authorization_url", "token_url"),
        "OAUTH2_CC": ("token_url",),
        "OAUTH1": ("request_token_url", "authorization_url", "token_url", "signature_method"),
    }.get(provider.auth_mode, ())


def _check_fields(
    specs: Mapping[str, FieldSpec], values: Mapping[str, Any], namespace: str,
) -> dict[str, str]:
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise InvalidInputError(
            f"{namespace}.{unknown[0]}: this provider does not take it", code=f"invalid_{namespace}"
        )
    result: dict[str, str] = {}
    for name, spec in specs.items():
        value = values.get(name)
        if value in (None, ""):
            value = spec.default
        if value in (None, ""):
            if not (spec.optional or spec.captured):
                raise InvalidInputError(
                    f"{namespace}.{name} is required by this provider", code=f"missing_{namespace}"
                )
            continue
        if not isinstance(value, str) or not spec.matches(value):
            raise InvalidInputError(
                f"{namespace}.{name}: not a valid {spec.title}", code=f"invalid_{namespace}"
            )
        result[name] = value
    return result


class CatalogError(ValueError):
    """A catalog file is malformed; start-up stops with this message."""


class Catalog:
    """Providers by name."""

    def __init__(self, providers: dict[str, Provider]) -> None:
        self._providers = dict(sorted(providers.items()))

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def require(self, name: str) -> Provider:
        provider = self.get(name)
        if provider is None:
            raise InvalidInputError(f"provider: unknown provider {name!r}", code="unknown_provider")
        return provider

    def all(self) -> list[Provider]:
        return list(self._providers.values())

    def __len__(self) -> int:
        return len(self._providers)


def parse_catalog_text(text: str, *, source: str) -> dict[str, Provider]:
    """Validate one YAML document of `name: {fields}` entries."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: the top level must map provider names to entries")
    providers: dict[str, Provider] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise CatalogError(f"{source}: {name}: entry must be a mapping")
        try:
            provider = Provider.model_validate({"name": name, **entry})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            raise CatalogError(f"{source}: {name}: {where}: {first['msg']}") from None
        _check_placeholders(provider, source)
        providers[name] = provider
    return providers


def _check_placeholders(provider: Provider, source: str) -> None:
    for namespace, field in sorted(provider.placeholders()):
        declared = provider.connection_config if namespace == "connection_config" else (
            provider.credentials
        )
        if field not in declared and not (
            namespace == "credentials" and field in _IMPLICIT_CREDENTIALS
        ):
            raise CatalogError(
                f"{source}: {provider.name}: uses ${{{namespace}.{field}}} "
                f"but {namespace} does not declare {field!r}"
            )


def load_catalog(extra_paths: str | None = None) -> Catalog:
    """The shipped catalog plus the files in `extra_paths` (`:`-separated)."""
    providers = dict(_shipped())
    for path_text in (p for p in (extra_paths or "").split(":") if p.strip()):
        path = Path(path_text)
        if not path.is_file():
            raise CatalogError(f"{path}: provider file not found")
        providers.update(parse_catalog_text(path.read_text(), source=str(path)))
    return Catalog(providers)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Provider]:
    return parse_catalog_text(CATALOG_FILE.read_text(), source=CATALOG_FILE.name)


def interpolate(template: str, *, connection_config: Mapping[str, Any],
                credentials: Mapping[str, Any] | None = None) -> str:
    """Fill `${connection_config.x}` / `${credentials.x}`; a missing value is a 400."""
    sources = {"connection_config": connection_config, "credentials": credentials or {}}

    def fill(match: re.Match[str]) -> str:
        namespace, field = match.groups()
        value = sources[namespace].get(field)
        if value in (None, ""):
            raise InvalidInputError(
                f"{namespace}.{field} is required by this provider",
                code="missing_connection_config" if namespace == "connection_config"
                else "missing_credentials",
            )
        return str(value)

    return _PLACEHOLDER.sub(fill, template)


def render_params(params: Mapping[str, str], *, connection_config: Mapping[str, Any],
                  credentials: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Interpolate parameter values; a parameter whose placeholder has no value is left out."""
    sources = {"connection_config": connection_config, "credentials": credentials or {}}

    def filled(value: str) -> bool:
        return all(sources[ns].get(f) not in (None, "") for ns, f in _PLACEHOLDER.findall(value))

    return {
        key: interpolate(value, connection_config=connection_config, credentials=credentials)
        for key, value in params.items() if filled(value)
    }
