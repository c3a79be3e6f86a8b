"""`DeployResult`: what a deploy or remove did (or, in a dry run, would do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from unkai.deploy.versions import Route

#: new: a version was published; updated: function settings changed, same version;
#: unchanged: nothing to do; removed: the function and its versions are gone.
FunctionStatus = Literal["new", "updated", "unchanged", "removed"]


@dataclass(frozen=True, slots=True)
class FunctionOutcome:
    name: str
    version: str
    status: FunctionStatus


@dataclass(frozen=True, slots=True)
class DeployResult:
    service: str
    stage: str
    functions: tuple[FunctionOutcome, ...]
    #: The service's routes after the deploy (none after a remove).
    routes: tuple[Route, ...]
    #: `Step.describe()` of every step, in plan order.
    steps: tuple[str, ...]
    changed: bool
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the control API and the CLI."""
        return {
            "service": self.service,
            "stage": self.stage,
            "functions": [
                {"name": f.name, "version": f.version, "status": f.status} for f in self.functions
            ],
            "routes": [
                {"method": r.method, "path": r.path, "function": r.function} for r in self.routes
            ],
            "steps": list(self.steps),
            "changed": self.changed,
            "dry_run": self.dry_run,
        }
