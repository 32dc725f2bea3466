"""One account can never read or change another's nodes, jobs, logs, metrics or clouds.

The table below names a probe for every signed route of the app; a test checks that no route
is left out, so a new route cannot skip this suite.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

import pytest

from gateway.auth import OPEN_ROUTES
from megam import topology, wire

SECRET = "only-ann-may-read-this"

# (method, route) -> (path for the intruder, body, expected status)
PROBES: dict[tuple[str, str], tuple[str, Any, int]] = {
    ("GET", "/v1/accounts/{email}"): ("/v1/accounts/ann@example.com", None, 403),
    ("GET", "/v1/predefclouds/{name}"): ("/v1/predefclouds/ann-cloud", None, 404),
    ("GET", "/v1/nodes/{name}"): ("/v1/nodes/ann.local", None, 404),
    ("GET", "/v1/requests/{node_name}"): ("/v1/requests/ann.local", None, 404),
    ("GET", "/v1/jobs/{job_id}"): ("/v1/jobs/{job}", None, 404),
    ("GET", "/v1/nodes/{name}/logs"): ("/v1/nodes/ann.local/logs", None, 404),
    ("GET", "/v1/nodes/{name}/logs/stream"): ("/v1/nodes/ann.local/logs/stream", None, 404),
    ("GET", "/v1/nodes/{name}/logs/ws"): ("/v1/nodes/ann.local/logs/ws", None, 404),
    ("GET", "/v1/nodes/{name}/metrics"): ("/v1/nodes/ann.local/metrics", None, 404),
    ("POST", "/v1/requests/content"): (
        "/v1/requests/content",
        {"node_name": "ann.local", "req_type": "delete"},
        404,
    ),
    ("POST", "/v1/nodes/content"): (
        "/v1/nodes/content",
        {"node_name": "bob.local", "predefcloud": "ann-cloud"},
        404,
    ),
    # lists: answered, but with the intruder's own (empty) data
    ("GET", "/v1/predefclouds"): ("/v1/predefclouds", None, 200),
    ("GET", "/v1/nodes"): ("/v1/nodes", None, 200),
    ("GET", "/v1/requests"): ("/v1/requests", None, 200),
    ("POST", "/v1/jobs/{job_id}/cancel"): ("/v1/jobs/{job}/cancel", {}, 404),
    ("GET", "/v1/logs/search"): (f"/v1/logs/search?q={SECRET}", None, 200),
    # operators only
    ("GET", "/v1/cluster"): ("/v1/cluster", None, 403),
    ("POST", "/v1/cluster/{herk}/drain"): ("/v1/cluster/h1/drain", {}, 403),
    ("POST", "/v1/cluster/{herk}/scale"): ("/v1/cluster/h1/scale", {"workers": 1}, 403),
    ("GET", "/v1/cluster/deadletters"): ("/v1/cluster/deadletters", None, 403),
    ("POST", "/v1/cluster/deadletters/requeue"): (
        "/v1/cluster/deadletters/requeue",
        {"all": True},
        403,
    ),
    ("POST", "/v1/cluster/deadletters/discard"): (
        "/v1/cluster/deadletters/discard",
        {"all": True},
        403,
    ),
    ("POST", "/v1/nodes/update"): (
        "/v1/nodes/update",
        {"node_name": "ann.local", "status": "RUNNING", "new_node_name": "bob.local"},
        404,
    ),
    ("GET", "/v1/cloudtoolsettings/{id}"): ("/v1/cloudtoolsettings/{cts}", None, 404),
    ("GET", "/v1/sshkeys/{name}"): ("/v1/sshkeys/ann-key", None, 404),
    ("POST", "/v1/marketplaceaddons/content"): (
        "/v1/marketplaceaddons/content",
        {"node_name": "ann.local", "marketplace_id": "wordpress"},
        404,
    ),
    ("GET", "/v1/marketplaceaddons/{node_id}"): ("/v1/marketplaceaddons/{node}", None, 404),
    ("POST", "/v1/appdefns/content"): (
        "/v1/appdefns/content",
        {"node_name": "ann.local", "appdefns": {}},
        404,
    ),
    ("POST", "/v1/appdefns/update"): (
        "/v1/appdefns/update",
        {"id": "{adf}", "node_name": "ann.local", "appdefns": {"runtime_exec": "bob"}},
        404,
    ),
    ("GET", "/v1/appdefns/{node_id}"): ("/v1/appdefns/{node}", None, 404),
    ("GET", "/v1/appdefns/{node_id}/{id}"): ("/v1/appdefns/{node}/{adf}", None, 404),
    ("POST", "/v1/boltdefns/content"): (
        "/v1/boltdefns/content",
        {"node_name": "ann.local", "boltdefns": {}},
        404,
    ),
    ("POST", "/v1/boltdefns/update"): (
        "/v1/boltdefns/update",
        {"id": "{bdf}", "node_name": "ann.local", "boltdefns": {"apikey": "bob"}},
        404,
    ),
    ("GET", "/v1/boltdefns/{node_id}"): ("/v1/boltdefns/{node}", None, 404),
    ("POST", "/v1/appreqs/content"): (
        "/v1/appreqs/content",
        {"node_name": "ann.local", "req_type": "stop"},
        404,
    ),
    ("GET", "/v1/appreqs/{node_id}"): ("/v1/appreqs/{node}", None, 404),
    ("POST", "/v1/boltreqs/content"): (
        "/v1/boltreqs/content",
        {"node_name": "ann.local", "req_type": "stop"},
        404,
    ),
    ("GET", "/v1/boltreqs/{node_id}"): ("/v1/boltreqs/{node}", None, 404),
    ("GET", "/v1/cloudtoolsettings"): ("/v1/cloudtoolsettings", None, 200),
    ("GET", "/v1/sshkeys"): ("/v1/sshkeys", None, 200),
    ("GET", "/v1/appdefns"): ("/v1/appdefns", None, 200),
    # shared or self-only by nature
    ("POST", "/v1/cloudtoolsettings/content"): (
        "/v1/cloudtoolsettings/content",
        {"repo_name": "ann-repo"},
        201,
    ),
    ("POST", "/v1/sshkeys/content"): ("/v1/sshkeys/content", {"name": "ann-key"}, 201),
    ("GET", "/v1/marketplaces"): ("/v1/marketplaces", None, 200),
    ("GET", "/v1/marketplaces/{id}"): ("/v1/marketplaces/wordpress", None, 200),
    ("POST", "/v1/auth"): ("/v1/auth", {}, 200),
    ("POST", "/v1/predefclouds/content"): (
        "/v1/predefclouds/content",
        {"name": "ann-cloud", "spec": {"type_name": "local"}},
        201,
    ),
    ("GET", "/v1/predefs"): ("/v1/predefs", None, 200),
    ("GET", "/v1/predefs/{name}"): ("/v1/predefs/rails", None, 200),
    ("GET", "/v1/cloudtools"): ("/v1/cloudtools", None, 200),
    ("GET", "/v1/cloudtools/{name}"): ("/v1/cloudtools/chef", None, 200),
}


@pytest.fixture
async def ann(gateway: Any, herk: Any, job_of: Any, eventually: Any, ops: Any) -> dict[str, Any]:
    """Ann's account with a cloud, a node, its job, a log line with a secret, and a metric."""
    api = await gateway.onboard("ann@example.com")
    await api.add_local_cloud("ann-cloud")
    [job_id] = await api.launch("ann.local", cloud="ann-cloud")
    job = await job_of(api, job_id)
    await herk.logs(job, [SECRET])
    beat = wire.Heartbeat(
        herk="h1",
        workers=1,
        busy=1,
        inflight=[job_id],
        version="1",
        started_at=1.0,
        at=time.time(),
    )
    await herk.publish(topology.heartbeat_key("h1"), wire.encode(beat))
    metric = wire.MetricEvent(
        node="ann.local", account=job["account"], samples={"cpu_system": 0.9}, at=time.time()
    )
    await herk.publish(topology.metric_key("ann.local"), wire.encode(metric))

    async def all_applied() -> bool:
        logs = await api.ok("/v1/nodes/ann.local/logs")
        metrics = await api.ok("/v1/nodes/ann.local/metrics")
        cluster = await ops.ok("/v1/cluster")
        return bool(logs["results"] and metrics["results"] and cluster["results"])

    await eventually(all_applied)
    ids = {"job": job["id"], "node": (await api.node("ann.local"))["id"]}
    ann_node = {"node_name": "ann.local"}
    documents = (
        ("cts", "/v1/cloudtoolsettings/content", {"repo_name": "ann-repo"}),
        ("ssh", "/v1/sshkeys/content", {"name": "ann-key", "private_key": SECRET}),
        ("adf", "/v1/appdefns/content", {**ann_node, "appdefns": {"env_sh": "a"}}),
        ("bdf", "/v1/boltdefns/content", {**ann_node, "boltdefns": {"apikey": SECRET}}),
        ("aon", "/v1/marketplaceaddons/content", {**ann_node, "marketplace_id": "riak"}),
        ("apr", "/v1/appreqs/content", {**ann_node, "req_type": "start"}),
    )
    for key, path, body in documents:
        [message] = await api.created(path, body)
        ids[key] = message["id"]
    return {"api": api, "job": job, "ids": ids}


