"""`InstanceSpec`: everything the runtime needs to start an instance of one FunctionVersion.

Built by the invoke layer from a deployed FunctionVersion; the runtime knows nothing of
manifests, stages' routes or the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    #: Unique per function version, e.g. "dev/hello:3"; pools are keyed by it.
    version_key: str
    function_name: str
    #: "$LATEST" or a version number as a string; reported as AWS_LAMBDA_FUNCTION_VERSION.
    version: str
    handler: str
    #: The immutable code bundle; becomes LAMBDA_TASK_ROOT, the cwd and sys.path[0].
    task_root: Path
    #: Installed requirements of this version, on sys.path after task_root; None when none.
    deps_dir: Path | None
    memory_size_mb: int
    timeout_s: int
    #: The function's own variables; the runtime adds the Lambda ones (AWS_LAMBDA_*, _HANDLER...).
    environment: dict[str, str] = field(default_factory=dict)
    function_arn: str = ""
    log_group: str = ""
    region: str = "us-east-1"
    runtime: str = "python3.11"
    #: The stage the version belongs to (for listings and log groups).
    stage: str = ""
    #: The platform's URL for the AWS APIs it serves (SQS, Lambda), given to the function's
    #: SDK as AWS_ENDPOINT_URL; empty before the platform is listening.
    aws_endpoint: str = ""
    #: The function's own access key id and secret (`unkai.access.aws_keys.FunctionKeys`).
    aws_credentials: tuple[str, str] | None = field(default=None, repr=False)
