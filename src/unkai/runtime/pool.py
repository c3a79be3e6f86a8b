"""`Pool`: the instances of one function version, handed out one invocation at a time.

`pool.lend(deadline, callback)` (or `async with pool.acquire(deadline) as instance:`) takes
the most recently used idle instance (LIFO keeps the warm ones warm and lets the others age
out), or waits in FIFO order for one.
While callers wait, the pool asks the supervisor for new instances (bounded by the node-wide
cap) and gives each waiter whichever instance becomes free first. A waiter still without an
instance at its deadline gets `Throttled`.

Short functions are queued instead. When most of a window of invocations took under
`scaler.QUEUE_BELOW_MS`, a call goes to the first `scaler.useful_instances` warm instances
(`_candidates`), busy or not: to the one holding the fewest calls, up to `scaler.QUEUE_DEPTH`,
else it waits for one of them; no other instance is woken and none started. Under load the
runtime then goes from one invocation to the next without sleeping, and the platform's loop
wakes no process per call. A busy instance whose invocation has run `scaler.STALLED_AFTER_S`
is passed over, and a timer serves the waiters from idle or new instances while the
candidates are stalled.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from unkai.errors import InvocationFailed, Throttled, UnkaiError
from unkai.runtime import scaler
from unkai.runtime.instance import Instance
from unkai.runtime.instance_state import InstanceState
from unkai.runtime.spec import InstanceSpec

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger("unkai.runtime")

#: The loop's timers have millisecond resolution (uvloop's may fire up to that much early, and
#: then the timer is armed again, for at least this long).
TIMER_RESOLUTION_S = 0.001
#: How long `_candidates` keeps its choice: choosing on every lend and release was a visible
#: share of the loop's CPU per request; stalls are judged in tens of milliseconds anyway.
CANDIDATES_FOR_S = 0.001


class InstanceSource(Protocol):
    """What a pool needs from the supervisor."""

    def reserve_slot(self, pool: Pool) -> bool: ...

    def release_slot(self) -> None: ...

    def note_busy(self) -> None:
        """An instance is about to run an invocation (the memory watchdog wakes for it)."""
        ...

    def note_idle(self) -> None:
        """An instance went idle: a pool whose callers wait for a slot may take it now."""
        ...

    async def start_instance(self, pool: Pool) -> Instance: ...


class _Lease:
    __slots__ = ("deadline", "instance", "pool")

    def __init__(self, pool: Pool, deadline: float) -> None:
        self.pool = pool
        self.deadline = deadline
        self.instance: Instance | None = None

    async def __aenter__(self) -> Instance:
        instance = await self.pool.wait_for_instance(self.deadline)
        self.instance = instance
        return instance

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.instance is not None:
            self.pool.release(self.instance)


#: Gets the instance lent by `Pool.lend`, or the refusal (Throttled, InvocationFailed).
LendCallback = Callable[[Instance | UnkaiError], None]


#: A caller waiting for an instance: its callback, and its deadline (a `time.monotonic()`
#: value). A plain tuple: most requests wait for an instance under sustained load, and an
#: object with a method cost a visible share of the gateway's per-request CPU.
_Waiter = tuple[LendCallback, float]


class Pool:
    def __init__(self, spec: InstanceSpec, source: InstanceSource, cpus: int = 1) -> None:
        self.spec = spec
        #: The node's CPUs (`scaler.useful_instances`).
        self.cpus = cpus
        self.idle: list[Instance] = []
        #: In start order, which picks the instances that take queued calls (`_candidates`).
        self.instances: dict[Instance, None] = {}
        self.starting = 0
        self.closed = False
        self._source = source
        self._waiters: collections.deque[_Waiter] = collections.deque()
        #: One timer refuses waiters at their deadlines (see `_expire_due`), and when it fires.
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = 0.0
        #: True while the waiters' deadlines never decrease from the first to the last (every
        #: caller gives now + the function's timeout), so the due ones are at the front.
        self._in_order = True
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Set once a retired pool has no instance left (see `retire`).
        self._drained: asyncio.Event | None = None
        #: Calls one instance may hold (1: nothing is queued), and how many busy instances
        #: make the pool queue rather than wake another; both from the last window's figures.
        self._depth = 1
        self._useful = 0
        self._window = 0
        self._window_short = 0
        self._window_busy = 0
        self._window_ms = 0.0
        self._window_cpu_ms = 0.0
        #: Calls handed back unstarted by a failed instance and lent again (`lend_again`).
        self.handed_back = 0
        #: `_candidates`' last choice and when it was made.
        self._chosen: list[Instance] = []
        self._chosen_at = -1.0
        #: Serves waiters parked while queueing if every busy instance stalls (`_unstall`).
        self._stall_timer: asyncio.TimerHandle | None = None

    def acquire(self, deadline: float) -> _Lease:
        """An async context manager lending one instance until the block ends."""
        return _Lease(self, deadline)

    def take_idle(self) -> Instance | None:
        """The most recently used idle instance, dropping any that died while idle."""
        idle = self.idle
        while idle:
            instance = idle.pop()
            if instance.state is InstanceState.READY or instance.state is InstanceState.STARTING:
                self._source.note_busy()
                instance.lent = 1
                return instance
            self._discard(instance)
        return None

    def lend(self, deadline: float, callback: LendCallback) -> None:
        """Give `callback` an instance: an idle one now, else the first to free up before
        `deadline` (a `time.monotonic()` value), else `Throttled` at the deadline.

        The callback runs synchronously when an instance is idle, so the warm path costs no
        task and no loop turn. A lent instance goes back with `release`. While the pool
        queues (see the module docstring) the instance may be busy with earlier calls.
        """
        if self._depth > 1:
            candidates = self._candidates(time.monotonic())
            if candidates:
                target = self._emptiest(candidates)
                if target is not None:
                    callback(target)
                    return
                # Each candidate holds its fill; the first to release takes this call.
                self._park(deadline, callback)
                if len(candidates) < self._useful:
                    self._fill(len(candidates))
                if self._stall_timer is None:
                    self._arm_stall_check()
                return
        instance = self.take_idle()
        if instance is not None:
            callback(instance)
            return
        if self.closed:
            callback(InvocationFailed("Runtime.Retired", f"{self.spec.version_key} was retired"))
            return
        self._park(deadline, callback)
        self._scale()

    def lend_again(self, callback: LendCallback) -> None:
        """`lend` for a call handed back unstarted: queued on an instance that failed before
        it began (see `Instance._hand_back_unstarted`)."""
        self.handed_back += 1
        self.lend(time.monotonic() + self.spec.timeout_s, callback)

    def _candidates(self, now: float) -> list[Instance]:
        """The instances that take calls while the pool queues: the first `_useful` warm
        ones in start order, idle or busy, that are not stalled. A fixed order lets the
        others run out of calls and go idle (then keep-alive stops them); a cold instance
        is left out, as its first invocation waits for its init."""
        if now - self._chosen_at < CANDIDATES_FOR_S:
            return self._chosen
        useful = self._useful
        chosen: list[Instance] = []
        for instance in self.instances:
            state = instance.state
            if state is InstanceState.READY or (
                state is InstanceState.BUSY
                and instance.invocations
                and now - instance.started_at < scaler.STALLED_AFTER_S
            ):
                chosen.append(instance)
                if len(chosen) == useful:
                    break
        self._chosen, self._chosen_at = chosen, now
        return chosen

    def _choose_again(self) -> None:
        """Instances came or went, or the figures changed: `_candidates` looks again."""
        self._chosen_at = -1.0

    def _emptiest(self, candidates: list[Instance]) -> Instance | None:
        """Lend the candidate holding the fewest calls, if it has room for one more (one
        that failed since `_candidates` chose it is passed over)."""
        target: Instance | None = None
        for candidate in candidates:
            state = candidate.state
            if (state is InstanceState.READY or state is InstanceState.BUSY) and (
                target is None or candidate.lent < target.lent
            ):
                target = candidate
        if target is None or target.lent >= self._depth:
            return None
        if target.lent == 0:
            if target in self.idle:  # a free instance waits there (it always should)
                self.idle.remove(target)
            self._source.note_busy()
        target.lent += 1
        return target

    def _park(self, deadline: float, callback: LendCallback) -> None:
        waiters = self._waiters
        if not waiters:
            self._in_order = True
        elif deadline < waiters[-1][1]:
            self._in_order = False
        waiters.append((callback, deadline))
        if self._expiry is None or deadline < self._expiry_at:
            self._arm_expiry(deadline)

    def _arm_stall_check(self) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._stall_timer = loop.call_later(scaler.STALLED_AFTER_S, self._unstall)

    def _unstall(self) -> None:
        """Waiters parked while queueing: if the candidates stalled meanwhile (a call that
        turned out slow), idle or new instances take the waiters instead."""
        self._stall_timer = None
        waiters = self._waiters
        if not waiters or self.closed:
            return
        if self._depth > 1:
            candidates = self._candidates(time.monotonic())
            if candidates:
                self._queue_waiters(candidates)
                return
        while waiters:
            instance = self.take_idle()
            if instance is None:
                break
            waiters.popleft()[0](instance)
        if waiters:
            self._scale()

    def _queue_waiters(self, candidates: list[Instance]) -> None:
        waiters = self._waiters
        while waiters:
            target = self._emptiest(candidates)
            if target is None:
                if len(candidates) < self._useful:
                    self._fill(len(candidates))
                self._arm_stall_check()
                return
            waiters.popleft()[0](target)

    def _arm_expiry(self, deadline: float) -> None:
        """One timer for all waiters, not one each: under sustained load every request waits
        for an instance, and a timer scheduled and cancelled per request was a visible share
        of the gateway's CPU. It fires at the earliest deadline and re-arms for the next."""
        if self._expiry is not None:
            self._expiry.cancel()
        loop = self._loop
        if loop is None:
            # Kept: asyncio.get_running_loop() costs a getpid() syscall on every call.
            loop = self._loop = asyncio.get_running_loop()
        self._expiry_at = deadline
        delay = deadline - time.monotonic()
        self._expiry = loop.call_later(
            delay if delay <= 0 or delay >= TIMER_RESOLUTION_S else TIMER_RESOLUTION_S,
            self._expire_due,
        )

    async def wait_for_instance(self, deadline: float) -> Instance:
        """`lend` for callers that await; raises what `lend` would hand over as a refusal."""
        future: asyncio.Future[Instance | UnkaiError] = asyncio.get_running_loop().create_future()

        def deliver(outcome: Instance | UnkaiError) -> None:
            if future.done():  # the caller was cancelled: give the instance back
                if isinstance(outcome, Instance):
                    self.release(outcome)
            else:
                future.set_result(outcome)

        self.lend(deadline, deliver)
        outcome = await future
        if isinstance(outcome, UnkaiError):
            raise outcome
        return outcome

    def _expire_due(self) -> None:
        """Refuse the waiters whose deadline has come (in order), and re-arm for the rest.

        In order, the due waiters are taken from the front, so an overloaded pool whose
        waiters time out one by one pays for each once, not for the whole queue each time."""
        self._expiry = None
        now = time.monotonic()
        waiters = self._waiters
        due: list[_Waiter] = []
        if self._in_order:
            while waiters and waiters[0][1] <= now:
                due.append(waiters.popleft())
        else:
            due = [w for w in waiters if w[1] <= now]
            if due:
                self._waiters = waiters = collections.deque(w for w in waiters if w[1] > now)
        if waiters:
            self._arm_expiry(waiters[0][1] if self._in_order else min(w[1] for w in waiters))
        for callback, _ in due:
            try:
                callback(
                    Throttled(
                        f"Rate Exceeded. No instance of {self.spec.function_name} became free "
                        "in time; the node is at its instance limit (--max-instances)",
                        reason="ConcurrentInvocationLimitExceeded",
                    )
                )
            except Exception:  # boundary: one caller's bug must not strand the other waiters
                log.exception("refusing a waiter of %s failed", self.spec.version_key)

    def _fill(self, warm: int) -> None:
        """Start instances for the callers that wait, until `_useful` are warm or starting
        (not one per waiter beyond that: while the pool queues, the candidates serve the
        waiters meanwhile). Only for callers that wait: a start may stop another function's
        idle instance to make room."""
        for _ in range(min(self._useful - warm, len(self._waiters)) - self.starting):
            if not self._start():
                return

    def _scale(self) -> None:
        waiting = len(self._waiters)
        for _ in range(scaler.instances_to_start(waiting=waiting, starting=self.starting)):
            if not self._start():
                return

    def _start(self) -> bool:
        """Start one instance if the node has a slot for it."""
        if not self._source.reserve_slot(self):
            return False
        self.starting += 1
        task = asyncio.get_running_loop().create_task(self._start_one())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _start_one(self) -> None:
        try:
            instance = await self._source.start_instance(self)
        except Exception as error:  # boundary: a failed start fails one waiter, not the pool
            self.starting -= 1
            self._source.release_slot()
            self._note_if_drained()
            self._fail_one_waiter(
                InvocationFailed("Runtime.StartFailed", f"could not start an instance: {error}")
            )
            return
        self.starting -= 1
        self.instances[instance] = None
        self._choose_again()
        if self.closed:
            self._discard(instance)
            return
        self._source.note_busy()
        self._hand_over(instance)

    def _fail_one_waiter(self, error: UnkaiError) -> None:
        if self._waiters:
            self._waiters.popleft()[0](error)

    def _hand_over(self, instance: Instance) -> None:
        if self._waiters:
            instance.lent += 1
            self._waiters.popleft()[0](instance)
        else:
            self.idle.append(instance)
            self._source.note_idle()

    def start_for_waiters(self) -> None:
        """The node had no slot when callers began to wait here (`reserve_slot` failed); one
        may be free now, or an idle instance of another pool may give up its slot."""
        if not self._waiters or self.closed:
            return
        if self._depth > 1:
            candidates = self._candidates(time.monotonic())
            if candidates:
                if len(candidates) < self._useful:
                    self._fill(len(candidates))
                return
        self._scale()

    def release(self, instance: Instance) -> None:
        """Return an instance after an invocation; a failed one is replaced if callers wait."""
        instance.lent -= 1
        self._sample(instance)
        state = instance.state
        if state is InstanceState.READY or state is InstanceState.BUSY:
            if self.closed:
                if instance.lent == 0:  # retired: stopped once its last call is back
                    self._discard(instance)
            elif self._depth > 1 and self._waiters and self._top_up(instance):
                pass  # topped up from the waiters, or idle while the candidates serve them
            elif instance.lent == 0:
                self._hand_over(instance)
            return
        self._discard(instance)
        if self._waiters and not self.closed:
            self._scale()

    def _top_up(self, instance: Instance) -> bool:
        """While the pool queues, a candidate takes waiters up to the queue depth, whether or
        not it still holds other calls; any other instance goes idle once it is free, as the
        candidates serve the waiters. False when there is no candidate (all stalled)."""
        candidates = self._candidates(time.monotonic())
        if not candidates:
            return False
        waiters = self._waiters
        if instance in candidates:
            while waiters and instance.lent < self._depth:
                instance.lent += 1
                waiters.popleft()[0](instance)
                if instance.state is not InstanceState.BUSY:
                    break  # it failed at once (see `Instance._queue`)
        if instance.lent == 0:
            self.idle.append(instance)
            self._source.note_idle()
        return True

    def _sample(self, instance: Instance) -> None:
        """Count the short invocations of a window and decide whether to queue. A count,
        not a mean: one invocation slowed by a busy machine must not flip the decision."""
        self._window += 1
        duration_ms = instance.last_duration_ms
        if duration_ms < scaler.QUEUE_BELOW_MS:
            cpu_ms = instance.last_cpu_ms
            self._window_short += 1
            self._window_busy += cpu_ms * 2 >= duration_ms
            self._window_ms += duration_ms
            self._window_cpu_ms += cpu_ms
        if self._window < scaler.SAMPLE_WINDOW:
            return
        short = self._window_short
        if (
            scaler.mostly_short(short, self._window)
            and instance.queues_invocations
            and not self.closed
        ):
            self._choose_again()
            self._depth = scaler.QUEUE_DEPTH
            self._useful = scaler.useful_instances(
                self._window_busy, short, self._window_ms, self._window_cpu_ms, self.cpus
            )
        else:
            self._depth = 1
        self._window, self._window_short, self._window_busy = 0, 0, 0
        self._window_ms, self._window_cpu_ms = 0.0, 0.0

    def _discard(self, instance: Instance) -> None:
        if instance in self.instances:
            del self.instances[instance]
            self._choose_again()
            instance.stop()
            self._source.release_slot()
        self._note_if_drained()

    def _note_if_drained(self) -> None:
        if self._drained is not None and not self.instances and not self.starting:
            self._drained.set()

    def stop_idle(self, count: int | None = None) -> int:
        """Stop the `count` oldest idle instances (all when None); returns how many."""
        victims = self.idle[: len(self.idle) if count is None else count]
        del self.idle[: len(victims)]
        for instance in victims:
            self._discard(instance)
        return len(victims)

    def reap(self, now: float, keep_alive_s: float) -> int:
        """Stop idle instances older than keep-alive (scale to zero)."""
        count = scaler.expired_count([i.last_used for i in self.idle], now, keep_alive_s)
        return self.stop_idle(count) if count else 0

    def retire(self) -> None:
        """The version was replaced or removed: take no more work, stop the idle instances,
        and let the busy ones finish their invocation (each is stopped when it comes back),
        as Lambda lets running invocations of an old version end. `wait_drained` tells when
        the last one is gone; callers still waiting for an instance get `Runtime.Retired`."""
        self._drained = asyncio.Event()
        self._shut()
        self._note_if_drained()

    async def wait_drained(self) -> None:
        """Until a retired pool's last instance is gone. Bounded: a busy instance is killed
        at its invocation's deadline, the latest a retired pool can hold one."""
        if self._drained is not None:
            await self._drained.wait()

    def close(self) -> None:
        """Stop everything now (shutdown); busy instances are killed, waiters fail."""
        self._shut()
        for instance in list(self.instances):
            self._discard(instance)

    def _shut(self) -> None:
        self.closed = True
        self._depth = 1
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self.stop_idle()
        while self._waiters:
            self._waiters.popleft()[0](
                InvocationFailed(
                    "Runtime.Retired", f"{self.spec.function_name} was redeployed; retry"
                )
            )

    def busy(self) -> list[Instance]:
        return [i for i in self.instances if i.state is InstanceState.BUSY]

    def stats(self) -> dict[str, Any]:
        return {
            "idle": len(self.idle),
            "total": len(self.instances),
            "starting": self.starting,
            "waiting": len(self._waiters),
            "queue_depth": self._depth,
            "handed_back": self.handed_back,
        }
