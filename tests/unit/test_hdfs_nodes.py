"""Several DataNodes / NodeManagers (hdfs.datanodes, hdfs.nodemanagers), without a service: the
health checks' reading of the NameNode's JMX and the ResourceManager's node list, and the
stack/hdfs templates rendered in every mode stack/hdfs.sh uses."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gaitstream import config
from gaitstream.health import hdfs as hdfs_health
from gaitstream.health import yarn as yarn_health

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((REPO_ROOT / "stack" / "hdfs").glob("*.xml.tmpl"))
HDFS_SH = (REPO_ROOT / "stack" / "hdfs.sh").read_text()
ADDRESSES = ("127.0.0.2", "127.0.0.3")


def with_nodes(datanodes: tuple[str, ...] = (), nodemanagers: tuple[str, ...] = ()) -> config.Config:
    cfg = config.load(env={})
    hdfs = dataclasses.replace(cfg.hdfs, datanodes=datanodes, nodemanagers=nodemanagers)
    return dataclasses.replace(cfg, sections={**cfg.sections, "hdfs": hdfs})


def nn_info(live: dict[str, int], dead: dict[str, int] | None = None) -> dict[str, Any]:
    """A NameNodeInfo bean: address -> seconds since the last heartbeat."""

    def nodes(contacts: dict[str, int]) -> str:
        return json.dumps(
            {
                f"{a}:29866": {"xferaddr": f"{a}:29866", "lastContact": s, "adminState": "In Service"}
                for a, s in contacts.items()
            }
        )

    return {"LiveNodes": nodes(live), "DeadNodes": nodes(dead or {})}


def test_every_listed_datanode_live():
    cfg = with_nodes(ADDRESSES)
    problem, live, expected = hdfs_health.datanode_problem(cfg, nn_info({a: 1 for a in ADDRESSES}))
    assert (problem, live, expected) == (None, 2, 2)


def test_a_stale_dead_or_unknown_datanode_fails_naming_it():
    cfg = with_nodes(ADDRESSES)
    problem, live, _ = hdfs_health.datanode_problem(cfg, nn_info({"127.0.0.2": 0, "127.0.0.3": 45}))
    assert live == 1 and problem and "127.0.0.3: stale" in problem
    problem, live, _ = hdfs_health.datanode_problem(cfg, nn_info({"127.0.0.2": 0}, dead={"127.0.0.3": 80}))
    assert live == 1 and problem and "127.0.0.3: dead" in problem
    problem, live, _ = hdfs_health.datanode_problem(cfg, nn_info({"127.0.0.2": 0}))
    assert live == 1 and problem and "127.0.0.3: not registered" in problem


def test_a_live_entry_wins_over_an_old_dead_one_of_the_same_address():
    states = hdfs_health.datanode_states(nn_info({"127.0.0.2": 2}, dead={"127.0.0.2": 900}), ["127.0.0.2"])
    assert states["127.0.0.2"][0]


def test_one_datanode_on_host_needs_one_live():
    cfg = with_nodes()
    assert hdfs_health.datanode_problem(cfg, nn_info({"127.0.0.1": 1}))[0] is None
    assert hdfs_health.datanode_problem(cfg, nn_info({}))[0]
    assert hdfs_health.datanode_problem(cfg, nn_info({"127.0.0.1": 40}))[0]


def rm_node(host: str, state: str, updated: int = 0) -> dict[str, Any]:
    return {"nodeHostName": host, "state": state, "lastHealthUpdate": updated, "id": f"{host}:28041"}


def test_every_listed_nodemanager_running():
    cfg = with_nodes(nodemanagers=ADDRESSES)
    problem, running = yarn_health.nodemanager_problem(cfg, [rm_node(a, "RUNNING") for a in ADDRESSES])
    assert (problem, running) == (None, 2)


def test_a_lost_or_missing_nodemanager_fails_naming_it():
    cfg = with_nodes(nodemanagers=ADDRESSES)
    problem, running = yarn_health.nodemanager_problem(
        cfg, [rm_node("127.0.0.2", "RUNNING"), rm_node("127.0.0.3", "LOST")]
    )
    assert running == 1 and problem and "127.0.0.3: LOST" in problem
    problem, running = yarn_health.nodemanager_problem(cfg, [rm_node("127.0.0.2", "RUNNING")])
    assert running == 1 and problem and "127.0.0.3: not registered" in problem


def test_a_running_entry_wins_over_a_lost_one_of_the_same_host():
    nodes = [rm_node("127.0.0.3", "RUNNING", 1), rm_node("127.0.0.3", "LOST", 2)]
    assert yarn_health.nodemanager_states(nodes, ["127.0.0.3"])["127.0.0.3"][0]


def test_one_nodemanager_needs_one_running():
    cfg = with_nodes()
    assert yarn_health.nodemanager_problem(cfg, [rm_node("127.0.0.1", "RUNNING")]) == (None, 1)
    assert yarn_health.nodemanager_problem(cfg, [rm_node("127.0.0.1", "LOST")])[0]


# --- Templates ---------------------------------------------------------------------------------

MARKER = re.compile(r"^@([A-Z_]+)@", re.M)
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def render(text: str, flags: dict[str, bool]) -> str:
    """What stack/hdfs.sh's render_to does with the line markers (render_flag), every value 'v'."""
    lines = []
    for line in text.splitlines(keepends=True):
        marker = MARKER.match(line)
        if marker:
            if marker.group(1) == "TEMPLATE" or not flags[marker.group(1)]:
                continue
            line = line[marker.end() :]
        lines.append(PLACEHOLDER.sub("v", line))
    return "".join(lines)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
@pytest.mark.parametrize("datanodes,nodemanagers,bind", list(itertools.product([False, True], repeat=3)))
def test_templates_render_to_xml_with_each_property_once(
    template: Path, datanodes: bool, nodemanagers: bool, bind: bool
):
    flags = {"IF_DATANODES": datanodes, "IF_NODEMANAGERS": nodemanagers, "UNLESS_NODEMANAGERS": not nodemanagers}
    flags["IF_BIND"] = bind
    names = [p.findtext("name") or "" for p in ET.fromstring(render(template.read_text(), flags)).iter("property")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_hdfs_sh_substitutes_every_placeholder_and_handles_every_marker():
    substituted = set(re.findall(r"s\|@([A-Z_]+)@\|", HDFS_SH))
    flags = set(re.findall(r"render_flag ([A-Z_]+) ", HDFS_SH)) | {"TEMPLATE"}
    for template in TEMPLATES:
        text = "".join(line for line in template.read_text().splitlines(True) if not line.startswith("@TEMPLATE@"))
        markers = set(MARKER.findall(text))
        assert markers <= flags, (template.name, markers - flags)
        placeholders = set(PLACEHOLDER.findall(MARKER.sub("", text)))
        assert placeholders <= substituted, (template.name, placeholders - substituted)
