"""A host's log stream, read from its pod: ``stage``, then ``training``, then ``finish``.

The three containers run one after the other, so their logs put end to end only ever grow at
the end: a byte offset into the joined text stays valid while the host runs. A container that
has ended cannot print more, so its text is kept (a follower rereads from the API only what
can still change).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from batchd.backends.kubernetes.manifests import HOST
from batchd.backends.kubernetes.observe import container_state
from batchd.backends.local.workspace import host_order

__all__ = ["PodLogs", "label"]

Obj = Mapping[str, Any]
CONTAINERS = ("stage", "training", "finish")
_KEEP = 512


def label(obj: Obj, key: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(key)
    return None if value is None else str(value)


def _started(pod: Obj, container: str) -> bool:
    state = container_state(pod, container)
    return state is not None and state[0] != "waiting"


class PodLogs:
    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self._core = core
        self.namespace = namespace
        self._ended: collections.OrderedDict[tuple[str, str], bytes] = collections.OrderedDict()

    def hosts(self, pods: Sequence[Obj]) -> list[str]:
        """Hosts whose pod has started a container, ``algo-1`` first."""
        found = {
            host
            for pod in pods
            if (host := label(pod, HOST)) is not None
            and any(_started(pod, container) for container in CONTAINERS)
        }
        return sorted(found, key=host_order)

    async def read(self, pods: Sequence[Obj], host: str) -> bytes:
        mine = [pod for pod in pods if label(pod, HOST) == host]
        if not mine:
            return b""
        return await asyncio.to_thread(self._read, mine[-1])

    def _read(self, pod: Obj) -> bytes:
        parts = []
        for container in CONTAINERS:
            state = container_state(pod, container)
            if state is None or state[0] == "waiting":
                break
            parts.append(self._container(pod, container, ended=state[0] == "terminated"))
        return b"".join(parts)

    def _container(self, pod: Obj, container: str, *, ended: bool) -> bytes:
        key = (str(pod["metadata"].get("uid") or pod["metadata"]["name"]), container)
        if key in self._ended:
            return self._ended[key]
        try:
            response = self._core.read_namespaced_pod_log(
                pod["metadata"]["name"], self.namespace, container=container, _preload_content=False
            )
            data = bytes(response.data)
        except ApiException:
            return b""  # the pod went, or the node cannot be reached: nothing to show
        if ended:
            self._ended[key] = data
            while len(self._ended) > _KEEP:
                self._ended.popitem(last=False)
        return data

    async def last_line(self, pods: Sequence[Obj], container: str) -> str | None:
        """The last line the newest pod's ``container`` printed (stderr and stdout together)."""
        if not pods:
            return None
        pod = pods[-1]
        data = await asyncio.to_thread(self._container, pod, container, ended=True)
        lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
        return next((line for line in reversed(lines) if line), None)
