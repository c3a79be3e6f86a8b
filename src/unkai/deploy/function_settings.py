"""`FunctionSettings`: everything an API caller sets on a function, and the one-function
manifest (`unkai.yml`, docs/manifest.md) that deploys it (deploy/api_functions.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from unkai.config.async_config import AsyncConfig
from unkai.deploy.event_source_mappings import QueueMapping
from unkai.deploy.function_dirs import ApiAttributes
from unkai.deploy.versions import FunctionVersion

SERVICE_PREFIX = "lambda-"
DEFAULT_ARCHITECTURES = ("x86_64",)


def service_name(function: str) -> str:
    """`lambda-<function>`; a long name is shortened with a hash so it stays within 64."""
    name = SERVICE_PREFIX + function
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(function.encode()).hexdigest()[:8]
    return f"{SERVICE_PREFIX}{function[:48]}-{digest}"


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """Everything an API caller sets on a function: the manifest's fields (its queue
    mappings are `- sqs:` events) plus the two that only Lambda reports (`role`,
    `architectures`)."""

    handler: str
    runtime: str
    memory_size_mb: int = 128
    timeout_s: int = 3
    description: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    async_config: AsyncConfig = field(default_factory=AsyncConfig)
    role: str = ""
    architectures: tuple[str, ...] = DEFAULT_ARCHITECTURES
    queue_mappings: tuple[QueueMapping, ...] = ()

    @classmethod
    def of(
        cls,
        version: FunctionVersion,
        attributes: ApiAttributes | None,
        queue_mappings: tuple[QueueMapping, ...] = (),
    ) -> FunctionSettings:
        return cls(
            version.handler,
            version.runtime,
            version.memory_size_mb,
            version.timeout_s,
            version.description,
            dict(version.environment),
            version.reserved_concurrency,
            version.async_config,
            attributes.role if attributes is not None else "",
            attributes.architectures if attributes is not None else DEFAULT_ARCHITECTURES,
            queue_mappings,
        )

    def manifest(self, name: str) -> dict[str, Any]:
        """The `unkai.yml` (as data) that deploys this function alone (docs/manifest.md)."""
        spec: dict[str, Any] = {
            "handler": self.handler,
            "runtime": self.runtime,
            "memorySize": self.memory_size_mb,
            "timeout": self.timeout_s,
        }
        if self.description:
            spec["description"] = self.description
        if self.environment:
            spec["environment"] = dict(self.environment)
        if self.reserved_concurrency is not None:
            spec["reservedConcurrency"] = self.reserved_concurrency
        spec.update(_async_fields(self.async_config))
        if self.queue_mappings:
            spec["events"] = [m.manifest_event() for m in self.queue_mappings]
        return {"service": service_name(name), "functions": {name: spec}}


def _async_fields(config: AsyncConfig) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "maximumRetryAttempts": config.maximum_retry_attempts,
        "maximumEventAge": config.maximum_event_age_s,
    }
    destinations = {
        key: value
        for key, value in (("onSuccess", config.on_success), ("onFailure", config.on_failure))
        if value
    }
    if destinations:
        fields["destinations"] = destinations
    if config.dead_letter:
        fields["deadLetterQueue"] = config.dead_letter
    return fields
