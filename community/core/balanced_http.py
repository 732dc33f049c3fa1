"""uvicorn's httptools protocol, keeping count of this process's connections in the run's
connection table (community.core.connection_table): a process holding more than its share
answers the next request on one of its connections with `Connection: close`, so the client
reconnects and the kernel hashes the new connection afresh, most likely onto a process with
fewer. The response itself is whole; a connection with pipelined requests queued behind is not
picked. `community serve --workers N` uses it (docs/serving.md, "Connections shared out").
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from community.core import connection_table


class BalancedHttpToolsProtocol(HttpToolsProtocol):
    _counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        table = connection_table.joined()
        if table is not None:
            self._counted = True
            table.opened()

    def connection_lost(self, exc: Exception | None) -> None:
        self._uncount()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if (
            cycle is before  # an upgrade, answered elsewhere
            or not self._counted
            or not cycle.keep_alive
            or self.pipeline  # requests queued behind this one would be dropped
        ):
            return
        table = connection_table.joined()
        if table is not None and table.over_share():
            cycle.keep_alive = False
            # Uncounted now, not when the client has gone: another request on this process
            # meanwhile must not close a second connection for the same excess.
            self._uncount()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            table = connection_table.joined()
            if table is not None:
                table.closed()