def test_every_signed_route_has_a_probe(gateway: Any) -> None:
    app = gateway.client.app
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource.canonical.startswith("/v1/")
    }
    assert routes - OPEN_ROUTES == set(PROBES)


@pytest.mark.parametrize(("route", "probe"), PROBES.items(), ids=[f"{m} {p}" for m, p in PROBES])
async def test_an_intruder_sees_nothing_of_anns(
    gateway: Any, ann: dict[str, Any], route: tuple[str, str], probe: tuple[str, Any, int]
) -> None:
    bob = await gateway.onboard("bob@example.com")
    path, body, expected = probe
    path = path.format(**ann["ids"])
    if isinstance(body, dict):
        body = {k: v.format(**ann["ids"]) if isinstance(v, str) else v for k, v in body.items()}
    async with asyncio.timeout(10):  # a leaking live tail would otherwise never end
        path, _, query = path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        response = await (bob.get(path, **params) if body is None else bob.post(path, body))
        assert response.status == expected, response.status
        text = await response.text()
    for leak in (SECRET, "ann.local", "ann@example.com", *ann["ids"].values()):
        if expected != 404:  # a 404 may repeat the name the intruder asked for
            assert leak not in text, (route, leak)
    assert await _ann_untouched(ann)


async def _ann_untouched(ann: dict[str, Any]) -> bool:
    api = ann["api"]
    requests = await api.ok("/v1/requests/ann.local")
    node = await api.node("ann.local")
    cloud = await api.ok("/v1/predefclouds/ann-cloud")
    appdefns = await api.ok(f"/v1/appdefns/{node['id']}")
    boltdefns = await api.ok(f"/v1/boltdefns/{node['id']}")
    return (
        [d["env_sh"] for d in appdefns["results"]] == ["a"]
        and [d["has_apikey"] for d in boltdefns["results"]] == [True]
        and len((await api.ok(f"/v1/appreqs/{node['id']}"))["results"]) == 1
        and len((await api.ok(f"/v1/marketplaceaddons/{node['id']}"))["results"]) == 1
        and (
            [(r["req_type"], r["state"]) for r in requests["results"]] == [("create", "queued")]
            and "cancel" not in requests["results"][0]["reason"]
            and node["status"] == "LAUNCHING"
            and cloud["spec"]["type_name"] == "local"
        )
    )


async def test_a_live_node_name_is_taken_for_everyone_but_nothing_of_it_shows(
    gateway: Any, ann: dict[str, Any]
) -> None:
    bob = await gateway.tenant()
    response = await bob.post(
        "/v1/nodes/content", {"node_name": "ann.local", "predefcloud": "local"}
    )
    assert response.status == 409
    text = await response.text()
    assert SECRET not in text and ann["job"]["id"] not in text
    assert await _ann_untouched(ann)
