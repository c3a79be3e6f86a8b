"""boto3's `lambda` client managing and invoking aliases: CreateAlias, GetAlias, ListAliases,
UpdateAlias (with RoutingConfig weights: a canary) and DeleteAlias; Invoke through an alias
(`Qualifier` or `name:alias`) runs its version and reports it in ExecutedVersion. Aliases go
with their function, and a manifest's function has them too. Each test works in its own stage.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError

from tests.integration.platform.test_lambda_api import (
    ARN,
    create,
    error_of,
    invoke,
    lambda_client,
    zip_of,
)
from tests.integration.platform_process import PlatformProcess, write_app

CODE = (
    "def handler(event, context):\n"
    "    return {{'code': '{code}', 'version': context.function_version}}\n"
)
#: Invocations of the weighted alias: at weight 0.5 the share of v2 falls outside 0.3..0.7
#: with a probability of about 1e-8, so the test does not depend on a seed.
WEIGHTED_CALLS = 200


@pytest.fixture
def lam(platform: PlatformProcess, stage: str) -> Any:
    return lambda_client(platform, stage)


def code(name: str) -> bytes:
    return zip_of({"app.py": CODE.format(code=name)})


def two_versions(lam: Any, name: str) -> None:
    """A function with version 1 (code "one") and version 2 (code "two")."""
    create(lam, name, code("one"), Publish=True)
    assert (
        lam.update_function_code(FunctionName=name, ZipFile=code("two"), Publish=True)["Version"]
        == "2"
    )


def ran(lam: Any, name: str, **options: Any) -> tuple[str, str]:
    """(the code that ran, ExecutedVersion) of one invocation."""
    answer = invoke(lam, name, **options)
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer, answer["Body"]
    body = json.loads(answer["Body"])
    assert body["version"] == answer["ExecutedVersion"]
    return body["code"], answer["ExecutedVersion"]


def without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def test_an_alias_runs_its_version_and_follows_updates(lam: Any) -> None:
    # Given a function with two versions
    two_versions(lam, "shop")

    # When an alias points at version 1
    created = lam.create_alias(
        FunctionName="shop", Name="live", FunctionVersion="1", Description="prod traffic"
    )

    # Then it is answered as Lambda's AliasConfiguration, and invoking it runs version 1
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == ARN + "shop:live"
    assert (created["Name"], created["FunctionVersion"]) == ("live", "1")
    assert created["Description"] == "prod traffic" and created["RevisionId"]
    assert "RoutingConfig" not in created
    assert ran(lam, "shop", Qualifier="live") == ("one", "1")
    assert ran(lam, "shop:live") == ("one", "1")
    assert ran(lam, ARN + "shop:live") == ("one", "1")
    assert ran(lam, "shop") == ("two", "$LATEST")
    assert lam.get_function_configuration(FunctionName="shop", Qualifier="live")["Version"] == "1"

    # When it is moved to version 2
    updated = lam.update_alias(FunctionName="shop", Name="live", FunctionVersion="2")

    # Then invoking it runs version 2; the description stays and the RevisionId changes
    assert updated["FunctionVersion"] == "2" and updated["Description"] == "prod traffic"
    assert updated["RevisionId"] != created["RevisionId"]
    assert ran(lam, "shop", Qualifier="live") == ("two", "2")
    assert without_metadata(lam.get_alias(FunctionName="shop", Name="live")) == without_metadata(
        updated
    )

    # And an update that names a stale RevisionId is refused
    with pytest.raises(lam.exceptions.PreconditionFailedException) as caught:
        lam.update_alias(
            FunctionName="shop", Name="live", FunctionVersion="1", RevisionId=created["RevisionId"]
        )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert ran(lam, "shop:live") == ("two", "2")

    # And an alias may point at $LATEST, which it reports as the executed version
    lam.create_alias(FunctionName="shop", Name="edge", FunctionVersion="$LATEST")
    assert ran(lam, "shop:edge") == ("two", "$LATEST")


def test_routing_weights_split_invocations_between_two_versions(lam: Any) -> None:
    # Given an alias on version 1 that sends half of the invocations to version 2
    two_versions(lam, "canary")
    created = lam.create_alias(
        FunctionName="canary",
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}},
    )
    assert created["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}

    # When it is invoked many times
    runs = Counter(ran(lam, "canary:live") for _ in range(WEIGHTED_CALLS))

    # Then both versions ran, each reported as the version that ran, in about equal shares
    assert set(runs) == {("one", "1"), ("two", "2")}
    share = runs["two", "2"] / WEIGHTED_CALLS
    assert 0.3 <= share <= 0.7, runs

    # When the routing is removed (an empty map), every invocation runs version 1 again
    updated = lam.update_alias(
        FunctionName="canary", Name="live", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in updated and updated["FunctionVersion"] == "1"
    assert {ran(lam, "canary:live") for _ in range(20)} == {("one", "1")}

    # And a weight of 1 sends all of them to the additional version
    lam.update_alias(
        FunctionName="canary", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}}
    )
    assert {ran(lam, "canary:live") for _ in range(20)} == {("two", "2")}


def test_list_get_and_delete_aliases(lam: Any) -> None:
    # Given three aliases of a function with two versions
    two_versions(lam, "menu")
    lam.create_alias(FunctionName="menu", Name="blue", FunctionVersion="1")
    lam.create_alias(FunctionName="menu", Name="green", FunctionVersion="2")
    lam.create_alias(
        FunctionName="menu",
        Name="amber",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )

    # When they are listed, Then by name, with pages and the FunctionVersion filter
    listed = lam.list_aliases(FunctionName="menu")["Aliases"]
    assert [a["Name"] for a in listed] == ["amber", "blue", "green"]
    assert listed[0]["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
    first = lam.list_aliases(FunctionName=ARN + "menu", MaxItems=2)
    assert [a["Name"] for a in first["Aliases"]] == ["amber", "blue"]
    second = lam.list_aliases(FunctionName="menu", MaxItems=2, Marker=first["NextMarker"])
    assert [a["Name"] for a in second["Aliases"]] == ["green"] and "NextMarker" not in second
    pages = lam.get_paginator("list_aliases").paginate(
        FunctionName="menu", PaginationConfig={"PageSize": 1}
    )
    assert [a["Name"] for page in pages for a in page["Aliases"]] == ["amber", "blue", "green"]
    by_version = lam.list_aliases(FunctionName="menu", FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in by_version] == ["amber", "blue"]
    assert lam.get_alias(FunctionName="menu", Name="green")["FunctionVersion"] == "2"

    # When one is deleted
    deleted = lam.delete_alias(FunctionName="menu", Name="blue")

    # Then it is gone for reads and invocations, and the others stay
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_alias(FunctionName="menu", Name="blue")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(lam, "menu:blue")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.delete_alias(FunctionName="menu", Name="blue")
    assert [a["Name"] for a in lam.list_aliases(FunctionName="menu")["Aliases"]] == [
        "amber",
        "green",
    ]


def test_deleting_a_function_deletes_its_aliases(lam: Any) -> None:
    # Given a function with an alias that has been invoked
    two_versions(lam, "gone")
    lam.create_alias(FunctionName="gone", Name="live", FunctionVersion="2")
    assert ran(lam, "gone:live") == ("two", "2")

    # When the function is deleted and made again under the same name
    lam.delete_function(FunctionName="gone")
    create(lam, "gone", code("again"))

    # Then the alias went with the old function
    assert lam.list_aliases(FunctionName="gone")["Aliases"] == []
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(lam, "gone:live")
    assert ran(lam, "gone") == ("again", "$LATEST")


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        ({"Name": "live", "FunctionVersion": "9"}, "ResourceNotFoundException", "alias:9"),
        ({"Name": "123", "FunctionVersion": "1"}, "ValidationException", "'123' at 'name'"),
        ({"Name": "a" * 129, "FunctionVersion": "1"}, "ValidationException", "at 'name'"),
        ({"Name": "live", "FunctionVersion": "one"}, "InvalidParameterValueException", "one"),
        (
            {
                "Name": "live",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 1.5}},
            },
            "ValidationException",
            "less than or equal to 1.0",
        ),
        (
            {
                "Name": "live",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": {"9": 0.5}},
            },
            "ResourceNotFoundException",
            "alias:9",
        ),
        (
            {
                "Name": "live",
                "FunctionVersion": "$LATEST",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}},
            },
            "InvalidParameterValueException",
            "$LATEST is not supported",
        ),
        (
            {
                "Name": "live",
                "FunctionVersion": "2",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}},
            },
            "InvalidParameterValueException",
            "must differ",
        ),
        (
            {
                "Name": "live",
                "FunctionVersion": "1",
                "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.2, "3": 0.2}},
            },
            "InvalidParameterValueException",
            "at most one additional version",
        ),
    ],
)
def test_create_alias_errors(lam: Any, arguments: dict[str, Any], code: str, message: str) -> None:
    # Given a function with two versions
    two_versions(lam, "alias")

    # When an alias breaking one of Lambda's rules is created
    with pytest.raises(lam.exceptions.ClientError) as caught:
        lam.create_alias(FunctionName="alias", **arguments)

    # Then the error is Lambda's, naming what is wrong, and no alias was made
    got_code, got_message = error_of(caught)
    assert got_code == code and message in got_message, got_message
    assert lam.list_aliases(FunctionName="alias")["Aliases"] == []


def test_conflicts_and_missing_things(lam: Any) -> None:
    two_versions(lam, "twice")
    lam.create_alias(FunctionName="twice", Name="live", FunctionVersion="1")

    # A second alias of the same name is a conflict
    with pytest.raises(lam.exceptions.ResourceConflictException) as conflict:
        lam.create_alias(FunctionName="twice", Name="live", FunctionVersion="2")
    assert "Alias already exists: live" in error_of(conflict)[1]
    assert lam.get_alias(FunctionName="twice", Name="live")["FunctionVersion"] == "1"

    # An unknown function or alias is not found
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.create_alias(FunctionName="nobody", Name="live", FunctionVersion="1")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.list_aliases(FunctionName="nobody")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.update_alias(FunctionName="twice", Name="other", FunctionVersion="2")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(lam, "twice", Qualifier="other")

    # A negative weight is refused by botocore itself (the model's minimum), before sending
    with pytest.raises(ParamValidationError):
        lam.update_alias(
            FunctionName="twice",
            Name="live",
            RoutingConfig={"AdditionalVersionWeights": {"2": -0.1}},
        )


def test_a_manifest_function_has_aliases_that_survive_redeploys(
    lam: Any, platform: PlatformProcess, apps: Path, stage: str
) -> None:
    # Given a manifest function with an alias on its version 1
    manifest = "service: kitchen\nfunctions:\n  orders:\n    handler: app.handler\n"
    app = write_app(apps / "kitchen", manifest, {"app.py": CODE.format(code="one")})
    platform.cli("deploy", str(app), "--stage", stage, check=True)
    lam.create_alias(FunctionName="orders", Name="stable", FunctionVersion="1")

    # When the manifest deploys new code (version 2)
    write_app(app, manifest, {"app.py": CODE.format(code="two")})
    platform.cli("deploy", str(app), "--stage", stage, check=True)

    # Then the alias still runs version 1, and can be moved to version 2
    assert ran(lam, "orders:stable") == ("one", "1")
    lam.update_alias(FunctionName="orders", Name="stable", FunctionVersion="2")
    assert ran(lam, "orders:stable") == ("two", "2")

    # When a redeploy drops the function, Then its aliases go with it
    write_app(app, "service: kitchen\nfunctions:\n  tables:\n    handler: app.handler\n", {})
    platform.cli("deploy", str(app), "--stage", stage, check=True)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        invoke(lam, "orders:stable")
    manifest_again = write_app(apps / "kitchen", manifest, {})
    platform.cli("deploy", str(manifest_again), "--stage", stage, check=True)
    assert lam.list_aliases(FunctionName="orders")["Aliases"] == []

    # And removing the service removes its functions' aliases too
    lam.create_alias(FunctionName="orders", Name="stable", FunctionVersion="1")
    platform.cli("remove", "--service", "kitchen", "--stage", stage, check=True)
    platform.cli("deploy", str(app), "--stage", stage, check=True)
    assert lam.list_aliases(FunctionName="orders")["Aliases"] == []
