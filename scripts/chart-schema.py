#!/usr/bin/env python3
"""Writes charts/lore/values.schema.json: the JSON Schema of the Lore chart's values, kept here as
compact Python (one helper per kind of value) rather than 1,700 lines of hand-edited JSON.

Every object is closed (`additionalProperties: false`) and lists all its keys as required, so
an unknown or removed key is refused by `helm install/upgrade/template/lint` with its path.
Usage: chart-schema.py [--check]; `--check` exits 1 when the committed file differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Schema = dict[str, Any]


def obj(props: Schema, required: list[str] | None = None, desc: str | None = None) -> Schema:
    d: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        "required": sorted(required if required is not None else props),
    }
    if desc:
        d["description"] = desc
    return d


def s(desc: str, **kw: Any) -> Schema:
    return {"type": "string", "description": desc, **kw}


def i(desc: str, **kw: Any) -> Schema:
    return {"type": "integer", "description": desc, **kw}


def n(desc: str, **kw: Any) -> Schema:
    return {"type": "number", "description": desc, **kw}


def b(desc: str) -> Schema:
    return {"type": "boolean", "description": desc}


def free(desc: str) -> Schema:
    return {"type": "object", "description": desc}


def strmap(desc: str) -> Schema:
    return {"type": "object", "description": desc, "additionalProperties": {"type": "string"}}


def arr(desc: str, items: Schema | None = None) -> Schema:
    return {"type": "array", "description": desc, **({"items": items} if items else {})}


APPID = {"$ref": "#/$defs/appId"}
QTY = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?)?$"}
DUR = {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"}
resources = {"$ref": "#/$defs/resources"}


def app(extra: Schema, name: str) -> Schema:
    props = {
        "appId": {**APPID, "description": f"Dapr app-id of {name}"},
        "image": obj({"repository": s("Image name under image.registry", minLength=1)}),
        "replicaCount": i("Replicas", minimum=0),
        "containerPort": i("Container port", minimum=1, maximum=65535),
        "env": {
            "type": "object",
            "description": "Extra environment variables",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "resources": resources,
        "podAnnotations": strmap("Extra pod annotations"),
        "podLabels": strmap("Extra pod labels"),
        "nodeSelector": strmap("Node selector"),
        "tolerations": arr("Tolerations", {"type": "object"}),
        "affinity": free("Affinity"),
        "autoscaling": obj(
            {
                "enabled": b("Create a HorizontalPodAutoscaler"),
                "minReplicas": i("Fewest replicas", minimum=1),
                "maxReplicas": i("Most replicas", minimum=1),
                "targetCPUUtilizationPercentage": i("CPU target", minimum=1, maximum=100),
            }
        ),
        "pdb": obj(
            {
                "enabled": b("Create a PodDisruptionBudget"),
                "maxUnavailable": {
                    "type": ["integer", "string"],
                    "description": "maxUnavailable",
                    "pattern": "^[0-9]+%$",
                    "minimum": 0,
                },
            }
        ),
        **extra,
    }
    return obj(props)


schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Values of the Lore chart",
    "$defs": {
        "appId": {
            "type": "string",
            "maxLength": 63,
            "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            "description": "A Dapr app-id: a DNS-1123 label (lower case, digits, '-'; no dots)",
        },
        "resources": obj(
            {
                "requests": obj({"cpu": QTY, "memory": QTY}, required=[]),
                "limits": obj({"cpu": QTY, "memory": QTY}, required=[]),
            },
            required=[],
            desc="Container resources (requests and limits of cpu and memory)",
        ),
        "image": obj(
            {
                "repository": s("Image repository", minLength=1),
                "tag": s("Image tag", minLength=1),
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            }
        ),
    },
    **obj(
        {
            "nameOverride": s("Replaces the chart name"),
            "fullnameOverride": s("Replaces the full name", maxLength=40),
            "commonLabels": strmap("Labels of every resource"),
            "imagePullSecrets": arr("Pull secrets", {"type": "string", "minLength": 1}),
            "image": obj(
                {
                    "registry": s("Registry of the Lore images", minLength=1),
                    "tag": s("Tag of the Lore images"),
                    "digest": s("Digest of the Lore images", pattern="^(sha256:[a-f0-9]{64})?$"),
                    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                }
            ),
            "auth": obj(
                {
                    "daprApiToken": obj({"existingSecret": s("Secret with key `token`")}),
                    "appApiToken": obj({"existingSecret": s("Secret with key `token`")}),
                }
            ),
            "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
            "logFormat": {"enum": ["json", "text"]},
            "otlpEndpoint": s("OTLP/HTTP endpoint of the apps", pattern="^(https?://.+)?$"),
            "sidecarWaitSeconds": n("Sidecar wait", exclusiveMinimum=0),
            "maxDocumentBytes": i("Largest document", minimum=1),
            "extraEnv": arr("Extra EnvVars", {"type": "object", "required": ["name"]}),
            "embedding": obj({"threads": i("onnxruntime threads; 0: one per core", minimum=0)}),
            "index": obj(
                {
                    "name": s("Index name", minLength=1),
                    "prefix": s("Key prefix", minLength=1),
                    "metadataFields": s(
                        "name:tag,name:numeric",
                        pattern="^([A-Za-z_][A-Za-z0-9_]*:(tag|numeric)(,[A-Za-z_][A-Za-z0-9_]*:(tag|numeric))*)?$",
                    ),
                }
            ),
            "gateway": app(
                {
                    "auth": obj(
                        {
                            "required": b("Require API keys"),
                            "existingSecret": s("Secret with the operator key"),
                            "existingSecretKey": s("Key in that Secret", minLength=1),
                        }
                    ),
                    "maxBodyBytes": i("Largest body", minimum=1),
                    "service": obj(
                        {
                            "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                            "port": i("Service port", minimum=1, maximum=65535),
                            "annotations": strmap("Service annotations"),
                        }
                    ),
                },
                "the gateway",
            ),
            "ingest": app(
                {"chunkSize": i("Chunk size", minimum=100), "chunkOverlap": i("Overlap", minimum=0)},
                "lore-ingest",
            ),
            "query": app(
                {
                    "retrievalMode": {"enum": ["vector", "text", "hybrid"]},
                    "minScore": n("Score gate", minimum=-1, maximum=1),
                },
                "lore-query",
            ),
            "serviceAccount": obj(
                {"create": b("Create ServiceAccounts"), "annotations": strmap("Annotations")}
            ),
            "podSecurityContext": free("Pod securityContext"),
            "securityContext": free("Container securityContext"),
            "topologySpread": obj(
                {
                    "enabled": b("Spread pods"),
                    "maxSkew": i("maxSkew", minimum=1),
                    "whenUnsatisfiable": {"enum": ["ScheduleAnyway", "DoNotSchedule"]},
                    "topologyKeys": arr("Node labels", {"type": "string", "minLength": 1}),
                }
            ),
            "probes": obj(
                {
                    k: i(k, minimum=0 if k == "initialDelaySeconds" else 1)
                    for k in [
                        "initialDelaySeconds",
                        "periodSeconds",
                        "timeoutSeconds",
                        "failureThreshold",
                        "startupFailureThreshold",
                    ]
                }
            ),
            "terminationGracePeriodSeconds": i("Grace period", minimum=1),
            "dapr": obj(
                {
                    "logLevel": {"enum": ["debug", "info", "warn", "error", "fatal"]},
                    "logAsJson": b("JSON logs"),
                    "enableMetrics": b("Metrics"),
                    "metricsPort": i("Metrics port", minimum=1, maximum=65535),
                    "gracefulShutdownSeconds": i("Drain seconds", minimum=0),
                    "appHealthCheck": b("App health check"),
                    "sidecar": obj(
                        {"cpuRequest": QTY, "memoryRequest": QTY, "cpuLimit": QTY, "memoryLimit": QTY}
                    ),
                    "configuration": obj(
                        {
                            "name": {**APPID, "description": "Configuration name"},
                            "samplingRate": s("Sampling rate", pattern=r"^(0(\.[0-9]+)?|1(\.0+)?)$"),
                            "otlpEndpoint": s("host:port"),
                            "otlpProtocol": {"enum": ["grpc", "http"]},
                            "otlpIsSecure": b("TLS"),
                            "accessControl": obj(
                                {
                                    "enabled": b("Access control"),
                                    "trustDomain": s("Trust domain", minLength=1),
                                    "trustedAppIds": arr("Other callers of lore-ingest, lore-query", APPID),
                                }
                            ),
                        }
                    ),
                    "secretstore": obj({"name": {**APPID, "description": "Component name"}}),
                    "statestores": {
                        "type": "object",
                        "description": "Redis state stores by component name",
                        "propertyNames": {"$ref": "#/$defs/appId"},
                        "additionalProperties": obj(
                            {
                                "scopes": arr(
                                    "Apps that may use it", {"enum": ["gateway", "ingest", "query"]}
                                ),
                                "metadata": strmap("Extra metadata"),
                            }
                        ),
                    },
                    "workflowstore": obj({"name": {**APPID, "description": "Component name"}}),
                    "pubsub": obj(
                        {"name": {**APPID, "description": "Component name"}, "metadata": strmap("Metadata")}
                    ),
                    "topics": obj(
                        {
                            k: s(k, minLength=1, pattern=r"^[A-Za-z0-9._-]+$")
                            for k in ["ingest", "deadLetter", "exhausted", "events"]
                        }
                    ),
                    "subscription": obj({"enabled": b("Declarative subscription")}),
                    "resiliency": obj(
                        {
                            "enabled": b("Resiliency"),
                            "name": {**APPID, "description": "Name"},
                            "spec": obj(
                                {"policies": free("Policies"), "targets": free("Targets")},
                                required=["policies", "targets"],
                            ),
                        }
                    ),
                }
            ),
            "redis": obj(
                {
                    "enabled": b("In-chart Redis"),
                    "image": {"$ref": "#/$defs/image"},
                    "auth": obj(
                        {"existingSecret": s("Secret"), "existingSecretPasswordKey": s("Key", minLength=1)}
                    ),
                    "persistence": obj({"enabled": b("PVC"), "size": QTY, "storageClass": s("StorageClass")}),
                    "resources": resources,
                    "external": obj(
                        {
                            "host": s("host:port", pattern=r"^([A-Za-z0-9.-]+:[0-9]{1,5})?$"),
                            "db": i("Database", minimum=0, maximum=15),
                            "tls": b("TLS"),
                            "existingSecret": s("Secret"),
                            "existingSecretPasswordKey": s("Key", minLength=1),
                        }
                    ),
                }
            ),
            "llm": obj(
                {
                    "mode": {"enum": ["none", "external", "local"]},
                    "endpointName": {**APPID, "description": "HTTPEndpoint name"},
                    "model": s("Model", minLength=1),
                    "maxTokens": i("Max tokens", minimum=1, maximum=4096),
                    "external": obj(
                        {
                            "baseUrl": s("Base URL", pattern="^(https?://[^ ]+[^/])?$"),
                            "existingSecret": s("Secret"),
                            "existingSecretKey": s("Key", minLength=1),
                        }
                    ),
                    "local": obj(
                        {
                            "image": {"$ref": "#/$defs/image"},
                            "modelUrl": s("GGUF URL", pattern="^(https?://.+)?$"),
                            "existingClaim": s("Claim"),
                            "modelPath": s("Path in the claim", minLength=1),
                            "contextSize": i("Context", minimum=256),
                            "threads": i("Threads", minimum=1),
                            "resources": resources,
                        }
                    ),
                }
            ),
            "keda": obj(
                {
                    "enabled": b("KEDA"),
                    "minReplicas": i("min", minimum=0),
                    "maxReplicas": i("max", minimum=1),
                    "lagCount": s("lag", pattern="^[0-9]+$"),
                    "activationLagCount": s("activation", pattern="^[0-9]+$"),
                    "pollingInterval": i("poll", minimum=1),
                    "cooldownPeriod": i("cooldown", minimum=0),
                }
            ),
            "networkPolicy": obj(
                {
                    "enabled": b("NetworkPolicy"),
                    "gatewayFrom": arr("peers", {"type": "object"}),
                    "daprNamespace": s("namespace", minLength=1),
                    "metricsFrom": arr("peers", {"type": "object"}),
                }
            ),
            "grafanaDashboard": obj(
                {
                    "enabled": b("dashboard ConfigMap"),
                    "labels": strmap("labels"),
                    "annotations": strmap("annotations"),
                }
            ),
            "tests": obj(
                {
                    "enabled": b("helm test pod"),
                    "image": obj({"repository": s("repo", minLength=1), "tag": s("tag", minLength=1)}),
                }
            ),
        }
    ),
}
# Values that become required by other values.
schema["allOf"] = [
    {
        "if": {"properties": {"redis": {"properties": {"enabled": {"const": False}}}}},
        "then": {
            "properties": {"redis": {"properties": {"external": {"properties": {"host": {"minLength": 1}}}}}}
        },
    },
    {
        "if": {"properties": {"llm": {"properties": {"mode": {"const": "external"}}}}},
        "then": {
            "properties": {"llm": {"properties": {"external": {"properties": {"baseUrl": {"minLength": 1}}}}}}
        },
    },
]


OUT = Path(__file__).resolve().parents[1] / "charts" / "lore" / "values.schema.json"


def main(argv: list[str]) -> int:
    text = json.dumps(schema, indent=2) + "\n"
    if "--check" in argv[1:]:
        if OUT.read_text() != text:
            sys.stderr.write(f"{OUT} is stale: run scripts/chart-schema.py\n")
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
