"""The alias operations' request rules that need no platform: which path names an alias,
RoutingConfig as a Routing, and the model's constraints answered as ValidationException."""

from __future__ import annotations

from typing import Any

import pytest

from unkai.aws.lambda_ import ALIAS_RESOURCE, OPERATIONS, split_resource
from unkai.aws.lambda_aliases import alias_name, routing
from unkai.deploy.aliases import Routing
from unkai.deploy.versions import Alias
from unkai.errors import InvalidRequest


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("aliases/live", (ALIAS_RESOURCE, "live")),
        ("aliases", ("aliases", None)),
        ("aliases/", ("aliases/", None)),
        ("aliases/a/b", ("aliases/a/b", None)),
        ("configuration", ("configuration", None)),
        (None, (None, None)),
    ],
)
def test_only_aliases_slash_one_name_is_an_alias(
    resource: str | None, expected: tuple[str | None, str | None]
) -> None:
    # Given a function's sub-resource, When it is split, Then only `aliases/{Name}` names one
    assert split_resource(resource) == expected


def test_every_alias_operation_is_routed() -> None:
    # Given the routing table, When the alias rows are read, Then all five operations are there
    served = {op for (_, _, res), op in OPERATIONS.items() if res in ("aliases", ALIAS_RESOURCE)}
    assert served == {"CreateAlias", "GetAlias", "ListAliases", "UpdateAlias", "DeleteAlias"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, None),
        ({"RoutingConfig": {}}, Routing()),
        ({"RoutingConfig": {"AdditionalVersionWeights": {}}}, Routing()),
        ({"RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}}}, Routing("2", 0.25)),
        ({"RoutingConfig": {"AdditionalVersionWeights": {"2": 1}}}, Routing("2", 1.0)),
    ],
)
def test_routing_config_becomes_a_routing(body: dict[str, Any], expected: Routing | None) -> None:
    # Given a request body, When its RoutingConfig is read, Then left out is None (keep it)
    assert routing(body) == expected


@pytest.mark.parametrize(
    ("weights", "code"),
    [
        ({"2": 1.5}, "ValidationException"),
        ({"2": -0.5}, "ValidationException"),
        ({"2": True}, "ValidationException"),
        ({"two": 0.5}, "ValidationException"),
        ({"2": 0.1, "3": 0.1}, "InvalidParameterValueException"),
    ],
)
def test_bad_weights_are_refused(weights: dict[str, Any], code: str) -> None:
    # Given weights outside the model's rules, When they are read, Then Lambda's error
    with pytest.raises(InvalidRequest) as caught:
        routing({"RoutingConfig": {"AdditionalVersionWeights": weights}})
    assert caught.value.code == code


@pytest.mark.parametrize("name", ["live", "v-2_b", "1a", "a" * 128])
def test_valid_alias_names(name: str) -> None:
    assert alias_name(name) == name


@pytest.mark.parametrize("name", ["123", "", "a" * 129, "a.b", "$LATEST", "a/b"])
def test_invalid_alias_names_are_validation_errors(name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        alias_name(name)
    assert caught.value.code == "ValidationException"


def test_an_alias_round_trips_through_its_document() -> None:
    alias = Alias("live", "3", "canary", "4", 0.1, "rev-1")
    assert Alias.from_doc(alias.to_doc()) == alias
