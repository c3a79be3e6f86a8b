"""Lambda's function management operations (rest-json): CreateFunction, GetFunction,
GetFunctionConfiguration, ListFunctions, UpdateFunctionCode, UpdateFunctionConfiguration,
DeleteFunction, PublishVersion, Put/Get/DeleteFunctionConcurrency and
Put/Update/Get/DeleteFunctionEventInvokeConfig; the event source mapping operations are
lambda_mappings.py's and the alias operations lambda_aliases.py's, served through the same
`call`.

Thin: parse the request as botocore's model describes it
(https://docs.aws.amazon.com/lambda/latest/api/API_Operations.html), call `ApiFunctions`
(deploy/api_functions.py: every change is a deploy of a generated manifest), shape the answer
(lambda_shapes.py). Differences from Lambda, each because of how unkai keeps functions:
- every change of code or configuration publishes a numbered version (as `unkai deploy`
  does), so PublishVersion returns the latest one, and `Publish` only chooses whether the
  answer names it;
- the code comes as `Code.ZipFile` only (no S3), and its handler module must exist in it
  (unkai checks at deploy what Lambda finds at the first invoke);
- one asynchronous configuration per function, and reserved concurrency is per function as
  on Lambda: only GetFunction and GetFunctionConfiguration take a version qualifier.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from unkai.aws import lambda_requests as members
from unkai.aws import lambda_shapes as shapes
from unkai.aws.lambda_aliases import LambdaAliasesApi
from unkai.aws.lambda_mappings import LambdaMappingsApi
from unkai.aws.lambda_requests import Call, JsonAnswer, invalid
from unkai.aws.lambda_shapes import Arns
from unkai.config.async_config import AsyncConfig
from unkai.deploy.aliases import Aliases
from unkai.deploy.api_functions import ApiFunctions
from unkai.deploy.api_mappings import ApiMappings
from unkai.deploy.function_settings import FunctionSettings
from unkai.deploy.versions import LATEST
from unkai.errors import ConfigError, NotFound

#: The operations that act on one version; the others take no qualifier here.
QUALIFIED_OPERATIONS = frozenset({"GetFunction", "GetFunctionConfiguration"})
#: Lambda returns at most 50 functions a page, whatever MaxItems asks for.
MAX_LIST_ITEMS = 50
#: The API's member names of the manifest keys that errors from the deploy name.
API_FIELDS = {
    "handler": "Handler",
    "runtime": "Runtime",
    "memorySize": "MemorySize",
    "timeout": "Timeout",
    "description": "Description",
    "environment": "Environment.Variables",
    "reservedConcurrency": "ReservedConcurrentExecutions",
    "maximumRetryAttempts": "MaximumRetryAttempts",
    "maximumEventAge": "MaximumEventAgeInSeconds",
    "destinations.onSuccess": "DestinationConfig.OnSuccess.Destination",
    "destinations.onFailure": "DestinationConfig.OnFailure.Destination",
    "deadLetterQueue": "DeadLetterConfig.TargetArn",
}


Operation = Callable[[Call], Awaitable[JsonAnswer]]


class LambdaFunctionsApi:
    def __init__(self, functions: ApiFunctions, *, region: str, account_id: str) -> None:
        self._functions = functions
        self._arns = Arns(region=region, account_id=account_id)
        self.operations: dict[str, Operation] = {
            "CreateFunction": self.create_function,
            "ListFunctions": self.list_functions,
            "GetFunction": self.get_function,
            "GetFunctionConfiguration": self.get_function_configuration,
            "DeleteFunction": self.delete_function,
            "UpdateFunctionCode": self.update_function_code,
            "UpdateFunctionConfiguration": self.update_function_configuration,
            "PublishVersion": self.publish_version,
            "PutFunctionConcurrency": self.put_function_concurrency,
            "DeleteFunctionConcurrency": self.delete_function_concurrency,
            "GetFunctionConcurrency": self.get_function_concurrency,
            "PutFunctionEventInvokeConfig": self.put_event_invoke_config,
            "UpdateFunctionEventInvokeConfig": self.update_event_invoke_config,
            "GetFunctionEventInvokeConfig": self.get_event_invoke_config,
            "DeleteFunctionEventInvokeConfig": self.delete_event_invoke_config,
            **LambdaMappingsApi(ApiMappings(functions), self._arns).operations,
            **LambdaAliasesApi(Aliases(functions.registry), self._arns).operations,
        }

    async def call(self, operation: str, call: Call) -> JsonAnswer:
        """(status, JSON body or None). Raises UnkaiError; a ConfigError from the deploy is
        re-worded with the API's member name."""
        if call.qualifier not in (None, LATEST) and operation not in QUALIFIED_OPERATIONS:
            raise invalid(
                f"{operation} applies to a whole function in unkai (versions are published "
                f"by every change and go with their function); call it without the qualifier "
                f"{call.qualifier!r}"
            )
        try:
            return await self.operations[operation](call)
        except ConfigError as exc:
            raise _api_worded(exc) from None

    # Functions

    async def create_function(self, call: Call) -> JsonAnswer:
        body = call.body
        name = members.function_name(members.required(body, "FunctionName", str))
        if members.optional(body, "PackageType", str) not in (None, "Zip"):
            raise invalid("unkai runs Zip packages only (PackageType Zip)")
        handler = members.optional(body, "Handler", str)
        runtime = members.optional(body, "Runtime", str)
        if handler is None or runtime is None:
            raise invalid(
                "Runtime and Handler are mandatory parameters for functions created with "
                "deployment packages."
            )
        settings = FunctionSettings(
            handler,
            runtime,
            members.member_or(body, "MemorySize", int, 128),
            members.member_or(body, "Timeout", int, 3),
            members.member_or(body, "Description", str, ""),
            members.environment(body) or {},
            async_config=AsyncConfig(dead_letter=members.dead_letter(body)),
            role=members.required(body, "Role", str),
            architectures=members.architectures(body) or ("x86_64",),
        )
        code = members.zip_file(members.required(body, "Code", dict))
        view = await self._functions.create(call.stage, name, settings, code)
        published = bool(members.optional(body, "Publish", bool))
        return 201, shapes.function_configuration(view, self._arns, qualified=published)

    async def list_functions(self, call: Call) -> JsonAnswer:
        """Functions by name, `MaxItems` (at most 50) a page; the marker is the last name."""
        limit = min(members.query_int(call.query, "MaxItems") or MAX_LIST_ITEMS, MAX_LIST_ITEMS)
        marker = call.query.get("Marker")
        views = [
            v
            for v in await self._functions.list(call.stage)
            if marker is None or v.version.name > marker
        ]
        page = views[:limit]
        answer: dict[str, Any] = {
            "Functions": [
                shapes.function_configuration(v, self._arns, qualified=False) for v in page
            ]
        }
        if len(views) > limit:
            answer["NextMarker"] = page[-1].version.name
        return 200, answer

    async def get_function(self, call: Call) -> JsonAnswer:
        view = await self._functions.describe(call.stage, call.name, call.qualifier)
        location = view.code_dir.as_uri()
        qualified = call.qualifier not in (None, LATEST)
        return 200, shapes.get_function(
            view, self._arns, qualified=qualified, code_location=location
        )

    async def get_function_configuration(self, call: Call) -> JsonAnswer:
        view = await self._functions.describe(call.stage, call.name, call.qualifier)
        qualified = call.qualifier not in (None, LATEST)
        return 200, shapes.function_configuration(view, self._arns, qualified=qualified)

    async def delete_function(self, call: Call) -> JsonAnswer:
        await self._functions.delete(call.stage, call.name)
        return 204, None

    async def update_function_code(self, call: Call) -> JsonAnswer:
        body = call.body
        if members.optional(body, "DryRun", bool):
            raise invalid("unkai does not support DryRun for UpdateFunctionCode")
        code = members.zip_file(body)
        architectures = members.architectures(body)

        def change(settings: FunctionSettings) -> FunctionSettings:
            if architectures is None:
                return settings
            return dataclasses.replace(settings, architectures=architectures)

        view = await self._functions.update(call.stage, call.name, change, code=code)
        published = bool(members.optional(body, "Publish", bool))
        return 200, shapes.function_configuration(view, self._arns, qualified=published)

    async def update_function_configuration(self, call: Call) -> JsonAnswer:
        changes = members.configuration_changes(call.body)
        dead_letter = members.dead_letter(call.body)

        def change(settings: FunctionSettings) -> FunctionSettings:
            updated = dataclasses.replace(settings, **changes)
            if "DeadLetterConfig" not in call.body:
                return updated
            config = dataclasses.replace(settings.async_config, dead_letter=dead_letter)
            return dataclasses.replace(updated, async_config=config)

        view = await self._functions.update(call.stage, call.name, change)
        return 200, shapes.function_configuration(view, self._arns, qualified=False)

    async def publish_version(self, call: Call) -> JsonAnswer:
        """Versions are published by every change; this names the latest (Lambda also returns
        the existing version when nothing changed since it was published)."""
        view = await self._functions.describe(call.stage, call.name)
        expected = members.optional(call.body, "CodeSha256", str)
        actual = base64.b64encode(bytes.fromhex(view.code_sha256)).decode()
        if expected and expected != actual:
            raise invalid(
                f"CodeSha256 ({expected}) is different from the code of $LATEST ({actual})"
            )
        return 201, shapes.function_configuration(view, self._arns, qualified=True)

    # Concurrency

    async def put_function_concurrency(self, call: Call) -> JsonAnswer:
        reserved = members.required(call.body, "ReservedConcurrentExecutions", int)
        view = await self._functions.update(
            call.stage,
            call.name,
            lambda s: dataclasses.replace(s, reserved_concurrency=reserved),
        )
        return 200, {"ReservedConcurrentExecutions": view.version.reserved_concurrency}

    async def delete_function_concurrency(self, call: Call) -> JsonAnswer:
        await self._functions.update(
            call.stage, call.name, lambda s: dataclasses.replace(s, reserved_concurrency=None)
        )
        return 204, None

    async def get_function_concurrency(self, call: Call) -> JsonAnswer:
        view = await self._functions.describe(call.stage, call.name)
        reserved = view.version.reserved_concurrency
        return 200, {} if reserved is None else {"ReservedConcurrentExecutions": reserved}

    # Asynchronous invocation settings

    async def put_event_invoke_config(self, call: Call) -> JsonAnswer:
        """Put replaces every setting (those left out return to their defaults)."""
        return await self._set_async(call, AsyncConfig())

    async def update_event_invoke_config(self, call: Call) -> JsonAnswer:
        """Update changes only the settings it is given."""
        return await self._set_async(call, None)

    async def _set_async(self, call: Call, base: AsyncConfig | None) -> JsonAnswer:
        body = call.body
        destinations = members.optional(body, "DestinationConfig", dict)

        def change(settings: FunctionSettings) -> FunctionSettings:
            current = settings.async_config
            start = base or current
            config = AsyncConfig(
                members.member_or(body, "MaximumRetryAttempts", int, start.maximum_retry_attempts),
                members.member_or(body, "MaximumEventAgeInSeconds", int, start.maximum_event_age_s),
                members.destination(destinations, "OnSuccess", start.on_success),
                members.destination(destinations, "OnFailure", start.on_failure),
                current.dead_letter,
            )
            return dataclasses.replace(settings, async_config=config)

        view = await self._functions.update(call.stage, call.name, change)
        return 200, shapes.event_invoke_config(view, self._arns)

    async def get_event_invoke_config(self, call: Call) -> JsonAnswer:
        view = await self._functions.describe(call.stage, call.name)
        if not shapes.has_event_invoke_config(view.version.async_config):
            raise self._no_event_invoke_config(call.name)
        return 200, shapes.event_invoke_config(view, self._arns)

    async def delete_event_invoke_config(self, call: Call) -> JsonAnswer:
        view = await self._functions.describe(call.stage, call.name)
        if not shapes.has_event_invoke_config(view.version.async_config):
            raise self._no_event_invoke_config(call.name)

        def change(settings: FunctionSettings) -> FunctionSettings:
            config = AsyncConfig(dead_letter=settings.async_config.dead_letter)
            return dataclasses.replace(settings, async_config=config)

        await self._functions.update(call.stage, call.name, change)
        return 204, None

    def _no_event_invoke_config(self, name: str) -> NotFound:
        arn = self._arns.function(name, LATEST)
        return NotFound(f"The function {arn} doesn't have an EventInvokeConfig")


def _api_worded(error: ConfigError) -> ConfigError:
    """`memorySize: must be ...` -> `MemorySize: must be ...` (the member the caller sent)."""
    field = error.field or ""
    for key, member in API_FIELDS.items():
        if field == key or field.startswith(key + "."):
            rest = field[len(key) :]
            body = error.message.removeprefix(f"{field}: ")
            return ConfigError(body, field=member + rest, hint=error.hint)
    return error
