"""k8s/rayjob.yaml: a RayJob KubeRay accepts (the fields its CRD requires, checked here
by path, from KubeRay's API reference for ray.io/v1), laid out as cluster.yaml is (token
auth, records in PostgreSQL and S3 named by a Secret, a GPU worker group), whose
entrypoint is a `sweep` command line this project accepts, on the image's Ray."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

MANIFEST = ROOT / "k8s" / "rayjob.yaml"
DOCKERFILE = ROOT / "k8s" / "Dockerfile"
# What KubeRay's ray.io/v1 RayJob CRD requires (its OpenAPI schema's `required` lists):
# a cluster to run on, the head's pod template, each worker group's name and pod template
# (minReplicas/maxReplicas default, but a group without them cannot be scaled), and a
# name and image for every container (Kubernetes' PodSpec).
REQUIRED = [
    "apiVersion",
    "kind",
    "metadata.name",
    "spec.entrypoint",
    "spec.rayClusterSpec.rayVersion",
    "spec.rayClusterSpec.headGroupSpec.template.spec.containers",
    "spec.rayClusterSpec.workerGroupSpecs",
]
GROUP_REQUIRED = ["groupName", "minReplicas", "maxReplicas", "template.spec.containers"]
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


def _at(tree: Any, path: str) -> Any:
    for key in path.split("."):
        assert isinstance(tree, dict) and key in tree, f"{MANIFEST.name}: no {path}"
        tree = tree[key]
    return tree


def _containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = job["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [c for pod in pods for c in pod["template"]["spec"]["containers"]]


def test_the_crds_required_fields_are_there(job):
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    for path in REQUIRED:
        assert _at(job, path) not in (None, "", [], {}), path
    assert DNS_1123.match(job["metadata"]["name"])
    for group in job["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        for path in GROUP_REQUIRED:
            assert _at(group, path) is not None, (group.get("groupName"), path)
        assert DNS_1123.match(group["groupName"])
        assert 0 <= group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
    for container in _containers(job):
        assert DNS_1123.match(container["name"]) and container["image"], container


def test_token_auth_on_the_images_ray():
    """Token auth needs Ray 2.52 or later; the manifest's rayVersion is the image's Ray
    and the Ray this project runs with."""
    import ray

    job = yaml.safe_load(MANIFEST.read_text())
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}
    version = cluster["rayVersion"]
    assert tuple(int(x) for x in version.split(".")[:2]) >= (2, 52)
    assert version == ray.__version__
    base = next(ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("FROM "))
    assert base.split()[1].startswith(f"rayproject/ray:{version}-"), base


def test_records_live_outside_the_cluster_and_no_secret_is_in_the_file(job):
    """As cluster.yaml: MLflow on PostgreSQL with artifacts in the bucket, the study in a
    database of its own, Tune's storage in the bucket; every value from one Secret."""
    text = MANIFEST.read_text()
    assert not re.search(r"postgresql(\+\w+)?://[^$'\s]*:[^@$\s]*@", text)  # no password
    assert "AWS_SECRET_ACCESS_KEY" not in text and "aws_secret" not in text.lower()
    for container in _containers(job):
        assert {"secretRef": {"name": "dnn-sweep-stores"}} in container.get("envFrom", []), (
            container["name"]
        )
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"]
    (server,) = [c for c in head if c["name"] == "mlflow"]
    args = server["command"]
    value = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert value["--backend-store-uri"] == "$(DNN_SWEEP_MLFLOW_DB)"
    assert value["--artifacts-destination"].startswith("s3://$(DNN_SWEEP_BUCKET)/")
    assert value["--host"] == "127.0.0.1" and "--serve-artifacts" in args
    entry = shlex.split(job["spec"]["entrypoint"])
    assert "study.storage=${oc.env:DNN_SWEEP_STUDY_DB}" in entry
    assert any(w.startswith("ray.storage_path=s3://${oc.env:DNN_SWEEP_BUCKET}/") for w in entry)


def test_a_gpu_worker_group_scales_from_zero(job):
    groups = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    gpu = [g for g in groups if _gpus(g) > 0]
    assert gpu and all(g["minReplicas"] == 0 for g in gpu)
    assert job["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] is True


def _gpus(group: dict[str, Any]) -> int:
    containers = group["template"]["spec"]["containers"]
    return sum(int(c["resources"]["limits"].get("nvidia.com/gpu", 0)) for c in containers)


def test_the_entrypoint_is_a_sweep_this_project_accepts(job):
    """Composed and checked as `sweep` checks its own command line (the ${oc.env:...}
    values resolve on the head, from the Secret)."""
    from search.config import check_command_line

    words = shlex.split(job["spec"]["entrypoint"])
    assert words[0] == "sweep" and "cluster=remote" in words
    check_command_line(words[1:])
