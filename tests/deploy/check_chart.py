#!/usr/bin/env python3
"""check_chart.py - what can be checked of the Helm chart without helm, docker or a cluster.

1. yaml: every non-template YAML file of the chart and of tests/deploy parses; Chart.yaml
   has the fields helm requires.
2. values: every key of values.yaml has a comment; every `.Values.x.y` a template uses exists
   in values.yaml; every value is used by some template (no dead, undocumented knobs); the
   chart's `settings` are exactly the binary's settings (src/job/settings.c and the AWS
   refresh margin), with the binary's defaults.
3. kinds: the templates hold every kind the chart promises (issue 8), and the rendered
   examples together contain each of them.
4. rendered examples (tests/deploy/rendered-*.yaml: the chart rendered with the default
   values and with values-full.yaml / values-hpa.yaml), for each:
   - every document is a Kubernetes object with a valid name;
   - built-in kinds are checked field by field against the Kubernetes API models of
     Debian's python3-kubernetes (unknown fields, wrong types, missing required fields);
     KEDA and Prometheus Operator kinds against the fields the chart uses;
   - the security defaults hold in every pod (non-root, read-only root, /tmp emptyDir, no
     privilege escalation, ALL capabilities dropped, seccomp RuntimeDefault, no API token);
   - references resolve (selectors, Services, probes' ports, volumes, ConfigMaps, Secrets,
     scale targets, the KEDA TriggerAuthentication, the ServiceMonitor's Service);
   - the example agrees with its values (settings, replicas, drain time, arguments, images,
     Secrets, autoscaler, hooks): the rendering is checked against a model of the chart.
5. kubectl: `kubectl apply --dry-run=client` on each example when kubectl can do it offline.
   It cannot (client dry-run still fetches API discovery and the OpenAPI schema from a
   server), which is reported, and `kubectl label --local` (no server) decodes each
   document instead.
6. helm: only where a `helm` binary is found ($HELM or PATH): `helm lint` and `helm template`
   with each values file, compared object by object with the rendered examples.
7. docs: docs/configuration.md names every setting of the binary, and the alert rules in
   docs/operations.md parse (and pass `promtool check rules` where promtool is installed).

Prints one line per check and "N passed, N failed, N skipped"; exits 1 if any failed.
"""
import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(ROOT, "helm", "dsa-ingest")
TEMPLATES = os.path.join(CHART, "templates")
DEPLOY = os.path.join(ROOT, "tests", "deploy")
RELEASE, NAMESPACE = "dsa-ingest", "dsa"
# name → (values file in tests/deploy or None for the defaults, rendered example)
EXAMPLES = {
    "default": (None, "rendered-default.yaml"),
    "full": ("values-full.yaml", "rendered-full.yaml"),
    "hpa": ("values-hpa.yaml", "rendered-hpa.yaml"),
}
PROMISED_KINDS = ["Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount",
                  "PodDisruptionBudget", "ScaledObject", "TriggerAuthentication",
                  "HorizontalPodAutoscaler", "ServiceMonitor", "Job"]
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# -- small helpers -------------------------------------------------------------------------

def load_yaml(path):
    """load_yaml parses one YAML document."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_docs(path):
    """load_docs parses a multi-document YAML file, dropping empty documents."""
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def merge(base, over):
    """merge deep-merges values like helm does: maps merge, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def values_for(name):
    """values_for is values.yaml merged with the example's values file."""
    base = load_yaml(os.path.join(CHART, "values.yaml"))
    extra = EXAMPLES[name][0]
    return merge(base, load_yaml(os.path.join(DEPLOY, extra)) if extra else {})


def template_files():
    """template_files lists the chart's templates (yaml, tpl and NOTES.txt)."""
    return sorted(os.path.join(TEMPLATES, f) for f in os.listdir(TEMPLATES)
                  if f.endswith((".yaml", ".tpl", ".txt")))


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def find(docs, kind, name=None):
    """find returns the documents of a kind (and name)."""
    return [d for d in docs if d.get("kind") == kind
            and (name is None or d["metadata"]["name"] == name)]


def one(docs, kind, name):
    """one returns the single document of a kind and name, failing if it is not there."""
    found = find(docs, kind, name)
    assert len(found) == 1, "expected one %s %s, found %d" % (kind, name, len(found))
    return found[0]


def pod_templates(docs):
    """pod_templates yields (owner, pod spec, pod metadata) of every Deployment and Job."""
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            tpl = d["spec"]["template"]
            yield "%s/%s" % (d["kind"], d["metadata"]["name"]), tpl["spec"], tpl.get("metadata", {})


# -- 1. YAML -------------------------------------------------------------------------------

