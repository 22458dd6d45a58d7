"""Run the mock provider on its own event loop in a thread, for session-wide use.

End-to-end tests start Terapi's processes once per session; the provider they talk to
must outlive each test's event loop, so it gets a loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from aiohttp import web

from tests.support.mock_provider import MockProvider


@dataclass
class RunningProvider:
    provider: MockProvider
    base_url: str
    _loop: asyncio.AbstractEventLoop
    _runner: web.AppRunner
    _thread: threading.Thread

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def start_provider(port: int) -> RunningProvider:
    provider = MockProvider()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(provider.app(), access_log=None)
    thread = threading.Thread(target=loop.run_forever, name="mock provider", daemon=True)
    thread.start()

    async def serve() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    return RunningProvider(provider, f"http://127.0.0.1:{port}", loop, runner, thread)
