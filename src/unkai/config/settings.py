"""The one platform settings model.

Each field is defined once here and becomes a CLI flag of `unkai up` (`--max-instances`), an
environment variable (`UNKAI_MAX_INSTANCES`) and a row in docs/configuration.md
(`unkai settings --markdown` prints it). Precedence: flag, then environment, then default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from unkai.errors import ConfigError

ENV_PREFIX = "UNKAI_"
#: Settings whose values an error message must not repeat.
_SECRET_SETTINGS = frozenset({"aws_credentials"})


def _default_max_instances() -> int:
    """4 per core, at least 4: keeps every core busy while some instances wait on I/O."""
    return max(4, 4 * (os.cpu_count() or 1))


def default_cpus() -> int:
    """The CPUs this process may run on: its affinity, or the cgroup's CPU quota if lower (a
    container limited to 2 CPUs on a 64-core host gets 2)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, -(-int(quota) // int(period))))


def parse_domains(text: str) -> dict[str, list[tuple[str, str]]]:
    """'api.example.com=prod,api.example.com/v2=beta' -> {host: [(base, stage)]}, longest base
    first so that the most specific mapping wins."""
    domains: dict[str, list[tuple[str, str]]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        target, sep, stage = item.partition("=")
        host, _, base = target.partition("/")
        if not sep or not host or not stage:
            raise ValueError(f"{item!r} is not 'host[/base]=stage'")
        base = "/" + base.strip("/") if base.strip("/") else ""
        domains.setdefault(host.lower(), []).append((base, stage))
    for mappings in domains.values():
        mappings.sort(key=lambda mapping: len(mapping[0]), reverse=True)
    return domains


def _check_domains(text: str) -> str:
    parse_domains(text)
    return text


def parse_aws_credentials(text: str) -> list[tuple[str, str, str | None]]:
    """'AKID:SECRET[:ACCOUNT_ID],...' -> [(access key id, secret, account id or None)].

    Raises ValueError naming the access key (never the secret) of an entry that is malformed,
    repeated, or whose account id is not 12 digits.
    """
    keys: list[tuple[str, str, str | None]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(
                f"the entry for {parts[0]!r} is not 'ACCESS_KEY_ID:SECRET[:ACCOUNT_ID]'"
            )
        account_id = parts[2] if len(parts) == 3 else None
        if account_id is not None and not (len(account_id) == 12 and account_id.isdigit()):
            raise ValueError(f"the account id of {parts[0]!r} must be 12 digits")
        if any(key[0] == parts[0] for key in keys):
            raise ValueError(f"access key {parts[0]!r} is given twice")
        keys.append((parts[0], parts[1], account_id))
    return keys


def _check_aws_credentials(value: SecretStr) -> SecretStr:
    parse_aws_credentials(value.get_secret_value())
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class Settings(BaseModel):
    """Settings of one platform node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: Annotated[str, Field(description="Address the HTTP front door listens on.")] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535, description="HTTP port; 0 picks a free one.")] = 8080
    data_dir: Annotated[
        Path, Field(description="Where the database, bundles and dependencies live.")
    ] = Path(".unkai")
    backend_url: Annotated[
        str,
        Field(description="State backend: 'sqlite' (file in data_dir) or 'sqlite:///path'."),
    ] = "sqlite"
    default_stage: Annotated[
        str, Field(description="Stage served at '/' and used when --stage is not given.")
    ] = "dev"
    max_instances: Annotated[
        int,
        Field(ge=1, le=10000, description="Node-wide cap on function instances (all functions)."),
    ] = Field(default_factory=_default_max_instances)
    cpus: Annotated[
        int,
        Field(
            ge=1,
            le=4096,
            description="CPUs the node plans for: a short function that keeps a CPU busy runs "
            "on this many instances, with calls queued on them.",
        ),
    ] = Field(default_factory=default_cpus)
    batch_scheduling: Annotated[
        bool,
        Field(
            description="Run the platform under Linux's SCHED_BATCH policy, as its instances "
            "always are: woken by a request or a result, it waits for the running process's "
            "time slice instead of preempting it (more throughput when functions keep the CPUs "
            "busy; it does not preempt other programs on the host either)."
        ),
    ] = True
    keep_alive_s: Annotated[
        float,
        Field(ge=0, description="Idle instances older than this are stopped (scale to zero)."),
    ] = 600.0
    preload_zygotes: Annotated[
        bool,
        Field(
            description="Fork later instances of a version from a zygote that already imported "
            "the handler's dependencies (faster cold starts, costs idle memory)."
        ),
    ] = True
    log_flush_ms: Annotated[
        int, Field(ge=1, le=10000, description="Function logs are committed at least this often.")
    ] = 50
    log_retention_hours: Annotated[
        float, Field(gt=0, description="Function logs older than this are deleted.")
    ] = 168.0
    integration_timeout_s: Annotated[
        float,
        Field(
            gt=0,
            le=30,
            description="A route whose function has not answered after this many seconds gets "
            "504 (API Gateway's integration timeout; the function runs on).",
        ),
    ] = 30.0
    tls_cert: Annotated[
        Path | None,
        Field(
            description="PEM certificate (chain) for HTTPS; with --tls-key, HTTPS is served "
            "on --tls-port as well as HTTP on --port."
        ),
    ] = None
    tls_key: Annotated[Path | None, Field(description="PEM private key of --tls-cert.")] = None
    tls_port: Annotated[
        int, Field(ge=0, le=65535, description="HTTPS port when --tls-cert is set; 0 picks one.")
    ] = 8443
    domains: Annotated[
        str,
        Field(
            description="Custom domains, comma-separated 'host[/base]=stage' mappings: a request "
            "whose Host is `host` and whose path starts with `/base` goes to `stage`, the base "
            "path removed (API Gateway's base path mappings)."
        ),
        AfterValidator(_check_domains),
    ] = ""
    async_retry_base_s: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="Asynchronous invocations: the first retry of a failed event waits up "
            "to this long (exponential backoff with full jitter; throttled events 60 times "
            "less).",
        ),
    ] = 60.0
    delivery_retry_base_s: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="Topics: the first retry of a failed delivery waits up to this long "
            "(exponential backoff with full jitter); after 4 attempts it goes to the "
            "subscription's dead-letter queue.",
        ),
    ] = 20.0
    schedule_clock_speed: Annotated[
        float,
        Field(
            gt=0,
            le=100_000,
            description="For tests: schedules see time pass this many times faster than the "
            "wall clock. Leave at 1.",
        ),
    ] = 1.0
    remote_control: Annotated[
        bool,
        Field(
            description="Answer the control API (/_unkai/), the Lambda API and @connections "
            "for clients beyond loopback too. They have no authentication yet: leave this off "
            "on a shared network."
        ),
    ] = False
    region: Annotated[str, Field(description="AWS region reported to functions.")] = "us-east-1"
    account_id: Annotated[str, Field(description="AWS account id used in ARNs.")] = "000000000000"
    aws_auth: Annotated[
        Literal["auto", "on", "off"],
        Field(
            description="Check the SigV4 signature of every AWS API call against "
            "--aws-credentials: 'on'; 'off' accepts any access key (development only); 'auto' "
            "checks unless --host is a loopback address."
        ),
    ] = "auto"
    aws_credentials: Annotated[
        SecretStr,
        Field(
            description="Access keys AWS clients sign with, comma-separated "
            "'ACCESS_KEY_ID:SECRET[:ACCOUNT_ID]'; STS reports a key's ACCOUNT_ID (else "
            "--account-id) "
            "as the caller's account; resources stay in --account-id. Prefer the environment "
            "variable: a flag shows in the process list."
        ),
        AfterValidator(_check_aws_credentials),
    ] = SecretStr("")

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        return self

    def checks_aws_signatures(self) -> bool:
        """Whether AWS calls must be signed with a configured key: `--aws-auth`, where 'auto'
        means unless the platform listens on loopback only."""
        if self.aws_auth == "auto":
            return not _is_loopback(self.host)
        return self.aws_auth == "on"


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load_settings(overrides: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Merge defaults, `UNKAI_*` environment variables and explicit overrides (flags).

    Raises ConfigError naming the variable or flag whose value is invalid.
    """
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        if env_name(name) in environ:
            values[name] = environ[env_name(name)]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a rule across settings: its message names them
            raise ConfigError(message) from None
        field = str(err["loc"][0])
        source = "--" + field.replace("_", "-") if field in overrides else env_name(field)
        if field in _SECRET_SETTINGS:
            raise ConfigError(message, field=source) from None
        raise ConfigError(f"{message}, got {err.get('input')!r}", field=source) from None


def settings_markdown() -> str:
    """The settings table for docs/configuration.md."""
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        factory = info.default_factory
        default = info.default if factory is None else (factory.__doc__ or "").split(":")[0]
        flag = "--" + name.replace("_", "-")
        rows.append(f"| `{flag}` | `{env_name(name)}` | `{default}` | {info.description} |")
    return "\n".join(rows) + "\n"
