"""`Supervisor`: owns the zygotes, the pools, the node-wide instance cap, the idle reaper and
the memory watchdog. The invoker asks it for a pool; nothing else starts or stops processes.

- Cap: at most `max_instances` instances (starting or alive) on the node. A pool that needs
  one more at the cap takes the slot of the least recently used idle instance of any pool;
  with none idle, it is asked again when an instance anywhere goes idle or stops.
- Zygotes: new instances fork from the base zygote. Once an instance of a version reports the
  modules its handler pulled in, a per-version zygote preloads them (when `preload_zygotes`),
  and later instances of that version fork from it.
- Reaper: idle instances older than `keep_alive_s` stop (scale to zero); version zygotes stay
  until the version is retired, so a later cold start is still cheap.
- Watchdog: while instances are busy, their resident set is sampled every WATCHDOG_INTERVAL_S
  and an instance over its memory size is killed (Runtime.OutOfMemory). With none busy it
  sleeps until a pool lends one (`note_busy`): an idle node does not wake 67 times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
from typing import Any, Protocol

from unkai.runtime.custom import CustomInstance, is_custom_runtime
from unkai.runtime.environment import function_environment, instance_environment, log_stream_name
from unkai.runtime.instance import Instance
from unkai.runtime.limits import WATCHDOG_INTERVAL_S, over_memory_size
from unkai.runtime.pool import Pool
from unkai.runtime.spec import InstanceSpec
from unkai.runtime.zygote import Zygote, ZygoteError

log = logging.getLogger("unkai.runtime")

#: A cold start waits at most this long for its version's zygote to finish preloading.
ZYGOTE_WAIT_S = 5.0
#: At close, how long a killed custom runtime gets to be reaped.
EXIT_WAIT_S = 2.0


class LogSink(Protocol):
    def __call__(
        self,
        *,
        stage: str,
        function: str,
        stream: str,
        message: str,
        request_id: str | None = None,
        timestamp_ms: int | None = None,
    ) -> None: ...


class OutputSink(Protocol):
    """Takes what an invocation printed while it runs (LogService.record_output)."""

    def __call__(
        self,
        *,
        stage: str,
        function: str,
        stream: str,
        request_id: str,
        version: str,
        started_ms: int,
        text: str,
    ) -> None: ...


class Supervisor:
    def __init__(
        self,
        *,
        max_instances: int,
        keep_alive_s: float,
        preload_zygotes: bool,
        on_log: LogSink,
        on_output: OutputSink | None = None,
        cpus: int = 1,
    ) -> None:
        self.max_instances = max_instances
        self.cpus = cpus
        self.keep_alive_s = keep_alive_s
        self.preload_zygotes = preload_zygotes
        self._on_log = on_log
        self._on_output = on_output
        self._pools: dict[str, Pool] = {}
        self._slots_used = 0
        #: Pools whose callers wait because `reserve_slot` found no slot (in order, once each).
        self._blocked: dict[Pool, None] = {}
        self._retry_scheduled = False
        self._base: Zygote | None = None
        self._version_zygotes: dict[str, Zygote] = {}
        #: Version zygotes being forked; set when the attempt ends (ready or failed).
        self._zygotes_starting: dict[str, asyncio.Event] = {}
        #: Versions whose handler imported nothing worth a zygote: fork them from the base.
        self._nothing_to_preload: set[str] = set()
        self._by_pid: dict[int, Instance] = {}
        self._environments: dict[str, dict[str, str]] = {}
        #: Running instances of custom runtimes, awaited at close (their processes are ours).
        self._custom: set[CustomInstance] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Pools of replaced versions whose busy instances are finishing (see `retire`).
        self._retiring: set[Pool] = set()
        self._base_lock = asyncio.Lock()
        self._closing = False
        #: Set by `note_busy`; the watchdog waits on it while no instance is busy.
        self._busy = asyncio.Event()

    async def start(self) -> None:
        self._base = await Zygote.start_base(self._on_exit)
        self._spawn(self._reap_forever())
        self._spawn(self._watch_memory_forever())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def pool_for(self, spec: InstanceSpec) -> Pool:
        pool = self._pools.get(spec.version_key)
        if pool is None:
            pool = self._pools[spec.version_key] = Pool(spec, self, self.cpus)
        return pool

    # -- InstanceSource, used by pools ------------------------------------------------------

    def reserve_slot(self, pool: Pool) -> bool:
        if self._slots_used < self.max_instances:
            self._slots_used += 1
            return True
        victim = self._least_recently_used_idle(exclude=pool)
        if victim is None:
            self._blocked[pool] = None  # asked again once a slot frees or an instance idles
            return False
        victim.stop_idle(1)  # releases a slot
        self._slots_used += 1
        return True

    def release_slot(self) -> None:
        self._slots_used -= 1
        self.note_idle()

    def note_idle(self) -> None:
        """Called for every instance that goes idle: keep it to one check. A pool that found
        the node at its cap, with nothing idle to take the slot of, had its callers wait
        for an instance of their own pool only: with another function's instances busy at
        that moment and idle a little later, they waited until their deadline (a queue's
        batch then outlived its visibility timeout and ran twice). Retried on the next
        turn of the loop, not here: this runs inside `reserve_slot`'s eviction too."""
        if self._blocked and not self._retry_scheduled:
            self._retry_scheduled = True
            asyncio.get_running_loop().call_soon(self._retry_blocked)

    def _retry_blocked(self) -> None:
        self._retry_scheduled = False
        pools = list(self._blocked)
        self._blocked.clear()
        for pool in pools:
            pool.start_for_waiters()  # one still at the cap is blocked again

    def note_busy(self) -> None:
        """Called for every invocation a pool hands to an instance: keep it to one check."""
        if not self._busy.is_set():
            self._busy.set()

    def _least_recently_used_idle(self, exclude: Pool) -> Pool | None:
        """Asked on every request that waits while the node is at its cap: a plain loop."""
        victim: Pool | None = None
        oldest = 0.0
        for pool in self._pools.values():
            if pool.idle and pool is not exclude:
                last_used = pool.idle[0].last_used
                if victim is None or last_used < oldest:
                    victim, oldest = pool, last_used
        return victim

    async def start_instance(self, pool: Pool) -> Instance:
        spec = pool.spec
        if is_custom_runtime(spec.runtime):
            return await self._start_custom(spec)
        instance = Instance(spec, log_stream_name(spec.version, ""), self._instance_log)
        instance.log_stream = log_stream_name(spec.version, instance.id)
        request = self._spawn_request(spec, instance)
        starting = self._zygotes_starting.get(spec.version_key)
        if starting is not None:
            # Its zygote is importing the version's modules: forking from the base zygote now
            # would pay those imports again, so wait for it (bounded) and fork from it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(starting.wait(), ZYGOTE_WAIT_S)
        zygote = self._version_zygotes.get(spec.version_key)
        if zygote is not None and not zygote.alive:
            # It died (with the base zygote it was forked from, say): preload again later.
            del self._version_zygotes[spec.version_key]
            self._spawn(zygote.close())
            zygote = None
        if zygote is None:
            zygote = await self._living_base()
        ours, theirs = socket.socketpair()
        output_r, output_w = os.pipe()
        try:
            pid = await zygote.spawn(request, theirs.fileno(), output_w)
        except BaseException:
            os.close(output_r)
            raise
        finally:
            theirs.close()
            os.close(output_w)
        self._by_pid[pid] = instance
        await instance.connect(ours, pid, output_r)
        if zygote.wants_lessons:
            instance.on_first_result = functools.partial(self._lesson, zygote, instance)
        key = spec.version_key
        if (
            self.preload_zygotes
            and key not in self._version_zygotes
            and key not in self._zygotes_starting
            and key not in self._nothing_to_preload
        ):
            # Registered now, not after init: cold starts from here on wait for the zygote
            # instead of importing the version's modules once more each.
            self._zygotes_starting[key] = asyncio.Event()
            self._spawn(self._preload_when_ready(instance))
        return instance

    @staticmethod
    def _lesson(zygote: Zygote, instance: Instance, pid: int) -> None:
        """An instance served its first result: its zygote may learn which pages a start
        copies (prefault.py). Not from one whose init imported modules the zygote lacks:
        its pages are its version's (that version gets a zygote of its own), not the start's."""
        if not instance.preload_modules:
            zygote.learn_from(pid)

    async def _start_custom(self, spec: InstanceSpec) -> Instance:
        """A `provided` function: its `bootstrap` runs as a plain child process (custom.py)."""
        instance = CustomInstance(spec, log_stream_name(spec.version, ""), self._instance_log)
        instance.log_stream = log_stream_name(spec.version, instance.id)
        env = instance_environment(self._function_environment(spec), instance.log_stream)
        env.pop("AWS_EXECUTION_ENV", None)  # Lambda sets it for managed runtimes only
        await instance.start(env)
        self._custom.add(instance)
        instance.exit_future.add_done_callback(lambda _: self._custom.discard(instance))
        return instance

    def _function_environment(self, spec: InstanceSpec) -> dict[str, str]:
        env = self._environments.get(spec.version_key)
        if env is None:
            env = self._environments[spec.version_key] = function_environment(spec)
        return env

    async def _living_base(self) -> Zygote:
        """The base zygote, started again if it died (the OOM killer, a handler signalling
        its parent's parent): without it no instance could start until a restart."""
        base = self._base
        if base is not None and base.alive:
            return base
        async with self._base_lock:
            if self._closing:
                raise ZygoteError("the platform is shutting down")
            if self._base is None or not self._base.alive:
                lost, self._base = self._base, None
                if lost is not None:
                    log.warning("the base zygote (pid %s) is gone; starting a new one", lost.pid)
                    await lost.close()  # reaps it
                started = await Zygote.start_base(self._on_exit)
                if self._closing:  # shut down meanwhile: nobody would close it
                    await started.close()
                    raise ZygoteError("the platform is shutting down")
                self._base = started
            return self._base

    def _spawn_request(self, spec: InstanceSpec, instance: Instance) -> dict[str, Any]:
        env = self._function_environment(spec)
        sys_path = [str(spec.task_root)]
        if spec.deps_dir is not None:
            sys_path.append(str(spec.deps_dir))
        return {
            "id": instance.id,
            "role": "instance",
            "env": instance_environment(env, instance.log_stream),
            "task_root": str(spec.task_root),
            "sys_path": sys_path,
            "memory_size_mb": spec.memory_size_mb,
            "function_arn": spec.function_arn,
        }

    async def _preload_when_ready(self, instance: Instance) -> None:
        """After the version's first instance ran its init, fork a zygote with its modules."""
        key = instance.spec.version_key
        try:
            if not await instance.wait_initialized():
                return  # init failed or the instance died: the next instance tries again
            modules = instance.preload_modules
            if not modules:
                self._nothing_to_preload.add(key)
            if not modules or key in self._version_zygotes or key not in self._pools:
                return
            request = self._spawn_request(instance.spec, instance)
            request.update(id=f"zygote-{instance.id}", modules=modules)
            request["env"].pop("AWS_LAMBDA_LOG_STREAM_NAME", None)
            zygote = await (await self._living_base()).spawn_zygote(request, key)
            if key in self._pools:
                self._version_zygotes[key] = zygote
            else:
                await zygote.close()
        except ZygoteError as error:
            log.warning("could not start a zygote for %s: %s", key, error)
        finally:
            event = self._zygotes_starting.pop(key, None)
            if event is not None:
                event.set()

    def _instance_log(self, instance: Instance, request_id: str | None, text: str) -> None:
        spec = instance.spec
        if request_id is not None and self._on_output is not None:
            self._on_output(
                stage=spec.stage,
                function=spec.function_name,
                stream=instance.log_stream,
                request_id=request_id,
                version=spec.version,
                started_ms=instance.started_wall_ms,
                text=text,
            )
            return
        self._on_log(
            stage=spec.stage,
            function=spec.function_name,
            stream=instance.log_stream,
            message=text,
            request_id=request_id,
        )

    def _on_exit(self, pid: int, status: int) -> None:
        instance = self._by_pid.pop(pid, None)
        if instance is not None:
            instance.exited(status)

    # -- background work ----------------------------------------------------------------------

    async def _reap_forever(self) -> None:
        interval_s = min(1.0, max(0.05, self.keep_alive_s / 4))
        while True:
            await asyncio.sleep(interval_s)
            now = time.monotonic()
            for pool in list(self._pools.values()):
                pool.reap(now, self.keep_alive_s)

    async def _watch_memory_forever(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL_S)
            watched = False
            for pool in [*self._pools.values(), *self._retiring]:
                if len(pool.idle) == len(pool.instances) and not pool.starting:
                    continue
                watched = True
                for instance in pool.busy():
                    self._check_memory(instance)
            if not watched:
                # Nothing busy or starting: sleep until a pool lends an instance. Cleared
                # first, so a lend from now on (even before the wait) wakes it.
                self._busy.clear()
                await self._busy.wait()

    @staticmethod
    def _check_memory(instance: Instance) -> None:
        rss_kb = instance.sample_rss_kb()
        if rss_kb is None:
            return
        instance.last_rss_kb = max(instance.last_rss_kb, rss_kb)
        if over_memory_size(rss_kb, instance.spec.memory_size_mb):
            instance.kill("memory")

    # -- control ------------------------------------------------------------------------------

    async def retire(self, version_key: str) -> None:
        """The version is gone or replaced: no new invocations reach it; its idle instances
        stop now, busy ones when their invocation ends, then its zygote (whose children they
        may be) goes too. Returns at once; the drain runs in the background."""
        pool = self._pools.pop(version_key, None)
        self._environments.pop(version_key, None)
        self._nothing_to_preload.discard(version_key)
        zygote = self._version_zygotes.pop(version_key, None)
        if pool is not None:
            pool.retire()
            self._retiring.add(pool)
        self._spawn(self._finish_retiring(pool, zygote))

    async def _finish_retiring(self, pool: Pool | None, zygote: Zygote | None) -> None:
        try:
            if pool is not None:
                await pool.wait_drained()
        finally:
            if pool is not None:
                self._retiring.discard(pool)
            if zygote is not None:
                await zygote.close()

    async def drain_function(self, stage: str, function: str) -> int:
        """Stop the function's idle instances (its zygotes stay): the next call is cold."""
        return sum(
            p.stop_idle()
            for p in self._pools.values()
            if p.spec.stage == stage and p.spec.function_name == function
        )

    async def drain(self, version_key: str) -> int:
        """Stop the version's idle instances (its zygote stays); returns how many stopped.

        Busy instances finish their invocation. Used by tests and benchmarks to force the
        next invocation to be a cold start.
        """
        pool = self._pools.get(version_key)
        return pool.stop_idle() if pool is not None else 0

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-pool counts keyed by version key, plus the version zygote's pid (or None)."""
        found: dict[str, dict[str, Any]] = {}
        for key, pool in self._pools.items():
            zygote = self._version_zygotes.get(key)
            found[key] = {**pool.stats(), "zygote_pid": zygote.pid if zygote else None}
        return found

    def instances(self) -> list[dict[str, Any]]:
        return [
            {
                "id": i.id,
                "function": i.spec.function_name,
                "stage": i.spec.stage,
                "version": i.spec.version,
                "pid": i.pid,
                "state": i.state.value,
                "invocations": i.invocations,
            }
            for pool in [*self._pools.values(), *self._retiring]
            for i in pool.instances
        ]

    def zygotes(self) -> list[dict[str, Any]]:
        zygotes: list[tuple[str | None, Zygote]] = []
        if self._base is not None:
            zygotes.append((None, self._base))
        zygotes.extend(self._version_zygotes.items())
        return [
            {
                "pid": z.pid,
                "version_key": key,
                "prefault_pages": z.prefault_pages,
                "prefault_learned_from": z.learned_from,
                "spare_pid": z.spare_pid,
            }
            for key, z in zygotes
        ]

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for pool in [*self._pools.values(), *self._retiring]:
            pool.close()
        self._pools.clear()
        self._retiring.clear()
        for instance in list(self._custom):
            await instance.wait_closed(EXIT_WAIT_S)
        for zygote in list(self._version_zygotes.values()):
            await zygote.close()
        self._version_zygotes.clear()
        if self._base is not None:
            await self._base.close()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
