"""Node JSON in Nomad's shapes: `NodeListStub` for /v1/nodes and the full,
sanitized `Node` for /v1/node/:id (fixtures nodes-list.json, node-read.json)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .model import NOMAD_VERSION, Node

ZERO_TIME = "0001-01-01T00:00:00Z"
HTTP_PORT = 4646


def rfc3339(ns: int | None) -> str:
    """Go's time.Time JSON form (UTC, nanosecond precision, zero time for None)."""
    if ns is None:
        return ZERO_TIME
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(secs, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}".rstrip("0").rstrip(".") + "Z"


def _driver(name: str, updated: str) -> dict[str, Any]:
    return {
        "Attributes": {f"driver.{name}": "true"},
        "Detected": True,
        "HealthDescription": "Healthy",
        "Healthy": True,
        "UpdateTime": updated,
    }


def drivers(node: Node) -> dict[str, Any]:
    updated = rfc3339(node.status_updated_at * 1_000_000_000)
    return {name: _driver(name, updated) for name in node.drivers}


def attributes(node: Node) -> dict[str, str]:
    attrs = {
        "cpu.arch": "amd64",
        "cpu.numcores": "4",
        "cpu.totalcompute": "12000",
        "kernel.name": "linux",
        "memory.totalbytes": "16571674624",
        "nomad.version": NOMAD_VERSION,
        "os.name": "debian",
        "os.version": "12",
        "unique.advertise.address": f"{node.address}:{HTTP_PORT}",
        "unique.hostname": node.name,
        "unique.network.ip-address": node.address,
        "unique.storage.volume": "/dev/sda1",
    }
    attrs.update({f"driver.{name}": "1" for name in node.drivers})
    return attrs


def drain_strategy(node: Node) -> dict[str, Any] | None:
    if not node.drain:
        return None
    return {
        "DrainSpec": {"Deadline": 3_600_000_000_000, "IgnoreSystemJobs": False},
        "ForceDeadline": rfc3339((node.drain_started_at or 0) + 3_600_000_000_000),
        "StartedAt": rfc3339(node.drain_started_at),
    }


def node_stub(node: Node, *, with_os: bool = False) -> dict[str, Any]:
    stub: dict[str, Any] = {
        "Address": node.address,
        "CreateIndex": node.create_index,
        "Datacenter": node.datacenter,
        "Drain": node.drain,
        "Drivers": drivers(node),
        "ID": node.id,
        "LastDrain": None,
        "ModifyIndex": node.modify_index,
        "Name": node.name,
        "NodeClass": node.node_class,
        "NodePool": node.node_pool,
        "SchedulingEligibility": node.eligibility,
        "Status": node.status,
        "StatusDescription": "",
        "Version": NOMAD_VERSION,
    }
    if with_os:
        stub["Attributes"] = {"os.name": attributes(node)["os.name"]}
    return stub


def _host_volumes(node: Node) -> dict[str, Any]:
    return {
        name: {"Name": name, "Path": path, "ReadOnly": False}
        for name, path in node.host_volumes.items()
    }


def _node_resources(node: Node) -> dict[str, Any]:
    return {
        "Cpu": {"CpuShares": 12000, "TotalCpuCores": 4, "ReservableCpuCores": []},
        "Devices": None,
        "Disk": {"DiskMB": 51200},
        "Memory": {"MemoryMB": 15803},
        "MinDynamicPort": 20000,
        "MaxDynamicPort": 32000,
        "Networks": [
            {
                "CIDR": f"{node.address}/32",
                "Device": "eth0",
                "DynamicPorts": None,
                "IP": node.address,
                "MBits": 1000,
                "Mode": "host",
                "ReservedPorts": None,
            }
        ],
        "NodeNetworks": [
            {
                "Addresses": [
                    {
                        "Address": node.address,
                        "Alias": "default",
                        "Family": "ipv4",
                        "Gateway": "",
                        "ReservedPorts": "",
                    }
                ],
                "Device": "eth0",
                "MacAddress": "02:42:ac:11:00:02",
                "Mode": "host",
                "Speed": 1000,
            }
        ],
    }


def _reserved_resources() -> dict[str, Any]:
    return {
        "Cpu": {"CpuShares": 0},
        "Disk": {"DiskMB": 0},
        "Memory": {"MemoryMB": 0},
        "Networks": {"ReservedHostPorts": ""},
    }


def node_full(node: Node) -> dict[str, Any]:
    return {
        "Attributes": attributes(node),
        "CSIControllerPlugins": None,
        "CSINodePlugins": None,
        "ComputedClass": "v1:390058673753570317",
        "CreateIndex": node.create_index,
        "Datacenter": node.datacenter,
        "Drain": node.drain,
        "DrainStrategy": drain_strategy(node),
        "Drivers": drivers(node),
        "Events": list(node.events),
        "HTTPAddr": f"{node.address}:{HTTP_PORT}",
        "HostNetworks": None,
        "HostVolumes": _host_volumes(node),
        "ID": node.id,
        "LastDrain": None,
        "Links": {},
        "Meta": dict(node.meta),
        "ModifyIndex": node.modify_index,
        "Name": node.name,
        "NodeClass": node.node_class,
        "NodePool": node.node_pool,
        "NodeResources": _node_resources(node),
        "ReservedResources": _reserved_resources(),
        "SchedulingEligibility": node.eligibility,
        "SecretID": "",
        "Status": node.status,
        "StatusDescription": "",
        "StatusUpdatedAt": node.status_updated_at,
        "TLSEnabled": False,
    }
