"""`CodeBundle`: an app's code, content-addressed by sha256 and stored immutably.

`scan` lists and hashes the app directory; `store` copies it to `<bundles_dir>/<sha256>/` by
writing a temporary directory and renaming it into place, so a reader never sees a partial
bundle and storing the same content twice copies nothing. The copy is hashed again while it
is written: if a file changed between planning and storing, the copy is discarded.

What is hashed: for each file in sorted relative-path order, the path, the owner-exec bit,
the size and the bytes (length-prefixed, so no two file sets hash alike). Left out: version
control and tool directories (`EXCLUDED_DIRS`), `*.pyc`, the manifest itself (a manifest edit
that changes one function must not republish the others; its effect is in each version's
config hash), and any directory passed in `exclude` (the data dir, when it lives inside the
app). Symlinked files are read through; symlinked directories are not followed.

All methods block on file I/O; call them from a thread when on the event loop.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from unkai.config.load import MANIFEST_NAMES
from unkai.errors import ConfigError

EXCLUDED_DIRS = frozenset(
    {".git", ".venv", "venv", "__pycache__", ".unkai", "node_modules", ".pytest_cache"}
)
EXCLUDED_SUFFIXES = (".pyc",)
#: Bundles are read-only, like Lambda's /var/task.
_MODE_EXECUTABLE, _MODE_PLAIN = 0o555, 0o444


@dataclass(frozen=True, slots=True)
class BundleFile:
    #: POSIX path relative to the app directory.
    relative: str
    executable: bool


@dataclass(frozen=True, slots=True)
class CodeBundle:
    source_dir: Path
    sha256: str
    files: tuple[BundleFile, ...]

    @classmethod
    def scan(cls, source_dir: Path, *, exclude: Iterable[Path] = ()) -> CodeBundle:
        """List and hash the files of `source_dir` (see the module docstring for what counts)."""
        excluded = {p.resolve() for p in exclude}
        files = tuple(sorted(_walk(source_dir, excluded), key=lambda f: f.relative))
        digest = hashlib.sha256()
        for f in files:
            _hash_file(digest, f, (source_dir / f.relative).read_bytes())
        return cls(source_dir, digest.hexdigest(), files)

    def path_in(self, bundles_dir: Path) -> Path:
        return bundles_dir / self.sha256

    def store(self, bundles_dir: Path) -> bool:
        """Copy the files into `<bundles_dir>/<sha256>/` unless it exists; True when copied.

        Idempotent and safe against a concurrent store of the same bundle. Raises ConfigError
        when the source changed since `scan` (nothing is left behind).
        """
        target = self.path_in(bundles_dir)
        if target.exists():
            return False
        bundles_dir.mkdir(parents=True, exist_ok=True)
        tmp = bundles_dir / f".tmp-{self.sha256[:16]}-{uuid.uuid4().hex[:8]}"
        try:
            if self._copy_to(tmp) != self.sha256:
                raise ConfigError(
                    f"files in {self.source_dir} changed while deploying; run deploy again"
                )
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
            return False  # another deploy stored the same content first
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        return True

    def _copy_to(self, tmp: Path) -> str:
        """Write every file under `tmp`, returning the hash of what was actually written."""
        digest = hashlib.sha256()
        tmp.mkdir()
        for f in self.files:
            data = (self.source_dir / f.relative).read_bytes()
            _hash_file(digest, f, data)
            dest = tmp / f.relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            dest.chmod(_MODE_EXECUTABLE if f.executable else _MODE_PLAIN)
        return digest.hexdigest()


def _hash_file(digest: hashlib._Hash, f: BundleFile, data: bytes) -> None:
    path = f.relative.encode()
    digest.update(len(path).to_bytes(4, "big") + path)
    digest.update(b"x" if f.executable else b"-")
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)


def _walk(source_dir: Path, excluded: set[Path]) -> Iterator[BundleFile]:
    for root, dirnames, filenames in os.walk(source_dir):
        root_path = Path(root)
        dirnames[:] = [
            d
            for d in dirnames
            if d not in EXCLUDED_DIRS and (root_path / d).resolve() not in excluded
        ]
        for name in filenames:
            if name.endswith(EXCLUDED_SUFFIXES):
                continue
            if root_path == source_dir and name in MANIFEST_NAMES:
                continue
            path = root_path / name
            try:
                mode = path.stat().st_mode  # follows symlinks; a dangling one is skipped
            except FileNotFoundError:
                continue
            if stat.S_ISREG(mode):
                relative = path.relative_to(source_dir).as_posix()
                yield BundleFile(relative, bool(mode & stat.S_IXUSR))
