"""One pod on the stand-in kubelet: its containers run as local processes, and its status is
patched the way a v1.20 kubelet reports it.

Init containers run one after another (a failing one fails the pod), then the containers run
side by side. Each process gets its own process group, stdout+stderr in
``<pod dir>/logs/<container>.log``, and when it exits the rest of its group is killed, as a
container's processes die with its PID 1. Volumes are directories under ``<pod dir>/volumes``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from tests.kube.rawapi import ApiError, RawApi

__all__ = ["GRACE_CAP_SECONDS", "ImageCommands", "PodRunner", "kill_recorded", "now"]

GRACE_CAP_SECONDS = 5.0
PASSED_ENV = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ImageCommands:
    """``IMAGE=CMD`` mappings, exact names first, then ``prefix*`` ones, longest prefix first."""

    def __init__(self, mappings: Sequence[str]) -> None:
        self.exact: dict[str, list[str]] = {}
        self.prefixes: list[tuple[str, list[str]]] = []
        for mapping in mappings:
            image, _, command = mapping.partition("=")
            if image.endswith("*"):
                self.prefixes.append((image[:-1], shlex.split(command)))
            else:
                self.exact[image] = shlex.split(command)
        self.prefixes.sort(key=lambda each: -len(each[0]))

    def argv(self, image: str) -> list[str] | None:
        if image in self.exact:
            return self.exact[image]
        return next((argv for prefix, argv in self.prefixes if image.startswith(prefix)), None)


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) references in command, args and env values."""
    return _REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _start_ticks(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def kill_recorded(pod_dir: Path) -> None:
    """Kill process groups a previous kubelet recorded for this pod, if they are still the
    same processes (a pid may have been reused since)."""
    for line in _read(pod_dir / "pgids").splitlines():
        pid, _, ticks = line.partition(" ")
        if pid.isdigit() and _start_ticks(int(pid)) == ticks:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)


def _read(path: Path, limit: int = 1 << 20) -> str:
    try:
        with path.open("rb") as f:
            return f.read(limit).decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Container:
    spec: dict[str, Any]
    init: bool
    state: dict[str, Any] = field(
        default_factory=lambda: {"waiting": {"reason": "PodInitializing"}}
    )
    proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        name: str = self.spec["name"]
        return name

    def proc_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> dict[str, Any]:
        terminated = self.state.get("terminated")
        return {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "containerID": f"local://{self.proc.pid}" if self.proc else None,
            "restartCount": 0,
            "ready": bool(terminated and terminated["exitCode"] == 0)
            if self.init
            else "running" in self.state,
            "started": "running" in self.state,
            "state": self.state,
            "lastState": {},
        }


