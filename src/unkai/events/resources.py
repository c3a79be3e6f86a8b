"""`AppResources`: the queues an app declares (`resources.queues`) exist before its functions'
mappings start, and every `- sqs:` event names a queue that exists.

Runs at the start of each deploy, before the stage's plan is applied: a queue is created, or
its changed attributes set, through `QueueService` like any CreateQueue. Resources are not
owned by a stage or a service (queues are named per platform, as in an AWS account), so a
remove leaves them and their messages; `unkai queues delete` deletes one.
"""

from __future__ import annotations

import json

from unkai.config.async_config import parse_target
from unkai.config.event_spec import SqsEventSpec
from unkai.config.queue_config import new_queue
from unkai.config.spec import AppSpec
from unkai.errors import ConfigError, UnkaiError
from unkai.events.filter_policy import FilterPolicy, FilterPolicyError
from unkai.events.queues import QueueService
from unkai.events.topics import TopicService

#: Lambda: a FIFO queue's mapping takes at most 10 messages per batch.
MAX_FIFO_BATCH = 10


class AppResources:
    def __init__(self, queues: QueueService, topics: TopicService | None = None) -> None:
        self._queues = queues
        #: Set once built (topics need the queues, and deploys need both).
        self.topics = topics

    async def provision(self, app: AppSpec, *, dry_run: bool) -> list[str]:
        """Create or update the declared queues (dead-letter queues first); returns what was
        (or, in a dry run, would be) done. Raises ConfigError for an event's missing queue."""
        done: list[str] = []
        declared = app.resources.queues
        dead_letter = {
            q.dead_letter_queue.queue.rsplit(":", 1)[-1]
            for q in declared.values()
            if q.dead_letter_queue is not None
        }
        for name in sorted(declared, key=lambda n: (n not in dead_letter, n)):
            attributes = declared[name].attributes(name)
            change = self._queues.describe_change(name, attributes)
            if change is None:
                continue
            done.append(change)
            if not dry_run:
                await self._queues.ensure(name, attributes)
        for fn in app.resolved_functions():
            for index, sqs in enumerate(fn.sqs_events):
                self._check_mapping(app, fn.name, fn.timeout_s, index, sqs)
        if self.topics is not None:
            done += await self._provision_topics(app, self.topics, dry_run=dry_run)
            self._check_async_targets(app, self.topics)
        return done

    def _check_mapping(
        self, app: AppSpec, function: str, timeout_s: int, index: int, sqs: SqsEventSpec
    ) -> None:
        """The queue exists, a FIFO batch fits, and the queue's visibility timeout covers the
        function's timeout (Lambda refuses the mapping otherwise: a batch still running would
        be received and run again)."""
        where = f"functions.{function}.events[{index}].sqs"
        name = sqs.queue_name
        declared = app.resources.queues
        if name in declared:
            config = new_queue(name, declared[name].attributes(name), 0)
        elif name in self._queues.names():
            config = self._queues.get(name)
        else:
            raise ConfigError(
                f"queue {name!r} does not exist",
                field=f"{where}.queue",
                hint=f"declare it under resources.queues, or: unkai queues create {name}",
            )
        if config.fifo and sqs.batch_size > MAX_FIFO_BATCH:
            raise ConfigError(
                f"a FIFO queue's batchSize must be at most {MAX_FIFO_BATCH}, got {sqs.batch_size}",
                field=f"{where}.batchSize",
            )
        if config.visibility_timeout_s < timeout_s:
            raise ConfigError(
                f"queue {name!r} has a visibility timeout of {config.visibility_timeout_s} s, "
                f"less than the function's timeout of {timeout_s} s",
                field=f"{where}.queue",
                hint="raise the queue's visibilityTimeout (AWS advises 6 times the function's "
                "timeout) or lower the function's timeout",
            )

    def _check_async_targets(self, app: AppSpec, topics: TopicService) -> None:
        """Destinations and dead-letter targets that are queues or topics must exist."""
        for name, fn in app.functions.items():
            targets = (
                ("destinations.onSuccess", fn.destinations.on_success, "function"),
                ("destinations.onFailure", fn.destinations.on_failure, "function"),
                ("deadLetterQueue", fn.dead_letter_queue, "queue"),
            )
            for field, target, bare in targets:
                if target is None:
                    continue
                kind, target_name = parse_target(target, bare=bare)  # type: ignore[arg-type]
                where = f"functions.{name}.{field}"
                if kind == "queue":
                    self._check_queue(app, target_name, where)
                elif (
                    kind == "topic"
                    and target_name not in app.resources.topics
                    and target_name not in topics.names()
                ):
                    raise ConfigError(
                        f"topic {target_name!r} does not exist",
                        field=where,
                        hint=f"declare it under resources.topics, or: unkai topics create "
                        f"{target_name}",
                    )

    async def _provision_topics(
        self, app: AppSpec, topics: TopicService, *, dry_run: bool
    ) -> list[str]:
        self._check_topic_references(app, topics)
        done: list[str] = []
        declared = app.resources.topics
        for name, topic in declared.items():
            if name not in topics.names():
                done.append(f"create topic {name}")
                if not dry_run:
                    await topics.create(name)
            for sub in topic.subscriptions:
                protocol, endpoint = sub.protocol_endpoint()
                change = topics.describe_subscription(name, protocol, endpoint, sub.attributes())
                if change is None:
                    continue
                done.append(change)
                if not dry_run:
                    try:
                        await topics.ensure_subscription(name, protocol, endpoint, sub.attributes())
                    except UnkaiError as exc:
                        raise ConfigError(
                            exc.message, field=f"resources.topics.{name}.subscriptions"
                        ) from None
        return done

    def _check_topic_references(self, app: AppSpec, topics: TopicService) -> None:
        """Every topic, filter policy and queue the manifest names is valid and exists."""
        declared = app.resources.topics
        for fn in app.resolved_functions():
            for index, sns in enumerate(fn.sns_events):
                where = f"functions.{fn.name}.events[{index}].sns"
                if sns.topic_name not in declared and sns.topic_name not in topics.names():
                    raise ConfigError(
                        f"topic {sns.topic_name!r} does not exist",
                        field=f"{where}.topic",
                        hint="declare it under resources.topics, or: unkai topics create "
                        + sns.topic_name,
                    )
                if sns.filter_policy is not None:
                    _check_policy(sns.filter_policy, sns.filter_policy_scope, where)
                if sns.dead_letter_queue is not None:
                    self._check_queue(app, sns.dead_letter_queue, f"{where}.deadLetterQueue")
        self._check_declared_subscriptions(app)

    def _check_declared_subscriptions(self, app: AppSpec) -> None:
        for name, topic in app.resources.topics.items():
            for index, sub in enumerate(topic.subscriptions):
                where = f"resources.topics.{name}.subscriptions[{index}]"
                if sub.filter_policy is not None:
                    _check_policy(sub.filter_policy, sub.filter_policy_scope, where)
                for field, queue in (
                    ("queue", sub.queue),
                    ("deadLetterQueue", sub.dead_letter_queue),
                ):
                    if queue is not None:
                        self._check_queue(app, queue, f"{where}.{field}")

    def _check_queue(self, app: AppSpec, queue: str, where: str) -> None:
        name = queue.rsplit(":", 1)[-1]
        if name not in app.resources.queues and name not in self._queues.names():
            raise ConfigError(
                f"queue {name!r} does not exist",
                field=where,
                hint=f"declare it under resources.queues, or: unkai queues create {name}",
            )


def _check_policy(policy: dict[str, object], scope: str, where: str) -> None:
    try:
        FilterPolicy.parse(json.dumps(policy), scope)  # type: ignore[arg-type]
    except FilterPolicyError as exc:
        raise ConfigError(str(exc), field=f"{where}.filterPolicy") from None
