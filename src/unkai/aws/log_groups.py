"""`LogGroupNames`: how unkai's stage-scoped log groups appear as CloudWatch Logs groups.

A function sees AWS_LAMBDA_LOG_GROUP_NAME = `/aws/lambda/<function>` in every stage
(observe/logs.py), but a CloudWatch name must also say which stage's function it means:
- the default stage's functions are `/aws/lambda/<function>`, as on Lambda, so scripts written
  for AWS work unchanged;
- another stage's are `/unkai/<stage>/<function>`, the key the store and the control API use.
Stage and function names cannot contain "/" (config/spec.py NAME_PATTERN), so neither form is
ambiguous, and AWS reserves only names under `/aws/`. `/unkai/<default stage>/<function>` is
read as the default stage's group too; listings show it as `/aws/lambda/<function>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from unkai.observe.logs import GROUP_PREFIX, lambda_log_group_name

LAMBDA_PREFIX = "/aws/lambda/"
#: `arn:aws:logs:<region>:<account>:log-group:<name>`, with or without the trailing `:*`.
_ARN = re.compile(r"arn:aws[\w-]*:logs:[^:]*:[^:]*:log-group:(?P<name>[^:]+)(?::\*)?")


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    stage: str
    function: str


class LogGroupNames:
    def __init__(self, *, default_stage: str, account_id: str, region: str) -> None:
        self.default_stage = default_stage
        self._arn_prefix = f"arn:aws:logs:{region}:{account_id}:log-group:"

    def group(self, stage: str, function: str) -> Group:
        """The CloudWatch group of a function of a stage."""
        if stage == self.default_stage:
            return Group(lambda_log_group_name(function), stage, function)
        return Group(f"{GROUP_PREFIX}{stage}/{function}", stage, function)

    def parse(self, identifier: str) -> Group | None:
        """The group a name or ARN stands for, or None when it is of neither form."""
        match = _ARN.fullmatch(identifier)
        name = match["name"] if match else identifier
        if name.startswith(LAMBDA_PREFIX):
            function = name.removeprefix(LAMBDA_PREFIX)
            valid = bool(function) and "/" not in function
            return self.group(self.default_stage, function) if valid else None
        if name.startswith(GROUP_PREFIX):
            stage, _, function = name.removeprefix(GROUP_PREFIX).partition("/")
            valid = bool(stage and function) and "/" not in function
            return self.group(stage, function) if valid else None
        return None

    def arn(self, group: Group) -> str:
        """The group's ARN (LogGroup `logGroupArn`; `arn` adds ":*")."""
        return self._arn_prefix + group.name

    def describe(self) -> str:
        """The naming rule, for error messages."""
        return (
            f"/aws/lambda/<function> in stage {self.default_stage!r}, "
            f"{GROUP_PREFIX}<stage>/<function> in the others"
        )
