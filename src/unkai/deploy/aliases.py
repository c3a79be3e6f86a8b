"""`Aliases`: names for a function's versions, optionally splitting invocations between two
(Lambda's aliases, https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html,
and their routing configuration,
https://docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html).

An alias is metadata of a function in a stage (the `alias` documents of versions.py), not a
code change: it publishes no version and deploys nothing, so a function deployed from a
manifest has aliases too, and its next `unkai deploy` keeps them. The invoker resolves an
alias qualifier to its version(s) and draws the version per invocation (invoke/invoker.py).

A write is: read the function document and the alias fresh -> check (the name, the versions
exist, the weight) -> commit the alias together with an unchanged rewrite of the function
document, each with the revision read -> `Registry.invalidate(stage)`. The function
document's check makes the write and a deploy or remove of the function exclusive: whichever
commits second fails its check and reads again (the deployer plans again; here the write is
retried up to `MAX_ATTEMPTS` times), so an alias never outlives its function and never names
a version that was not there. Writes are serialized in this process.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from unkai.backends.base import Write
from unkai.deploy import versions as layout
from unkai.deploy.registry import Registry
from unkai.deploy.versions import LATEST, Alias
from unkai.errors import ConfigError, Conflict, NotFound

#: Lambda's alias name: 1 to 128 letters, digits, '-' and '_', and not only digits (those
#: are version numbers). botocore's model: `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`, max 128.
ALIAS_NAME = re.compile(r"^(?![0-9]+$)[a-zA-Z0-9_-]{1,128}$")
#: Lambda's Description limit.
MAX_DESCRIPTION_CHARS = 256
#: Tries of one write when a deploy or another node's write to the function commits first.
MAX_ATTEMPTS = 3

Written = TypeVar("Written", bound=Alias | None)


@dataclass(frozen=True, slots=True)
class Routing:
    """An alias's additional version and the share (0 to 1) of invocations it gets; an
    empty Routing (`version` None) routes everything to the alias's FunctionVersion."""

    version: str | None = None
    weight: float = 0.0


@dataclass(frozen=True, slots=True)
class AliasChange:
    """What UpdateAlias changes; None leaves a setting as it is."""

    function_version: str | None = None
    description: str | None = None
    routing: Routing | None = None
    #: The alias's current RevisionId, when the caller wants its write to depend on it.
    expected_revision_id: str | None = None