def check_yaml_parses():
    """Every non-template YAML file parses; Chart.yaml has apiVersion v2, name, version."""
    files = []
    for base, dirs, names in os.walk(os.path.join(ROOT, "helm")):
        dirs[:] = [d for d in dirs if os.path.join(base, d) != TEMPLATES]
        files += [os.path.join(base, n) for n in names if n.endswith((".yaml", ".yml"))]
    files += [os.path.join(DEPLOY, n) for n in os.listdir(DEPLOY) if n.endswith(".yaml")]
    for path in files:
        try:
            load_docs(path)
        except yaml.YAMLError as e:
            raise AssertionError("%s: %s" % (os.path.relpath(path, ROOT), e))
    chart = load_yaml(os.path.join(CHART, "Chart.yaml"))
    assert chart.get("apiVersion") == "v2", "Chart.yaml: apiVersion must be v2"
    for key in ("name", "version", "appVersion"):
        assert chart.get(key), "Chart.yaml lacks %s" % key
    assert chart["name"] == "dsa-ingest", chart["name"]
    return "%d files" % len(files)


# -- 2. values -----------------------------------------------------------------------------

KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][\w.-]*):(\s|$)")
ITEM_LINE = re.compile(r"^(\s*)- ")


def check_values_documented():
    """Every key of values.yaml (outside example list items) has a comment line above it."""
    lines = read(os.path.join(CHART, "values.yaml")).split("\n")
    stack, missing, keys = [], [], 0  # stack of (indent, "key"|"item")
    for i, line in enumerate(lines):
        item, key = ITEM_LINE.match(line), KEY_LINE.match(line)
        if item:
            ind = len(item.group(1))
            stack = [s for s in stack if s[0] < ind or (s[0] == ind and s[1] == "key")]
            stack.append((ind, "item"))
        elif key:
            ind = len(key.group(1))
            stack = [s for s in stack if s[0] < ind]
            if not any(kind == "item" for _, kind in stack):
                keys += 1
                prev = next((p for p in reversed(lines[:i]) if p.strip()), "")
                if not prev.strip().startswith("#"):
                    missing.append("line %d: %s" % (i + 1, key.group(2)))
            stack.append((ind, "key"))
    assert not missing, "values.yaml keys without a comment above them: %s" % ", ".join(missing)
    return "%d keys" % keys


VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def template_value_refs():
    """template_value_refs maps each `.Values.a.b` path used by the templates to its files."""
    refs = {}
    for path in template_files():
        for m in VALUES_REF.finditer(read(path)):
            refs.setdefault(tuple(m.group(1)[1:].split(".")), set()).add(os.path.basename(path))
    return refs


def check_values_paths_exist():
    """Every .Values path a template uses exists in values.yaml."""
    values = load_yaml(os.path.join(CHART, "values.yaml"))
    missing = []
    for path, files in sorted(template_value_refs().items()):
        node = values
        for i, part in enumerate(path):
            if not isinstance(node, dict) or part not in node:
                missing.append("%s (in %s)" % (".".join(path), ", ".join(sorted(files))))
                break
            node = node[part]
    assert not missing, "paths not in values.yaml: %s" % "; ".join(missing)
    return "%d paths" % len(template_value_refs())


def leaf_paths(node, prefix=()):
    """leaf_paths yields the path of every leaf (non-map, or empty map) of values."""
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from leaf_paths(v, prefix + (k,))
    else:
        yield prefix


def check_values_used():
    """Every value is read by a template: the leaf itself or a map above it (toYaml, range)."""
    used = set(template_value_refs())
    values = load_yaml(os.path.join(CHART, "values.yaml"))
    dead = [".".join(p) for p in leaf_paths(values)
            if not any(p[:n] in used for n in range(1, len(p) + 1))]
    assert not dead, "values no template reads: %s" % ", ".join(dead)
    return None


SETTING_ROW = re.compile(r'\{"(IMPORT_[A-Z0-9_]+)",\s*S\(\w+\),\s*([^,]+),')


def c_number(expr):
    """c_number evaluates a C integer constant such as 16L << 20 (digits, <<, * only)."""
    expr = re.sub(r"(\d+)[lLuU]+", r"\1", expr.strip())
    assert re.fullmatch(r"[\d\s<*()]+", expr), "not a constant: %r" % expr
    return int(eval(expr, {"__builtins__": {}}))  # digits and operators only, checked above


def binary_settings():
    """binary_settings reads the settings table of src/job/settings.c (name → default) and
    the AWS credential refresh margin."""
    text = read(os.path.join(ROOT, "src", "job", "settings.c"))
    found = {m.group(1): c_number(m.group(2)) for m in SETTING_ROW.finditer(text)}
    assert len(found) >= 14, "cannot read the settings table of src/job/settings.c"
    aws = read(os.path.join(ROOT, "src", "source", "aws_credentials.c"))
    m = re.search(r"#define AWS_MARGIN_S\s+(\d+)", aws)
    assert m and "DSA_INGEST_AWS_REFRESH_MARGIN" in aws, "AWS refresh margin not found"
    found["DSA_INGEST_AWS_REFRESH_MARGIN"] = int(m.group(1))
    return found


def check_settings_match_binary():
    """values.yaml's settings are the binary's settings with the binary's defaults."""
    want = binary_settings()
    have = load_yaml(os.path.join(CHART, "values.yaml"))["settings"]
    missing = sorted(set(want) - set(have))
    unknown = sorted(set(have) - set(want))
    wrong = ["%s: chart %s, binary %s" % (k, have[k], want[k])
             for k in sorted(set(want) & set(have)) if have[k] != want[k]]
    assert not (missing or unknown or wrong), "settings differ from the binary's: missing %s; " \
        "unknown %s; defaults %s" % (missing, unknown, wrong)
    return "%d settings" % len(want)


