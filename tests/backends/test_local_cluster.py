"""Multi-instance jobs: per-host config, host names that resolve, and the degraded mode."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from batchd.backends.base import Progress, TrainingPhase
from batchd.backends.local.hostnames import HostsFile, loopback_address
from tests.backends.conftest import (
    get_local,
    new_backend,
    python_job,
    run_to_end,
    spec_for,
    tar_members,
)

# algo-1 listens on its own address; algo-2 connects to it by name, from its own address.
RENDEZVOUS = """
import os, pathlib, socket, time
host = os.environ["CURRENT_HOST"]
meeting = pathlib.Path(os.environ["MEETING_DIR"])
model = pathlib.Path(os.environ["SAGEMAKER_BASE_DIR"]) / "model"
if host == "algo-1":
    server = socket.create_server((socket.gethostbyname("algo-1"), 0))
    server.settimeout(20)
    (meeting / "port.tmp").write_text(str(server.getsockname()[1]))
    os.rename(meeting / "port.tmp", meeting / "port")
    conn, (peer, _) = server.accept()
    greeting = conn.recv(100).decode()
    conn.sendall(b"welcome")
    (model / "algo-1.txt").write_text(f"{greeting} via {peer}")
else:
    while not (meeting / "port").exists():
        time.sleep(0.01)
    port = int((meeting / "port").read_text())
    own = (socket.gethostbyname(host), 0)
    conn = socket.create_connection(("algo-1", port), timeout=20, source_address=own)
    conn.sendall(f"hello from {host}".encode())
    (model / "algo-2.txt").write_text(conn.recv(100).decode())
"""


def test_two_hosts_find_each_other_by_name_and_their_models_merge(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given a 2-instance job whose hosts meet over TCP using the names algo-1 and algo-2
    payload = python_job(RENDEZVOUS, Environment={"MEETING_DIR": str(tmp_path)})
    payload["ResourceConfig"]["InstanceCount"] = 2
    spec = spec_for(payload)

    # When it runs (the backend adds the names to /etc/hosts on this machine)
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec))

    # Then both hosts talked, each from its own loopback address, and model/ dirs merged
    assert progress.phase is TrainingPhase.COMPLETED, progress.failure_reason
    assert progress.model_artifacts is not None
    model = tar_members(get_local(data_dir, progress.model_artifacts))
    assert model == {
        "algo-1.txt": f"hello from algo-2 via {loopback_address('algo-2')}".encode(),
        "algo-2.txt": b"welcome",
    }


def test_each_host_gets_its_own_consistent_resource_config(data_dir: Path) -> None:
    payload = python_job("pass")
    payload["ResourceConfig"] = {
        "InstanceGroups": [
            {"InstanceGroupName": "controller", "InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
            {"InstanceGroupName": "workers", "InstanceType": "ml.g5.xlarge", "InstanceCount": 2},
        ]
    }
    spec = spec_for(payload)
    progress = asyncio.run(run_to_end(new_backend(data_dir), spec))
    assert progress.phase is TrainingPhase.COMPLETED

    configs = {
        host: json.loads(
            (
                data_dir
                / "jobs"
                / spec.training_job_name
                / host
                / "input/config/resourceconfig.json"
            ).read_text()
        )
        for host in ("algo-1", "algo-2", "algo-3")
    }
    groups = [
        {"instance_group_name": "controller", "instance_type": "ml.c5.xlarge", "hosts": ["algo-1"]},
        {
            "instance_group_name": "workers",
            "instance_type": "ml.g5.xlarge",
            "hosts": ["algo-2", "algo-3"],
        },
    ]
    for host, config in configs.items():
        assert config["current_host"] == host
        assert config["hosts"] == ["algo-1", "algo-2", "algo-3"]
        assert config["instance_groups"] == groups
        assert config["network_interface_name"]
    assert configs["algo-1"]["current_group_name"] == "controller"
    assert configs["algo-3"]["current_group_name"] == "workers"
    assert configs["algo-3"]["current_instance_group"] == "workers"
    assert configs["algo-3"]["current_instance_type"] == "ml.g5.xlarge"


def test_without_a_writable_hosts_file_jobs_still_run_and_skip_the_toolkit_dns_wait(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given a hosts file that cannot be written (its directory does not exist)
    code = (
        "import os; open(os.environ['SAGEMAKER_BASE_DIR'] + '/model/mode', 'w')"
        ".write(os.environ.get('SM_STUDIO_LOCAL_MODE', 'unset'))"
    )
    spec = spec_for(python_job(code))
    backend = new_backend(data_dir, hosts_file=tmp_path / "missing" / "hosts")

    async def scenario() -> tuple[Progress, bytes]:
        progress = await run_to_end(backend, spec)
        return progress, await backend.read_log(spec.training_job_name, "algo-1", 0, 1 << 20)

    progress, log = asyncio.run(scenario())

    assert progress.phase is TrainingPhase.COMPLETED
    assert progress.model_artifacts is not None
    assert tar_members(get_local(data_dir, progress.model_artifacts)) == {"mode": b"true"}
    assert b"SM_STUDIO_LOCAL_MODE=true" in log


def test_hosts_file_gains_only_the_missing_names_once(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.0.0.5 algo-1  # someone else's\n")

    assert HostsFile(hosts).ensure(["algo-1", "algo-2", "algo-3"]) is None
    assert HostsFile(hosts).ensure(["algo-2", "algo-3"]) is None  # a second backend: no-op

    lines = hosts.read_text().splitlines()
    assert lines[:2] == ["127.0.0.1 localhost", "10.0.0.5 algo-1  # someone else's"]
    assert [line.split()[:2] for line in lines[2:]] == [
        [loopback_address("algo-2"), "algo-2"],
        [loopback_address("algo-3"), "algo-3"],
    ]
    assert HostsFile(None).ensure(["algo-1"]) is not None
