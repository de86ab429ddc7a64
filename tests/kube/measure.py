"""What the test cluster costs: start time, memory, and how long pods take from
create_namespaced_job to Running and Jobs to Complete, for 1 and for N Jobs at once.

    PYTHONPATH=src .venv/bin/python -m tests.kube.measure [--jobs 1 --jobs 50 --jobs 100]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tests.kube.cluster import KubeCluster
from tests.kube.jobs import Kube, job, shell
from tests.kube.rawapi import RawApi
from tests.support.waiting import wait_until

__all__ = ["measure_burst"]


def _watch_running(
    api: RawApi, namespace: str, seen: dict[str, float], stop: threading.Event
) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    with contextlib.suppress(Exception):  # the cluster stopping under the watch
        for event in api.watch(path, {"timeoutSeconds": "300"}, 330):
            pod = event["object"]
            label = pod["metadata"].get("labels", {}).get("test-job")
            if label and label not in seen and pod.get("status", {}).get("phase") == "Running":
                seen[label] = time.monotonic()
            if stop.is_set():
                return


def measure_burst(cluster: KubeCluster, count: int, run_seconds: float) -> dict[str, float]:
    namespace = f"burst-{count}-{int(time.time())}"
    api = RawApi(cluster.kubeconfig)
    api.call("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_running, args=(api, namespace, seen, stop))
    watcher.daemon = True
    watcher.start()
    time.sleep(0.3)  # the watch is open before the first create
    with cluster.api_client() as api_client:
        kube = Kube(api_client, namespace)
        created: dict[str, float] = {}
        began = time.monotonic()
        for _ in range(count):
            body = job([shell("main", f"sleep {run_seconds}")])
            created[body["metadata"]["name"]] = time.monotonic()
            kube.create_job(body)
        creates = time.monotonic() - began
        for name in created:
            wait_until(lambda name=name: kube.condition(name) == "Complete/", timeout=300)  # type: ignore[misc]
        complete = time.monotonic() - began
        stop.set()
        latencies = sorted(seen[name] - created[name] for name in created if name in seen)
    return {
        "jobs": count,
        "creates_s": creates,
        "running_p50_s": statistics.median(latencies),
        "running_max_s": latencies[-1],
        "all_complete_s": complete,
        "seen_running": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.kube.measure")
    parser.add_argument("--jobs", type=int, action="append")
    parser.add_argument("--run-seconds", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, KubeCluster(Path(tmp)) as cluster:
        print(f"start: {cluster.start_seconds:.2f}s")
        rss = cluster.rss_bytes()
        print("rss at start (MB):", {k: round(v / 2**20) for k, v in rss.items()},
              f"total {sum(rss.values()) / 2**20:.0f}")  # fmt: skip
        for count in args.jobs or [1, 50]:
            result = measure_burst(cluster, count, args.run_seconds)
            print(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in result.items()))  # fmt: skip
        rss = cluster.rss_bytes()
        print("rss after (MB):", {k: round(v / 2**20) for k, v in rss.items()},
              f"total {sum(rss.values()) / 2**20:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