# -- 3. kinds ------------------------------------------------------------------------------

def check_template_kinds():
    """Each promised kind appears in the templates; Secrets are referenced by secretKeyRef;
    the migration Job is a pre-install/pre-upgrade hook."""
    text = "\n".join(read(p) for p in template_files())
    kinds = set(re.findall(r"^kind:\s*(\w+)", text, re.M))
    missing = [k for k in PROMISED_KINDS if k not in kinds]
    assert not missing, "kinds missing from the templates: %s" % missing
    assert "secretKeyRef" in text, "no Secret is referenced"
    mig = read(os.path.join(TEMPLATES, "migrate-job.yaml"))
    assert re.search(r'"helm.sh/hook": pre-install,pre-upgrade', mig), "migration is not a hook"
    return ", ".join(sorted(kinds))


def check_rendered_kinds():
    """The rendered examples together contain every promised kind."""
    seen = set()
    for name in EXAMPLES:
        seen |= {d["kind"] for d in load_docs(os.path.join(DEPLOY, EXAMPLES[name][1]))}
    missing = [k for k in PROMISED_KINDS if k not in seen]
    assert not missing, "kinds in no rendered example: %s" % missing


# -- 4a. generic object and schema checks ----------------------------------------------------

def check_objects(docs):
    """Each document has apiVersion, kind, a DNS-1123 name of at most 63 characters and the
    chart's namespace; names are unique per kind."""
    seen = set()
    for d in docs:
        assert isinstance(d, dict) and d.get("apiVersion") and d.get("kind"), d
        name = d.get("metadata", {}).get("name", "")
        assert DNS1123.match(name) and len(name) <= 63, "bad name %r" % name
        assert d["metadata"].get("namespace") == NAMESPACE, "%s has no namespace" % name
        assert (d["kind"], name) not in seen, "duplicate %s %s" % (d["kind"], name)
        seen.add((d["kind"], name))


# Built-in kinds → the python3-kubernetes model checked against. Debian 12's client is
# Kubernetes 1.22: autoscaling/v2 (GA in 1.23) is checked against v2beta2, its identical
# predecessor; fields newer than 1.22 are listed in NEWER_FIELDS.
MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap", ("v1", "Secret"): "V1Secret",
    ("v1", "Service"): "V1Service", ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "Deployment"): "V1Deployment", ("batch/v1", "Job"): "V1Job",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler|"
                                                   "V2beta2HorizontalPodAutoscaler",
}
# model → {field: schema} for fields the model predates (Job podFailurePolicy: 1.26).
NEWER_FIELDS = {
    "V1JobSpec": {"podFailurePolicy": {"rules": [{
        "action": str, "onExitCodes": {"containerName": str, "operator": str, "values": [int]},
        "onPodConditions": [{"type": str, "status": str}]}]}},
}
# CRDs: the fields the chart uses, as a schema of dicts, [item schema], str, int, bool.
KEDA_META = {"name": str, "namespace": str, "labels": {str: str}, "annotations": {str: str}}
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): {"apiVersion": str, "kind": str, "metadata": KEDA_META,
        "spec": {"scaleTargetRef": {"apiVersion": str, "kind": str, "name": str},
                 "minReplicaCount": int, "maxReplicaCount": int, "pollingInterval": int,
                 "cooldownPeriod": int,
                 "triggers": [{"type": str, "metadata": {str: str},
                               "authenticationRef": {"name": str}}]}},
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {"apiVersion": str, "kind": str,
        "metadata": KEDA_META,
        "spec": {"secretTargetRef": [{"parameter": str, "name": str, "key": str}]}},
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {"apiVersion": str, "kind": str,
        "metadata": KEDA_META,
        "spec": {"namespaceSelector": {"matchNames": [str]},
                 "selector": {"matchLabels": {str: str}},
                 "endpoints": [{"port": str, "path": str, "interval": str,
                                "scrapeTimeout": str}]}},
}


def check_against_schema(obj, schema, where, errors):
    """check_against_schema walks a plain schema (dict of fields, {str: type} maps, [item],
    or a type) and records unknown fields and wrong types."""
    if isinstance(schema, dict):
        if not isinstance(obj, dict):
            errors.append("%s: expected a map" % where)
            return
        if list(schema) == [str]:
            for k, v in obj.items():
                check_against_schema(v, schema[str], "%s.%s" % (where, k), errors)
            return
        for k, v in obj.items():
            if k not in schema:
                errors.append("%s: unknown field %s" % (where, k))
            else:
                check_against_schema(v, schema[k], "%s.%s" % (where, k), errors)
    elif isinstance(schema, list):
        if not isinstance(obj, list):
            errors.append("%s: expected a list" % where)
            return
        for i, v in enumerate(obj):
            check_against_schema(v, schema[0], "%s[%d]" % (where, i), errors)
    elif schema is int and (isinstance(obj, bool) or not isinstance(obj, int)):
        errors.append("%s: expected an integer, got %r" % (where, obj))
    elif schema is not int and not isinstance(obj, schema):
        errors.append("%s: expected %s, got %r" % (where, schema.__name__, obj))


