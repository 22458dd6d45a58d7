"""HTTP routes of the logs service: search operations and read one."""

from __future__ import annotations

from aiohttp import web

from terapi_common.http import json_response
from terapi_logs import handlers
from terapi_logs.keys import AUTHENTICATOR, STORE
from terapi_logs.query import parse_operation_id, parse_query

routes = web.RouteTableDef()


@routes.get("/logs/operations")
async def list_operations(request: web.Request) -> web.Response:
    identity = await request.app[AUTHENTICATOR].for_request(request)
    query, after = parse_query(request.query)
    page = await handlers.search_operations(
        request.app[STORE], identity.environment_id, query, after
    )
    return json_response(page)


@routes.get("/logs/operations/{operation_id}")
async def get_operation(request: web.Request) -> web.Response:
    identity = await request.app[AUTHENTICATOR].for_request(request)
    operation_id = parse_operation_id(request.match_info["operation_id"])
    operation = await handlers.read_operation(
        request.app[STORE], identity.environment_id, operation_id
    )
    return json_response(operation)
