"""A stand-in kubelet for tests: registers Nodes, keeps them Ready, and runs the containers of
pods bound to them as local processes (tests/kube/pods.py), serving their logs to the
apiserver (tests/kube/logserver.py). See POD_CONTRACT.md for how a container maps to a process.

    python -m tests.kube.kubelet --kubeconfig KC --dir DIR [--node NAME[:RES=QTY,...]]...
        [--image-command IMAGE=CMD]...

A Node's resources default to cpu 8, memory 32Gi, pods 110 and nvidia.com/gpu 4; ``--node
gpu-1:nvidia.com/gpu=8,+pool=gpu,!dedicated=gpu:NoSchedule`` overrides one, adds the label
pool=gpu and the taint dedicated=gpu:NoSchedule (see parse_node).

Restarts: a kubelet that finds a pod on its Nodes that it did not start, which a kubelet
already started (status.startTime set) and which has not finished, does not re-adopt it: it
kills the process groups the previous kubelet recorded for it and marks it Failed with reason
KubeletRestarted, as a node that rebooted under its pods would. Pods bound but never started
simply start. On SIGTERM the kubelet kills its pods' processes and exits (the pods' objects are
left as they are); after a SIGKILL the processes keep running until the next kubelet kills them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kube.logserver import serve_logs
from tests.kube.pods import ImageCommands, PodRunner, kill_recorded, now
from tests.kube.rawapi import ApiError, RawApi

__all__ = ["DEFAULT_CAPACITY", "Kubelet", "NodeSpec", "parse_node"]

log = logging.getLogger("kubelet")
DEFAULT_CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "4"}
HEARTBEAT_SECONDS = 5.0
WATCH_SECONDS = 240


@dataclass
class NodeSpec:
    name: str
    capacity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)


def parse_node(spec: str) -> NodeSpec:
    """``NAME[:ITEM,...]``, each ITEM ``RES=QTY`` (capacity), ``+KEY=VALUE`` (a label) or
    ``!KEY[=VALUE]:EFFECT`` (a taint), e.g. ``gpu-1:nvidia.com/gpu=8,+pool=gpu,!gpu:NoSchedule``."""
    name, _, items = spec.partition(":")
    node = NodeSpec(name)
    for item in filter(None, (each.strip() for each in items.split(","))):
        if item.startswith("+"):
            key, _, value = item[1:].partition("=")
            node.labels[key] = value
        elif item.startswith("!"):
            taint, _, effect = item[1:].rpartition(":")
            key, _, value = taint.partition("=")
            node.taints.append({"key": key, "value": value, "effect": effect})
        else:
            resource, _, quantity = item.partition("=")
            node.capacity[resource] = quantity
    return node


class Kubelet:
    def __init__(
        self,
        api: RawApi,
        root: Path,
        nodes: Sequence[str],
        images: ImageCommands,
        port: int = 0,
    ) -> None:
        self.api, self.root, self.images, self.port = api, root, images, port
        self.nodes = {node.name: node for node in map(parse_node, nodes)}
        self.pods: dict[str, PodRunner] = {}
        self.lock = threading.Lock()
        self.boot_id = str(uuid.uuid4())

    def find(self, namespace: str, name: str) -> PodRunner | None:
        with self.lock:
            return next(
                (r for r in self.pods.values() if (r.namespace, r.name) == (namespace, name)),
                None,
            )

    # -- Nodes --------------------------------------------------------------------------

    def _node_status(self, name: str) -> dict[str, Any]:
        stamp = now()
        conditions = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", "True", "KubeletReady"),
        ]
        capacity = self.nodes[name].capacity
        node_info = {
            "machineID": name,
            "systemUUID": name,
            "bootID": self.boot_id,
            "kernelVersion": "local",
            "osImage": "batchd stand-in kubelet",
            "containerRuntimeVersion": "local-process://1",
            "kubeletVersion": "v1.20.2",
            "kubeProxyVersion": "v1.20.2",
            "operatingSystem": "linux",
            "architecture": "amd64",
        }
        return {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": reason,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
                for kind, status, reason in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": node_info,
        }

    def register(self) -> None:
        for name, node in self.nodes.items():
            labels = {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "batchd.io/stand-in-kubelet": "true",
                **node.labels,
            }
            body = {"metadata": {"name": name, "labels": labels}, "spec": {"taints": node.taints}}
            try:
                self.api.call("POST", "/api/v1/nodes", body=body)
            except ApiError as error:  # a restarted kubelet: the Node is still there
                if error.status != 409:
                    raise
                self.api.call("PATCH", f"/api/v1/nodes/{name}", body={"metadata": body["metadata"]})
            self.heartbeat(name)

    def heartbeat(self, name: str) -> None:
        body = {"status": self._node_status(name)}
        self.api.call("PATCH", f"/api/v1/nodes/{name}/status", body=body)

    def heartbeats(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            for name in self.nodes:
                try:
                    self.heartbeat(name)
                except Exception:
                    log.exception("heartbeat of %s failed", name)

    # -- Pods ---------------------------------------------------------------------------

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        meta, status = pod["metadata"], pod.get("status") or {}
        if pod["spec"].get("nodeName") not in self.nodes:
            return
        uid = meta["uid"]
        with self.lock:
            runner = self.pods.get(uid)
            if kind == "DELETED":
                self.pods.pop(uid, None)
        pod_dir = self.root / "pods" / f"{meta['namespace']}_{meta['name']}_{uid}"
        grace = float(meta.get("deletionGracePeriodSeconds") or 0)
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            if runner is not None:
                threading.Thread(target=runner.terminate, args=(grace,), daemon=True).start()
            else:
                kill_recorded(pod_dir)
                self._delete_now(meta)
        elif runner is None and status.get("phase") in ("Succeeded", "Failed"):
            return
        elif runner is None and status.get("startTime"):
            kill_recorded(pod_dir)
            self._fail_orphan(pod)
        elif runner is None:
            runner = PodRunner(self.api, pod, pod_dir, self.images)
            with self.lock:
                self.pods[uid] = runner
            runner.start()

    def _delete_now(self, meta: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):
            self.api.call(
                "DELETE",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )

    def _fail_orphan(self, pod: dict[str, Any]) -> None:
        message = "the stand-in kubelet restarted while this pod ran; its processes were killed"
        terminated = {"exitCode": 137, "reason": "Error", "message": message, "finishedAt": now()}

        def killed(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
            for each in statuses:
                if "terminated" not in (each.get("state") or {}):
                    each["state"] = {"terminated": terminated}
                    each["ready"] = False
            return statuses

        status = pod.get("status") or {}
        body = {"status": {
            "phase": "Failed", "reason": "KubeletRestarted", "message": message,
            "initContainerStatuses": killed(status.get("initContainerStatuses") or []),
            "containerStatuses": killed(status.get("containerStatuses") or []),
        }}  # fmt: skip
        meta = pod["metadata"]
        with contextlib.suppress(ApiError):
            self.api.call(
                "PATCH",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                body=body,
            )

    def _forget_missing(self, uids: set[str]) -> None:
        """Pods deleted while the watch was down: their processes go too."""
        with self.lock:
            missing = [self.pods.pop(uid) for uid in list(self.pods) if uid not in uids]
        for runner in missing:
            threading.Thread(target=runner.terminate, args=(0.0,), daemon=True).start()

    def sync(self, stop: threading.Event) -> None:
        """List, then watch from the list's resourceVersion; relist when the watch expires."""
        while not stop.is_set():
            try:
                listed = self.api.call("GET", "/api/v1/pods")
                self._forget_missing({pod["metadata"]["uid"] for pod in listed["items"]})
                for pod in listed["items"]:
                    self.handle("ADDED", pod)
                version = listed["metadata"]["resourceVersion"]
                while not stop.is_set():
                    query = {"resourceVersion": version, "timeoutSeconds": str(WATCH_SECONDS),
                             "allowWatchBookmarks": "true"}  # fmt: skip
                    for event in self.api.watch("/api/v1/pods", query, WATCH_SECONDS + 30):
                        if event["type"] == "ERROR":
                            raise ApiError(event["object"].get("code", 500), event["object"])
                        version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self.handle(event["type"], event["object"])
            except Exception as error:
                if not isinstance(error, ApiError) or error.status != 410:
                    log.warning("pod watch failed (%s); listing again", error)
                    time.sleep(0.5)

    def shutdown(self) -> None:
        with self.lock:
            runners = list(self.pods.values())
        for runner in runners:
            runner.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.kube.kubelet")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--node", action="append", default=[], metavar="NAME[:RES=QTY,...]")
    parser.add_argument("--image-command", action="append", default=[], metavar="IMAGE=CMD")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args.dir.mkdir(parents=True, exist_ok=True)
    kubelet = Kubelet(
        RawApi(args.kubeconfig),
        args.dir,
        args.node or ["node-1"],
        ImageCommands(args.image_command),
    )
    server = serve_logs(args.dir, kubelet.find)
    kubelet.port = server.server_address[1]
    stop = threading.Event()

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    try:
        kubelet.register()
        threading.Thread(target=kubelet.heartbeats, args=(stop,), daemon=True).start()
        log.info("nodes %s registered; logs on port %d", list(kubelet.nodes), kubelet.port)
        kubelet.sync(stop)
    finally:
        stop.set()
        kubelet.shutdown()
        server.shutdown()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