class ModelChecker:
    """ModelChecker validates a built-in object against the python3-kubernetes models:
    every field must be one the model has, of its type, and required fields present (the
    models' constructors refuse a missing required field)."""

    QUANTITY_MAPS = {("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests")}

    def __init__(self, client):
        self.client = client

    def model(self, names):
        for n in names.split("|"):
            if hasattr(self.client, n):
                return n
        raise AssertionError("python3-kubernetes has none of %s" % names)

    def check(self, obj, type_name, where, errors):
        """check dispatches on the model's type string (V1Foo, list[...], dict(str, ...))."""
        if type_name.startswith("list["):
            if not isinstance(obj, list):
                errors.append("%s: expected a list" % where)
                return
            for i, v in enumerate(obj):
                self.check(v, type_name[5:-1], "%s[%d]" % (where, i), errors)
        elif type_name.startswith("dict("):
            inner = type_name[5:-1].split(", ", 1)[1]
            if not isinstance(obj, dict):
                errors.append("%s: expected a map" % where)
                return
            for k, v in obj.items():
                self.check(v, inner, "%s.%s" % (where, k), errors)
        elif hasattr(self.client, type_name):
            self.check_model(obj, type_name, where, errors)
        else:
            self.check_scalar(obj, type_name, where, errors)

    def check_scalar(self, obj, type_name, where, errors):
        """check_scalar: str, int, bool, float; object (int-or-string, quantity) takes any."""
        want = {"str": str, "int": int, "bool": bool, "float": (int, float)}.get(type_name)
        if want is None:
            return
        if want is int and isinstance(obj, bool) or not isinstance(obj, want):
            errors.append("%s: expected %s, got %r" % (where, type_name, obj))

    def check_model(self, obj, name, where, errors):
        """check_model checks one object level, then each field's value."""
        cls = getattr(self.client, name)
        if not isinstance(obj, dict):
            errors.append("%s: expected a %s map" % (where, name))
            return
        by_json = {j: a for a, j in cls.attribute_map.items()}
        newer = NEWER_FIELDS.get(name, {})
        for k, v in obj.items():
            sub = "%s.%s" % (where, k)
            if k in by_json:
                t = cls.openapi_types[by_json[k]]
                if (name, k) in self.QUANTITY_MAPS and isinstance(v, dict):
                    for q, qv in v.items():
                        if not isinstance(qv, (str, int, float)) or isinstance(qv, bool):
                            errors.append("%s.%s: not a quantity: %r" % (sub, q, qv))
                else:
                    self.check(v, t, sub, errors)
            elif k in newer:
                check_against_schema(v, newer[k], sub, errors)
            else:
                errors.append("%s: unknown field %s (%s)" % (where, k, name))
        present = {by_json[k]: v for k, v in obj.items() if k in by_json}
        try:
            cls(**present)
        except ValueError as e:
            errors.append("%s: %s" % (where, e))


def load_model_checker():
    """load_model_checker imports python3-kubernetes' models, or returns the reason it can't."""
    try:
        from kubernetes import client
    except ImportError as e:
        return None, "python3-kubernetes is not installed (%s)" % e
    return ModelChecker(client), None


def check_schemas(docs, checker):
    """check_schemas validates every document: built-in kinds against the API models (when
    python3-kubernetes is there), CRDs against the fields the chart uses."""
    errors, skipped = [], 0
    for d in docs:
        key = (d["apiVersion"], d["kind"])
        where = "%s/%s" % (d["kind"], d["metadata"]["name"])
        if key in CRD_SCHEMAS:
            check_against_schema(d, CRD_SCHEMAS[key], where, errors)
        elif key in MODELS and checker:
            checker.check_model(d, checker.model(MODELS[key]), where, errors)
        elif key in MODELS:
            skipped += 1
        else:
            errors.append("%s: no schema for %s %s" % (where, key[0], key[1]))
    assert not errors, "schema errors:\n  " + "\n  ".join(errors)
    return skipped


# -- 4b. security defaults -----------------------------------------------------------------

def check_pod_security(docs):
    """Every pod runs as non-root with seccomp RuntimeDefault and no API token; every
    container has a read-only root, no privilege escalation, ALL capabilities dropped and
    /tmp on an emptyDir."""
    count = 0
    for owner, spec, _ in pod_templates(docs):
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, "%s: runAsNonRoot" % owner
        assert psc.get("runAsUser", 0) != 0, "%s: runs as uid 0" % owner
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "%s: seccomp" % owner
        assert spec.get("automountServiceAccountToken") is False, "%s: API token mounted" % owner
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), owner
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            where = "%s container %s" % (owner, c["name"])
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, "%s: privilege escalation" % where
            assert sc.get("readOnlyRootFilesystem") is True, "%s: writable root" % where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), "%s: capabilities" % where
            assert not sc.get("privileged"), "%s: privileged" % where
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in volumes.get(tmp[0]["name"], {}), "%s: /tmp" % where
            assert "limits" in c.get("resources", {}), "%s: no resource limits" % where
            count += 1
    return count


