"""SageMaker instance types as Kubernetes scheduling terms: requests, node selectors, tolerations.

A pod asks for what the ``ml.*`` instance it stands for has, so the cluster's scheduler packs
hosts the way SageMaker's capacity would. The default table knows the common families by their
vCPUs, memory and GPUs; a JSON file given to ``--kubernetes-instance-types`` replaces or adds
entries, for example to pin a type to a node pool::

    {"ml.g5.xlarge": {"requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                      "nodeSelector": {"node.kubernetes.io/instance-type": "g5.xlarge"},
                      "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                       "effect": "NoSchedule"}]}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchd import jsontext

__all__ = ["InstanceTypes", "Placement", "UnknownInstanceType"]

GPU = "nvidia.com/gpu"
_GPU_TOLERATION = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
_SIZE = re.compile(r"^(?:(\d+)xlarge|xlarge|large|medium)$")
# GiB of memory per vCPU, by family: what AWS sells in each (m: 4, c: 2, r: 8, ...).
_MEMORY_PER_VCPU = {
    "t3": 2, "m4": 4, "m5": 4, "m5d": 4, "m6i": 4, "m7i": 4, "c4": 2, "c5": 2, "c5n": 2.6,
    "c6i": 2, "c7i": 2, "r5": 8, "r5d": 8, "r6i": 8, "r7i": 8, "g4dn": 4, "g5": 4, "g6": 4,
    "g6e": 8, "trn1": 16, "inf2": 4,
}  # fmt: skip
# Types with accelerators or a shape the family rule does not give: vCPU, GiB, GPUs.
_EXACT: dict[str, tuple[int, float, int]] = {
    "ml.p3.2xlarge": (8, 61, 1), "ml.p3.8xlarge": (32, 244, 4), "ml.p3.16xlarge": (64, 488, 8),
    "ml.p3dn.24xlarge": (96, 768, 8), "ml.p4d.24xlarge": (96, 1152, 8),
    "ml.p4de.24xlarge": (96, 1152, 8), "ml.p5.48xlarge": (192, 2048, 8),
    "ml.g4dn.xlarge": (4, 16, 1), "ml.g4dn.2xlarge": (8, 32, 1), "ml.g4dn.4xlarge": (16, 64, 1),
    "ml.g4dn.8xlarge": (32, 128, 1), "ml.g4dn.12xlarge": (48, 192, 4),
    "ml.g4dn.16xlarge": (64, 256, 1),
    "ml.g5.xlarge": (4, 16, 1), "ml.g5.2xlarge": (8, 32, 1), "ml.g5.4xlarge": (16, 64, 1),
    "ml.g5.8xlarge": (32, 128, 1), "ml.g5.12xlarge": (48, 192, 4),
    "ml.g5.16xlarge": (64, 256, 1), "ml.g5.24xlarge": (96, 384, 4),
    "ml.g5.48xlarge": (192, 768, 8),
    "ml.g6.xlarge": (4, 16, 1), "ml.g6.12xlarge": (48, 192, 4), "ml.g6.48xlarge": (192, 768, 8),
}  # fmt: skip


class UnknownInstanceType(ValueError):
    """An instance type neither the table nor the family rule knows."""


@dataclass(frozen=True)
class Placement:
    """What one host's pod asks of the cluster."""

    requests: Mapping[str, str]
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()

    def resources(self) -> dict[str, dict[str, str]]:
        # Extended resources (GPUs) must have limits equal to their requests.
        limits = {k: v for k, v in self.requests.items() if k not in ("cpu", "memory")}
        return (
            {"requests": dict(self.requests), "limits": limits}
            if limits
            else {"requests": dict(self.requests)}
        )


def _default(instance_type: str) -> Placement:
    exact = _EXACT.get(instance_type)
    if exact is not None:
        vcpus, gib, gpus = exact
    else:
        parts = instance_type.split(".")
        if len(parts) != 3 or parts[0] != "ml" or parts[1] not in _MEMORY_PER_VCPU:
            raise UnknownInstanceType(instance_type)
        match = _SIZE.match(parts[2])
        if match is None:
            raise UnknownInstanceType(instance_type)
        if parts[2] in ("medium", "large"):
            vcpus = 1 if parts[2] == "medium" else 2
        else:
            vcpus = 4 * int(match.group(1) or 1)
        gib, gpus = vcpus * _MEMORY_PER_VCPU[parts[1]], 0
    requests = {"cpu": str(vcpus), "memory": f"{int(gib)}Gi"}
    if gpus:
        requests[GPU] = str(gpus)
        return Placement(requests, tolerations=(_GPU_TOLERATION,))
    return Placement(requests)


@dataclass(frozen=True)
class InstanceTypes:
    """The default table, with a file's entries over it."""

    overrides: Mapping[str, Placement] = field(default_factory=dict)

    def placement(self, instance_type: str) -> Placement:
        found = self.overrides.get(instance_type)
        return found if found is not None else _default(instance_type)

    @classmethod
    def load(cls, path: Path | None) -> InstanceTypes:
        """Read an override file; ValueError says which entry is wrong and how."""
        if path is None:
            return cls()
        data = jsontext.loads(path.read_bytes())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of instance type -> entry")
        return cls({name: _entry(path, name, entry) for name, entry in data.items()})


def _entry(path: Path, name: str, entry: Any) -> Placement:
    where = f"{path}: {name}"
    if not isinstance(entry, dict) or not isinstance(entry.get("requests"), dict):
        raise ValueError(f"{where}: expected an object with a 'requests' object")
    requests = {str(k): str(v) for k, v in entry["requests"].items()}
    selector = entry.get("nodeSelector", {})
    tolerations = entry.get("tolerations", [])
    if not isinstance(selector, dict) or not isinstance(tolerations, list):
        raise ValueError(f"{where}: nodeSelector must be an object and tolerations a list")
    if any(not isinstance(t, dict) for t in tolerations):
        raise ValueError(f"{where}: each toleration must be an object")
    return Placement(requests, {str(k): str(v) for k, v in selector.items()}, tuple(tolerations))
