"""Lambda's response shapes, from `FunctionView`s (botocore's model
`botocore/data/lambda/2015-03-31/service-2.json`, shapes FunctionConfiguration,
GetFunctionResponse, FunctionEventInvokeConfig, EventSourceMappingConfiguration,
AliasConfiguration).

Deploys are synchronous here, so a function is `Active` with `LastUpdateStatus: Successful`
as soon as the call that made or changed it answers; boto3's waiters (`function_active_v2`,
`function_updated_v2`, `function_exists`) finish on their first poll.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from unkai.config.async_config import AsyncConfig
from unkai.deploy.api_functions import FunctionView
from unkai.deploy.event_source_mappings import MappingView
from unkai.deploy.versions import LATEST, Alias


class Arns:
    """ARNs of this platform's region and account."""

    def __init__(self, *, region: str, account_id: str) -> None:
        self._lambda = f"arn:aws:lambda:{region}:{account_id}:"
        self._sqs = f"arn:aws:sqs:{region}:{account_id}:"

    def function(self, name: str, qualifier: str | None = None) -> str:
        return self._lambda + "function:" + name + (f":{qualifier}" if qualifier else "")

    def event_source_mapping(self, uuid: str) -> str:
        return self._lambda + "event-source-mapping:" + uuid

    def queue(self, name: str) -> str:
        """As QueueService.arn: queues are the platform's, in its region and account."""
        return self._sqs + name


def iso_timestamp(ms: int) -> str:
    """Lambda's LastModified: `2024-05-01T12:00:03.004+0000`."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}+0000"


def function_configuration(view: FunctionView, arns: Arns, *, qualified: bool) -> dict[str, Any]:
    """FunctionConfiguration; `qualified` reports the version number instead of `$LATEST`
    (GetFunction with a Qualifier, PublishVersion)."""
    v = view.version
    label = v.version if qualified else LATEST
    config: dict[str, Any] = {
        "FunctionName": v.name,
        "FunctionArn": arns.function(v.name, v.version if qualified else None),
        "Runtime": v.runtime,
        "Role": view.role,
        "Handler": v.handler,
        "CodeSize": view.code_size_bytes,
        "Description": v.description,
        "Timeout": v.timeout_s,
        "MemorySize": v.memory_size_mb,
        "LastModified": iso_timestamp(view.last_modified_ms),
        "CodeSha256": base64.b64encode(bytes.fromhex(view.code_sha256)).decode(),
        "Version": label,
        "TracingConfig": {"Mode": "PassThrough"},
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": list(view.architectures),
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{v.name}"},
    }
    if v.environment:
        config["Environment"] = {"Variables": dict(v.environment)}
    if v.async_config.dead_letter:
        config["DeadLetterConfig"] = {"TargetArn": v.async_config.dead_letter}
    return config


def get_function(
    view: FunctionView, arns: Arns, *, qualified: bool, code_location: str
) -> dict[str, Any]:
    """GetFunctionResponse: the configuration, where the code is, and the reserved
    concurrency (only when one is set, as Lambda leaves it out)."""
    answer: dict[str, Any] = {
        "Configuration": function_configuration(view, arns, qualified=qualified),
        "Code": {"RepositoryType": "S3", "Location": code_location},
    }
    if view.version.reserved_concurrency is not None:
        answer["Concurrency"] = {"ReservedConcurrentExecutions": view.version.reserved_concurrency}
    return answer


def event_invoke_config(view: FunctionView, arns: Arns) -> dict[str, Any]:
    """FunctionEventInvokeConfig. Its LastModified is a timestamp (epoch seconds in JSON)."""
    config = view.version.async_config
    answer: dict[str, Any] = {
        "LastModified": view.last_modified_ms / 1000,
        "FunctionArn": arns.function(view.version.name, LATEST),
        "MaximumRetryAttempts": config.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": config.maximum_event_age_s,
        "DestinationConfig": {},
    }
    for key, target in (("OnSuccess", config.on_success), ("OnFailure", config.on_failure)):
        if target:
            answer["DestinationConfig"][key] = {"Destination": target}
    return answer


def has_event_invoke_config(config: AsyncConfig) -> bool:
    """Lambda answers GetFunctionEventInvokeConfig with ResourceNotFoundException until one
    is put; here, until the settings differ from the defaults (the dead-letter queue is
    DeadLetterConfig, not part of it)."""
    defaults = AsyncConfig()
    return (
        config.maximum_retry_attempts,
        config.maximum_event_age_s,
        config.on_success,
        config.on_failure,
    ) != (
        defaults.maximum_retry_attempts,
        defaults.maximum_event_age_s,
        defaults.on_success,
        defaults.on_failure,
    )


def event_source_mapping(
    view: MappingView, arns: Arns, *, state: str | None = None
) -> dict[str, Any]:
    """EventSourceMappingConfiguration of a queue mapping. Changes are deployed before the
    call answers, so State is the outcome (`Enabled`, `Disabled`) rather than Lambda's
    `Creating`/`Updating`; a delete answers `Deleting`, as Lambda does. LastModified is a
    timestamp (epoch seconds in JSON)."""
    mapping = view.mapping
    config = mapping.config
    answer: dict[str, Any] = {
        "UUID": mapping.uuid,
        "BatchSize": config.batch_size,
        "MaximumBatchingWindowInSeconds": config.maximum_batching_window_s,
        "EventSourceArn": arns.queue(mapping.queue),
        "FunctionArn": arns.function(view.function),
        "LastModified": mapping.last_modified_ms / 1000,
        "State": state or ("Enabled" if config.enabled else "Disabled"),
        "StateTransitionReason": "USER_INITIATED",
        "FunctionResponseTypes": (
            ["ReportBatchItemFailures"] if config.report_batch_item_failures else []
        ),
        "EventSourceMappingArn": arns.event_source_mapping(mapping.uuid),
    }
    if config.maximum_concurrency is not None:
        answer["ScalingConfig"] = {"MaximumConcurrency": config.maximum_concurrency}
    return answer


def alias_configuration(function: str, alias: Alias, arns: Arns) -> dict[str, Any]:
    """AliasConfiguration; RoutingConfig only when the alias has an additional version."""
    answer: dict[str, Any] = {
        "AliasArn": arns.function(function, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.additional_version is not None:
        weights = {alias.additional_version: alias.additional_weight}
        answer["RoutingConfig"] = {"AdditionalVersionWeights": weights}
    return answer
