"""`AppResources`: the queues an app declares (`resources.queues`) exist before its functions'
mappings start, and every `- sqs:` event names a queue that exists.

Runs at the start of each deploy, before the stage's plan is applied: a queue is created, or
its changed attributes set, through `QueueService` like any CreateQueue. Resources are not
owned by a stage or a service (queues are named per platform, as in an AWS account), so a
remove leaves them and their messages; `unkai queues delete` deletes one.
"""

from __future__ import annotations

from unkai.config.spec import AppSpec
from unkai.errors import ConfigError
from unkai.events.queues import QueueService

#: Lambda: a FIFO queue's mapping takes at most 10 messages per batch.
MAX_FIFO_BATCH = 10


class AppResources:
    def __init__(self, queues: QueueService) -> None:
        self._queues = queues

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
                where = f"functions.{fn.name}.events[{index}].sqs.queue"
                name = sqs.queue_name
                if name in declared:
                    fifo = declared[name].attributes(name).get("FifoQueue") == "true"
                elif name in self._queues.names():
                    fifo = self._queues.get(name).fifo
                else:
                    raise ConfigError(
                        f"queue {name!r} does not exist",
                        field=where,
                        hint=f"declare it under resources.queues, or: unkai queues create {name}",
                    )
                if fifo and sqs.batch_size > MAX_FIFO_BATCH:
                    raise ConfigError(
                        f"a FIFO queue's batchSize must be at most {MAX_FIFO_BATCH}, got "
                        f"{sqs.batch_size}",
                        field=where.removesuffix(".queue") + ".batchSize",
                    )
        return done
