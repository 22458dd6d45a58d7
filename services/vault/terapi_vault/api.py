"""The backend REST API: parse the request, call the handler, answer JSON."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, ConfigDict

from terapi_common.errors import InvalidInputError
from terapi_common.http import json_response, parse_model, read_json
from terapi_vault import handlers
from terapi_vault.inputs import (
    ConnectionQuery,
    EnvironmentPatch,
    IntegrationCreate,
    IntegrationPatch,
)
from terapi_vault.keys import VAULT

routes = web.RouteTableDef()
Body = TypeVar("Body", bound=BaseModel)
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0", ""})


class _AnyObject(BaseModel):
    model_config = ConfigDict(extra="allow")


async def read_body(request: web.Request, model: type[Body]) -> Body:
    """The JSON body as `model`; unknown top-level fields are a 400 naming all of them."""
    data = (await read_json(request, _AnyObject)).model_extra or {}
    unknown = sorted(set(data) - set(model.model_fields))
    if unknown:
        raise InvalidInputError(
            f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
            f"known fields are {', '.join(model.model_fields)}"
        )
    return parse_model(model, data)


def _optional(query: MultiMapping[str], name: str) -> str | None:
    return query.get(name) or None


def _flag(query: MultiMapping[str], name: str) -> bool:
    value = query.get(name, "").lower()
    if value not in _TRUE | _FALSE:
        raise InvalidInputError(f"{name} must be true or false")
    return value in _TRUE


# ---------------------------------------------------------------- integrations


@routes.post("/integrations")
async def create_integration(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    body = await read_body(request, IntegrationCreate)
    return json_response(await handlers.create_integration(vault, env, body), status=201)


@routes.get("/integrations")
async def list_integrations(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    return json_response(await handlers.list_integrations(vault, env))


@routes.get("/integrations/{integration_id}")
async def show_integration(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    integration_id = request.match_info["integration_id"]
    return json_response(await handlers.show_integration(vault, env, integration_id))


@routes.patch("/integrations/{integration_id}")
async def update_integration(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    patch = await read_body(request, IntegrationPatch)
    integration_id = request.match_info["integration_id"]
    return json_response(await handlers.update_integration(vault, env, integration_id, patch))


@routes.delete("/integrations/{integration_id}")
async def delete_integration(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    await handlers.delete_integration(vault, env, request.match_info["integration_id"])
    return web.Response(status=204)


# ---------------------------------------------------------------- providers


@routes.get("/providers")
async def list_providers(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    await vault.keys.for_request(request)
    return json_response(handlers.list_providers(vault))


@routes.get("/providers/{name}")
async def show_provider(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    await vault.keys.for_request(request)
    return json_response(handlers.show_provider(vault, request.match_info["name"]))


# ---------------------------------------------------------------- connections


@routes.get("/connections")
async def list_connections(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    given = {k: v for k, v in request.query.items() if v != ""}
    query = parse_model(ConnectionQuery, given)
    return json_response(await handlers.list_connections(vault, env, query))


@routes.get("/connections/{connection_id}")
async def read_connection(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    query = request.query
    return json_response(await handlers.read_connection(
        vault, env, request.match_info["connection_id"],
        integration_id=_optional(query, "integration_id"),
        include_refresh_token=_flag(query, "include_refresh_token"),
    ))


@routes.delete("/connections/{connection_id}")
async def delete_connection(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    await handlers.delete_connection(
        vault, env, request.match_info["connection_id"],
        integration_id=_optional(request.query, "integration_id"),
    )
    return web.Response(status=204)


# ---------------------------------------------------------------- environment


@routes.get("/environment")
async def show_environment(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    return json_response(await handlers.show_environment(vault, env))


@routes.patch("/environment")
async def update_environment(request: web.Request) -> web.Response:
    vault = request.app[VAULT]
    env = await vault.keys.for_request(request)
    patch = await read_body(request, EnvironmentPatch)
    return json_response(await handlers.update_environment(vault, env, patch))
