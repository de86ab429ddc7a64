"""A local copy of batchd's Jobs and pods in one namespace, kept by list-then-watch.

Polling the API server for every live attempt on every tick would cost two requests per tick
whatever happens; a watch costs one long request per kind and tells us at once, so ``poll``
reads this copy without I/O and a change wakes the runtime. Each kind is kept by a daemon
thread because the official client is synchronous; readers take a snapshot under the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from batchd.backends.kubernetes.manifests import MANAGED, TRAINING_JOB

__all__ = ["Informer"]

_log = logging.getLogger(__name__)
Obj = dict[str, Any]
_SELECTOR = f"{MANAGED}=batchd"
_WATCH_SECONDS = 240
_RETRY_SECONDS = 1.0


class Informer:
    """Jobs and pods labelled as batchd's, grouped by training job name."""

    def __init__(
        self, api: client.ApiClient, namespace: str, on_change: Callable[[], None]
    ) -> None:
        self.namespace = namespace
        self._api = api
        self._on_change = on_change
        self._lock = threading.Lock()
        # kind -> object name -> object
        self._objects: dict[str, dict[str, Obj]] = {"jobs": {}, "pods": {}}
        self._synced = {"jobs": threading.Event(), "pods": threading.Event()}
        self._stopping = threading.Event()
        self._watches: list[watch.Watch] = []
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        self._lists = {"jobs": batch.list_namespaced_job, "pods": core.list_namespaced_pod}
        self._threads = [
            threading.Thread(target=self._run, args=(kind,), name=f"batchd-k8s-{kind}", daemon=True)
            for kind in self._lists
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for stream in list(self._watches):
            stream.stop()

    def synced(self) -> bool:
        """True once both kinds have been listed: from then on, absent means absent."""
        return all(event.is_set() for event in self._synced.values())

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(
            event.wait(max(0.0, deadline - time.monotonic())) for event in self._synced.values()
        )

    def attempt(self, training_job: str) -> tuple[list[Obj], list[Obj]]:
        """The training job's Jobs and pods (pods oldest first)."""
        with self._lock:
            jobs = [o for o in self._objects["jobs"].values() if _owner(o) == training_job]
            pods = [o for o in self._objects["pods"].values() if _owner(o) == training_job]
        pods.sort(key=lambda o: str(o["metadata"].get("creationTimestamp") or ""))
        return jobs, pods

    def jobs_by_training_job(self) -> dict[str, list[Obj]]:
        found: dict[str, list[Obj]] = {}
        with self._lock:
            for job in self._objects["jobs"].values():
                found.setdefault(_owner(job), []).append(job)
        return found

    # -- the watch threads -----------------------------------------------------------------

    def _run(self, kind: str) -> None:
        while not self._stopping.is_set():
            try:
                self._list_and_watch(kind)
            except ApiException as err:
                if err.status != 410:  # 410 Gone: our version is too old; list again
                    _log.warning("watching %s in %s: %s", kind, self.namespace, err.reason)
                    self._stopping.wait(_RETRY_SECONDS)
            except Exception as err:  # the connection broke: the next list starts afresh
                if not self._stopping.is_set():
                    _log.warning("watching %s in %s failed: %s", kind, self.namespace, err)
                    self._stopping.wait(_RETRY_SECONDS)

    def _list_and_watch(self, kind: str) -> None:
        listed = self._lists[kind](self.namespace, label_selector=_SELECTOR)
        objects = {o["metadata"]["name"]: o for o in self._plain(listed.items)}
        with self._lock:
            self._objects[kind] = objects
        self._synced[kind].set()
        self._on_change()
        version = listed.metadata.resource_version
        stream = watch.Watch()
        self._watches.append(stream)
        try:
            for event in stream.stream(
                self._lists[kind],
                self.namespace,
                label_selector=_SELECTOR,
                resource_version=version,
                timeout_seconds=_WATCH_SECONDS,
            ):
                if self._stopping.is_set():
                    return
                self._apply(kind, event)
        finally:
            self._watches.remove(stream)

    def _apply(self, kind: str, event: Mapping[str, Any]) -> None:
        if event["type"] == "ERROR":
            raise ApiException(status=(event.get("raw_object") or {}).get("code", 500))
        if event["type"] == "BOOKMARK":
            return
        obj = self._plain([event["object"]])[0]
        name = obj["metadata"]["name"]
        with self._lock:
            if event["type"] == "DELETED":
                self._objects[kind].pop(name, None)
            else:
                self._objects[kind][name] = obj
        self._on_change()

    def _plain(self, items: list[Any]) -> list[Obj]:
        return [self._api.sanitize_for_serialization(item) for item in items]


def _owner(obj: Obj) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(TRAINING_JOB, ""))
