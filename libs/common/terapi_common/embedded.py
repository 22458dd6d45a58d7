"""The embedded PostgreSQL `terapi up` uses when no database URL is set.

pgserver ships PostgreSQL in its wheel and listens on a Unix socket only. Run as root,
it starts postgres as a `pgserver` system user and makes the parent folders of the data
dir listable by that user: keep TERAPI_HOME somewhere that may be opened that far.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path


def _start(data_dir: Path) -> str:
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it falls
        # back to /tmp and warns on every start, which says nothing useful to operators.
        warnings.simplefilter("ignore", category=Warning)
        import pgserver

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
        return server.get_uri()


async def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server for `data_dir`; returns its connection URL."""
    return await asyncio.to_thread(_start, data_dir)
