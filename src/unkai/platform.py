"""The composition root: `build_platform(settings)` constructs every service and wires them.

Nothing runs at import. Dependencies are passed in constructors; this is the only module that
knows the concrete classes behind each protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from unkai.access.aws_keys import FunctionKeys, KeyRing
from unkai.access.keys import KeyService
from unkai.aws.endpoint import AwsEndpoint
from unkai.aws.lambda_ import LambdaApi
from unkai.aws.lambda_functions import LambdaFunctionsApi
from unkai.aws.logs import LogsApi
from unkai.aws.sigv4 import AccessKey, SigV4Verifier
from unkai.aws.sns import SnsApi
from unkai.aws.sqs import SqsApi
from unkai.aws.sts import StsApi
from unkai.backends.base import Backend
from unkai.backends.factory import open_backend
from unkai.config.settings import Settings, parse_aws_credentials, parse_domains
from unkai.control.http import build_control_app
from unkai.control.service import ControlService
from unkai.deploy.api_functions import ApiFunctions
from unkai.deploy.registry import Registry
from unkai.deploy.service import Deployer
from unkai.events.destinations import Outbox
from unkai.events.endpoint_policy import EndpointPolicy
from unkai.events.queue_mappings import QueueMappings
from unkai.events.queues import QueueService
from unkai.events.resources import AppResources
from unkai.events.schedules import Scheduler
from unkai.events.topics import TopicService
from unkai.gateway.app import GatewayApp
from unkai.invoke.async_events import AsyncEvents
from unkai.invoke.invoker import Invoker
from unkai.observe.logs import LogService
from unkai.runtime.supervisor import Supervisor


@dataclass
class Platform:
    settings: Settings
    backend: Backend
    logs: LogService
    supervisor: Supervisor
    registry: Registry
    deployer: Deployer
    invoker: Invoker
    keys: KeyService
    async_events: AsyncEvents
    queues: QueueService
    mappings: QueueMappings
    topics: TopicService
    scheduler: Scheduler
    control: ControlService
    app: GatewayApp

    async def start(self) -> None:
        """Open state, start the zygote and load the deployed routes; serve after this."""
        await self.backend.open()
        await self.logs.start()
        await self.supervisor.start()
        await self.keys.start()
        await self.app.load()
        await self.queues.start()
        await self.mappings.start()
        await self.async_events.start()
        await self.topics.start()
        await self.scheduler.start()

    async def close(self) -> None:
        """Stop every instance, flush logs, close the backend; nothing is left running."""
        await self.scheduler.close()
        await self.topics.close()
        await self.mappings.close()
        await self.async_events.close()
        await self.queues.close()
        await self.supervisor.close()
        await self.keys.close()
        await self.logs.close()
        await self.backend.close()


def build_platform(settings: Settings) -> Platform:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    backend = open_backend(settings.backend_url, data_dir)
    logs = LogService(
        backend, flush_ms=settings.log_flush_ms, retention_hours=settings.log_retention_hours
    )
    supervisor = Supervisor(
        max_instances=settings.max_instances,
        cpus=settings.cpus,
        keep_alive_s=settings.keep_alive_s,
        preload_zygotes=settings.preload_zygotes,
        on_log=logs.record_text,
        on_output=logs.record_output,
    )
    registry = Registry(backend)
    queues = QueueService(backend, account_id=settings.account_id, region=settings.region)
    resources = AppResources(queues)
    deployer = Deployer(backend, registry, data_dir, resources=resources)
    function_keys = FunctionKeys()
    invoker = Invoker(
        registry,
        supervisor,
        logs,
        data_dir=data_dir,
        region=settings.region,
        account_id=settings.account_id,
        function_keys=function_keys,
    )
    keys = KeyService(backend)
    async_events = AsyncEvents(backend, invoker, retry_base_s=settings.async_retry_base_s)
    mappings = QueueMappings(
        registry, queues, invoker, default_max_concurrency=settings.max_instances
    )
    topics = TopicService(
        backend,
        registry,
        queues,
        async_events,
        account_id=settings.account_id,
        region=settings.region,
        retry_base_s=settings.delivery_retry_base_s,
        endpoint_policy=EndpointPolicy(allow_private=not settings.checks_aws_signatures()),
    )
    resources.topics = topics
    async_events.outbox = Outbox(queues, topics)
    scheduler = Scheduler(
        backend,
        registry,
        async_events,
        region=settings.region,
        account_id=settings.account_id,
        clock_speed=settings.schedule_clock_speed,
    )
    control = ControlService(
        deployer,
        registry,
        supervisor,
        logs,
        keys,
        scheduler,
        queues,
        topics,
        mappings,
        async_events,
        default_stage=settings.default_stage,
        base_url=f"http://{settings.host}:{settings.port}",
    )
    lambda_api = LambdaApi(
        invoker,
        async_events,
        logs,
        LambdaFunctionsApi(
            ApiFunctions(deployer, registry, data_dir, account_id=settings.account_id),
            region=settings.region,
            account_id=settings.account_id,
        ),
        default_stage=settings.default_stage,
    )
    app = GatewayApp(
        invoker,
        registry,
        keys,
        logs,
        control=build_control_app(control),
        lambda_api=lambda_api,
        aws_api=AwsEndpoint(
            {
                "lambda": lambda_api,
                "sqs": SqsApi(queues),
                "sts": StsApi(),
                "sns": SnsApi(topics, queues, default_stage=settings.default_stage),
                "logs": LogsApi(
                    logs,
                    registry,
                    default_stage=settings.default_stage,
                    account_id=settings.account_id,
                    region=settings.region,
                ),
            },
            region=settings.region,
            account_id=settings.account_id,
            verifier=SigV4Verifier(
                KeyRing(_access_keys(settings), function_keys), region=settings.region
            ),
            check_signatures=settings.checks_aws_signatures(),
        ),
        default_stage=settings.default_stage,
        account_id=settings.account_id,
        region=settings.region,
        integration_timeout_s=settings.integration_timeout_s,
        domains=parse_domains(settings.domains),
        remote_control=settings.remote_control,
    )
    return Platform(
        settings,
        backend,
        logs,
        supervisor,
        registry,
        deployer,
        invoker,
        keys,
        async_events,
        queues,
        mappings,
        topics,
        scheduler,
        control,
        app,
    )


def _access_keys(settings: Settings) -> dict[str, AccessKey]:
    entries = parse_aws_credentials(settings.aws_credentials.get_secret_value())
    return {key_id: AccessKey(key_id, secret, account) for key_id, secret, account in entries}
