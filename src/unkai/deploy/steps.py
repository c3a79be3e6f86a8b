"""The frozen steps a deploy or remove plan is made of.

Two sorts: file steps (`StoreBundle`, `InstallRequirements`) that the `Applier` performs
first, content-addressed and therefore harmless if the commit later fails; and metadata steps
whose `writes()` the Applier commits together in one atomic `MetadataStore.commit`, each
write carrying the revision the planner read (0: must not exist yet). `describe()` is what
`unkai deploy` and `--dry-run` print; both print the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from unkai.backends.base import Write
from unkai.deploy import versions as layout
from unkai.deploy.bundle import CodeBundle
from unkai.deploy.requirements import Requirements
from unkai.deploy.versions import FunctionRecord, FunctionVersion, Route, ServiceRecord

SHORT_SHA = 8


class Step(Protocol):
    def describe(self) -> str: ...

    def writes(self) -> list[Write]: ...


@dataclass(frozen=True, slots=True)
class StoreBundle:
    bundle: CodeBundle
    functions: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"store code {self.bundle.sha256[:SHORT_SHA]} ({len(self.bundle.files)} files) "
            f"for {', '.join(self.functions)}"
        )

    def writes(self) -> list[Write]:
        return []


@dataclass(frozen=True, slots=True)
class InstallRequirements:
    requirements: Requirements
    #: pip runs here, so relative paths in the file resolve against the app.
    app_dir: Path
    functions: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"install {self.requirements.path.name} as deps "
            f"{self.requirements.sha256[:SHORT_SHA]} for {', '.join(self.functions)}"
        )

    def writes(self) -> list[Write]:
        return []


@dataclass(frozen=True, slots=True)
class PublishVersion:
    version: FunctionVersion
    #: Revision of the function document; 0 when the function is new.
    function_revision: int

    def describe(self) -> str:
        v = self.version
        return (
            f"publish {v.name} version {v.version} (code {v.code_sha256[:SHORT_SHA]}, "
            f"{v.memory_size_mb} MB, {v.timeout_s} s)"
        )

    def writes(self) -> list[Write]:
        v = self.version
        record = FunctionRecord(
            v.service, v.version, v.reserved_concurrency, v.description, v.async_config
        )
        return [
            Write(layout.VERSION, layout.version_key(v.stage, v.name, v.version), v.to_doc(), 0),
            Write(
                layout.FUNCTION,
                layout.function_key(v.stage, v.name),
                record.to_doc(),
                self.function_revision,
            ),
        ]


@dataclass(frozen=True, slots=True)
class UpdateFunction:
    """Function-level settings changed (reserved concurrency, description); no new version."""

    stage: str
    name: str
    record: FunctionRecord
    function_revision: int
    changes: str

    def describe(self) -> str:
        return f"update {self.name}: {self.changes}"

    def writes(self) -> list[Write]:
        key = layout.function_key(self.stage, self.name)
        return [Write(layout.FUNCTION, key, self.record.to_doc(), self.function_revision)]


@dataclass(frozen=True, slots=True)
class RemoveFunction:
    stage: str
    name: str
    function_revision: int
    #: (key, revision) of every version document.
    versions: tuple[tuple[str, int], ...]
    #: (key, revision) of every alias document: aliases go with their function.
    aliases: tuple[tuple[str, int], ...] = ()

    def describe(self) -> str:
        aliases = f" and {len(self.aliases)} alias(es)" if self.aliases else ""
        return f"remove {self.name} and its {len(self.versions)} version(s){aliases}"

    def writes(self) -> list[Write]:
        key = layout.function_key(self.stage, self.name)
        return [
            Write(layout.FUNCTION, key, None, self.function_revision),
            *(Write(layout.VERSION, k, None, rev) for k, rev in self.versions),
            *(Write(layout.ALIAS, k, None, rev) for k, rev in self.aliases),
        ]


@dataclass(frozen=True, slots=True)
class PutRoutes:
    """Replace a service's routes; an empty tuple deletes its routes document."""

    stage: str
    service: str
    routes: tuple[Route, ...]
    expected_revision: int

    def describe(self) -> str:
        if not self.routes:
            return f"remove the routes of {self.service}"
        shown = ", ".join(f"{r.method} {r.path} -> {r.function}" for r in self.routes)
        return f"set routes of {self.service}: {shown}"

    def writes(self) -> list[Write]:
        key = layout.routes_key(self.stage, self.service)
        value = {"routes": [r.to_doc() for r in self.routes]} if self.routes else None
        return [Write(layout.ROUTES, key, value, self.expected_revision)]


@dataclass(frozen=True, slots=True)
class PutService:
    """Record (or, with `record=None`, delete) the service document."""

    stage: str
    service: str
    record: ServiceRecord | None
    expected_revision: int

    def describe(self) -> str:
        if self.record is None:
            return f"remove service {self.service} from stage {self.stage}"
        verb = "add" if self.expected_revision == 0 else "record"
        functions = ", ".join(self.record.functions) or "none"
        return f"{verb} service {self.service} in stage {self.stage} (functions: {functions})"

    def writes(self) -> list[Write]:
        key = layout.service_key(self.stage, self.service)
        value = self.record.to_doc() if self.record is not None else None
        return [Write(layout.SERVICE, key, value, self.expected_revision)]
