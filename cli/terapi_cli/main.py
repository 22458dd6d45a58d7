"""`terapi`: run every service at once, one service alone, migrations, and key tasks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import Any

import asyncpg
from pydantic import ValidationError

from terapi_cli import boot, workers
from terapi_cli.services import NEEDS_KEY_RING, all_services
from terapi_common import logging as terapi_logging
from terapi_common import tracing
from terapi_common.crypto import KeyRing
from terapi_common.db import create_pool
from terapi_common.errors import TerapiError
from terapi_common.runtime import apply_migrations, build_app, run_app
from terapi_common.settings import TerapiSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="terapi", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run every service in one process")
    up.add_argument("--port", type=int, help="port to listen on (default 3003)")
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")

    run = commands.add_parser("run", help="run one service, as a Kubernetes pod does")
    run.add_argument("service", choices=["gateway", "vault", "refresher", "webhooks", "logs"])
    run.add_argument("--port", type=int, help="port to listen on (TERAPI_PORT, default 3003)")
    run.add_argument("--host", help="address to listen on (TERAPI_HOST, default 0.0.0.0)")
    run.add_argument("--workers", type=int,
                     help="processes sharing the port (TERAPI_WORKERS, default 1)")

    commands.add_parser("migrate", help="apply every service's schema migrations")

    keys = commands.add_parser("keys", help="environment keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    show = keys_commands.add_parser("show", help="print an environment's keys")
    show.add_argument("--env", default="dev", help="environment name (default dev)")
    show.add_argument("--json", action="store_true", help="print JSON")
    reencrypt = keys_commands.add_parser(
        "reencrypt", help="rewrite what other encryption key versions encrypted with the active one"
    )
    reencrypt.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _settings(args: argparse.Namespace, *, local: bool) -> TerapiSettings:
    settings = TerapiSettings()
    overrides: dict[str, object] = {}
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "workers", None):
        overrides["workers"] = args.workers
    elif local and "host" not in settings.model_fields_set:
        overrides["host"] = "127.0.0.1"
    if local and "public_url" not in settings.model_fields_set:
        overrides["public_url"] = f"http://localhost:{overrides.get('port', settings.port)}"
    if overrides:
        settings = TerapiSettings.model_validate({**settings.model_dump(), **overrides})
    return settings


def cmd_up(args: argparse.Namespace) -> None:
    settings = _settings(args, local=True)
    terapi_logging.setup("terapi", level=settings.log_level, fmt=settings.log_format)
    tracing.setup("terapi")
    key_ring = boot.local_key_ring(settings)
    services = list(all_services().values())
    app = build_app(services, boot.runtime_factory(settings, key_ring),
                    migrate=settings.auto_migrate)
    where = "embedded PostgreSQL" if settings.database_url is None else "PostgreSQL"
    bus = "in-process bus" if settings.amqp_url is None else "RabbitMQ"
    print(f"terapi: all services on http://{settings.host}:{settings.port} ({where}, {bus})",
          file=sys.stderr)
    run_app(app, host=settings.host, port=settings.port, grace=settings.shutdown_grace_seconds)


def cmd_run(args: argparse.Namespace) -> None:
    settings = _settings(args, local=False)
    missing = [name for name, value in (("TERAPI_DATABASE_URL", settings.database_url),
                                         ("TERAPI_AMQP_URL", settings.amqp_url)) if value is None]
    key_ring = boot.key_ring_from_settings(settings)
    if key_ring is None and args.service in NEEDS_KEY_RING:
        missing.append("TERAPI_ENCRYPTION_KEY")
    if missing:
        raise boot.BootError(f"terapi run {args.service} needs {', '.join(missing)}")
    if settings.workers > 1:
        sys.exit(workers.supervise(args.service, settings))
    terapi_logging.setup(args.service, level=settings.log_level, fmt=settings.log_format)
    tracing.setup(args.service)
    service = all_services()[args.service]
    app = build_app([service], boot.runtime_factory(settings, key_ring),
                    migrate=settings.auto_migrate)
    run_app(app, host=settings.host, port=settings.port, grace=settings.shutdown_grace_seconds,
            reuse_port=settings.reuse_port)


def _key_ring(settings: TerapiSettings, command: str) -> KeyRing:
    """TERAPI_ENCRYPTION_KEY; without TERAPI_DATABASE_URL, the local one `terapi up` uses."""
    if settings.database_url is None:
        return boot.local_key_ring(settings)
    key_ring = boot.key_ring_from_settings(settings)
    if key_ring is None:
        raise boot.BootError(
            f"terapi {command} with TERAPI_DATABASE_URL needs TERAPI_ENCRYPTION_KEY"
        )
    return key_ring


async def _migrate(settings: TerapiSettings) -> None:
    from terapi_vault.admin import ensure_default_environments

    key_ring = _key_ring(settings, "migrate")
    pool = await create_pool(await boot.database_url(settings), min_size=1, max_size=2)
    try:
        await apply_migrations(pool, list(all_services().values()))
        await ensure_default_environments(pool, key_ring)
    finally:
        await pool.close()


def cmd_migrate(args: argparse.Namespace) -> None:
    settings = _settings(args, local=False)
    terapi_logging.setup("migrate", level=settings.log_level, fmt=settings.log_format)
    asyncio.run(_migrate(settings))
    print("terapi: migrations applied", file=sys.stderr)


async def _keys(settings: TerapiSettings, environment: str) -> dict[str, str]:
    from terapi_vault.admin import environment_keys

    await _migrate(settings)
    key_ring = _key_ring(settings, "keys show")
    pool = await create_pool(await boot.database_url(settings), min_size=1, max_size=1)
    try:
        return await environment_keys(pool, key_ring, environment)
    finally:
        await pool.close()


def cmd_keys(args: argparse.Namespace) -> int:
    settings = _settings(args, local=False)
    terapi_logging.setup("keys", level="warning", fmt=settings.log_format)
    if args.keys_command == "reencrypt":
        return _report_reencryption(*asyncio.run(_reencrypt(settings)), as_json=args.json)
    keys = asyncio.run(_keys(settings, args.env))
    if args.json:
        print(json.dumps(keys))
        return 0
    width = max(len(k) for k in keys)
    for name, value in keys.items():
        print(f"{name.replace('_', ' '):<{width}}  {value}")
    return 0


async def _reencrypt(settings: TerapiSettings) -> tuple[int, dict[str, Any]]:
    """The active key version, and per vault table what re-encryption did."""
    from terapi_vault.admin import reencrypt
    from terapi_vault.rotation_store import PgRotationStore

    key_ring = _key_ring(settings, "keys reencrypt")
    pool = await create_pool(await boot.database_url(settings), min_size=1, max_size=1)
    try:
        tallies = await reencrypt(PgRotationStore(pool), key_ring)
    except asyncpg.UndefinedTableError:
        raise boot.BootError("the vault's tables do not exist: run terapi migrate first") from None
    finally:
        await pool.close()
    return key_ring.current_version, {name: asdict(t) for name, t in tallies.items()}


def _report_reencryption(version: int, tables: dict[str, Any], *, as_json: bool) -> int:
    """Print the counts; the exit code is 1 when some row could not be decrypted."""
    unreadable = sum(t["unreadable"] for t in tables.values())
    if as_json:
        print(json.dumps({"key_version": version, "tables": tables}))
    else:
        print(f"active key version: {version}")
        for name, t in tables.items():
            print(f"{name + ':':<14}{t['rewritten']} rewritten, {t['already_current']} already "
                  f"current, {t['unreadable']} unreadable")
    if unreadable:
        print(f"terapi: {unreadable} row(s) could not be decrypted with any listed key, each "
              "logged as vault.ciphertext_unreadable: written with a key missing from "
              "TERAPI_ENCRYPTION_KEY, or damaged", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"up": cmd_up, "run": cmd_run, "migrate": cmd_migrate, "keys": cmd_keys}
    try:
        code = handlers[args.command](args)
    except boot.BootError as exc:
        print(f"terapi: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"terapi: invalid settings: {exc}", file=sys.stderr)
        return 2
    except TerapiError as exc:
        print(f"terapi: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
