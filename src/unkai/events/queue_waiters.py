"""`Waiters`: long-polling receives waiting for a queue to have something for them.

A receive that found nothing waits here (bounded by its wait time); a send, a visibility
change, a move or a FIFO delete wakes waiters, oldest first, only as many as the new messages
can feed (each waiter says how many it wants), so a send of 10 wakes one batch-10 poller and
not every poller of the queue.
"""

from __future__ import annotations

import asyncio


class Waiters:
    def __init__(self) -> None:
        #: Per queue, the waiting receives in arrival order and how many messages each wants.
        self._waiting: dict[str, dict[asyncio.Future[None], int]] = {}

    def notify(self, queue: str, count: int | None = None) -> None:
        """Wake waiters of `queue` until they can take `count` messages (all when None)."""
        waiters = self._waiting.get(queue)
        if not waiters:
            return
        room = 0
        for waiter, wanted in list(waiters.items()):
            if count is not None and room >= count:
                break
            del waiters[waiter]
            if not waiter.done():
                waiter.set_result(None)
                room += wanted

    async def wait(self, queue: str, timeout_s: float, wanted: int) -> None:
        """Return when woken or after `timeout_s`."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(queue, {})[waiter] = wanted
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            pass
        finally:
            waiters = self._waiting.get(queue)
            if waiters is not None:
                waiters.pop(waiter, None)

    def release_all(self) -> None:
        """Wake every waiter (the service is closing)."""
        for waiters in self._waiting.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