class PodRunner:
    def __init__(
        self, api: RawApi, pod: dict[str, Any], pod_dir: Path, images: ImageCommands
    ) -> None:
        self.api, self.images, self.dir = api, images, pod_dir
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.spec: dict[str, Any] = pod["spec"]
        self.inits = [Container(c, True) for c in self.spec.get("initContainers") or []]
        self.mains = [Container(c, False) for c in self.spec.get("containers") or []]
        self.phase = "Pending"
        self.start_time = now()
        self.lock = threading.Lock()
        self.stopping = False
        self.silenced = False  # the kubelet is going away: report nothing more
        self.transitions: dict[str, tuple[bool, str]] = {}
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)
        self.volumes: dict[str, Path] = {}
        for volume in self.spec.get("volumes") or []:
            host = (volume.get("hostPath") or {}).get("path")
            self.volumes[volume["name"]] = (
                Path(host) if host else pod_dir / "volumes" / volume["name"]
            )

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"

    def container(self, name: str) -> Container | None:
        return next((c for c in [*self.inits, *self.mains] if c.name == name), None)

    def log_path(self, container: str) -> Path:
        return self.dir / "logs" / f"{container}.log"

    def start(self) -> None:
        for directory in [self.dir / "logs", *self.volumes.values()]:
            directory.mkdir(parents=True, exist_ok=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._patch()
            for container in self.inits:
                if not self._run_one(container) or self.stopping:
                    self.phase = "Failed"
                    self._patch()
                    return
            self._start_mains()
            for container in self.mains:
                self._wait(container)
                self._patch()
            ok = all(c.state.get("terminated", {}).get("exitCode") == 0 for c in self.mains)
            self.phase = "Succeeded" if ok else "Failed"
            self._patch()
        except ApiError as error:
            if error.status != 404:  # a pod deleted under us is no news
                raise

    def _start_mains(self) -> None:
        for container in self.mains:
            self._launch(container)
        self.phase = "Running"
        self._patch()

    def _run_one(self, container: Container) -> bool:
        if not self._launch(container):
            return False
        self._patch()
        self._wait(container)
        return bool(container.state["terminated"]["exitCode"] == 0)

    def _local(self, container: Container, path: str) -> Path | None:
        """Where a path inside the container lives on this machine, through its mounts."""
        best: tuple[str, Path] | None = None
        for mount in container.spec.get("volumeMounts") or []:
            root = mount["mountPath"].rstrip("/") or "/"
            if (path == root or path.startswith(root + "/")) and mount["name"] in self.volumes:
                local = self.volumes[mount["name"]] / (mount.get("subPath") or "")
                if best is None or len(root) > len(best[0]):
                    best = (root, local / path[len(root) :].lstrip("/"))
        return best[1] if best else None

    def _env(self, container: Container) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
        env["HOSTNAME"] = self.spec.get("hostname") or self.name
        for item in container.spec.get("env") or []:
            env[item["name"]] = _expand(item.get("value") or "", env)
        base = self._local(container, "/opt/ml")
        if base is not None:
            env["SAGEMAKER_BASE_DIR"] = str(base)
        return env

    def _argv(self, container: Container, env: dict[str, str]) -> list[str]:
        spec = container.spec
        entry = spec.get("command") or self.images.argv(spec.get("image", ""))
        if not entry:
            raise FileNotFoundError(f"no --image-command maps image {spec.get('image')!r}")
        argv = [_expand(a, env) for a in [*entry, *(spec.get("args") or [])]]
        found = shutil.which(argv[0], path=env.get("PATH"))
        if found is None:
            raise FileNotFoundError(f'exec: "{argv[0]}": executable file not found in $PATH')
        return [found, *argv[1:]]

    def _launch(self, container: Container) -> bool:
        started = now()
        with self.lock:
            if self.stopping:
                return False
            try:
                env = self._env(container)
                working_dir = container.spec.get("workingDir")
                base = env.get("SAGEMAKER_BASE_DIR")
                cwd = (working_dir and self._local(container, working_dir)) or base or self.dir
                Path(cwd).mkdir(parents=True, exist_ok=True)  # as runtimes make workingDir
                with self.log_path(container.name).open("ab") as log:
                    container.proc = subprocess.Popen(
                        self._argv(container, env),
                        cwd=cwd,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
            except OSError as error:
                container.state = {"terminated": self._terminated(128, "StartError", str(error))}
                container.state["terminated"]["startedAt"] = started
                return False
            pid = container.proc.pid
            with (self.dir / "pgids").open("a") as record:
                record.write(f"{pid} {_start_ticks(pid)}\n")
            container.state = {"running": {"startedAt": started}}
            return True

    def _wait(self, container: Container) -> None:
        if container.proc is None:
            return
        code = container.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(container.proc.pid, signal.SIGKILL)
        exit_code = code if code >= 0 else 128 - code
        message = self._termination_message(container, exit_code)
        terminated = self._terminated(
            exit_code, "Completed" if exit_code == 0 else "Error", message
        )
        terminated["startedAt"] = container.state.get("running", {}).get("startedAt", now())
        container.state = {"terminated": terminated}

    def _terminated(self, code: int, reason: str, message: str) -> dict[str, Any]:
        terminated = {"exitCode": code, "reason": reason, "finishedAt": now()}
        if message:
            terminated["message"] = message
        return terminated

    def _termination_message(self, container: Container, exit_code: int) -> str:
        spec = container.spec
        where = self._local(container, spec.get("terminationMessagePath") or "/dev/termination-log")
        message = _read(where, 4096) if where else ""
        if (
            not message
            and exit_code
            and spec.get("terminationMessagePolicy") == ("FallbackToLogsOnError")
        ):
            lines = _read(self.log_path(container.name)).splitlines()[-80:]
            message = "\n".join(lines)[-2048:]
        return message

    def _conditions(self) -> list[dict[str, Any]]:
        stamp = now()
        initialized = all("terminated" in c.state for c in self.inits) and all(
            c.state["terminated"]["exitCode"] == 0 for c in self.inits
        )
        ready = self.phase == "Running" and all("running" in c.state for c in self.mains)
        waiting = [c.name for c in self.inits if "terminated" not in c.state]
        done = self.phase in ("Succeeded", "Failed")

        def condition(
            kind: str, ok: bool, reason: str, message: str | None = None
        ) -> dict[str, Any]:
            # Conditions merge by type: None clears a reason the previous patch set.
            was = self.transitions.get(kind)
            if was is None or was[0] != ok:
                self.transitions[kind] = was = (ok, stamp)
            return {
                "type": kind,
                "status": str(ok),
                "lastProbeTime": None,
                "lastTransitionTime": was[1],
                "reason": None if ok else reason,
                "message": None if ok else message,
            }

        not_ready = "PodCompleted" if done else "ContainersNotReady"
        return [
            condition(
                "Initialized",
                initialized,
                "PodCompleted" if done and initialized else "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(waiting)}]",
            ),
            condition("Ready", ready, not_ready),
            condition("ContainersReady", ready, not_ready),
            condition("PodScheduled", True, ""),
        ]

    def status(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "conditions": self._conditions(),
            "initContainerStatuses": [c.status() for c in self.inits],
            "containerStatuses": [c.status() for c in self.mains],
        }

    def _patch(self) -> None:
        with self.lock:
            if self.silenced:
                return
            body = {"status": self.status()}
        for attempt in range(5):
            try:
                self.api.call("PATCH", f"{self.path}/status", body=body)
                return
            except ApiError as error:
                if error.status == 404 or attempt == 4:
                    raise
            except (OSError, urllib3.exceptions.HTTPError):  # the apiserver may be restarting
                if attempt == 4:
                    raise
            time.sleep(0.2 * 2**attempt)

    def terminate(self, grace: float) -> None:
        """The pod is being deleted: SIGTERM, SIGKILL after the (capped) grace period, report
        the final status, then remove the pod object for good."""
        with self.lock:
            already, self.stopping = self.stopping, True
        if already:
            return
        live = [c.proc for c in [*self.inits, *self.mains] if c.proc and c.proc.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + min(grace, GRACE_CAP_SECONDS)
        for proc in live:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if self.thread.is_alive():
            self.thread.join(10)
        with contextlib.suppress(ApiError):
            self.api.call(
                "DELETE",
                self.path,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
            )

    def kill(self) -> None:
        """The kubelet is shutting down: its containers go with it, unreported (the next
        kubelet fails the pod)."""
        with self.lock:
            self.stopping = self.silenced = True
        for c in [*self.inits, *self.mains]:
            if c.proc and c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(c.proc.pid, signal.SIGKILL)
