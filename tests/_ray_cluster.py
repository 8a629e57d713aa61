"""A real two-node Ray cluster on loopback for tests, torn down by process, never by `ray stop`.

Both nodes live on this machine, each a separate raylet with its own CPUs and
ports; only processes whose command line names this cluster's temp dir are
stopped afterwards, so any other Ray on the machine is left alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
from _ray_local import ray_processes_under

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster_env(token: str) -> dict[str, str]:
    """Token auth, set identically for every `ray start` and for the driver."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}


def _ports() -> list[str]:
    args = []
    for flag in (
        "--node-manager-port",
        "--object-manager-port",
        "--metrics-export-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
    ):
        args += [flag, str(free_port())]
    return args


class TwoNodeCluster:
    """`ray start --head` plus one `ray start --address=...`, 1 CPU each, on 127.0.0.1."""

    def __init__(self, temp_dir: Path, *, dashboard: bool = False) -> None:
        self.temp_dir = temp_dir
        self.token = secrets.token_hex(32)
        self.env = cluster_env(self.token)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_address = f"ray://127.0.0.1:{free_port()}"  # the Ray client server
        # The dashboard (and its job server, for `ray job submit`) on loopback, if asked for.
        self.dashboard_url = f"http://127.0.0.1:{free_port()}" if dashboard else None

    def _start(self, *args: str) -> None:
        proc = subprocess.run(
            [
                RAY,
                "start",
                "--node-ip-address",
                "127.0.0.1",
                "--num-cpus",
                "1",
                "--disable-usage-stats",
                *_ports(),
                *args,
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> TwoNodeCluster:
        self._start(
            "--head",
            "--port",
            str(self.port),
            "--temp-dir",
            str(self.temp_dir),
            "--ray-client-server-port",
            self.client_address.rsplit(":", 1)[1],
            *self._dashboard_args(),
            "--resources",
            '{"head_node": 1}',
        )
        self._start("--address", self.address, "--resources", '{"second_node": 1}')
        self._wait_for_nodes(2)
        return self

    def _dashboard_args(self) -> list[str]:
        if self.dashboard_url is None:
            return ["--include-dashboard", "false"]
        port = self.dashboard_url.rsplit(":", 1)[1]
        return [
            "--include-dashboard",
            "true",
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            port,
        ]

    def _wait_for_nodes(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = subprocess.run(
                [RAY, "status", "--address", self.address],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if proc.stdout.count("node_") >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the two-node cluster did not come up: {proc.stdout}{proc.stderr}")

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster: those whose command line names its temp dir."""
        return ray_processes_under(str(self.temp_dir))

    def stop(self) -> None:
        procs = self.processes()
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=15)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
