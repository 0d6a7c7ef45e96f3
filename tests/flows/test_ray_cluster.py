"""A two-node Ray cluster on loopback (head + worker, separate raylets started by the test), the
catalog on the real PostgreSQL server, and `restorium run` as an institution would call it:
both nodes must have mastered scans, and every master is catalogued once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from catalog import Catalog

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Ray rewrites a 127.0.0.1 address to the machine's own IP before connecting, where a cluster bound
# to loopback does not listen; this (Linux-harmless) switch makes a driver keep loopback as its IP.
# Real clusters are addressed by their hosts' IPs and need nothing of the sort.
LOOPBACK_DRIVER = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@pytest.fixture
def two_node_cluster():
    from ray.cluster_utils import Cluster

    # One CPU per node: two single-thread workers cannot share a node, so each lands on its own.
    node = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    cluster.add_node(**{k: v for k, v in node.items() if k != "include_dashboard"})
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        cluster.shutdown()


def test_two_nodes_share_the_batch_and_the_catalog_is_on_postgres(
    tmp_path, shared_data, shared_models, postgres_url, two_node_cluster
):
    scans = tmp_path / "scans"
    scans.mkdir()
    for i, src in enumerate(sorted((shared_data / "sr_gt/CBSD68").glob("*.png"))[:6]):
        Image.open(src).convert("RGB").crop((0, 0, 64, 48)).save(scans / f"s{i}.png")
    env = {
        **os.environ,
        "RESTORIUM_RAY_ADDRESS": two_node_cluster.address,
        "RESTORIUM_CATALOG_URL": postgres_url,
        "RESTORIUM_HOME": str(tmp_path / "archive"),
        "RESTORIUM_MODELS_DIR": str(shared_models),
        "RESTORIUM_WORKERS": "2",
        "RESTORIUM_WORKER_THREADS": "1",
        "RESTORIUM_SHARD_SIZE": "3",
        "PREFECT_HOME": str(tmp_path / "prefect"),  # an ephemeral Prefect API of its own
        **LOOPBACK_DRIVER,
    }
    done = subprocess.run([sys.executable, "-m", "flows.cli", "run", str(scans), "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["counts"]["mastered"] == 6

    workers = summary["workers"]
    assert len(workers) == 2
    assert len({w["node_id"] for w in workers}) == 2, workers  # two Ray nodes …
    assert all(w["processed"] >= 1 for w in workers), workers  # … and both did work
    assert sum(w["processed"] for w in workers) == 6
    cluster_nodes = {n["NodeID"] for n in _alive_nodes(two_node_cluster.address)}
    assert {w["node_id"] for w in workers} == cluster_nodes

    with Catalog.open(postgres_url) as catalog:
        run = catalog.run_summary(summary["run_uuid"])
        assert run["status"] == "finished" and run["counts"]["mastered"] == 6
        for entry in summary["scans"]:
            assert catalog.audit(master_path=entry["master"]) is not None
            assert Path(entry["master"]).is_file()


def _alive_nodes(address: str) -> list[dict]:
    """Ask the cluster itself (a separate driver) which nodes it has."""
    code = ("import json, ray; ray.init(address=%r, _node_ip_address='127.0.0.1', log_to_driver=False); "
            "print(json.dumps([n for n in ray.nodes() if n['Alive']]))" % address)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env={**os.environ, **LOOPBACK_DRIVER})
    return json.loads(out.stdout.strip().splitlines()[-1])
