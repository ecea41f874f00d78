"""A faithful in-process simulator of the Nomad HTTP API for tests.

    from tests.lab.nomad_sim import GroupSpec, NomadSim, TaskSpec

    with NomadSim(token="lab-token") as sim:
        node = sim.add_node("n1", "10.0.0.1")
        app = TaskSpec("app", config={"image": "nginx:1.25"})
        sim.add_job("web", groups=[GroupSpec("web", count=1, tasks=[app])])
        sim.add_alloc("web", "web", node)
        httpx.get(f"{sim.url}/v1/nodes", headers={"X-Nomad-Token": "lab-token"})

Shapes, headers, error texts and quirks follow
../shared/notes/trivy-nomad-consul.md section 2 and the fixtures in
../shared/fixtures/nomad/.
"""

from .errors import ApiError
from .faults import PASS_THROUGH, REDACTED, Fault, RecordedRequest
from .model import GroupSpec, ScalingSpec, TaskSpec
from .query import parse_go_duration
from .sim import NomadSim

__all__ = [
    "PASS_THROUGH",
    "REDACTED",
    "ApiError",
    "Fault",
    "GroupSpec",
    "NomadSim",
    "RecordedRequest",
    "ScalingSpec",
    "TaskSpec",
    "parse_go_duration",
]
