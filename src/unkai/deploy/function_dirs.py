"""The app directories of functions made through the Lambda API, under `<data_dir>/functions/`.

Layout (`FunctionDirs`):

  <data_dir>/functions/<stage>/<name>/<revision>/   one app directory per API write
      unkai.yml                    generated: service `lambda-<name>` with the one function
      .unkai/function.json         `ApiAttributes`: what Lambda reports that a manifest has no
                                   field for (role, the zip's sha256 and size, architectures,
                                   last modified, and the UUID and last modified time of each
                                   queue mapping, by queue: `MappingIdentity`)
      .unkai/no-requirements.txt   only when the zip has a root `requirements.txt` (see below)
      ...                          the zip's files, executable bits kept

A write never changes a directory: it builds a new revision beside the live one and deploys
it. Which revision is live is the deployed service record's `app_dir` (in the backend), so a
crash at any point leaves at worst an unreferenced revision, deleted by the function's next
successful write (`prune`). `.unkai/` and the root `unkai.yml` are left out of the code
bundle (bundle.py), so the code hash is the zip's content alone.

Lambda never installs packages from a zip: a root `requirements.txt` is code like any other
file. A manifest without `requirements` would install it, so the generated one names an empty
file instead.

Every method blocks on file I/O: call them from a thread when on the event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import time
import uuid
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from unkai.config.spec_base import NAME_PATTERN
from unkai.errors import InvalidRequest

MANIFEST = "unkai.yml"
ATTRIBUTES = ".unkai/function.json"
NO_REQUIREMENTS = ".unkai/no-requirements.txt"
#: Lambda's limit on the unzipped size of a deployment package
#: (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_UNZIPPED_BYTES = 262_144_000
#: Lambda's answer to a package it cannot unzip.
BAD_ZIP_MESSAGE = "Could not unzip uploaded file. Please check your file, then try to upload again."


def invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="InvalidParameterValueException")


@dataclass(frozen=True, slots=True)
class MappingIdentity:
    """What Lambda reports of a queue mapping that its `- sqs:` event has no field for. The
    event's queue is the key: a function maps a queue at most once."""

    queue: str
    uuid: str
    last_modified_ms: int