class Aliases:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = asyncio.Lock()

    async def create(
        self,
        stage: str,
        function: str,
        name: str,
        function_version: str,
        *,
        description: str = "",
        routing: Routing | None = None,
    ) -> Alias:
        """Create the alias. Raises ConfigError (a name, version or weight out of its
        rules), NotFound (the function or a version), Conflict (the alias exists)."""
        check_name(name)
        routing = routing or Routing()
        alias = _checked(
            Alias(
                name,
                function_version,
                description,
                routing.version,
                routing.weight,
                str(uuid.uuid4()),
            )
        )

        def write(current: Alias | None) -> Alias:
            if current is not None:
                raise Conflict(f"Alias already exists: {name} (function {function!r})")
            return alias

        return await self._write(stage, function, name, write)

    async def update(self, stage: str, function: str, name: str, change: AliasChange) -> Alias:
        """Change the alias. Raises NotFound (function, alias, version), ConfigError,
        Conflict (code PreconditionFailedException) when `expected_revision_id` is stale."""
        check_name(name)

        def write(current: Alias | None) -> Alias:
            if current is None:
                raise _no_alias(stage, function, name)
            expected = change.expected_revision_id
            if expected is not None and expected != current.revision_id:
                raise Conflict(
                    f"The Revision Id provided does not match the latest Revision Id of "
                    f"alias {name!r} ({current.revision_id}). Call GetAlias to get it",
                    code="PreconditionFailedException",
                )
            routing = change.routing or Routing(
                current.additional_version, current.additional_weight
            )
            return _checked(
                Alias(
                    name,
                    change.function_version or current.function_version,
                    current.description if change.description is None else change.description,
                    routing.version,
                    routing.weight,
                    str(uuid.uuid4()),
                )
            )

        return await self._write(stage, function, name, write)

    async def delete(self, stage: str, function: str, name: str) -> None:
        """Delete the alias. Raises NotFound (the function or the alias)."""
        check_name(name)

        def write(current: Alias | None) -> None:
            if current is None:
                raise _no_alias(stage, function, name)
            return None

        await self._write(stage, function, name, write)

    async def get(self, stage: str, function: str, name: str) -> Alias:
        """Raises NotFound (the function or the alias)."""
        await self._registry.get_version(stage, function)
        alias = await self._registry.get_alias(stage, function, name)
        if alias is None:
            raise _no_alias(stage, function, name)
        return alias

    async def list(
        self, stage: str, function: str, function_version: str | None = None
    ) -> builtins.list[Alias]:
        """The function's aliases by name; with `function_version`, those that run it (as
        their FunctionVersion or their additional version). Raises NotFound (the function)."""
        await self._registry.get_version(stage, function)
        return [
            a
            for a in await self._registry.list_aliases(stage, function)
            if function_version is None
            or function_version in (a.function_version, a.additional_version)
        ]

    async def _write(
        self,
        stage: str,
        function: str,
        name: str,
        decide: Callable[[Alias | None], Written],
    ) -> Written:
        """Read, `decide` the new alias (None deletes it), commit with the checks of the
        module docstring; retried when a concurrent write to the function commits first."""
        async with self._lock:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    return await self._write_once(stage, function, name, decide)
                except _Raced:
                    if attempt == MAX_ATTEMPTS:
                        break
        raise Conflict(
            f"function {function!r} in stage {stage!r} kept changing while writing alias "
            f"{name!r}; try again"
        )

    async def _write_once(
        self,
        stage: str,
        function: str,
        name: str,
        decide: Callable[[Alias | None], Written],
    ) -> Written:
        store = self._registry.store
        function_doc = await store.get(layout.FUNCTION, layout.function_key(stage, function))
        if function_doc is None:
            raise NotFound(f"Function not found: {function} (stage {stage!r})")
        key = layout.alias_key(stage, function, name)
        alias_doc = await store.get(layout.ALIAS, key)
        current = Alias.from_doc(alias_doc.value) if alias_doc is not None else None
        new = decide(current)
        if new is not None:
            await self._check_versions(stage, function, new)
        writes = [
            Write(
                layout.ALIAS,
                key,
                new.to_doc() if new is not None else None,
                alias_doc.revision if alias_doc is not None else 0,
            ),
            Write(layout.FUNCTION, function_doc.key, function_doc.value, function_doc.revision),
        ]
        try:
            await store.commit(writes)
        except Conflict:
            raise _Raced from None
        self._registry.invalidate(stage)
        await self._registry.settled()  # the next call through the alias routes as written
        return new

    async def _check_versions(self, stage: str, function: str, alias: Alias) -> None:
        """Versions are deleted only with their function, which the commit's check on the
        function document excludes; so a version seen here is still there at the commit."""
        store = self._registry.store
        for version in (alias.function_version, alias.additional_version):
            if version is None or version == LATEST:
                continue
            if (
                await store.get(layout.VERSION, layout.version_key(stage, function, version))
                is None
            ):
                raise NotFound(
                    f"Function not found: {function}:{version} (stage {stage!r}: the function "
                    f"has no version {version})"
                )


class _Raced(Exception):
    """The commit's check failed: something else wrote the function or alias first."""


def check_name(name: str) -> None:
    """Raises ConfigError unless `name` is a valid alias name (see ALIAS_NAME)."""
    if not ALIAS_NAME.match(name):
        raise ConfigError(
            f"must be 1 to 128 letters, digits, '-' or '_', and not only digits (a version "
            f"number), got {name!r}",
            field="Name",
        )


def _checked(alias: Alias) -> Alias:
    """The alias's own rules (the versions' existence is checked at the write)."""
    if alias.function_version != LATEST and not alias.function_version.isdigit():
        raise ConfigError(
            f"must be a version number or $LATEST, got {alias.function_version!r}",
            field="FunctionVersion",
        )
    if len(alias.description) > MAX_DESCRIPTION_CHARS:
        raise ConfigError(
            f"must be at most {MAX_DESCRIPTION_CHARS} characters, got {len(alias.description)}",
            field="Description",
        )
    if alias.additional_version is None:
        return dataclasses.replace(alias, additional_weight=0.0)
    return _checked_routing(alias)


def _checked_routing(alias: Alias) -> Alias:
    field = "RoutingConfig.AdditionalVersionWeights"
    extra, weight = alias.additional_version, alias.additional_weight
    if extra is None or not extra.isdigit():
        raise ConfigError(
            f"the additional version must be a version number, got {extra!r}", field=field
        )
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"the weight must be between 0.0 and 1.0, got {weight}", field=field)
    if alias.function_version == LATEST:
        raise ConfigError(
            "$LATEST is not supported for an alias pointing to more than 1 version; point "
            "FunctionVersion at a published version",
            field="FunctionVersion",
        )
    if extra == alias.function_version:
        raise ConfigError(
            f"the additional version must differ from FunctionVersion ({extra})", field=field
        )
    return alias


def _no_alias(stage: str, function: str, name: str) -> NotFound:
    return NotFound(f"Alias not found: {function}:{name} (stage {stage!r})")
