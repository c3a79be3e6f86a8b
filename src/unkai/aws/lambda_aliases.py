"""Lambda's alias operations (rest-json): CreateAlias (201), GetAlias, ListAliases,
UpdateAlias and DeleteAlias (204)
(https://docs.aws.amazon.com/lambda/latest/api/API_CreateAlias.html; paths
`/2015-03-31/functions/{FunctionName}/aliases[/{Name}]`).

Thin: check the members against botocore's model (a constraint the model states, such as the
name's pattern or a weight between 0 and 1, answers `ValidationException` as Lambda does),
call `Aliases` (deploy/aliases.py: an alias is metadata of its function, no deploy), shape
the answer (lambda_shapes.py). Aliases work for functions deployed from a manifest too: they
change no code, and a redeploy keeps them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from unkai.aws import lambda_requests as members
from unkai.aws import lambda_shapes as shapes
from unkai.aws.lambda_requests import Call, JsonAnswer, invalid
from unkai.aws.lambda_shapes import Arns
from unkai.aws.tokens import parse_digits
from unkai.deploy.aliases import ALIAS_NAME, AliasChange, Aliases, Routing
from unkai.errors import InvalidRequest

#: ListAliases' MaxItems (botocore's MaxListItems: 1 to 10000); 50 when not given.
MAX_LIST_ITEMS = 10_000
DEFAULT_LIST_ITEMS = 50
WEIGHTS = "routingConfig.additionalVersionWeights"


class LambdaAliasesApi:
    def __init__(self, aliases: Aliases, arns: Arns) -> None:
        self._aliases = aliases
        self._arns = arns
        self.operations: dict[str, Callable[[Call], Awaitable[JsonAnswer]]] = {
            "CreateAlias": self.create,
            "GetAlias": self.get,
            "ListAliases": self.list,
            "UpdateAlias": self.update,
            "DeleteAlias": self.delete,
        }

    async def create(self, call: Call) -> JsonAnswer:
        body = call.body
        name = alias_name(members.required(body, "Name", str))
        alias = await self._aliases.create(
            call.stage,
            call.name,
            name,
            members.required(body, "FunctionVersion", str),
            description=members.member_or(body, "Description", str, ""),
            routing=routing(body),
        )
        return 201, shapes.alias_configuration(call.name, alias, self._arns)

    async def get(self, call: Call) -> JsonAnswer:
        alias = await self._aliases.get(call.stage, call.name, _path_alias(call))
        return 200, shapes.alias_configuration(call.name, alias, self._arns)

    async def list(self, call: Call) -> JsonAnswer:
        """By name, `MaxItems` a page (at most 10000, 50 when not given); the marker is the
        last name. `FunctionVersion` keeps the aliases that run that version."""
        query = call.query
        asked = members.query_int(query, "MaxItems") or DEFAULT_LIST_ITEMS
        limit = min(asked, MAX_LIST_ITEMS)
        marker = query.get("Marker")
        aliases = [
            a
            for a in await self._aliases.list(call.stage, call.name, query.get("FunctionVersion"))
            if marker is None or a.name > marker
        ]
        page = aliases[:limit]
        answer: dict[str, Any] = {
            "Aliases": [shapes.alias_configuration(call.name, a, self._arns) for a in page]
        }
        if len(aliases) > limit:
            answer["NextMarker"] = page[-1].name
        return 200, answer

    async def update(self, call: Call) -> JsonAnswer:
        """Members left out keep their value; `RoutingConfig` replaces the routing (an empty
        AdditionalVersionWeights removes it), as on Lambda."""
        body = call.body
        change = AliasChange(
            function_version=members.optional(body, "FunctionVersion", str),
            description=members.optional(body, "Description", str),
            routing=routing(body),
            expected_revision_id=members.optional(body, "RevisionId", str),
        )
        alias = await self._aliases.update(call.stage, call.name, _path_alias(call), change)
        return 200, shapes.alias_configuration(call.name, alias, self._arns)

    async def delete(self, call: Call) -> JsonAnswer:
        await self._aliases.delete(call.stage, call.name, _path_alias(call))
        return 204, None


def alias_name(name: str) -> str:
    """The name, if botocore's model allows it; else ValidationException as Lambda says it."""
    if not ALIAS_NAME.match(name):
        raise _validation(
            f"Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy "
            "regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+) and have length "
            "between 1 and 128"
        )
    return name


def routing(body: Mapping[str, Any]) -> Routing | None:
    """RoutingConfig as a Routing; None when the member is left out."""
    config = members.optional(body, "RoutingConfig", dict)
    if config is None:
        return None
    weights = members.optional(config, "AdditionalVersionWeights", dict) or {}
    if len(weights) > 1:
        raise invalid(
            f"RoutingConfig.AdditionalVersionWeights: an alias routes to at most one "
            f"additional version, got {len(weights)} ({', '.join(sorted(weights))})"
        )
    if not weights:
        return Routing()
    ((version, weight),) = weights.items()
    if not isinstance(weight, int | float) or isinstance(weight, bool):
        raise _validation(
            f"Value '{weight}' at '{WEIGHTS}' failed to satisfy constraint: "
            "Map value must be a number"
        )
    if not 0.0 <= weight <= 1.0:
        raise _validation(
            f"Value '{{{version}={weight}}}' at '{WEIGHTS}' failed to satisfy constraint: "
            "Map value must satisfy constraint: [Member must have value less than or equal "
            "to 1.0, Member must have value greater than or equal to 0.0]"
        )
    if parse_digits(version) is None:
        raise _validation(
            f"Value '{version}' at '{WEIGHTS}' failed to satisfy constraint: Map keys must "
            "satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]"
        )
    return Routing(version, float(weight))


def _path_alias(call: Call) -> str:
    if call.alias is None:
        raise invalid("Name is required")
    return alias_name(call.alias)


def _validation(message: str) -> InvalidRequest:
    return InvalidRequest(f"1 validation error detected: {message}", code="ValidationException")