@dataclass(frozen=True, slots=True)
class ApiAttributes:
    """Kept with each revision; Lambda reports them, the manifest has no field for them."""

    role: str
    architectures: tuple[str, ...]
    #: Hex sha256 and size of the zip as uploaded (Lambda's CodeSha256 and CodeSize).
    zip_sha256: str
    zip_size_bytes: int
    last_modified_ms: int
    #: One per `- sqs:` event of the generated manifest.
    mappings: tuple[MappingIdentity, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["architectures"] = list(self.architectures)
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ApiAttributes:
        """Reads revisions written before mappings were kept, too (no `mappings` key)."""
        mappings = tuple(MappingIdentity(**m) for m in doc.get("mappings", ()))
        return cls(**{**doc, "architectures": tuple(doc["architectures"]), "mappings": mappings})


def zip_attributes(code: bytes, *, role: str, architectures: tuple[str, ...]) -> ApiAttributes:
    return ApiAttributes(
        role,
        architectures,
        hashlib.sha256(code).hexdigest(),
        len(code),
        time.time_ns() // 1_000_000,
    )


class FunctionDirs:
    def __init__(self, root: Path) -> None:
        self._root = root

    def function_dir(self, stage: str, name: str) -> Path:
        """The parent of every revision of one function. Both names become path segments, so
        both are checked here, where the path is made, whatever the caller checked: a stage
        from a header like `../../x` must not reach the file system."""
        for value, what in ((stage, "stage (X-Unkai-Stage)"), (name, "FunctionName")):
            if not NAME_PATTERN.match(value):
                raise invalid(
                    f"the {what} must be 1 to 64 letters, digits, '-' or '_', got {value!r}"
                )
        return self._root / stage / name

    def owns(self, stage: str, name: str, app_dir: str) -> bool:
        """True when `app_dir` (a service record's) is a revision of this function."""
        return Path(app_dir).parent == self.function_dir(stage, name)

    def build(
        self,
        stage: str,
        name: str,
        manifest: dict[str, Any],
        attributes: ApiAttributes,
        *,
        code: bytes | None,
        code_from: Path | None = None,
    ) -> Path:
        """Write a new revision: the zip `code` unpacked, or the code of revision `code_from`
        (hard links: revisions are never changed once written), then the manifest and the
        attributes. Returns the manifest's path. Raises InvalidRequest for a bad zip; nothing
        is left behind then."""
        target = self.function_dir(stage, name) / uuid.uuid4().hex[:12]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if code is not None:
                target.mkdir()
                unpack_zip(code, target)
            elif code_from is not None:
                shutil.copytree(code_from, target, copy_function=os.link, ignore=_generated)
            has_requirements = (target / "requirements.txt").is_file()
            if has_requirements:
                _write(target / NO_REQUIREMENTS, "# Lambda installs nothing from the zip\n")
                functions = manifest["functions"]
                functions[name] = {**functions[name], "requirements": NO_REQUIREMENTS}
            _write(target / ATTRIBUTES, json.dumps(attributes.to_doc(), indent=2))
            _write(target / MANIFEST, yaml.safe_dump(manifest, sort_keys=False))
        except BaseException:
            self.discard(target / MANIFEST)
            raise
        return target / MANIFEST

    def attributes(self, app_dir: Path) -> ApiAttributes | None:
        """The attributes of a revision; None when it is gone or was never complete."""
        try:
            return ApiAttributes.from_doc(json.loads((app_dir / ATTRIBUTES).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def prune(self, stage: str, name: str, keep: Path | None) -> None:
        """Delete every revision but `keep` (all of them, and the function's directory, when
        None). Idempotent."""
        parent = self.function_dir(stage, name)
        if keep is None:
            shutil.rmtree(parent, ignore_errors=True)
            return
        if parent.is_dir():
            for child in parent.iterdir():
                if child != keep:
                    shutil.rmtree(child, ignore_errors=True)

    def discard(self, manifest: Path) -> None:
        """Delete a revision that was built but not deployed (and the function's directory
        when that leaves it empty: a create that failed)."""
        shutil.rmtree(manifest.parent, ignore_errors=True)
        with contextlib.suppress(OSError):
            manifest.parent.parent.rmdir()


def _generated(directory: str, names: list[str]) -> list[str]:
    """Left out when a revision's code is copied: the files each revision writes anew (a hard
    link would make writing them change the old revision too)."""
    return [n for n in names if n in (MANIFEST, ".unkai")]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def unpack_zip(code: bytes, target: Path) -> None:
    """Unpack a deployment package into `target`, keeping executable bits.

    Raises InvalidRequest (InvalidParameterValueException) when it is not a zip, unpacks to
    more than Lambda's 250 MB, has an entry outside the directory, or has a symbolic link.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(code))
    except (zipfile.BadZipFile, ValueError):
        raise invalid(BAD_ZIP_MESSAGE) from None
    with archive:
        entries = archive.infolist()
        total = sum(entry.file_size for entry in entries)
        if total > MAX_UNZIPPED_BYTES:
            raise invalid(f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")
        for entry in entries:
            _unpack_entry(archive, entry, target)


def _unpack_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path) -> None:
    relative = PurePosixPath(entry.filename)
    if relative.is_absolute() or ".." in relative.parts or "\\" in entry.filename:
        raise invalid(f"{BAD_ZIP_MESSAGE} (entry {entry.filename!r} leaves the package)")
    mode = entry.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise invalid(f"{BAD_ZIP_MESSAGE} (entry {entry.filename!r} is a symbolic link)")
    path = target.joinpath(*relative.parts)
    if entry.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_bytes(archive.read(entry))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise invalid(f"{BAD_ZIP_MESSAGE} (entry {entry.filename!r}: {exc})") from None
    path.chmod(0o755 if mode & stat.S_IXUSR else 0o644)
