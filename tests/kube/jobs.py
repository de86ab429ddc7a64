"""Plain batch/v1 Jobs for tests of the cluster itself, read back as dicts (the client's typed
models make every field Optional, which a test checking one field does not need)."""

from __future__ import annotations

import os
import uuid
from typing import Any

from kubernetes.client import ApiClient, BatchV1Api, CoreV1Api, V1Job
from kubernetes.client.exceptions import ApiException

from tests.support.waiting import wait_until

__all__ = ["OPT_ML", "Kube", "gone", "job", "shell", "started_pid"]

OPT_ML = {"name": "opt-ml", "mountPath": "/opt/ml"}


def job(
    containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    """A Job as batchd lays one out: backoffLimit 0, restartPolicy Never, an opt-ml emptyDir."""
    name = f"j-{uuid.uuid4().hex[:8]}"
    template = {
        "metadata": {"labels": {"test-job": name}},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "opt-ml", "emptyDir": {}}],
            "initContainers": init or [],
            "containers": containers,
            **spec,
        },
    }
    return {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": template}}


def shell(name: str, script: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "test-shell", "command": ["sh", "-c", script], **fields}


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Kube:
    def __init__(self, api_client: ApiClient, namespace: str) -> None:
        self.api_client, self.namespace = api_client, namespace
        self.core, self.batch = CoreV1Api(api_client), BatchV1Api(api_client)

    def _dict(self, model: Any) -> dict[str, Any]:
        found: dict[str, Any] = self.api_client.sanitize_for_serialization(model)
        return found

    def create_job(self, body: dict[str, Any]) -> str:
        self.batch.create_namespaced_job(self.namespace, V1Job.model_validate(body))
        name: str = body["metadata"]["name"]
        return name

    def pods(self, job_name: str) -> list[dict[str, Any]]:
        found = self.core.list_namespaced_pod(self.namespace, label_selector=f"test-job={job_name}")
        return [self._dict(pod) for pod in found.items]

    def wait_pod(self, job_name: str) -> dict[str, Any]:
        pod = wait_until(lambda: self.only_pod(job_name))
        assert pod is not None
        return pod

    def wait_running(self, job_name: str) -> dict[str, Any]:
        def running() -> dict[str, Any] | None:
            pod = self.only_pod(job_name)
            return pod if pod and pod["status"].get("phase") == "Running" else None

        pod = wait_until(running)
        assert pod is not None
        return pod

    def only_pod(self, job_name: str) -> dict[str, Any] | None:
        pods = self.pods(job_name)
        return pods[0] if len(pods) == 1 else None

    def job(self, name: str) -> dict[str, Any] | None:
        try:
            return self._dict(self.batch.read_namespaced_job_status(name, self.namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def condition(self, name: str) -> str | None:
        """The Job's true condition as "type/reason" (reason "" when it has none)."""
        found = self.job(name) or {}
        conditions = found.get("status", {}).get("conditions", [])
        true = [f"{c['type']}/{c.get('reason', '')}" for c in conditions if c["status"] == "True"]
        return true[0] if true else None

    def log(self, pod: dict[str, Any], container: str, **query: Any) -> str:
        name = pod["metadata"]["name"]
        text: str = self.core.read_namespaced_pod_log(
            name, self.namespace, container=container, **query
        )
        return text


def started_pid(kube: Kube, job_name: str) -> int:
    """The pid that the Job's container, running ``echo $$; exec sleep ...``, printed."""
    pod = kube.wait_running(job_name)
    return int(wait_until(lambda: kube.log(pod, "main")))
