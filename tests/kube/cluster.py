"""A real Kubernetes v1.20.2 control plane on loopback for tests: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and the stand-in kubelet (tests/kube/kubelet.py), which
runs pods' containers as local processes.

Every listener takes a free port on 127.0.0.1, and all state (etcd data, keys, logs, pods)
lives under one directory, so two test sessions never collide. Binaries come from
``$BATCHD_K8S_CACHE/bin`` (default /var/cache/batchd-k8s/1.20.2/bin; build them with
``sudo contrib/kubernetes/build-control-plane.sh``) and ``etcd`` from PATH.

As a script, for poking at it by hand::

    PYTHONPATH=src .venv/bin/python -m tests.kube.cluster start --dir /tmp/kube \
        [--node NAME[:cpu=8,memory=32Gi,pods=110,nvidia.com/gpu=4]]... \
        [--image-command IMAGE=CMD]...

prints the kubeconfig's path (``kubectl --kubeconfig PATH get nodes``) and runs until Ctrl-C.
Each component logs to DIR/logs/<name>.log; pods' directories are under DIR/kubelet/pods.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.kube import pki
from tests.support.process import free_port

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = ["BUILD_COMMAND", "ClusterError", "KubeCluster", "binaries_dir", "missing_binaries"]

BUILD_COMMAND = "sudo contrib/kubernetes/build-control-plane.sh"
REPO = Path(__file__).resolve().parents[2]
TOKEN = "batchd-test-token"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


class ClusterError(RuntimeError):
    pass


def binaries_dir() -> Path:
    return Path(os.environ.get("BATCHD_K8S_CACHE", "/var/cache/batchd-k8s/1.20.2")) / "bin"


def missing_binaries() -> list[str]:
    """What of the control plane cannot be found, as paths or names."""
    missing = [str(binaries_dir() / n) for n in BINARIES if not (binaries_dir() / n).is_file()]
    return missing + ([] if shutil.which("etcd") else ["etcd (on PATH)"])


def _dying_with_parent(argv: list[str]) -> list[str]:
    # A pytest killed with SIGKILL must not leave a 300 MB apiserver behind; setpriv sets the
    # parent-death signal without a preexec_fn, which is unsafe in a threaded test process.
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


class Proc:
    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                _dying_with_parent(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def died(self) -> str:
        return (
            f"{self.name} exited with code {self.popen.returncode}; "
            f"last lines of {self.log}:\n{self.tail()}"
        )

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 10) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(10)

    def rss_bytes(self) -> int:
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0


class KubeCluster:
    """One control plane and one stand-in kubelet process (serving one or more Nodes)."""

    def __init__(
        self,
        root: Path,
        *,
        nodes: Sequence[str] = ("node-1",),
        image_commands: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.nodes = list(nodes)
        self.image_commands = list(image_commands)
        self.kubeconfig = root / "kubeconfig"
        self.kubelet_dir = root / "kubelet"
        self.pods_dir = self.kubelet_dir / "pods"
        self.logs = root / "logs"
        self.procs: dict[str, Proc] = {}
        self.port = 0
        self.start_seconds = 0.0

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def __enter__(self) -> KubeCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 90) -> None:
        missing = missing_binaries()
        if missing:
            raise ClusterError(f"missing {', '.join(missing)}; run: {BUILD_COMMAND}")
        began = time.monotonic()
        deadline = began + timeout
        for d in (self.root, self.logs, self.kubelet_dir, self.root / "pki"):
            d.mkdir(parents=True, exist_ok=True)
        try:
            self._start_etcd_and_apiserver(deadline)
            self._start_controllers(deadline)
            self.start_kubelet(timeout=max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began

    def check(self, doing: str = "") -> None:
        """Raise if a component has died, naming it and quoting its log."""
        for proc in self.procs.values():
            if not proc.alive():
                raise ClusterError(f"{doing}{proc.died()}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, self.logs / f"{name}.log", env or dict(os.environ))
        self.procs[name] = proc
        return proc

    def _wait(self, what: str, ready: Callable[[], bool], deadline: float) -> None:
        while True:
            self.check(f"while waiting for {what}: ")
            with contextlib.suppress(OSError, ValueError):
                if ready():
                    return
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {p.name}:\n{p.tail(10)}" for p in self.procs.values())
                raise ClusterError(f"timed out waiting for {what}\n{tails}")
            time.sleep(0.1)

    def _start_etcd_and_apiserver(self, deadline: float) -> None:
        pki_dir = self.root / "pki"
        ca, crt, key = pki.write_ca_and_serving_cert(pki_dir, "apiserver")
        sa_key, sa_pub = pki.write_rsa_key_pair(pki_dir, "service-account")
        tokens = pki_dir / "tokens.csv"
        tokens.write_text(f"{TOKEN},admin,admin,system:masters\n")
        client, peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client}"
        self._spawn(
            "etcd",
            [
                "etcd", "--name=test", f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=test=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync", "--log-level=warn",
            ],
        )  # fmt: skip
        self._wait("etcd", lambda: b'"true"' in _get(f"{etcd_url}/health"), deadline)
        self.port = free_port()
        self._write_kubeconfig(ca)
        self._spawn(
            "kube-apiserver",
            [
                str(binaries_dir() / "kube-apiserver"), f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}", "--insecure-port=0",
                f"--tls-cert-file={crt}", f"--tls-private-key-file={key}",
                f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.96.0.0/24",
                # Nothing creates the `default` ServiceAccount's token, so pods would be refused.
                "--disable-admission-plugins=ServiceAccount",
                "--endpoint-reconciler-type=none", "--allow-privileged=true",
                # Logs are fetched from the stand-in kubelet at the Node's InternalIP; a
                # Hostname address would have to resolve.
                "--kubelet-preferred-address-types=InternalIP", "--profiling=false",
                "--max-requests-inflight=1000", "--max-mutating-requests-inflight=500",
            ],
        )  # fmt: skip
        context = ssl.create_default_context(cafile=str(ca))
        self._wait(
            "kube-apiserver /readyz",
            lambda: _get(f"{self.server}/readyz", context, TOKEN) == b"ok",
            deadline,
        )

    def _start_controllers(self, deadline: float) -> None:
        cm_port, sched_port = free_port(), free_port()
        common = [
            f"--kubeconfig={self.kubeconfig}", "--leader-elect=false",
            "--bind-address=127.0.0.1", "--port=0",
            # The defaults (20 QPS) make 100 Jobs' pods trickle out over half a minute.
            "--kube-api-qps=500", "--kube-api-burst=1000",
        ]  # fmt: skip
        self._spawn(
            "kube-controller-manager",
            [
                str(binaries_dir() / "kube-controller-manager"), *common,
                f"--secure-port={cm_port}",
                # nodelifecycle lifts the not-ready taint admission puts on new Nodes; namespace
                # empties deleted namespaces (one per test).
                "--controllers=job,garbagecollector,podgc,nodelifecycle,namespace",
                "--node-monitor-period=1s",
            ],
        )  # fmt: skip
        self._spawn(
            "kube-scheduler",
            [str(binaries_dir() / "kube-scheduler"), *common, f"--secure-port={sched_port}"],
        )
        insecure = ssl._create_unverified_context()  # their self-made serving certs
        for name, port in (("kube-controller-manager", cm_port), ("kube-scheduler", sched_port)):
            url = f"https://127.0.0.1:{port}/healthz"
            self._wait(f"{name} /healthz", partial(_healthy, url, insecure), deadline)

    def _write_kubeconfig(self, ca: Path) -> None:
        import base64

        ca_data = base64.b64encode(ca.read_bytes()).decode()
        self.kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
            f"clusters:\n- name: test\n  cluster:\n    server: {self.server}\n"
            f"    certificate-authority-data: {ca_data}\n"
            f"users:\n- name: admin\n  user:\n    token: {TOKEN}\n"
            "contexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n"
        )

    def start_kubelet(self, timeout: float = 60) -> None:
        """Start (or restart) the stand-in kubelet and wait until its Nodes are schedulable."""
        env = dict(os.environ)
        # `batchd` in a container's command must be this interpreter's, from this tree.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), str(REPO), env.get("PYTHONPATH")) if p
        )
        argv = [sys.executable, "-m", "tests.kube.kubelet", "--kubeconfig", str(self.kubeconfig)]
        argv += ["--dir", str(self.kubelet_dir)]
        argv += [a for node in self.nodes for a in ("--node", node)]
        argv += [a for mapping in self.image_commands for a in ("--image-command", mapping)]
        self._spawn("kubelet", argv, env)
        names = {node.split(":", 1)[0] for node in self.nodes}
        self._wait("Nodes Ready", lambda: self._schedulable() >= names, time.monotonic() + timeout)

    def stop_kubelet(self, *, kill: bool = False) -> None:
        """SIGTERM stops the kubelet and its pods' processes; SIGKILL leaves them running, as a
        crashed kubelet would."""
        proc = self.procs.pop("kubelet", None)
        if proc is None:
            return
        if kill:
            proc.signal(signal.SIGKILL)
            proc.popen.wait(10)
        else:
            proc.stop()

    def _schedulable(self) -> set[str]:
        import json

        context = ssl.create_default_context(cafile=str(self.root / "pki" / "ca.crt"))
        nodes = json.loads(_get(f"{self.server}/api/v1/nodes", context, TOKEN))["items"]
        return {
            n["metadata"]["name"]
            for n in nodes
            # Taints a test asked for stay; the not-ready one goes when the node is Ready.
            if not any(
                t["key"].startswith("node.kubernetes.io/") for t in n["spec"].get("taints", [])
            )
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        }

    def stop(self) -> None:
        self.stop_kubelet()
        procs = list(self.procs.values())
        for proc in procs:
            proc.signal(signal.SIGTERM)
        for proc in procs:
            proc.stop()
        self.procs.clear()

    def rss_bytes(self) -> dict[str, int]:
        return {name: proc.rss_bytes() for name, proc in self.procs.items()}

    def api_client(self) -> ApiClient:
        """A fresh client of the official ``kubernetes`` package for this cluster."""
        from kubernetes import client

        from tests.kube.rawapi import configuration

        return client.ApiClient(configuration(self.kubeconfig))


def _get(url: str, context: ssl.SSLContext | None = None, token: str | None = None) -> bytes:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=2, context=context) as response:
        body: bytes = response.read()
        return body


def _healthy(url: str, context: ssl.SSLContext) -> bool:
    return _get(url, context) == b"ok"


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.kube.cluster")
    parser.add_argument("action", choices=["start"])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--node", action="append", default=[], metavar="NAME[:RES=QTY,...]")
    parser.add_argument("--image-command", action="append", default=[], metavar="IMAGE=CMD")
    args = parser.parse_args(argv)
    cluster = KubeCluster(
        args.dir.resolve(), nodes=args.node or ["node-1"], image_commands=args.image_command
    )

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell's background job starts with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    try:
        cluster.start()
        print(cluster.kubeconfig, flush=True)
        print(f"started in {cluster.start_seconds:.1f}s; Ctrl-C stops it", file=sys.stderr)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    _main()
