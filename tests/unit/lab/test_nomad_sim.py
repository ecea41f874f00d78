"""Self-tests of the Nomad HTTP API simulator (tests/lab/nomad_sim): shapes,
headers, error bodies and the quirks of note trivy-nomad-consul.md section 2."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.lab.nomad_sim import REDACTED, GroupSpec, NomadSim, ScalingSpec, TaskSpec

TOKEN = "lab-token"
TEXT_PLAIN = "text/plain; charset=utf-8"
FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "nomad"
# Keys the hand-kept doc samples still show but current Nomad no longer sends.
OBSOLETE = {"VaultToken"}


@pytest.fixture
def sim() -> Iterator[NomadSim]:
    with NomadSim(stop_delay=0.2, start_delay=0.2, deployment_duration=0.4) as s:
        yield s


@pytest.fixture
def client(sim: NomadSim) -> Iterator[httpx.Client]:
    headers = {"X-Nomad-Token": TOKEN}
    with httpx.Client(base_url=sim.url, headers=headers, timeout=10) as c:
        yield c


def _web(count: int = 2, *, update: bool = False) -> list[GroupSpec]:
    task = TaskSpec("app", "docker", {"image": "nginx:1.25", "ports": ["http"]})
    return [GroupSpec("web", count=count, tasks=[task], update=update)]


@pytest.fixture
def cluster(sim: NomadSim) -> dict[str, Any]:
    """Two nodes, job `web` (2 running allocs) and job `api` with an update block."""
    n1 = sim.add_node("node-1", "10.0.0.11", host_volumes={"registry": "/srv/reg"})
    n2 = sim.add_node("node-2", "10.0.0.12")
    sim.add_job("web", groups=_web(2))
    sim.add_job("api", groups=[_api_group()])
    allocs = [sim.add_alloc("web", "web", n1), sim.add_alloc("web", "web", n2)]
    api_alloc = sim.add_alloc("api", "api", n1)
    return {"nodes": [n1, n2], "web_allocs": allocs, "api_alloc": api_alloc}


def _api_group() -> GroupSpec:
    task = TaskSpec("server", config={"image": "registry.local/api:2.1"})
    return GroupSpec("api", count=1, tasks=[task], update=True)


def _scale(client: httpx.Client, job: str, body: Any, **kw: Any) -> httpx.Response:
    return client.post(f"/v1/job/{job}/scale", json=body, **kw)


def _assert_plain_error(resp: httpx.Response, status: int, body: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == TEXT_PLAIN
    assert resp.text == body


# -- shapes -----------------------------------------------------------------

EXPECTED = {
    "node_stub": {"ID", "Name", "Address", "Datacenter", "NodePool", "NodeClass"}
    | {"Status", "SchedulingEligibility", "Drain", "Drivers", "Version"}
    | {"CreateIndex", "ModifyIndex"},
    "node": {"ID", "Name", "HTTPAddr", "Attributes", "Status", "DrainStrategy"}
    | {"Drain", "Drivers", "Meta", "NodePool", "HostVolumes", "SchedulingEligibility"},
    "alloc_stub": {"ID", "Name", "NodeID", "NodeName", "JobID", "JobType"}
    | {"JobVersion", "TaskGroup", "ClientStatus", "DesiredStatus", "Namespace"}
    | {"TaskStates", "CreateIndex", "ModifyIndex"},
    "alloc": {"ID", "Name", "NodeID", "JobID", "TaskGroup", "ClientStatus", "Job"}
    | {"DesiredStatus", "Namespace", "TaskStates", "AllocModifyIndex", "DeploymentID"},
    "job": {"ID", "Name", "Namespace", "Type", "Status", "Stop", "Version"}
    | {"JobModifyIndex", "ModifyIndex", "CreateIndex", "TaskGroups", "SubmitTime"},
    "scale": {"JobID", "Namespace", "JobStopped", "JobModifyIndex", "TaskGroups"},
    "scale_tg": {"Desired", "Placed", "Running", "Healthy", "Unhealthy", "Events"},
    "summary": {"JobID", "Summary", "Children", "CreateIndex", "ModifyIndex"},
    "deployment": {"ID", "JobID", "JobVersion", "Status", "StatusDescription"}
    | {"TaskGroups", "CreateIndex", "ModifyIndex"},
    "deployment_tg": {"DesiredTotal", "PlacedAllocs", "HealthyAllocs"}
    | {"UnhealthyAllocs"},
    "scale_reply": {"EvalID", "EvalCreateIndex", "JobModifyIndex", "Index", "Warnings"},
}


def _fixture(name: str) -> Any:
    if not FIXTURES.is_dir():
        pytest.skip(f"fixtures not available at {FIXTURES}")
    return json.loads((FIXTURES / name).read_text())


def _keys(obj: dict[str, Any]) -> set[str]:
    return set(obj) - OBSOLETE


def _covers(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    missing = _keys(theirs) - set(ours)
    assert not missing, f"{where}: sim lacks {sorted(missing)}"


def _job_parts(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    group = job["TaskGroups"][0]
    return [("Job", job), ("TaskGroup", group), ("Task", group["Tasks"][0])]


def _alloc_parts(alloc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    state = next(iter(alloc["TaskStates"].values()))
    return [("Alloc", alloc), ("TaskState", state), ("Event", state["Events"][0])]


def _sim_payloads(client: httpx.Client, cluster: dict[str, Any]) -> dict[str, Any]:
    n1 = cluster["nodes"][0]
    scale_reply = _scale(client, "web", {"Count": 2, "Target": {"Group": "web"}})
    return {
        "nodes-list.json": client.get("/v1/nodes", params={"os": "true"}).json(),
        "node-read.json": client.get(f"/v1/node/{n1}").json(),
        "node-allocations.json": client.get(f"/v1/node/{n1}/allocations").json(),
        "allocations-list.json": client.get("/v1/allocations").json(),
        "allocation-read.json": client.get(
            f"/v1/allocation/{cluster['web_allocs'][0]}"
        ).json(),
        "job-read.json": client.get("/v1/job/api").json(),
        "job-allocations.json": client.get("/v1/job/web/allocations").json(),
        "job-scale-status.json": client.get("/v1/job/web/scale").json(),
        "job-scale-response.json": scale_reply.json(),
        "job-summary.json": client.get("/v1/job/web/summary").json(),
        "job-deployment-latest.json": client.get("/v1/job/api/deployment").json(),
        "job-deployments.json": client.get("/v1/job/api/deployments").json(),
    }


def _compare_to_fixture(name: str, ours: Any, theirs: Any) -> None:
    if isinstance(theirs, list):
        ours, theirs = ours[0], theirs[0]
    _covers(ours, theirs, name)
    if "Job" in theirs:
        for (label, mine), (_, doc) in zip(
            _job_parts(ours["Job"]), _job_parts(theirs["Job"]), strict=True
        ):
            _covers(mine, doc, f"{name} {label}")
    if theirs.get("TaskStates"):
        for (label, mine), (_, doc) in zip(
            _alloc_parts(ours), _alloc_parts(theirs), strict=True
        ):
            _covers(mine, doc, f"{name} {label}")
    if name == "job-read.json":
        for (label, mine), (_, doc) in zip(
            _job_parts(ours), _job_parts(theirs), strict=True
        ):
            _covers(mine, doc, f"{name} {label}")
    if isinstance(theirs.get("TaskGroups"), dict):
        doc_tg = next(iter(theirs["TaskGroups"].values()))
        _covers(next(iter(ours["TaskGroups"].values())), doc_tg, f"{name} group")


def test_shapes_cover_the_fixture_keys(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    payloads = _sim_payloads(client, cluster)
    for name, ours in payloads.items():
        _compare_to_fixture(name, ours, _fixture(name))
    request = _fixture("job-scale-request.json")
    assert _scale(client, "web", request | {"Target": {"Group": "web"}}).is_success


def test_shapes_have_the_fields_a_client_needs(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    p = _sim_payloads(client, cluster)
    checks = [
        ("node_stub", p["nodes-list.json"][0]),
        ("node", p["node-read.json"]),
        ("alloc", p["node-allocations.json"][0]),
        ("alloc_stub", p["allocations-list.json"][0]),
        ("alloc", p["allocation-read.json"]),
        ("alloc_stub", p["job-allocations.json"][0]),
        ("job", p["job-read.json"]),
        ("scale", p["job-scale-status.json"]),
        ("scale_tg", p["job-scale-status.json"]["TaskGroups"]["web"]),
        ("summary", p["job-summary.json"]),
        ("deployment", p["job-deployment-latest.json"]),
        ("deployment_tg", p["job-deployment-latest.json"]["TaskGroups"]["api"]),
        ("scale_reply", p["job-scale-response.json"]),
    ]
    for kind, payload in checks:
        assert EXPECTED[kind] <= set(payload), (kind, EXPECTED[kind] - set(payload))
    assert "Job" not in p["allocations-list.json"][0]
    assert "Job" not in p["job-allocations.json"][0]
    assert p["nodes-list.json"][0]["Attributes"] == {"os.name": "debian"}


def test_node_details(sim: NomadSim, client: httpx.Client) -> None:
    n1 = sim.add_node("n1", "10.1.2.3", host_volumes={"registry": "/srv/reg"})
    node = client.get(f"/v1/node/{n1}").json()
    assert node["HTTPAddr"] == "10.1.2.3:4646"
    assert node["Attributes"]["unique.network.ip-address"] == "10.1.2.3"
    assert node["HostVolumes"] == {
        "registry": {"Name": "registry", "Path": "/srv/reg", "ReadOnly": False}
    }
    assert (node["DrainStrategy"], node["Drain"]) == (None, False)
    assert node["Drivers"]["docker"]["Healthy"] is True
    assert len(n1) == 36
    assert n1.count("-") == 4
    sim.set_node_drain(n1, True)
    drained = client.get(f"/v1/node/{n1}").json()
    assert drained["Drain"] is True
    assert drained["DrainStrategy"]["DrainSpec"]["Deadline"] > 0
    assert drained["SchedulingEligibility"] == "ineligible"
    stub = client.get("/v1/nodes").json()[0]
    assert "Attributes" not in stub
    assert stub["Drain"] is True


def test_alloc_names_and_embedded_job(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    first, second = cluster["web_allocs"]
    alloc = client.get(f"/v1/allocation/{first}").json()
    assert alloc["Name"] == "web.web[0]"
    assert client.get(f"/v1/allocation/{second}").json()["Name"] == "web.web[1]"
    task = alloc["Job"]["TaskGroups"][0]["Tasks"][0]
    assert (task["Driver"], task["Config"]["image"]) == ("docker", "nginx:1.25")
    assert alloc["NodeID"] == cluster["nodes"][0]


# -- not-errors and errors ---------------------------------------------------


def test_unknown_node_allocations_is_200_empty_list(client: httpx.Client) -> None:
    resp = client.get("/v1/node/5d4b8e1a-0000-4000-8000-000000000000/allocations")
    assert (resp.status_code, resp.json()) == (200, [])
    assert int(resp.headers["x-nomad-index"]) >= 1


def test_unknown_job_allocations_and_deployment(client: httpx.Client) -> None:
    assert client.get("/v1/job/nope/allocations").json() == []
    resp = client.get("/v1/job/nope/deployment")
    assert (resp.status_code, resp.text) == (200, "null")
    assert client.get("/v1/job/nope/deployments").json() == []


def test_job_without_update_block_has_null_deployment(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    assert client.get("/v1/job/web/deployment").json() is None
    assert client.get("/v1/job/api/deployment").json()["Status"] == "successful"


def test_not_found_bodies_are_plain_text(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    _assert_plain_error(client.get("/v1/job/nope"), 404, "job not found")
    _assert_plain_error(client.get("/v1/job/nope/summary"), 404, "job not found")
    _assert_plain_error(client.get("/v1/job/nope/scale"), 404, "job not found")
    node = "0b7c5e2a-1111-4222-8333-444455556666"
    _assert_plain_error(client.get(f"/v1/node/{node}"), 404, "node not found")
    prefix = cluster["web_allocs"][0][:8]  # ids must be full UUIDs
    _assert_plain_error(client.get(f"/v1/allocation/{prefix}"), 404, "alloc not found")
    assert "x-nomad-index" in client.get("/v1/job/nope").headers


def test_invalid_method(client: httpx.Client) -> None:
    _assert_plain_error(client.delete("/v1/nodes"), 405, "Invalid method")
    _assert_plain_error(client.post("/v1/node/x"), 405, "Invalid method")


# -- auth and headers -------------------------------------------------------


def test_token_is_required(sim: NomadSim) -> None:
    with httpx.Client(base_url=sim.url) as anon:
        _assert_plain_error(anon.get("/v1/nodes"), 403, "Permission denied")
        wrong = anon.get("/v1/nodes", headers={"X-Nomad-Token": "nope"})
        _assert_plain_error(wrong, 403, "Permission denied")
        bearer = anon.get("/v1/nodes", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200


def test_x_nomad_token_wins_over_bearer(sim: NomadSim) -> None:
    with httpx.Client(base_url=sim.url) as c:
        good_x = {"X-Nomad-Token": TOKEN, "Authorization": "Bearer wrong"}
        bad_x = {"X-Nomad-Token": "wrong", "Authorization": f"Bearer {TOKEN}"}
        assert c.get("/v1/nodes", headers=good_x).status_code == 200
        assert c.get("/v1/nodes", headers=bad_x).status_code == 403


def test_no_token_configured_means_no_acl() -> None:
    with NomadSim(token=None) as open_sim, httpx.Client(base_url=open_sim.url) as c:
        assert c.get("/v1/nodes").status_code == 200


def test_read_headers(client: httpx.Client, cluster: dict[str, Any]) -> None:
    resp = client.get("/v1/job/web")
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-nomad-knownleader"] == "true"
    assert resp.headers["x-nomad-lastcontact"] == "0"
    assert int(resp.headers["x-nomad-index"]) == resp.json()["ModifyIndex"]
    assert "server" not in resp.headers


def test_no_leader(sim: NomadSim, client: httpx.Client) -> None:
    sim.set_leader(False)
    _assert_plain_error(client.get("/v1/nodes"), 500, "No cluster leader")
    stale = client.get("/v1/nodes", params={"stale": ""})
    assert stale.status_code == 200
    assert stale.headers["x-nomad-knownleader"] == "false"


def test_namespaces(sim: NomadSim, client: httpx.Client) -> None:
    node = sim.add_node("n1", "10.0.0.1")
    sim.add_job("web", namespace="apps", groups=_web(1))
    alloc = sim.add_alloc("web", "web", node)
    assert client.get("/v1/job/web").status_code == 404
    assert client.get("/v1/job/web", params={"namespace": "apps"}).status_code == 200
    by_header = client.get("/v1/job/web", headers={"X-Nomad-Namespace": "apps"})
    assert by_header.json()["Namespace"] == "apps"
    assert client.get("/v1/allocations").json() == []
    every = client.get("/v1/allocations", params={"namespace": "*"}).json()
    assert [a["ID"] for a in every] == [alloc]
    assert client.get(f"/v1/node/{node}/allocations").json()[0]["Namespace"] == "apps"


# -- blocking queries ---------------------------------------------------------


def test_blocking_query_wakes_on_change(
    sim: NomadSim, client: httpx.Client, cluster: dict[str, Any]
) -> None:
    first = client.get("/v1/job/web/allocations")
    index = int(first.headers["x-nomad-index"])
    timer = threading.Timer(0.3, sim.remove_alloc, args=[cluster["web_allocs"][1]])
    timer.start()
    started = time.monotonic()
    resp = client.get("/v1/job/web/allocations", params={"index": index, "wait": "5s"})
    elapsed = time.monotonic() - started
    timer.join()
    assert 0.25 <= elapsed < 3
    assert int(resp.headers["x-nomad-index"]) > index
    assert len(resp.json()) == 1


def test_blocking_query_times_out_with_same_index(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    index = client.get("/v1/nodes").headers["x-nomad-index"]
    started = time.monotonic()
    resp = client.get("/v1/nodes", params={"index": index, "wait": "300ms"})
    assert 0.29 <= time.monotonic() - started < 2
    assert (resp.status_code, resp.headers["x-nomad-index"]) == (200, index)


def test_blocking_query_answers_at_once_when_index_is_old(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    started = time.monotonic()
    assert client.get("/v1/nodes", params={"index": 1, "wait": "5s"}).is_success
    assert client.get("/v1/nodes", params={"index": 0, "wait": "5s"}).is_success
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ({"wait": "5"}, "Invalid wait time"),
        ({"wait": "soon"}, "Invalid wait time"),
        ({"index": "-1"}, "Invalid index"),
        ({"index": "abc"}, "Invalid index"),
        (
            {"stale": "maybe"},
            "Expect `true` or `false` for `stale` query string parameter",
        ),
    ],
)
def test_bad_query_parameters(
    client: httpx.Client, params: dict[str, str], body: str
) -> None:
    _assert_plain_error(client.get("/v1/nodes", params=params), 400, body)


@pytest.mark.parametrize("stale", ["", "true", "1", "false"])
def test_stale_values_accepted(client: httpx.Client, stale: str) -> None:
    assert client.get("/v1/nodes", params={"stale": stale}).status_code == 200


# -- scaling ------------------------------------------------------------------


def _job(client: httpx.Client, job: str = "web") -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/v1/job/{job}").json()
    return body


def test_scale_is_not_idempotent(client: httpx.Client, cluster: dict[str, Any]) -> None:
    before = _job(client)
    replies = [
        _scale(client, "web", {"Count": 2, "Target": {"Group": "web"}}).json()
        for _ in range(2)
    ]
    after = _job(client)
    assert after["Version"] == before["Version"] + 2
    assert after["JobModifyIndex"] > before["JobModifyIndex"]
    assert after["SubmitTime"] > before["SubmitTime"]
    assert after["TaskGroups"][0]["Count"] == 2
    assert replies[0]["EvalID"] != replies[1]["EvalID"]
    assert replies[1]["JobModifyIndex"] == after["JobModifyIndex"]
    events = client.get("/v1/job/web/scale").json()["TaskGroups"]["web"]["Events"]
    assert [e["PreviousCount"] for e in events] == [2, 2]
    # allocations moved to the new version in place: same ids, new JobVersion
    allocs = client.get("/v1/job/web/allocations").json()
    assert sorted(a["ID"] for a in allocs) == sorted(cluster["web_allocs"])
    assert {a["JobVersion"] for a in allocs} == {after["Version"]}


def test_scale_reply_and_index_header(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    resp = _scale(client, "web", {"Count": 3, "Target": {"Group": "web"}})
    body = resp.json()
    assert int(resp.headers["x-nomad-index"]) == body["Index"]
    assert body["EvalCreateIndex"] > body["JobModifyIndex"]
    assert "x-nomad-knownleader" not in resp.headers


def test_scale_without_count_only_records_an_event(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    before = _job(client)
    body = {"Target": {"Group": "web"}, "Message": "just noting", "Error": True}
    reply = _scale(client, "web", body).json()
    assert (reply["EvalID"], reply["EvalCreateIndex"]) == ("", 0)
    assert _job(client)["Version"] == before["Version"]
    event = client.get("/v1/job/web/scale").json()["TaskGroups"]["web"]["Events"][0]
    assert (event["Error"], event["Message"], event["EvalID"]) == (
        True,
        "just noting",
        None,
    )


def test_scale_field_names_are_case_insensitive(
    client: httpx.Client, cluster: dict[str, Any]
) -> None:
    resp = _scale(client, "web", {"count": 1, "TARGET": {"Group": "web"}})
    assert resp.status_code == 200
    assert _job(client)["TaskGroups"][0]["Count"] == 1
    # map keys stay case-sensitive, as in Go: Target.group is not Target.Group
    lower = _scale(client, "web", {"Count": 1, "Target": {"group": "web"}})
    _assert_plain_error(lower, 400, "missing task group name for scaling action")


def test_scale_blocked_by_active_deployment(
    sim: NomadSim, client: httpx.Client, cluster: dict[str, Any]
) -> None:
    assert _scale(client, "api", {"Count": 2, "Target": {"Group": "api"}}).is_success
    deployment = client.get("/v1/job/api/deployment").json()
    assert (deployment["Status"], deployment["JobVersion"]) == ("running", 1)
    blocked = _scale(client, "api", {"Count": 2, "Target": {"Group": "api"}})
    _assert_plain_error(blocked, 400, "job scaling blocked due to active deployment")
    assert sim.wait_until(
        lambda: sim.cluster.deployments[deployment["ID"]].status == "successful"
    )
    done = client.get("/v1/job/api/deployment").json()
    assert done["TaskGroups"]["api"]["HealthyAllocs"] == 2
    assert _job(client, "api")["Stable"] is True
    assert _scale(client, "api", {"Count": 2, "Target": {"Group": "api"}}).is_success


def test_scale_check_and_set(client: httpx.Client, cluster: dict[str, Any]) -> None:
    current = _job(client)["JobModifyIndex"]
    stale = current - 1
    resp = _scale(
        client, "web", {"Count": 3, "Target": {"Group": "web"}, "JobModifyIndex": stale}
    )
    _assert_plain_error(
        resp,
        500,
        f"Enforcing job modify index {stale}: job exists with conflicting "
        f"job modify index: {current}",
    )
    ok = {"Count": 3, "Target": {"Group": "web"}, "JobModifyIndex": current}
    assert _scale(client, "web", ok).status_code == 200


@pytest.mark.parametrize(
    ("job", "body", "status", "text"),
    [
        ("nope", {"Count": 1, "Target": {"Group": "web"}}, 404, 'job "nope" not found'),
        (
            "web",
            {"Count": 1, "Target": {"Group": "db"}},
            400,
            'task group "db" specified for scaling does not exist in job',
        ),
        ("web", {"Count": 1}, 400, "missing task group name for scaling action"),
        (
            "web",
            {"Count": -1, "Target": {"Group": "web"}},
            400,
            "scaling action count can't be negative",
        ),
        (
            "web",
            {"Count": 1, "Error": True, "Target": {"Group": "web"}},
            400,
            "scaling action should not contain count if error is true",
        ),
        (
            "web",
            {"Error": "boom", "Target": {"Group": "web"}},
            400,
            "json: cannot unmarshal string into Go struct field "
            "ScalingRequest.Error of type bool",
        ),
        (
            "web",
            {"Count": 1, "Target": {"Group": "web", "Job": "other"}},
            400,
            "job ID in payload did not match URL",
        ),
        (
            "web",
            {"Count": 1, "Target": {"Group": "web", "Namespace": "apps"}},
            400,
            "namespace in payload did not match header",
        ),
    ],
)
def test_scale_errors(
    client: httpx.Client,
    cluster: dict[str, Any],
    job: str,
    body: dict[str, Any],
    status: int,
    text: str,
) -> None:
    _assert_plain_error(_scale(client, job, body), status, text)


def test_scale_body_errors(client: httpx.Client, cluster: dict[str, Any]) -> None:
    empty = client.post("/v1/job/web/scale")
    _assert_plain_error(empty, 400, "Request body is empty")
    broken = client.post("/v1/job/web/scale", content=b"{nope")
    assert broken.status_code == 400
    assert broken.text.startswith("invalid character")


def test_scale_policy_bounds_and_system_jobs(
    sim: NomadSim, client: httpx.Client
) -> None:
    task = TaskSpec("t", config={"image": "busybox:1.36"})
    sim.add_job(
        "bounded", groups=[GroupSpec("g", 2, [task], scaling=ScalingSpec(1, 3))]
    )
    sim.add_job("sys", type="system", groups=[GroupSpec("g", 1, [task])])
    low = _scale(client, "bounded", {"Count": 0, "Target": {"Group": "g"}})
    _assert_plain_error(
        low, 400, "group count was less than scaling policy minimum: 0 < 1"
    )
    high = _scale(client, "bounded", {"Count": 4, "Target": {"Group": "g"}})
    _assert_plain_error(
        high, 400, "group count was greater than scaling policy maximum: 4 > 3"
    )
    sys_resp = _scale(client, "sys", {"Count": 2, "Target": {"Group": "g"}})
    _assert_plain_error(
        sys_resp, 400, 'jobs of type "system" can only be scaled between 0 and 1'
    )
    sim.set_job_mutations_disabled(True)
    _assert_plain_error(
        _scale(client, "bounded", {"Count": 2, "Target": {"Group": "g"}}),
        403,
        "Job registration, dispatch, and scale are disabled by the scheduler "
        "configuration",
    )


def test_scale_down_stops_then_completes_after_delay(
    sim: NomadSim, client: httpx.Client, cluster: dict[str, Any]
) -> None:
    assert _scale(client, "web", {"Count": 1, "Target": {"Group": "web"}}).is_success
    allocs = {a["Name"]: a for a in client.get("/v1/job/web/allocations").json()}
    stopped = allocs["web.web[1]"]
    assert (stopped["DesiredStatus"], stopped["ClientStatus"]) == ("stop", "running")
    assert allocs["web.web[0]"]["DesiredStatus"] == "run"
    index = client.get("/v1/job/web/allocations").headers["x-nomad-index"]
    started = time.monotonic()
    resp = client.get("/v1/job/web/allocations", params={"index": index, "wait": "5s"})
    assert 0.1 <= time.monotonic() - started < 3  # stop_delay is 0.2 s
    after = {a["ID"]: a for a in resp.json()}[stopped["ID"]]
    assert after["ClientStatus"] == "complete"
    scale = client.get("/v1/job/web/scale").json()["TaskGroups"]["web"]
    assert (scale["Desired"], scale["Placed"], scale["Running"]) == (1, 1, 1)
    full = client.get(f"/v1/allocation/{stopped['ID']}").json()
    assert full["Job"]["Version"] == 0  # stopped alloc keeps the version it ran
    assert _job(client)["Version"] == 1


def test_scale_up_places_new_allocations(
    sim: NomadSim, client: httpx.Client, cluster: dict[str, Any]
) -> None:
    assert _scale(client, "web", {"Count": 4, "Target": {"Group": "web"}}).is_success
    allocs = client.get("/v1/job/web/allocations").json()
    new = [a for a in allocs if a["ID"] not in cluster["web_allocs"]]
    assert sorted(a["Name"] for a in new) == ["web.web[2]", "web.web[3]"]
    assert {a["ClientStatus"] for a in new} == {"pending"}
    assert {a["NodeID"] for a in new} <= set(cluster["nodes"])
    summary = client.get("/v1/job/web/summary").json()["Summary"]["web"]
    assert (summary["Starting"], summary["Running"]) == (2, 2)
    assert sim.wait_until(
        lambda: len(sim.alloc_ids("web", client_status="running")) == 4
    )
    assert client.get("/v1/job/web/summary").json()["Summary"]["web"]["Running"] == 4


def test_flush_runs_transitions_now(
    sim: NomadSim, client: httpx.Client, cluster: dict[str, Any]
) -> None:
    assert _scale(client, "web", {"Count": 0, "Target": {"Group": "web"}}).is_success
    sim.flush()
    statuses = {a["ClientStatus"] for a in client.get("/v1/job/web/allocations").json()}
    assert statuses == {"complete"}
    assert _job(client)["Status"] == "dead"


# -- state setters -----------------------------------------------------------


def test_setters_bump_the_index(
    sim: NomadSim, client: httpx.Client, cluster: dict[str, Any]
) -> None:
    n1 = cluster["nodes"][0]
    alloc = cluster["web_allocs"][0]
    before = sim.index
    sim.set_node_status(n1, "down")
    assert sim.index > before
    assert client.get(f"/v1/node/{n1}").json()["Status"] == "down"
    lost = client.get(f"/v1/allocation/{alloc}").json()
    assert (lost["ClientStatus"], lost["DesiredStatus"]) == ("lost", "stop")
    sim.set_alloc_status(cluster["web_allocs"][1], "failed")
    assert client.get("/v1/job/web/summary").json()["Summary"]["web"]["Failed"] == 1
    sim.remove_alloc(alloc)
    _assert_plain_error(client.get(f"/v1/allocation/{alloc}"), 404, "alloc not found")


# -- paging and filters -----------------------------------------------------


def _walk(client: httpx.Client, path: str, **params: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    token = ""
    while True:
        query = params | ({"next_token": token} if token else {})
        resp = client.get(path, params=query)
        ids += [item["ID"] for item in resp.json()]
        pages += 1
        token = resp.headers.get("x-nomad-nexttoken", "")
        if not token:
            return ids, pages


def test_paging(sim: NomadSim, client: httpx.Client) -> None:
    nodes = [sim.add_node(f"n{i}", f"10.0.1.{i}") for i in range(5)]
    sim.add_job("web", groups=_web(5))
    allocs = [sim.add_alloc("web", "web", n) for n in nodes]
    node_ids, node_pages = _walk(client, "/v1/nodes", per_page=2)
    assert (node_ids, node_pages) == (sorted(nodes), 3)
    alloc_ids, alloc_pages = _walk(client, "/v1/allocations", per_page=2)
    assert (alloc_ids, alloc_pages) == (allocs, 3)


def test_filter_and_prefix(sim: NomadSim, client: httpx.Client) -> None:
    a = sim.add_node("a", "10.0.0.1", node_pool="gpu")
    sim.add_node("b", "10.0.0.2", status="down")
    ready = client.get("/v1/nodes", params={"filter": 'Status == "ready"'}).json()
    assert [n["ID"] for n in ready] == [a]
    both = 'NodePool == "gpu" or Status == "down"'
    assert len(client.get("/v1/nodes", params={"filter": both}).json()) == 2
    assert [
        n["ID"] for n in client.get("/v1/nodes", params={"prefix": a[:6]}).json()
    ] == [a]
    bad = client.get("/v1/nodes", params={"filter": "Status =="})
    assert bad.status_code == 400
    assert bad.text.startswith("failed to read filter expression")


def test_task_states_false(sim: NomadSim, client: httpx.Client) -> None:
    node = sim.add_node("n", "10.0.0.1")
    sim.add_job("web", groups=_web(1))
    sim.add_alloc("web", "web", node)
    stub = client.get("/v1/allocations", params={"task_states": "false"}).json()[0]
    assert stub["TaskStates"] is None
    assert (
        client.get("/v1/allocations").json()[0]["TaskStates"]["app"]["State"]
        == "running"
    )


# -- faults and the request log ---------------------------------------------


def test_injected_error_then_normal(sim: NomadSim, client: httpx.Client) -> None:
    sim.inject("GET", r"^/v1/nodes$", 500, "No cluster leader", times=1)
    _assert_plain_error(client.get("/v1/nodes"), 500, "No cluster leader")
    assert client.get("/v1/nodes").status_code == 200


def test_injected_delay_times_out(sim: NomadSim) -> None:
    sim.inject(
        "GET", "/v1/nodes", 200, "[]", delay=1.0, content_type="application/json"
    )
    with httpx.Client(base_url=sim.url, headers={"X-Nomad-Token": TOKEN}) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get("/v1/nodes", timeout=0.2)
        sim.inject_delay("GET", "/v1/nodes", 0.3)
        started = time.monotonic()
        assert c.get("/v1/nodes", timeout=5).json() == []
        assert time.monotonic() - started >= 0.3


def test_injected_connection_drop(sim: NomadSim, client: httpx.Client) -> None:
    sim.inject("*", "/v1/job/", None)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/v1/job/web")
    assert client.get("/v1/job/web").status_code == 404


def test_request_log_redacts_tokens(sim: NomadSim, client: httpx.Client) -> None:
    sim.clear_requests()
    client.post(
        "/v1/job/web/scale",
        json={"Count": 1, "Target": {"Group": "web"}},
        params={"namespace": "default"},
        headers={"Authorization": "Bearer secret"},
    )
    [request] = sim.requests
    assert (request.method, request.path) == ("POST", "/v1/job/web/scale")
    assert request.param("namespace") == "default"
    assert request.headers["x-nomad-token"] == REDACTED
    assert request.headers["authorization"] == f"Bearer {REDACTED}"
    assert request.json == {"Count": 1, "Target": {"Group": "web"}}
    assert request.authenticated
    assert TOKEN not in repr(request.headers)
    sim.clear_requests()
    assert sim.requests == []


def test_no_sim_errors(
    sim: NomadSim, client: httpx.Client, cluster: dict[str, Any]
) -> None:
    _sim_payloads(client, cluster)
    assert sim.errors == []