# -- 4c. references ------------------------------------------------------------------------

def labels_match(selector, labels):
    """labels_match tells whether every selector label is on the object."""
    return all(labels.get(k) == v for k, v in selector.items())


def check_references(docs, values):
    """Selectors match their pods; Services, probes, volumes, ConfigMaps, Secrets, scale
    targets and the ServiceMonitor point at things that exist (or at the existing Secrets
    the values name)."""
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    external = {values["database"]["existingSecret"], values["api"]["auth"]["existingSecret"]}
    secrets = {n for k, n in names if k == "Secret"} | (external - {""})
    for d in find(docs, "Deployment"):
        sel = d["spec"]["selector"]["matchLabels"]
        assert labels_match(sel, d["spec"]["template"]["metadata"]["labels"]), d["metadata"]["name"]
    pods = [(o, s, m) for o, s, m in pod_templates(docs)]
    for owner, spec, _ in pods:
        check_pod_references(owner, spec, names, secrets)
        sa = spec.get("serviceAccountName")
        if sa and values["serviceAccount"]["create"] and "migrate" not in owner:
            assert ("ServiceAccount", sa) in names, "%s: ServiceAccount %s" % (owner, sa)
    for svc in find(docs, "Service"):
        check_service(svc, pods)
    for pdb in find(docs, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        assert any(labels_match(sel, m.get("labels", {})) for o, _, m in pods
                   if o.startswith("Deployment/")), "PDB %s selects no pods" % pdb["metadata"]["name"]
    check_scaler_references(docs, names, secrets)


def check_pod_references(owner, spec, names, secrets):
    """check_pod_references: mounts name volumes, volumes name ConfigMaps that exist, env
    names existing Secrets/ConfigMaps, probes name a declared port."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for v in volumes.values():
        if "configMap" in v:
            assert ("ConfigMap", v["configMap"]["name"]) in names, "%s: %s" % (owner, v)
    for c in spec["containers"]:
        ports = {p["name"] for p in c.get("ports", [])}
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes, "%s: mount of unknown volume %s" % (owner, m["name"])
        for e in c.get("envFrom", []):
            assert ("ConfigMap", e["configMapRef"]["name"]) in names, "%s: %s" % (owner, e)
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] in secrets, "%s: Secret %s" % (owner, ref["name"])
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in c:
                port = c[probe]["httpGet"]["port"]
                assert port in ports, "%s: %s port %s not declared" % (owner, probe, port)


def check_service(svc, pods):
    """check_service: the selector matches a pod template whose container has the target port."""
    sel = svc["spec"]["selector"]
    matched = [s for o, s, m in pods if o.startswith("Deployment/")
               and labels_match(sel, m.get("labels", {}))]
    assert matched, "Service %s selects no pods" % svc["metadata"]["name"]
    for p in svc["spec"]["ports"]:
        declared = {cp["name"] for s in matched for c in s["containers"] for cp in c.get("ports", [])}
        assert p["targetPort"] in declared, "Service %s: targetPort %s" % (
            svc["metadata"]["name"], p["targetPort"])


def check_scaler_references(docs, names, secrets):
    """check_scaler_references: scale targets are Deployments of the chart; the ScaledObject's
    TriggerAuthentication exists and reads an existing Secret; the ServiceMonitor selects a
    Service with its port."""
    for d in find(docs, "ScaledObject") + find(docs, "HorizontalPodAutoscaler"):
        ref = d["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ("Deployment", ref["name"]) in names, ref
        for t in d["spec"].get("triggers", []):
            auth = t["authenticationRef"]["name"]
            assert ("TriggerAuthentication", auth) in names, auth
    for ta in find(docs, "TriggerAuthentication"):
        for ref in ta["spec"]["secretTargetRef"]:
            assert ref["name"] in secrets, "TriggerAuthentication: Secret %s" % ref["name"]
    for sm in find(docs, "ServiceMonitor"):
        sel = sm["spec"]["selector"]["matchLabels"]
        svcs = [s for s in find(docs, "Service") if labels_match(sel, s["metadata"]["labels"])]
        assert svcs, "ServiceMonitor selects no Service"
        for ep in sm["spec"]["endpoints"]:
            assert all(ep["port"] in {p["name"] for p in s["spec"]["ports"]} for s in svcs), ep


# -- 4d. the example agrees with its values --------------------------------------------------

def fullname(values):
    """fullname mirrors dsa-ingest.fullname for the examples' release name."""
    return values["fullnameOverride"] or RELEASE


def image(values):
    """image mirrors dsa-ingest.image."""
    img, chart = values["image"], load_yaml(os.path.join(CHART, "Chart.yaml"))
    if img["digest"]:
        return "%s@%s" % (img["repository"], img["digest"])
    return "%s:%s" % (img["repository"], img["tag"] or chart["appVersion"])


def container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def check_settings_configmaps(docs, values):
    """The settings ConfigMap holds every setting as a string, the log format and the rules
    file's path; the rules ConfigMap holds eventRules as JSON."""
    fn = fullname(values)
    data = one(docs, "ConfigMap", fn + "-settings")["data"]
    want = {k: str(int(v)) if isinstance(v, (int, float)) else str(v)
            for k, v in values["settings"].items()}
    want["DSA_INGEST_LOG_FORMAT"] = values["logFormat"]
    want["DSA_INGEST_EVENT_RULES"] = "/etc/dsa-ingest/event-rules.json"
    if values["aws"]["region"]:
        want["AWS_REGION"] = values["aws"]["region"]
    if values["aws"]["endpointUrl"]:
        want["AWS_ENDPOINT_URL"] = values["aws"]["endpointUrl"]
    if values["spool"]["existingClaim"]:
        want["DSA_INGEST_SPOOL_DIR"] = values["spool"]["mountPath"]
    assert data == want, "settings ConfigMap differs from values: %s vs %s" % (data, want)
    rules = one(docs, "ConfigMap", fn + "-event-rules")["data"]["event-rules.json"]
    assert json.loads(rules) == values["eventRules"], rules


def check_database_env(c, values, where):
    """DATABASE_URL comes from the existing Secret, or the chart's own."""
    ref = env_of(c)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    db = values["database"]
    want = ((db["existingSecret"], db["existingSecretKey"]) if db["existingSecret"]
            else (fullname(values), "DATABASE_URL"))
    assert (ref["name"], ref["key"]) == want, "%s: DATABASE_URL from %s" % (where, ref)


def check_worker(docs, values):
    """The worker Deployment: replicas unless autoscaled, drain time as the grace period,
    `worker --listen`, probes on /healthz and /readyz, its image and resources."""
    w, fn = values["worker"], fullname(values)
    dep = one(docs, "Deployment", fn + "-worker")
    spec, c = dep["spec"]["template"]["spec"], container(dep)
    if values["autoscaling"]["enabled"]:
        assert "replicas" not in dep["spec"], "an autoscaled Deployment must not set replicas"
    else:
        assert dep["spec"]["replicas"] == w["replicaCount"]
    assert spec["terminationGracePeriodSeconds"] == w["drainSeconds"], "drain time"
    args = ["worker", "--listen", "0.0.0.0:%d" % w["port"]]
    if w["sqsQueueUrl"]:
        args += ["--sqs-queue-url", w["sqsQueueUrl"]]
    assert c["args"] == args + w["extraArgs"], c["args"]
    assert c["command"] == ["/usr/local/bin/dsa-ingest"] and c["image"] == image(values)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"] == w["resources"], c["resources"]
    assert c["ports"][0]["containerPort"] == w["port"]
    check_database_env(c, values, "worker")
    metrics = find(docs, "Service", fn + "-worker-metrics")
    assert bool(metrics) == w["metricsService"]["enabled"]
    assert bool(find(docs, "PodDisruptionBudget", fn + "-worker")) == \
        w["podDisruptionBudget"]["enabled"]


def check_api(docs, values):
    """The API: present only when enabled; `serve --listen`, its tokens' Secret, a preStop
    sleep shorter than its grace period, and its Service."""
    a, fn = values["api"], fullname(values)
    deps = find(docs, "Deployment", fn + "-api")
    assert bool(deps) == a["enabled"], "API Deployment present: %s" % bool(deps)
    assert bool(find(docs, "Service", fn + "-api")) == a["enabled"]
    if not a["enabled"]:
        return
    c, spec = container(deps[0]), deps[0]["spec"]["template"]["spec"]
    assert c["args"] == ["serve", "--listen", "0.0.0.0:%d" % a["port"]] + a["extraArgs"]
    assert spec["terminationGracePeriodSeconds"] == a["drainSeconds"]
    assert c["lifecycle"]["preStop"]["exec"]["command"] == [
        "/bin/sleep", str(a["preStopSleepSeconds"])]
    ref = env_of(c)["DSA_INGEST_API_TOKENS"]["valueFrom"]["secretKeyRef"]
    want = ((a["auth"]["existingSecret"], a["auth"]["existingSecretKey"])
            if a["auth"]["existingSecret"] else (fn, "DSA_INGEST_API_TOKENS"))
    assert (ref["name"], ref["key"]) == want, ref
    check_database_env(c, values, "api")
    svc = one(docs, "Service", fn + "-api")
    assert svc["spec"]["type"] == a["service"]["type"]
    assert svc["spec"]["ports"][0]["port"] == a["service"]["port"]


def check_secrets(docs, values):
    """The chart's Secret exists only for values-given credentials, and holds them."""
    db, auth = values["database"], values["api"]["auth"]
    want = {}
    if not db["existingSecret"]:
        want["DATABASE_URL"] = db["url"]
    if values["api"]["enabled"] and not auth["existingSecret"]:
        want["DSA_INGEST_API_TOKENS"] = auth["tokens"]
    found = find(docs, "Secret", fullname(values))
    assert bool(found) == bool(want), "chart Secret present: %s, wanted: %s" % (bool(found), want)
    if found:
        got = {k: base64.b64decode(v).decode() for k, v in found[0]["data"].items()}
        assert got == want, "chart Secret holds %s" % sorted(got)


def check_service_account(docs, values):
    """The ServiceAccount: created unless told not to, with the IRSA role annotation."""
    sa = values["serviceAccount"]
    found = find(docs, "ServiceAccount")
    assert bool(found) == sa["create"]
    if found:
        ann = found[0]["metadata"].get("annotations", {})
        assert ann.get("eks.amazonaws.com/role-arn", "") == sa["roleArn"], ann
        assert found[0]["automountServiceAccountToken"] == sa["automountToken"]


def check_autoscaling(docs, values):
    """KEDA's ScaledObject (the queue query, jobs per replica) or the HPA (the metrics),
    exactly as autoscaling.kind says."""
    a = values["autoscaling"]
    keda = a["enabled"] and a["kind"] == "keda"
    hpa = a["enabled"] and a["kind"] == "hpa"
    assert bool(find(docs, "ScaledObject")) == keda and bool(find(docs, "TriggerAuthentication")) == keda
    assert bool(find(docs, "HorizontalPodAutoscaler")) == hpa
    if keda:
        so = find(docs, "ScaledObject")[0]["spec"]
        trig = so["triggers"][0]
        per = a["keda"]["jobsPerReplica"] or values["settings"]["IMPORT_PARALLEL_WORKERS"]
        assert trig["type"] == "postgresql" and trig["metadata"]["query"] == a["keda"]["query"]
        assert "dsa_jobs.analysis_runs" in trig["metadata"]["query"]
        assert trig["metadata"]["targetQueryValue"] == str(int(per)), trig
        assert (so["minReplicaCount"], so["maxReplicaCount"]) == (a["minReplicas"], a["maxReplicas"])
    if hpa:
        spec = find(docs, "HorizontalPodAutoscaler")[0]["spec"]
        assert spec["metrics"] == a["hpa"]["metrics"] and spec["behavior"] == a["hpa"]["behavior"]
        assert (spec["minReplicas"], spec["maxReplicas"]) == (a["minReplicas"], a["maxReplicas"])


def check_jobs(docs, values):
    """The migration hook (`migrate`, pre-install/pre-upgrade) and the batch import Job
    (`worker --once` or `import --resume ID`, retried from the checkpoint)."""
    fn, m, b = fullname(values), values["migrations"], values["batchImport"]
    mig = find(docs, "Job", fn + "-migrate")
    assert bool(mig) == m["enabled"]
    if mig:
        ann = mig[0]["metadata"]["annotations"]
        assert ann["helm.sh/hook"] == "pre-install,pre-upgrade", ann
        assert container(mig[0])["args"] == ["migrate"]
        ref = env_of(container(mig[0]))["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        if not values["database"]["existingSecret"]:
            hook = one(docs, "Secret", ref["name"])
            assert hook["metadata"]["annotations"]["helm.sh/hook-weight"] == "-10"
    batch = [d for d in find(docs, "Job") if d["metadata"]["name"].startswith(fn + "-import-")]
    assert bool(batch) == b["enabled"]
    if batch:
        args = (["import", "--resume", b["jobId"]] if b["mode"] == "resume"
                else ["worker", "--once"]) + b["extraArgs"]
        c = container(batch[0])
        assert c["args"] == args, c["args"]
        assert batch[0]["spec"]["backoffLimit"] == b["backoffLimit"]
        assert batch[0]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        check_database_env(c, values, "batch import")


def check_monitoring(docs, values):
    """The ServiceMonitor exists exactly when asked for, scraping /metrics on port http."""
    sm = values["metrics"]["serviceMonitor"]
    found = find(docs, "ServiceMonitor")
    assert bool(found) == sm["enabled"]
    if found:
        ep = found[0]["spec"]["endpoints"][0]
        assert (ep["path"], ep["interval"]) == ("/metrics", sm["interval"])


def check_example(name, checker):
    """check_example runs every check of 4 on one rendered example."""
    docs = load_docs(os.path.join(DEPLOY, EXAMPLES[name][1]))
    values = values_for(name)
    check_objects(docs)
    skipped = check_schemas(docs, checker)
    pods = check_pod_security(docs)
    check_references(docs, values)
    for check in (check_settings_configmaps, check_worker, check_api, check_secrets,
                  check_service_account, check_autoscaling, check_jobs, check_monitoring):
        check(docs, values)
    note = "%d objects, %d containers" % (len(docs), pods)
    if skipped:
        note += "; %d built-in objects not schema-checked: python3-kubernetes missing" % skipped
    return note


# -- 5. kubectl ----------------------------------------------------------------------------

NEEDS_SERVER = re.compile(r"connection refused|failed to download openapi|unable to recognize|"
                          r"couldn't get current server API group list|Please enter Username")


def kubectl_run(kubectl, kubeconfig, args):
    """kubectl_run runs kubectl against a kubeconfig whose server is a closed local port."""
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    return subprocess.run([kubectl] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=env, timeout=120, text=True)


def check_kubectl():
    """kubectl apply --dry-run=client on each example if kubectl works without a server; if
    it needs one (it does), kubectl label --local decodes every object offline instead."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return "SKIP", "no kubectl on PATH"
    with tempfile.TemporaryDirectory() as tmp:
        kc = os.path.join(tmp, "kubeconfig")
        with open(kc, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters: [{name: none, cluster: "
                    "{server: 'http://127.0.0.1:9'}}]\ncontexts: [{name: none, context: "
                    "{cluster: none}}]\ncurrent-context: none\n")
        notes = []
        for name in EXAMPLES:
            path = os.path.join(DEPLOY, EXAMPLES[name][1])
            dry = kubectl_run(kubectl, kc, ["apply", "--dry-run=client", "--request-timeout=5s",
                                            "-f", path])
            if dry.returncode == 0:
                notes.append("%s: client dry-run passed" % name)
                continue
            assert NEEDS_SERVER.search(dry.stderr), "kubectl dry-run %s: %s" % (name, dry.stderr)
            local = kubectl_run(kubectl, kc, ["label", "--local", "-f", path, "dsa-check=ok",
                                              "-o", "name"])
            assert local.returncode == 0, "kubectl label --local %s: %s" % (name, local.stderr)
            want = len(load_docs(path))
            got = len(local.stdout.split())
            assert got == want, "kubectl decoded %d of %d objects in %s" % (got, want, name)
            notes.append("%s: %d objects decoded" % (name, got))
        return "ok", ("apply --dry-run=client needs an API server (discovery + OpenAPI), "
                      "so label --local instead: " + "; ".join(notes))


# -- 6. helm (where available) -------------------------------------------------------------

def canonical(docs):
    """canonical sorts documents so two renderings compare regardless of order."""
    return sorted(json.dumps(d, sort_keys=True) for d in docs)


def check_helm():
    """helm lint and helm template with each values file, compared with the examples."""
    helm = os.environ.get("HELM") or shutil.which("helm")
    if not helm:
        return "SKIP", "no helm binary ($HELM or PATH): the examples are checked without it"
    for name, (extra, rendered) in EXAMPLES.items():
        opts = ["-f", os.path.join(DEPLOY, extra)] if extra else []
        lint = subprocess.run([helm, "lint", CHART] + opts, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        assert lint.returncode == 0, "helm lint %s:\n%s" % (name, lint.stdout)
        out = subprocess.run([helm, "template", RELEASE, CHART, "--namespace", NAMESPACE] + opts,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=120)
        assert out.returncode == 0, "helm template %s: %s" % (name, out.stderr)
        got = canonical([d for d in yaml.safe_load_all(out.stdout) if d])
        want = canonical(load_docs(os.path.join(DEPLOY, rendered)))
        if got != want:
            extra_docs = sorted(set(got) - set(want))[:1]
            missing = sorted(set(want) - set(got))[:1]
            raise AssertionError("%s differs from helm template: helm renders %s; the file has %s"
                                 % (rendered, extra_docs, missing))
    return "ok", "helm lint and helm template match all %d examples" % len(EXAMPLES)


# -- 7. docs -------------------------------------------------------------------------------

def check_docs_settings():
    """docs/configuration.md names every setting the binary reads from its table."""
    text = read(os.path.join(ROOT, "docs", "configuration.md"))
    missing = [k for k in binary_settings() if "`%s`" % k not in text]
    assert not missing, "docs/configuration.md lacks %s" % missing


def check_docs_alerts():
    """The suggested alert rules in docs/operations.md are valid Prometheus rules."""
    text = read(os.path.join(ROOT, "docs", "operations.md"))
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("groups:")]
    assert len(blocks) == 1, "docs/operations.md: expected one alert rules block"
    rules = yaml.safe_load(blocks[0])["groups"][0]["rules"]
    assert all(r.get("alert") and r.get("expr") for r in rules), "rules need alert and expr"
    promtool = shutil.which("promtool")
    if not promtool:
        return "ok", "%d rules parse; no promtool to check their expressions" % len(rules)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(blocks[0])
        f.flush()
        res = subprocess.run([promtool, "check", "rules", f.name], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=60)
    assert res.returncode == 0, "promtool check rules:\n%s" % res.stdout
    return "ok", "%d rules pass promtool check rules" % len(rules)


# -- main ------------------------------------------------------------------------------------

def main():
    checker, why = load_model_checker()
    checks = [("yaml parses", check_yaml_parses),
              ("values documented", check_values_documented),
              ("values paths exist", check_values_paths_exist),
              ("values used", check_values_used),
              ("settings match the binary", check_settings_match_binary),
              ("template kinds", check_template_kinds),
              ("rendered kinds", check_rendered_kinds)]
    checks += [("example %s" % n, (lambda n=n: check_example(n, checker))) for n in EXAMPLES]
    checks += [("kubectl", check_kubectl), ("helm", check_helm),
               ("docs name every setting", check_docs_settings),
               ("docs alert rules", check_docs_alerts)]
    passed = failed = skipped = 0
    if why:
        print("note  built-in kinds are not schema-checked: %s" % why)
    for name, fn in checks:
        try:
            res = fn()
        except AssertionError as e:
            failed += 1
            print("FAIL  %s: %s" % (name, e))
            continue
        status, note = res if isinstance(res, tuple) else ("ok", res)
        if status == "SKIP":
            skipped += 1
        else:
            passed += 1
        print("%-4s  %s%s" % (status, name, " (%s)" % note if note else ""))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
