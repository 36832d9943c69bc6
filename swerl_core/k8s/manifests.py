"""What every rendered Kubernetes object of swerl shares: the error, the manifest type, the home volume's mount,
names Kubernetes accepts, and writing manifests one file per object (what ``kubectl apply -f DIR`` takes)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from swerl_core.errors import SwerlError

Manifest = dict[str, Any]
HOME_MOUNT = "/data"  # SWERL_HOME inside every pod
# RFC 1123 label: what Kubernetes accepts as a Service, Job or ConfigMap name.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_NAME = 52  # leaves room for the "-<index>-<suffix>" Kubernetes appends to a Job's pod names
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


class K8sError(SwerlError):
    """Rendering or following a Kubernetes job failed; the message names the resource or setting."""


def job_name(name: str, fallback: str) -> str:
    """``name`` as a Job name: an RFC 1123 label of at most :data:`MAX_NAME` characters (``fallback`` when nothing
    of it is left; a digest of it keeps two long names apart)."""
    label = _NOT_DNS.sub("-", name.lower()).strip("-") or fallback
    if len(label) <= MAX_NAME:
        return label
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{label[: MAX_NAME - 9].rstrip('-')}-{digest}"


def write_manifests(manifests: list[Manifest], out_dir: Path) -> list[Path]:
    """Write one YAML file per object (``NN-kind-name.yaml``, apply order, readable by the owner only) into
    ``out_dir``; returns the paths."""
    names = [f"{i:02d}-{m['kind'].lower()}-{m['metadata']['name']}.yaml" for i, m in enumerate(manifests)]
    if out_dir.exists() and not out_dir.is_dir():
        raise K8sError(f"cannot write manifests into {out_dir}: it is not a folder")
    # `kubectl apply -f DIR` applies every file in it: another run's Job left there would start as well.
    others = sorted(p.name for p in out_dir.glob("*.y*ml") if p.name not in names) if out_dir.is_dir() else []
    if others:
        raise K8sError(f"{out_dir} already holds other manifests ({', '.join(others[:3])}…): use an empty folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / name for name in names]
        for path, manifest in zip(paths, manifests, strict=True):
            path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
            path.chmod(0o600)  # a ConfigMap holds what the cluster needs to know: runs, recipes; nobody else
    except OSError as exc:
        raise K8sError(f"cannot write manifests into {out_dir}: {exc.strerror or exc}") from None
    return paths
