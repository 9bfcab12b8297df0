"""The deployment's own rules, beyond the Kubernetes schemas (make
lint-deploy): what an operator relies on and a schema cannot tell.

Usage: python scripts/deploy_invariants.py deploy/k8s/*.yaml
Exits 1 and names every broken rule.
"""

import sys

import yaml


def check(documents):
    problems = []
    kinds = {}
    for doc in documents:
        kinds.setdefault(doc["kind"], []).append(doc)

    def need(condition, message):
        if not condition:
            problems.append(message)

    config = {}
    for cm in kinds.get("ConfigMap", []):
        config.update(cm.get("data", {}))
    shutdown = int(config.get("SHUTDOWN_TIMEOUT_SECS", "0"))
    need(shutdown > 0, "SHUTDOWN_TIMEOUT_SECS is set in the ConfigMap")

    deployments = {d["metadata"]["name"]: d for d in kinds.get("Deployment", [])}
    need("poison-pill-api" in deployments, "an API Deployment")
    need("poison-pill-worker" in deployments, "a worker Deployment")
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        pre_stop = 0
        pod_security = pod.get("securityContext", {})
        need(pod_security.get("runAsNonRoot") is True, f"{name}: runAsNonRoot")
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            image = container["image"]
            tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
            need(tag not in ("", "latest"), f"{where}: the image names a version, not latest ({image})")
            security = container.get("securityContext", {})
            need(security.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
            need(security.get("readOnlyRootFilesystem") is True, f"{where}: read-only root filesystem")
            need(security.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: every capability dropped")
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    need(resource in resources.get(bound, {}), f"{where}: {bound}.{resource}")
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            cpu_limit = str(resources.get("limits", {}).get("cpu", ""))
            need(
                cpu_limit.isdigit() and env.get("PASSWORD_HASH_THREADS") == cpu_limit,
                f"{where}: PASSWORD_HASH_THREADS ({env.get('PASSWORD_HASH_THREADS')}) matches the CPU limit ({cpu_limit})",
            )
            for source in container.get("envFrom", []):
                need("secretRef" in source or "configMapRef" in source, f"{where}: envFrom refers to a Secret or ConfigMap")
            need(
                any("secretRef" in source for source in container.get("envFrom", [])),
                f"{where}: the keys come from a Secret reference",
            )
            for literal in container.get("env", []):
                need(
                    literal["name"] not in ("JWT_SECRET", "BID_SEALING_KEY", "DATABASE_URL", "REDIS_URL", "SMTP_URL"),
                    f"{where}: {literal['name']} is never written in the manifest",
                )
            pre_stop = max(pre_stop, container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0))
            if container.get("args", [None])[0] == "serve":
                need(env.get("RUN_WORKERS") == "false", f"{where}: the API leaves background work to the worker")
                probes = {p: container.get(p, {}).get("httpGet", {}).get("path") for p in ("startupProbe", "readinessProbe", "livenessProbe")}
                need(probes["readinessProbe"] == "/ready", f"{where}: readiness on /ready")
                need(probes["livenessProbe"] == "/health", f"{where}: liveness on /health")
                startup = container.get("startupProbe", {})
                need(
                    startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) >= 120,
                    f"{where}: the startup probe allows minutes for migrations",
                )
                need(pre_stop > 0, f"{where}: a preStop sleep")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        need(grace > shutdown + pre_stop, f"{name}: terminationGracePeriodSeconds ({grace}) above preStop + SHUTDOWN_TIMEOUT_SECS ({pre_stop} + {shutdown})")

    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress", "Service"):
        need(kind in kinds, f"a {kind}")
    for ingress in kinds.get("Ingress", []):
        need(bool(ingress["spec"].get("tls")), f"{ingress['metadata']['name']}: TLS")
    need("Secret" not in kinds, "no Secret in the manifests (created apart, never committed)")
    return problems


def main(paths):
    documents = []
    for path in paths:
        with open(path, encoding="utf-8") as file:
            documents.extend(doc for doc in yaml.safe_load_all(file) if doc)
    problems = check(documents)
    for problem in problems:
        print(f"deploy invariant broken: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"deploy invariants: {len(documents)} documents, every rule holds")


if __name__ == "__main__":
    main(sys.argv[1:])
