"""Can one trial ever be placed? Checked after Ray connects and before anything is tracked.

Tune places each trial as one bundle {CPU: cpus, GPU: gpus}, which must fit on a
single node. Tune itself compares the request with the cluster's totals and
only warns after 60 s, so a request no node can hold hangs forever. Here the
request is compared with each node the cluster has, or can ever have:

- an embedded local Ray never grows: its one node is all there is;
- with `--address`, the alive nodes (`ray.nodes()`), plus, when an autoscaler
  is configured, the node types it can add. An autoscaler is configured when
  the cluster config is in the GCS (what Ray Train reads,
  `ray._private.state.state.get_cluster_config()`), or when the cluster
  launcher's `~/ray_bootstrap_config.yaml` is on the head node (what Tune
  reads). A cluster config names its node types; the bootstrap file alone
  does not, and then only the pending watch (`sweep.pending`) can tell.
- over a `ray://` client, the driver is not a worker of the cluster: the
  survey runs in a zero-CPU task on the head node.

Trials request no memory (`resources` has only cpus and gpus), so memory is not
compared. Fractional GPUs (0.25: four trials per card) need a node with a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rkdo_tune.errors import EnvironmentFailure, UsageError
from rkdo_tune.sweep._schema import Resources

HEAD_NODE_RESOURCE = "node:__internal_head__"  # every head node has 1 of it
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"  # written by `ray up` on the head node
SURVEY_TIMEOUT_S = 120
_EPSILON = 1e-4  # Ray's resource granularity: 0.1 + 0.2 GPUs fit in 0.3


@dataclass(frozen=True)
class NodeShape:
    """The CPUs and GPUs of one node (alive now, or a type an autoscaler can add)."""

    cpus: float
    gpus: float

    def slots(self, request: Resources) -> int:
        """How many trials of `request` this node holds at once."""
        counts = [
            math.floor(have / need + _EPSILON)
            for have, need in ((self.cpus, request.cpus), (self.gpus, request.gpus))
            if need > 0
        ]
        return min(counts) if counts else 0

    def describe(self) -> str:
        return f"{_count(self.cpus, 'CPU')}, {_count(self.gpus, 'GPU')}"


@dataclass(frozen=True)
class ClusterShape:
    """The nodes of a cluster, and what it can grow by.

    `autoscaler`: the cluster may add nodes; `node_types`: the ones it can add,
    as far as they are known (empty when only the bootstrap file tells of one).
    """

    nodes: tuple[NodeShape, ...]
    autoscaler: bool = False
    node_types: tuple[NodeShape, ...] = ()

    @property
    def largest(self) -> NodeShape:
        return max(self.nodes, key=lambda n: (n.gpus, n.cpus), default=NodeShape(0, 0))

    def describe(self) -> str:
        return f"largest node: {self.largest.describe()}"


def _count(value: float, unit: str) -> str:
    return f"{value:g} {unit}{'' if value == 1 else 's'}"


def _request_flags(request: Resources, nodes: tuple[NodeShape, ...]) -> tuple[str, str]:
    """The option(s) to name, and what no node has: GPUs first, since they are the rarer."""
    gpu_flag = f"--gpus-per-trial {request.gpus:g}"
    cpu_flag = f"--cpus-per-trial {request.cpus:g}"
    if request.gpus > 0 and not any(n.gpus + _EPSILON >= request.gpus for n in nodes):
        wanted = "a GPU" if request.gpus <= 1 else _count(request.gpus, "GPU")
        return gpu_flag, wanted
    if not any(n.cpus + _EPSILON >= request.cpus for n in nodes):
        return cpu_flag, _count(request.cpus, "CPU")
    together = f"{_count(request.cpus, 'CPU')} and {_count(request.gpus, 'GPU')} together"
    return f"{cpu_flag} {gpu_flag}", together


def unplaceable(request: Resources, cluster: ClusterShape) -> str | None:
    """The one line that says no node will ever hold a trial, or None if one can."""
    if any(node.slots(request) for node in (*cluster.nodes, *cluster.node_types)):
        return None
    if cluster.autoscaler and not cluster.node_types:
        return None  # it may add a node of a type we cannot see: the pending watch decides
    flags, wanted = _request_flags(request, (*cluster.nodes, *cluster.node_types))
    where = "this cluster"
    if cluster.autoscaler:
        where = "this cluster, nor any node type its autoscaler can add,"
    return f"{flags}: no node of {where} has {wanted} ({cluster.describe()})"


def concurrency_note(request: Resources, cluster: ClusterShape, max_concurrent: int) -> str | None:
    """One line when fewer trials fit at once than `max_concurrent` asks (not an error)."""
    if cluster.autoscaler:
        return None  # it may grow to fit them
    fit = sum(node.slots(request) for node in cluster.nodes)
    if fit >= max_concurrent:
        return None
    total = NodeShape(sum(n.cpus for n in cluster.nodes), sum(n.gpus for n in cluster.nodes))
    per_trial = NodeShape(request.cpus, request.gpus).describe()
    return (
        f"note: max_concurrent is {max_concurrent}, but this cluster ({total.describe()}) "
        f"runs at most {fit} trial{'' if fit == 1 else 's'} of {per_trial} at once"
    )


def check_placement(request: Resources, cluster: ClusterShape, max_concurrent: int) -> list[str]:
    """Raise the one line if no trial can ever be placed; else the notes to print."""
    line = unplaceable(request, cluster)
    if line is not None:
        raise UsageError(line)
    note = concurrency_note(request, cluster, max_concurrent)
    return [note] if note else []


def check_cluster(request: Resources, max_concurrent: int, *, embedded: bool) -> ClusterShape:
    """Survey the connected cluster, raise the one line or print the notes; the survey."""
    cluster = survey_cluster(embedded=embedded)
    for note in check_placement(request, cluster, max_concurrent):
        print(note, flush=True)
    return cluster


def _shape(resources: dict[str, float]) -> NodeShape:
    return NodeShape(float(resources.get("CPU", 0)), float(resources.get("GPU", 0)))


def survey_here(*, embedded: bool) -> ClusterShape:
    """The cluster as seen from a process connected to it as a driver or worker."""
    import ray

    nodes = tuple(_shape(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive"))
    if embedded:
        return ClusterShape(nodes)
    from ray._private.state import state  # where Ray Train reads the autoscaler's config

    try:
        config = state.get_cluster_config()
    except Exception:  # a private API: if it fails, assume the cluster may grow, to any shape
        return ClusterShape(nodes, autoscaler=True)
    groups = config.node_group_configs if config is not None else ()
    node_types = tuple(_shape(dict(g.resources)) for g in groups if g.max_count != 0)
    bootstrap = Path(BOOTSTRAP_CONFIG).expanduser().exists()
    return ClusterShape(nodes, autoscaler=config is not None or bootstrap, node_types=node_types)


def survey_cluster(*, embedded: bool) -> ClusterShape:
    """The cluster Ray is connected to; over `ray://`, surveyed by a task on its head node."""
    import ray

    if not ray.util.client.ray.is_connected():
        return survey_here(embedded=embedded)
    task = ray.remote(num_cpus=0, resources={HEAD_NODE_RESOURCE: 0.001})(survey_here)
    try:
        return ray.get(task.remote(embedded=False), timeout=SURVEY_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        raise EnvironmentFailure(
            f"Ray client: the cluster's head node did not report its nodes in {SURVEY_TIMEOUT_S} s"
        ) from None
