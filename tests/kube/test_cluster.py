"""The test cluster itself, with plain batch/v1 Jobs: the control plane schedules and reaps,
the stand-in kubelet runs containers as processes and reports them as a kubelet would."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.kube.cluster import REPO
from tests.kube.jobs import OPT_ML, Kube, gone, job, shell, started_pid
from tests.support.kube import KubeTestCluster
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kubernetes


def test_a_job_completes_and_its_log_reads_back_through_the_apiserver(kube: Kube) -> None:
    name = kube.create_job(job([shell("main", "echo hi; echo there; exit 0")]))
    assert wait_until(lambda: kube.condition(name)) == "Complete/"
    pod = kube.only_pod(name)
    assert pod is not None
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert terminated["startedAt"] <= terminated["finishedAt"]
    assert kube.log(pod, "main") == "hi\nthere\n"
    assert kube.log(pod, "main", tail_lines=1) == "there\n"
    assert kube.log(pod, "main", limit_bytes=2) == "hi"


def test_a_failing_init_container_fails_the_pod_with_its_termination_message(
    kube: Kube,
) -> None:
    training = shell(
        "training",
        "mkdir -p output && echo 'AlgorithmError: bad lr' > output/failure; exit 3",
        volumeMounts=[OPT_ML],
        terminationMessagePath="/opt/ml/output/failure",
        terminationMessagePolicy="File",
    )
    finish = shell("finish", "echo must not run", volumeMounts=[OPT_ML])
    name = kube.create_job(job([finish], init=[training]))
    assert wait_until(lambda: kube.condition(name)) == "Failed/BackoffLimitExceeded"
    pod = kube.only_pod(name)
    assert pod is not None
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert terminated["message"] == "AlgorithmError: bad lr\n"
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "PodInitializing"


def test_a_foreground_delete_stops_the_process_and_the_job_goes(kube: Kube) -> None:
    name = kube.create_job(job([shell("main", "echo $$; exec sleep 300")]))
    pid = started_pid(kube, name)
    assert not gone(pid)
    kube.batch.delete_namespaced_job(name, kube.namespace, propagation_policy="Foreground")
    wait_until(lambda: kube.job(name) is None, timeout=20)
    assert gone(pid)
    assert kube.pods(name) == []


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(kube: Kube) -> None:
    stubborn = shell("main", "trap '' TERM; echo $$; while :; do sleep 0.1; done")
    name = kube.create_job(job([stubborn], terminationGracePeriodSeconds=1))
    pid = started_pid(kube, name)
    kube.batch.delete_namespaced_job(name, kube.namespace, propagation_policy="Foreground")
    wait_until(lambda: kube.job(name) is None, timeout=20)
    assert gone(pid)


def test_the_job_controller_enforces_active_deadline_seconds(kube: Kube) -> None:
    body = job([shell("main", "echo $$; exec sleep 300")])
    body["spec"]["activeDeadlineSeconds"] = 2
    name = kube.create_job(body)
    pid = started_pid(kube, name)
    assert wait_until(lambda: kube.condition(name), timeout=30) == "Failed/DeadlineExceeded"
    wait_until(lambda: gone(pid), timeout=10)


def test_a_pod_asking_more_gpus_than_any_node_has_stays_pending_unschedulable(
    kube: Kube,
) -> None:
    greedy = shell("main", "exit 0", resources={"limits": {"nvidia.com/gpu": "5"}})
    name = kube.create_job(job([greedy]))

    def scheduled() -> dict[str, str] | None:
        pod = kube.only_pod(name) or {}
        conditions = pod.get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    condition = wait_until(scheduled)
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in condition["message"]
    assert (kube.only_pod(name) or {})["status"]["phase"] == "Pending"


def test_init_and_main_containers_share_the_opt_ml_directory(
    kube: Kube, kube_cluster: KubeTestCluster
) -> None:
    stage = shell(
        "stage", "mkdir -p input/config && echo staged > input/config/x.json", volumeMounts=[OPT_ML]
    )
    main = {
        "name": "main",
        "image": "busybox:1.36",  # no command: the image maps to `sh -c`, args follow
        "args": ['cat input/config/x.json; echo "$SAGEMAKER_BASE_DIR $HOSTNAME $SM_HOSTS"'],
        "env": [{"name": "SM_HOSTS", "value": '["algo-1"]'}],
        "volumeMounts": [OPT_ML],
    }
    name = kube.create_job(job([main], init=[stage], hostname="algo-1", subdomain="bd-test"))
    assert wait_until(lambda: kube.condition(name)) == "Complete/"
    pod = kube.only_pod(name)
    assert pod is not None
    staged, line = kube.log(pod, "main").splitlines()
    base_dir, hostname, hosts = line.split(" ")
    assert (staged, hostname, hosts) == ("staged", "algo-1", '["algo-1"]')
    assert Path(base_dir).is_relative_to(kube_cluster.pods_dir)
    assert (Path(base_dir) / "input/config/x.json").read_text() == "staged\n"
    assert kube.log(pod, "stage") == ""


def test_a_container_whose_command_is_not_found_fails_to_start(kube: Kube) -> None:
    missing = {"name": "main", "image": "x", "command": ["no-such-command-anywhere"]}
    name = kube.create_job(job([missing]))
    assert wait_until(lambda: kube.condition(name)) == "Failed/BackoffLimitExceeded"
    pod = kube.only_pod(name)
    assert pod is not None
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "StartError"
    assert "no-such-command-anywhere" in terminated["message"]


def test_commands_resolve_to_this_interpreter_and_this_tree(kube: Kube) -> None:
    # `batchd container stage|finish` in the pod template must run the code under test.
    script = 'command -v batchd; python -c "import batchd; print(batchd.__file__)"'
    name = kube.create_job(job([shell("main", script)]))
    assert wait_until(lambda: kube.condition(name)) == "Complete/"
    batchd, module = kube.log(kube.wait_pod(name), "main").splitlines()
    assert Path(batchd) == Path(sys.executable).parent / "batchd"
    assert Path(module).is_relative_to(REPO / "src")
