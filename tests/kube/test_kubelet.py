"""The stand-in kubelet under the conditions the backend will put it in: many pods at once,
followed logs, and a kubelet that restarts under running pods."""

from __future__ import annotations

import time
from functools import partial

import pytest

from tests.kube.jobs import OPT_ML, Kube, gone, job, shell, started_pid
from tests.kube.kubelet import DEFAULT_CAPACITY, NodeSpec, parse_node
from tests.support.kube import KubeTestCluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kubernetes


def test_thirty_jobs_at_once_all_run_side_by_side(kube: Kube) -> None:
    began = time.monotonic()
    names = [kube.create_job(job([shell("main", "sleep 2; echo done")])) for _ in range(30)]
    for name in names:
        assert wait_until(partial(kube.condition, name), timeout=60) == "Complete/"
    # One after another they would take a minute; side by side, a few seconds.
    assert time.monotonic() - began < 30
    assert kube.log(kube.wait_pod(names[-1]), "main") == "done\n"


def test_a_followed_log_streams_until_the_container_exits(kube: Kube) -> None:
    name = kube.create_job(job([shell("main", "echo one; sleep 1; echo two")]))
    pod = kube.wait_running(name)
    assert kube.log(pod, "main", follow=True) == "one\ntwo\n"


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_restarted_kubelet_fails_the_pods_it_did_not_start_and_kills_them(
    kube: Kube, kube_cluster: KubeTestCluster, how: str
) -> None:
    name = kube.create_job(job([shell("main", "echo $$; exec sleep 300")]))
    pid = started_pid(kube, name)
    cluster = kube_cluster.cluster
    cluster.stop_kubelet(kill=how == "SIGKILL")
    # A crashed kubelet leaves its containers running; a stopped one takes them along.
    assert gone(pid) == (how == "SIGTERM")
    cluster.start_kubelet()
    assert wait_until(lambda: kube.condition(name)) == "Failed/BackoffLimitExceeded"
    status = (kube.only_pod(name) or {})["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "KubeletRestarted")
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 137
    wait_until(lambda: gone(pid), timeout=5)


def test_a_working_dir_under_a_volume_is_made_and_used(kube: Kube) -> None:
    code = shell("main", "pwd", volumeMounts=[OPT_ML], workingDir="/opt/ml/code")
    name = kube.create_job(job([code]))
    assert wait_until(lambda: kube.condition(name)) == "Complete/"
    assert kube.log(kube.wait_pod(name), "main").endswith("/volumes/opt-ml/code\n")


def test_node_specs_set_capacity_labels_and_taints() -> None:
    node = parse_node("gpu-1:nvidia.com/gpu=8,+pool=gpu,!dedicated=gpu:NoSchedule,!spot:NoExecute")
    assert node.name == "gpu-1"
    assert node.capacity == {**DEFAULT_CAPACITY, "nvidia.com/gpu": "8"}
    assert node.labels == {"pool": "gpu"}
    assert node.taints == [
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
        {"key": "spot", "value": "", "effect": "NoExecute"},
    ]
    assert parse_node("plain") == NodeSpec("plain")
