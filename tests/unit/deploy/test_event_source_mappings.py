"""Queue mappings of API functions: the `- sqs:` events of the generated manifest (loaded
back by the manifest loader), their identities kept in the revision's attributes, and the
derived UUIDs of a manifest's mappings."""

from __future__ import annotations

from pathlib import Path

import yaml

from unkai.config.load import load_app
from unkai.config.queue_config import QueueMappingConfig
from unkai.deploy.event_source_mappings import QueueMapping, derived_uuid
from unkai.deploy.function_dirs import ApiAttributes, MappingIdentity
from unkai.deploy.function_settings import FunctionSettings

PLAIN = QueueMapping("u-1", "jobs", QueueMappingConfig(), 1_000)
TUNED = QueueMapping(
    "u-2",
    "orders.fifo",
    QueueMappingConfig(
        batch_size=5,
        maximum_batching_window_s=2,
        report_batch_item_failures=True,
        maximum_concurrency=4,
        enabled=False,
    ),
    2_000,
)


def test_mappings_become_sqs_events_the_loader_reads_back(tmp_path: Path) -> None:
    # Given an API function's settings with two mappings
    settings = FunctionSettings("app.handler", "python3.11", queue_mappings=(PLAIN, TUNED))

    # When its manifest is written and loaded as `unkai deploy` would
    (tmp_path / "unkai.yml").write_text(yaml.safe_dump(settings.manifest("worker")))
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    events = load_app(tmp_path).resolved_functions()[0].sqs_events

    # Then each mapping is one `- sqs:` event with its settings
    assert [(e.queue, e.batch_size, e.maximum_batching_window) for e in events] == [
        ("jobs", 10, 0),
        ("orders.fifo", 5, 2),
    ]
    assert [e.function_response_type for e in events] == [None, "ReportBatchItemFailures"]
    assert [(e.maximum_concurrency, e.enabled) for e in events] == [(None, True), (4, False)]


def test_a_function_without_mappings_has_no_events() -> None:
    spec = FunctionSettings("app.handler", "python3.11").manifest("worker")
    assert "events" not in spec["functions"]["worker"]


def test_identities_round_trip_and_old_attributes_have_none() -> None:
    attributes = ApiAttributes("", ("x86_64",), "ab", 1, 5, (PLAIN.identity, TUNED.identity))
    assert ApiAttributes.from_doc(attributes.to_doc()) == attributes
    assert attributes.mappings[1] == MappingIdentity("orders.fifo", "u-2", 2_000)
    old = {k: v for k, v in attributes.to_doc().items() if k != "mappings"}
    assert ApiAttributes.from_doc(old).mappings == ()


def test_derived_uuids_are_stable_and_distinct() -> None:
    first = derived_uuid("prod", "worker", "jobs")
    assert first == derived_uuid("prod", "worker", "jobs")
    assert (
        len({first, derived_uuid("dev", "worker", "jobs"), derived_uuid("prod", "w", "jobs")}) == 3
    )
