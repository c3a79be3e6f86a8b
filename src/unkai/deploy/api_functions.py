"""`ApiFunctions`: functions created and changed through an API (Lambda's CreateFunction and
friends) are apps the `Deployer` deploys, so versions, ownership, reserved concurrency and
asynchronous settings keep the one meaning the manifest gives them.

Each function is its own service, `lambda-<name>` (`service_name`), whose app directory is a
revision under `<data_dir>/functions/` (function_dirs.py) with a generated `unkai.yml`. A
write is: read the current settings (from the registry: what is deployed is the truth) ->
apply the change -> write a new revision (the new zip, or hard links to the live code) ->
`Deployer.deploy` -> delete the other revisions; a failed deploy deletes the new one. Writes
are serialized in this process.

A function a manifest deployed can be read but not changed here: that raises Conflict naming
its service, since its next `unkai deploy` would undo the change.

Queue mappings (Lambda's event source mappings, event_source_mappings.py) are settings like
the others: `FunctionSettings.queue_mappings` become the generated manifest's `- sqs:` events,
and their UUIDs are kept in the revision's attributes. `queue_mappings` lists a stage's
deployed mappings, manifests' included.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from unkai.config.queue_config import QueueMappingConfig
from unkai.config.spec_base import NAME_PATTERN
from unkai.deploy import versions as layout
from unkai.deploy.event_source_mappings import MappingView, QueueMapping, derived_uuid
from unkai.deploy.function_dirs import (
    ApiAttributes,
    FunctionDirs,
    MappingIdentity,
    invalid,
    zip_attributes,
)
from unkai.deploy.function_settings import (
    DEFAULT_ARCHITECTURES,
    FunctionSettings,
    service_name,
)
from unkai.deploy.registry import Registry
from unkai.deploy.service import Deployer
from unkai.deploy.versions import LATEST, SQS_METHOD, FunctionVersion, Route, ServiceRecord
from unkai.errors import ConfigError, Conflict, NotFound

#: What Lambda reports for a function that was given no role (a manifest's).
DEFAULT_ROLE = "arn:aws:iam::{account_id}:role/unkai-function"


@dataclass(frozen=True, slots=True)
class FunctionView:
    """A function as the API reports it; manifest functions too."""

    version: FunctionVersion
    role: str
    architectures: tuple[str, ...]
    #: Hex sha256 and size of the uploaded zip; for a manifest function, of its code bundle.
    code_sha256: str
    code_size_bytes: int
    last_modified_ms: int
    #: False for a function a manifest deployed (read-only here).
    api_managed: bool
    #: The version's code bundle (read-only files).
    code_dir: Path


Change = Callable[[FunctionSettings], FunctionSettings]


class ApiFunctions:
    def __init__(
        self, deployer: Deployer, registry: Registry, data_dir: Path, *, account_id: str
    ) -> None:
        self._deployer = deployer
        self._registry = registry
        self._dirs = FunctionDirs(data_dir / "functions")
        self._bundles_dir = data_dir / "bundles"
        self._default_role = DEFAULT_ROLE.format(account_id=account_id)
        self._bundle_sizes: dict[str, int] = {}
        self._lock = asyncio.Lock()

    @property
    def registry(self) -> Registry:
        return self._registry

    async def create(
        self, stage: str, name: str, settings: FunctionSettings, code: bytes
    ) -> FunctionView:
        """Deploy a new function from a zip. Raises Conflict when the name is taken (or its
        service name is a manifest's), InvalidRequest for a bad zip, ConfigError for a bad
        setting (its `field` is the manifest key)."""
        _check_name(name)
        self._dirs.function_dir(stage, name)  # refuses a stage that is no directory name
        async with self._lock:
            existing = await self._current(stage, name)
            if existing is not None:
                owner = existing[0].service
                raise Conflict(
                    f"Function already exist: {name} (service {owner!r}, stage {stage!r})"
                )
            await self._check_service_free(stage, name)
            attributes = zip_attributes(
                code, role=settings.role, architectures=settings.architectures
            )
            await self._deploy(stage, name, settings, attributes, code=code)
        return await self.describe(stage, name)

    async def update(
        self, stage: str, name: str, change: Change, *, code: bytes | None = None
    ) -> FunctionView:
        """Apply `change` to the function's settings (and replace its code when `code` is
        given), then deploy. Raises NotFound, Conflict (a manifest's function), ConfigError,
        InvalidRequest. An update that changes nothing publishes nothing."""
        async with self._lock:
            version, app_dir = await self._api_function(stage, name)
            old = await asyncio.to_thread(self._dirs.attributes, app_dir)
            mappings = await self._function_mappings(version, old)
            settings = change(FunctionSettings.of(version, old, mappings))
            attributes = (
                zip_attributes(code, role=settings.role, architectures=settings.architectures)
                if code is not None
                else dataclasses.replace(
                    old or _missing_attributes(version),
                    role=settings.role,
                    architectures=settings.architectures,
                    last_modified_ms=time.time_ns() // 1_000_000,
                )
            )
            await self._deploy(stage, name, settings, attributes, code=code, code_from=app_dir)
        return await self.describe(stage, name)

    async def delete(self, stage: str, name: str) -> None:
        """Remove the function, its versions and its directory. Raises NotFound, Conflict."""
        async with self._lock:
            await self._api_function(stage, name)
            await self._deployer.remove(stage, service_name(name))
            await asyncio.to_thread(self._dirs.prune, stage, name, None)

    async def describe(self, stage: str, name: str, qualifier: str | None = None) -> FunctionView:
        """The function (or the version `qualifier` names). Raises NotFound."""
        version = await self._registry.get_version(stage, name, qualifier)
        latest = version
        if qualifier not in (None, LATEST):
            latest = await self._registry.get_version(stage, name)
        return await self._view(version, latest=version.version == latest.version)

    async def list(self, stage: str) -> list[FunctionView]:
        """The latest version of every function of `stage`, by name."""
        return [
            await self._view(v, latest=True) for v in await self._registry.list_functions(stage)
        ]

    async def queue_mappings(self, stage: str) -> builtins.list[MappingView]:
        """Every queue mapping deployed in `stage`, by function then queue: an API
        function's with its stored UUID, a manifest's with a derived one (`api_managed`
        False) and its deploy's time as last modified."""
        owners: dict[str, tuple[bool, int, dict[str, MappingIdentity]]] = {}
        views: builtins.list[MappingView] = []
        for route in await self._registry.routes(stage):
            if route.method != SQS_METHOD or route.mapping is None:
                continue
            if route.function not in owners:
                owners[route.function] = await self._identities(stage, route)
            api_managed, deployed_ms, known = owners[route.function]
            mapping = _mapping(route, route.mapping, known, deployed_ms)
            views.append(MappingView(mapping, route.function, route.service, api_managed))
        return sorted(views, key=lambda v: v.sort_key)

    async def _identities(
        self, stage: str, route: Route
    ) -> tuple[bool, int, dict[str, MappingIdentity]]:
        """(API-made, deploy time, stored identities by queue) of a route's function."""
        record = await self._service_record(stage, route.service)
        deployed_ms = record.deployed_ms if record is not None else 0
        app_dir = await self._app_dir(stage, route.function, route.service)
        if app_dir is None:
            return False, deployed_ms, {}
        attributes = await asyncio.to_thread(self._dirs.attributes, app_dir)
        known = {m.queue: m for m in attributes.mappings} if attributes is not None else {}
        return True, deployed_ms, known

    async def _function_mappings(
        self, version: FunctionVersion, attributes: ApiAttributes | None
    ) -> tuple[QueueMapping, ...]:
        """The deployed mappings of an API function (the routes are the truth), with the
        identities its revision keeps."""
        known = {m.queue: m for m in attributes.mappings} if attributes is not None else {}
        return tuple(
            _mapping(route, route.mapping, known, version.created_ms)
            for route in await self._registry.routes(version.stage)
            if route.method == SQS_METHOD
            and route.function == version.name
            and route.mapping is not None
        )

    async def _view(self, version: FunctionVersion, *, latest: bool) -> FunctionView:
        """The uploaded zip's hash and size describe the latest version; an older one is
        described by its code bundle, as a manifest function is."""
        app_dir = await self._app_dir(version.stage, version.name, version.service)
        attributes = await asyncio.to_thread(self._dirs.attributes, app_dir) if app_dir else None
        if attributes is None or not latest:
            size = await self._bundle_size(version.code_sha256)
            return FunctionView(
                version,
                (attributes.role if attributes else "") or self._default_role,
                attributes.architectures if attributes else DEFAULT_ARCHITECTURES,
                version.code_sha256,
                size,
                version.created_ms,
                app_dir is not None,
                self._bundles_dir / version.code_sha256,
            )
        return FunctionView(
            version,
            attributes.role or self._default_role,
            attributes.architectures,
            attributes.zip_sha256,
            attributes.zip_size_bytes,
            attributes.last_modified_ms,
            True,
            self._bundles_dir / version.code_sha256,
        )

    async def _deploy(
        self,
        stage: str,
        name: str,
        settings: FunctionSettings,
        attributes: ApiAttributes,
        *,
        code: bytes | None,
        code_from: Path | None = None,
    ) -> None:
        identities = tuple(m.identity for m in settings.queue_mappings)
        manifest = await asyncio.to_thread(
            self._dirs.build,
            stage,
            name,
            settings.manifest(name),
            dataclasses.replace(attributes, mappings=identities),
            code=code,
            code_from=code_from,
        )
        try:
            await self._deployer.deploy(manifest, stage)
        except ConfigError as exc:
            await asyncio.to_thread(self._dirs.discard, manifest)
            raise _without_manifest_location(exc, name, manifest.parent) from None
        except BaseException:
            await asyncio.to_thread(self._dirs.discard, manifest)
            raise
        await asyncio.to_thread(self._dirs.prune, stage, name, manifest.parent)

    async def _current(self, stage: str, name: str) -> tuple[FunctionVersion, Path | None] | None:
        """The function's latest version and, when the API made it, its live app directory;
        None when there is no such function."""
        try:
            version = await self._registry.get_version(stage, name)
        except NotFound:
            return None
        return version, await self._app_dir(stage, name, version.service)

    async def _api_function(self, stage: str, name: str) -> tuple[FunctionVersion, Path]:
        """Raises NotFound, or Conflict when a manifest owns the function."""
        _check_name(name)
        current = await self._current(stage, name)
        if current is None:
            raise NotFound(f"Function not found: {name} (stage {stage!r})")
        version, app_dir = current
        if app_dir is None:
            raise Conflict(
                f"function {name!r} in stage {stage!r} belongs to service {version.service!r}, "
                "deployed from its manifest; change it there and run unkai deploy",
                hint=f"unkai deploy <app dir of {version.service}> --stage {stage}",
            )
        return version, app_dir

    async def _app_dir(self, stage: str, name: str, service: str) -> Path | None:
        """The live revision of an API function; None for a manifest's function."""
        if service != service_name(name):
            return None
        record = await self._service_record(stage, service)
        if record is None or not self._dirs.owns(stage, name, record.app_dir):
            return None
        return Path(record.app_dir)

    async def _service_record(self, stage: str, service: str) -> ServiceRecord | None:
        doc = await self._registry.store.get(layout.SERVICE, layout.service_key(stage, service))
        return ServiceRecord.from_doc(doc.value) if doc is not None else None

    async def _check_service_free(self, stage: str, name: str) -> None:
        """A manifest service that happens to be called `lambda-<name>` must not be
        replaced by this function's generated one."""
        service = service_name(name)
        record = await self._service_record(stage, service)
        if record is not None and not self._dirs.owns(stage, name, record.app_dir):
            raise Conflict(
                f"service {service!r} in stage {stage!r} is deployed from {record.app_dir}; "
                f"a function {name!r} made through the API would replace it",
                hint="choose another function name",
            )

    async def _bundle_size(self, code_sha256: str) -> int:
        """Bytes of a manifest function's code bundle (bundles are immutable: cached)."""
        size = self._bundle_sizes.get(code_sha256)
        if size is None:
            size = await asyncio.to_thread(_tree_size, self._bundles_dir / code_sha256)
            self._bundle_sizes[code_sha256] = size
        return size


def _mapping(
    route: Route,
    config: QueueMappingConfig,
    known: Mapping[str, MappingIdentity],
    default_ms: int,
) -> QueueMapping:
    """A deployed `SQS` route (`config` is its mapping) as a mapping; one with no stored
    identity gets the derived UUID and `default_ms` as its last change."""
    identity = known.get(route.path)
    if identity is None:
        identity = MappingIdentity(
            route.path, derived_uuid(route.stage, route.function, route.path), default_ms
        )
    return QueueMapping(identity.uuid, route.path, config, identity.last_modified_ms)


def _missing_attributes(version: FunctionVersion) -> ApiAttributes:
    """A revision whose attributes file is gone: what can still be said."""
    return ApiAttributes("", DEFAULT_ARCHITECTURES, version.code_sha256, 0, version.created_ms)


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _check_name(name: str) -> None:
    """Before the name becomes a directory: the manifest's rule for function names."""
    if not NAME_PATTERN.match(name):
        raise invalid(f"FunctionName must be 1 to 64 letters, digits, '-' or '_', got {name!r}")


def _without_manifest_location(error: ConfigError, name: str, revision: Path) -> ConfigError:
    """The deploy's error without the generated manifest's file, line and
    `functions.<name>.` prefix (`memorySize: must be between 128 and 10240, got 20000`), and
    with the package instead of the revision's directory."""
    prefix = re.compile(rf"(^|\n)(\S+:\d+: )?(functions\.{re.escape(name)}\.)?")
    message = prefix.sub(r"\1", error.message).replace(str(revision), "the deployment package")
    short = (error.field or "").removeprefix(f"functions.{name}.")
    if short and message.startswith(f"{short}: "):
        return ConfigError(message.removeprefix(f"{short}: "), field=short, hint=error.hint)
    return ConfigError(message, hint=error.hint)
