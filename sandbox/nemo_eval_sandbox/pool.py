"""The pool of warm jails: ``workers`` of them, a bounded queue of executions waiting for one, and
the replacement of jails in doubt."""

from __future__ import annotations

import asyncio
from typing import Optional

from nemo_eval_sandbox.cgroups import Cgroups
from nemo_eval_sandbox.hostuids import StartupError, UidAllocator, UidLease
from nemo_eval_sandbox.jails import AGENT_OVERHEAD_MB, Jail
from nemo_eval_sandbox.limits import Limits


class JailPool:
    """``workers`` warm jails; executions wait for a free one in a bounded queue.

    A jail in doubt after an execution (no report, agent died, output left open, the client gone
    mid-run) is destroyed and replaced in the background; the pool never hands it out again.
    """

    def __init__(self, limits: Limits, uids: UidAllocator, cgroups: Optional[Cgroups]) -> None:
        self.limits, self.uids, self.cgroups = limits, uids, cgroups
        self.idle: list[Jail] = []
        self.waiters: list[asyncio.Future] = []
        self.jails: list[Jail] = []
        self.busy = 0
        self.replacing = 0
        self.last_failure = ""
        self.closed = False

    async def start(self) -> None:
        leases: list[UidLease] = []
        try:
            for _ in range(self.limits.workers):
                leases.append(self.uids.take())
        except StartupError:
            for lease in leases:
                lease.release()
            raise
        jails = [self._new_jail(lease) for lease in leases]
        results = await asyncio.gather(*(jail.start() for jail in jails), return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await asyncio.gather(*(jail.destroy() for jail in jails))
            for lease in leases:
                lease.release()
            raise failure
        self.jails = jails
        self.idle = list(jails)

    def _new_jail(self, lease: UidLease) -> Jail:
        cgroup = None
        if self.cgroups is not None:
            cgroup = self.cgroups.new_slot((self.limits.memory_mb + AGENT_OVERHEAD_MB) << 20,
                                           self.limits.max_processes + 3)  # + bubblewrap, the jail's pid 1, agent
        return Jail(self.limits, lease, cgroup)

    @property
    def queued(self) -> int:
        return len(self.waiters)

    def healthy(self) -> bool:
        return not self.closed and len(self.jails) - sum(j.broken for j in self.jails) + self.replacing > 0

    async def acquire(self) -> Jail:
        """A free jail; raises :class:`PoolBusy` when the queue is full."""
        if self.idle:
            jail = self.idle.pop()
            self.busy += 1
            return jail
        if len(self.waiters) >= self.limits.max_queue:
            raise PoolBusy()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            jail = await waiter
        except asyncio.CancelledError:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self._hand_over(waiter.result())  # it was handed to us as we gave up: pass it on
            raise
        self.busy += 1
        return jail

    def release(self, jail: Jail) -> None:
        self.busy -= 1
        if jail.broken:
            asyncio.ensure_future(self._replace(jail))
        else:
            self._hand_over(jail)

    def _hand_over(self, jail: Jail) -> None:
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(jail)
                return
        self.idle.append(jail)

    async def _replace(self, jail: Jail) -> None:
        self.replacing += 1
        try:
            await jail.destroy()
            delay = 0.1
            while not self.closed:
                fresh = self._new_jail(jail.lease)
                try:
                    await fresh.start()
                except Exception as exc:  # noqa: BLE001 - retried; /health says so meanwhile
                    self.last_failure = str(exc)
                    await fresh.destroy()
                    await asyncio.sleep(delay)
                    delay = min(5.0, delay * 2)
                    continue
                self.jails = [fresh if j is jail else j for j in self.jails]
                if self.closed:
                    await fresh.destroy()
                else:
                    self._hand_over(fresh)
                return
        finally:
            self.replacing -= 1

    async def close(self) -> None:
        self.closed = True
        for waiter in self.waiters:
            waiter.cancel()
        await asyncio.gather(*(jail.destroy() for jail in self.jails), return_exceptions=True)
        for jail in self.jails:
            jail.lease.release()


class PoolBusy(Exception):
    """Every jail is busy and the queue is full."""

