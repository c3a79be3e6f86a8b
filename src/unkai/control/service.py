"""The control plane: every operation the CLI and the dashboard perform, as plain calls.

Each method calls a core service (Deployer, Registry, Supervisor, LogService) and returns
JSON-ready data; `control/http.py` only maps HTTP onto these methods.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from unkai.access.keys import KeyService
from unkai.backends.base import LogRecord
from unkai.deploy.registry import Registry
from unkai.deploy.service import Deployer
from unkai.deploy.versions import SCHEDULE_METHOD, WEBSOCKET_METHOD, FunctionVersion
from unkai.events.queues import QueueService
from unkai.events.schedules import Scheduler
from unkai.observe.logs import LogService
from unkai.runtime.supervisor import Supervisor


def version_summary(version: FunctionVersion) -> dict[str, Any]:
    return {
        "name": version.name,
        "stage": version.stage,
        "service": version.service,
        "version": version.version,
        "handler": version.handler,
        "runtime": version.runtime,
        "memory_size_mb": version.memory_size_mb,
        "timeout_s": version.timeout_s,
        "reserved_concurrency": version.reserved_concurrency,
        "code_sha256": version.code_sha256,
        "description": version.description,
        "created_ms": version.created_ms,
    }


def log_record(record: LogRecord) -> dict[str, Any]:
    return dataclasses.asdict(record)


class ControlService:
    def __init__(
        self,
        deployer: Deployer,
        registry: Registry,
        supervisor: Supervisor,
        logs: LogService,
        keys: KeyService,
        scheduler: Scheduler,
        queues: QueueService,
        *,
        default_stage: str,
        base_url: str,
    ) -> None:
        self._deployer = deployer
        self._registry = registry
        self._supervisor = supervisor
        self._logs = logs
        self._keys = keys
        self._scheduler = scheduler
        self._queues = queues
        self.default_stage = default_stage
        self.base_url = base_url
        #: False until start-up (including the deploy `unkai up DIR` asked for) is done.
        self.ready = False

    def stage_url(self, stage: str) -> str:
        return self.base_url if stage == self.default_stage else f"{self.base_url}/{stage}"

    async def deploy(self, app_dir: str, stage: str | None, dry_run: bool) -> dict[str, Any]:
        stage = stage or self.default_stage
        result = await self._deployer.deploy(Path(app_dir).resolve(), stage, dry_run)
        doc = result.to_dict()
        routes = doc.get("routes", [])
        doc["endpoints"] = [
            f"{r['method']} {self.stage_url(stage)}{r['path']}"
            for r in routes
            if r["method"] not in (WEBSOCKET_METHOD, SCHEDULE_METHOD)
        ]
        if any(r["method"] == WEBSOCKET_METHOD for r in routes):
            ws_url = self.stage_url(stage).replace("http", "ws", 1)
            doc["endpoints"].append(f"WEBSOCKET {ws_url}")
        return doc

    async def remove(self, service: str, stage: str | None, dry_run: bool) -> dict[str, Any]:
        result = await self._deployer.remove(stage or self.default_stage, service, dry_run)
        return result.to_dict()

    async def functions(self, stage: str | None) -> list[dict[str, Any]]:
        return [version_summary(v) for v in await self._registry.list_functions(stage)]

    async def function_info(self, name: str, stage: str | None) -> dict[str, Any]:
        stage = stage or self.default_stage
        version = await self._registry.get_version(stage, name)
        routes = [
            {"method": r.method, "path": r.path, "url": self.stage_url(stage) + r.path}
            for r in await self._registry.routes(stage)
            if r.function == name
        ]
        instances = [
            i for i in self._supervisor.instances() if i["function"] == name and i["stage"] == stage
        ]
        return {**version_summary(version), "routes": routes, "instances": instances}

    async def drain(self, name: str, stage: str | None) -> dict[str, Any]:
        stage = stage or self.default_stage
        await self._registry.get_version(stage, name)
        stopped = await self._supervisor.drain_function(stage, name)
        return {"stopped": stopped}

    def instances(self) -> dict[str, Any]:
        return {"instances": self._supervisor.instances(), "zygotes": self._supervisor.zygotes()}

    async def logs(
        self,
        name: str,
        stage: str | None,
        *,
        since_ms: int | None,
        until_ms: int | None,
        request_id: str | None,
        contains: str | None,
        after_id: int,
        limit: int,
    ) -> dict[str, Any]:
        stage = stage or self.default_stage
        records = await self._logs.query(
            stage=stage,
            function=name,
            since_ms=since_ms,
            until_ms=until_ms,
            request_id=request_id,
            contains=contains,
            after_id=after_id,
            limit=limit,
            # A first page without a start time shows the latest records, like `aws logs tail`.
            newest=after_id == 0 and since_ms is None,
        )
        last = records[-1].id if records else after_id
        return {"records": [log_record(r) for r in records], "cursor": last}

    async def create_key(
        self, name: str, plan: str, stage: str | None, value: str | None
    ) -> dict[str, Any]:
        """A new API key; the answer is the only place its value ever appears."""
        record, secret = await self._keys.create(stage or self.default_stage, name, plan, value)
        return {**record.summary(), "value": secret}

    async def revoke_key(self, name: str, stage: str | None) -> dict[str, Any]:
        return (await self._keys.revoke(stage or self.default_stage, name)).summary()

    def keys(self, stage: str | None) -> list[dict[str, Any]]:
        return [record.summary() for record in self._keys.list(stage)]

    def schedules(self, stage: str | None) -> list[dict[str, Any]]:
        return self._scheduler.list(stage)

    async def set_schedule_enabled(
        self, name: str, stage: str | None, enabled: bool
    ) -> dict[str, Any]:
        return await self._scheduler.set_enabled(stage or self.default_stage, name, enabled)
