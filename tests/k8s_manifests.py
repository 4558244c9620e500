"""Offline checks of the Kubernetes and Argo manifests (pipelines/k8s/), for tests/k8s.rs.

    k8s_manifests.py validate [--set VAR=VALUE]... FILE...
        Validates every document of every FILE (after filling in the
        envsubst-style ${VAR} placeholders): Kubernetes objects against the
        strict JSON schemas kubernetes-validate bundles (an unknown field
        fails) for each Kubernetes version in K8S_VERSIONS; Argo Workflows
        against hera's pydantic models of Argo's spec, strict (an unknown
        field, a snake_case alias or a wrong type fails). Then a Workflow is
        interpreted with its parameters' defaults (as `commands` does, which
        catches a missing template or an unresolved {{...}} reference), and
        the files must agree on names: every claimName a PVC among the files
        defines, one ConfigMap name. Exit 0, or 1 with one line per problem.

    k8s_manifests.py commands FILE [--param NAME=VALUE]... [--set VAR=VALUE]...
            [--volume NAME=DIR]...
        Prints as JSON the commands the manifest runs, in order: for an Argo
        Workflow, each pod its entrypoint starts, walking DAG tasks in
        dependency order (ties in listed order), step groups in turn and
        withSequence/withItems items in order; for an indexed Job, pod k of
        `completions` with JOB_COMPLETION_INDEX=k. Each command is
        {"name", "template", "params", "argv", "env"}; a path under a
        volume's mountPath is rewritten to lie under the DIR given for that
        volume (every mounted volume needs one).

Needs PyYAML, kubernetes-validate and hera (scripts/setup.sh --test)."""
import argparse
import json
import re
import sys

import yaml

K8S_VERSIONS = ["1.33", "1.37"]
ARGO_KINDS = {"Workflow", "WorkflowTemplate"}


class Problem(Exception):
    pass


def assignments(pairs, what):
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise Problem(f"{what} {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def load(path, sets, used=None):
    """The YAML documents of `path`, with ${VAR} / $VAR placeholders filled
    in as `envsubst '$VAR ...'` would for the variables in `sets` (the names
    found are added to `used`)."""
    with open(path) as f:
        text = f.read()
    for name, value in sets.items():
        pattern = r"\$(\{" + re.escape(name) + r"\}|" + re.escape(name) + r"(?![A-Za-z0-9_]))"
        text, n = re.subn(pattern, lambda _m: value, text)
        if n and used is not None:
            used.add(name)
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    left = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", yaml.safe_dump_all(docs)))
    if left:
        raise Problem(f"placeholders not filled in: {', '.join(sorted(left))} (pass --set)")
    return docs


def kind_name(doc):
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name') or meta.get('generateName') or '?'}"


def validate_k8s(doc):
    import kubernetes_validate

    problems = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(top)"
            problems.append(f"{path}: {e.message} (Kubernetes {version}, strict)")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
            problems.append(f"{getattr(e, 'message', e)}")
    return problems


def validate_argo(doc):
    import pydantic
    from hera.workflows.models import Workflow, WorkflowTemplate

    model = {"Workflow": Workflow, "WorkflowTemplate": WorkflowTemplate}[doc["kind"]]
    try:
        # JSON mode + strict: the types the API server takes (no "1" for 1);
        # extra="forbid" and by_name=False: only the spec's field names.
        model.model_validate_json(json.dumps(doc), strict=True, extra="forbid", by_alias=True, by_name=False)
    except pydantic.ValidationError as e:
        return [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (Argo Workflows spec, hera's models)"
            for err in e.errors()
        ]
    return []


# --- Argo: the commands a Workflow runs -------------------------------------

TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def substitute(value, scope, where):
    """Argo's {{...}} tags in a string, from `scope`; any other tag fails."""

    def one(m):
        key = m.group(1)
        if key not in scope:
            raise Problem(f"{where}: {{{{{key}}}}} does not resolve (known here: {', '.join(sorted(scope)) or 'none'})")
        return scope[key]

    return TAG.sub(one, value)


def sequence(seq, scope, where):
    """withSequence's items, as Argo's expandSequence makes them."""

    def num(k):
        return int(substitute(str(seq[k]), scope, f"{where}.withSequence.{k}"))

    start = num("start") if "start" in seq else 0
    if "end" in seq:
        end = num("end")
    elif "count" in seq:
        count = num("count")
        if count == 0:
            return []
        end = start + count - 1
    else:
        raise Problem(f"{where}: withSequence needs end or count")
    fmt = seq.get("format", "%d")
    step = 1 if start <= end else -1
    return [fmt % i for i in range(start, end + step, step)]


def items(step, scope, where):
    if "withSequence" in step:
        return sequence(step["withSequence"], scope, where)
    if "withItems" in step:
        return [i if isinstance(i, str) else json.dumps(i) for i in step["withItems"]]
    if "withParam" in step:
        return [
            i if isinstance(i, str) else json.dumps(i)
            for i in json.loads(substitute(step["withParam"], scope, f"{where}.withParam"))
        ]
    return [None]


def dag_order(tasks, where):
    names = [t["name"] for t in tasks]
    deps = {}
    for t in tasks:
        if "depends" in t:
            parts = [p.strip() for p in t["depends"].split("&&")]
            if not all(re.fullmatch(r"[A-Za-z0-9-]+", p) for p in parts):
                raise Problem(f"{where}.{t['name']}: depends {t['depends']!r}: only 'a && b' is interpreted here")
            deps[t["name"]] = parts
        else:
            deps[t["name"]] = list(t.get("dependencies") or [])
        for d in deps[t["name"]]:
            if d not in names:
                raise Problem(f"{where}.{t['name']}: depends on unknown task {d!r}")
    done, order = set(), []
    while len(order) < len(tasks):
        ready = [t for t in tasks if t["name"] not in done and all(d in done for d in deps[t["name"]])]
        if not ready:
            raise Problem(f"{where}: dependency cycle")
        order.append(ready[0])
        done.add(ready[0]["name"])
    return order


class Workflow:
    def __init__(self, doc, params, volumes):
        spec = doc["spec"]
        self.templates = {t["name"]: t for t in spec["templates"]}
        if len(self.templates) != len(spec["templates"]):
            raise Problem("two templates share a name")
        declared = {p["name"]: p.get("value") for p in (spec.get("arguments") or {}).get("parameters") or []}
        unknown = set(params) - set(declared)
        if unknown:
            raise Problem(f"--param {', '.join(sorted(unknown))}: not a workflow parameter ({', '.join(declared)})")
        declared.update(params)
        missing = [k for k, v in declared.items() if v is None]
        if volumes is None:  # validating: a structure to walk is enough
            declared.update({k: "1" for k in missing})
        elif missing:
            raise Problem(f"workflow parameters without a value: {', '.join(missing)} (pass -p)")
        self.workflow_scope = {f"workflow.parameters.{k}": str(v) for k, v in declared.items()}
        self.volumes = {}
        for v in spec.get("volumes") or []:
            self.volumes[v["name"]] = json.loads(substitute(json.dumps(v), self.workflow_scope, f"volume {v['name']}"))
        self.local = volumes
        self.entrypoint = spec["entrypoint"]
        self.out = []

    def template(self, name, where):
        if name not in self.templates:
            raise Problem(f"{where}: no template {name!r}")
        return self.templates[name]

    def run(self, name, args, path):
        tmpl = self.template(name, path)
        inputs = (tmpl.get("inputs") or {}).get("parameters") or []
        declared = {p["name"] for p in inputs}
        extra = set(args) - declared
        if extra:
            raise Problem(f"{path}: arguments {', '.join(sorted(extra))} not among template {name}'s inputs")
        scope = dict(self.workflow_scope)
        for p in inputs:
            value = args.get(p["name"], p.get("value"))
            if value is None:
                raise Problem(f"{path}: input parameter {p['name']} of template {name} has no value")
            scope[f"inputs.parameters.{p['name']}"] = value
        if "dag" in tmpl:
            for task in dag_order(tmpl["dag"]["tasks"], f"{path}.dag"):
                self.call(task, scope, path)
        elif "steps" in tmpl:
            for group in tmpl["steps"]:
                for step in group:
                    self.call(step, scope, path)
        elif "container" in tmpl:
            self.container(tmpl, scope, path, {k: args[k] for k in sorted(args)})
        else:
            raise Problem(f"{path}: template {name}: only dag, steps and container templates are interpreted")

    def call(self, step, scope, path):
        where = f"{path}/{step['name']}"
        if "when" in step:
            raise Problem(f"{where}: when is not interpreted here")
        for item in items(step, scope, where):
            inner = dict(scope)
            if item is not None:
                inner["item"] = item
            args = {}
            for p in (step.get("arguments") or {}).get("parameters") or []:
                args[p["name"]] = substitute(str(p["value"]), inner, f"{where}.arguments.{p['name']}")
            self.run(step["template"], args, where if item is None else f"{where}({item})")

    def container(self, tmpl, scope, path, params):
        c = tmpl["container"]
        where = f"{path} (template {tmpl['name']})"
        argv = [substitute(str(a), scope, where) for a in (c.get("command") or []) + (c.get("args") or [])]
        env = {e["name"]: substitute(str(e["value"]), scope, where) for e in c.get("env") or []}
        mounts = [(m["mountPath"], m["name"]) for m in c.get("volumeMounts") or []]
        for _, vol in mounts:
            if vol not in self.volumes:
                raise Problem(f"{where}: volumeMount {vol!r} names no volume of the workflow")
        self.out.append(
            {
                "name": path,
                "template": tmpl["name"],
                "params": params,
                "argv": argv if self.local is None else localize(argv, mounts, self.local, where),
                "env": env,
            }
        )


def localize(argv, mounts, local, where):
    """Paths under a mountPath, moved under the local folder of its volume."""
    out = []
    for a in argv:
        for mount, vol in sorted(mounts, key=lambda m: -len(m[0])):
            if a == mount or a.startswith(mount.rstrip("/") + "/"):
                if vol not in local:
                    raise Problem(f"{where}: volume {vol!r} (at {mount}) needs --volume {vol}=DIR")
                a = local[vol] + a[len(mount.rstrip("/")) :]
                break
        out.append(a)
    return out


def workflow_commands(doc, params, volumes):
    wf = Workflow(doc, params, volumes)
    wf.run(wf.entrypoint, {}, wf.entrypoint)
    return wf


def job_commands(doc, volumes):
    spec = doc["spec"]
    where = kind_name(doc)
    if spec.get("completionMode") != "Indexed":
        raise Problem(f"{where}: completionMode is not Indexed")
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    mounts = [(m["mountPath"], m["name"]) for m in c.get("volumeMounts") or []]
    argv = localize([str(a) for a in (c.get("command") or []) + (c.get("args") or [])], mounts, volumes, where)
    env = {e["name"]: str(e["value"]) for e in c.get("env") or []}
    return [
        {
            "name": f"{doc['metadata']['name']}[{k}]",
            "template": doc["metadata"]["name"],
            "params": {"JOB_COMPLETION_INDEX": str(k)},
            "argv": argv,
            "env": {**env, "JOB_COMPLETION_INDEX": str(k)},
        }
        for k in range(int(spec["completions"]))
    ]


# --- command line ------------------------------------------------------------


def cmd_validate(args):
    sets = assignments(args.set, "--set")
    problems, claims, pvcs, config_maps, used = [], [], set(), set(), set()
    for path in args.files:
        try:
            docs = load(path, sets, used)
        except (Problem, yaml.YAMLError) as e:
            problems.append(f"{path}: {e}")
            continue
        for doc in docs:
            what = f"{path}: {kind_name(doc)}"
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                problems.append(f"{path}: a document without kind and apiVersion")
                continue
            argo = doc["kind"] in ARGO_KINDS and str(doc["apiVersion"]).startswith("argoproj.io/")
            found = validate_argo(doc) if argo else validate_k8s(doc)
            problems += [f"{what}: {p}" for p in found]
            if found:
                continue
            if doc["kind"] == "PersistentVolumeClaim":
                pvcs.add(doc["metadata"]["name"])
            volumes = []
            if argo:
                try:
                    # A parameter without a default (-p at submit) as "1".
                    volumes = list(workflow_commands(doc, {}, None).volumes.values())
                except Problem as e:
                    problems.append(f"{what}: {e}")
                    continue
            elif doc["kind"] == "Job":
                volumes = doc["spec"]["template"]["spec"].get("volumes") or []
            for v in volumes:
                if "persistentVolumeClaim" in v:
                    claims.append((what, v["persistentVolumeClaim"]["claimName"]))
                if "configMap" in v:
                    config_maps.add(v["configMap"]["name"])
    problems += [f"--set {name}: no ${{{name}}} in any file" for name in sorted(set(sets) - used)]
    if not problems:
        for what, claim in claims:
            if claim not in pvcs:
                problems.append(f"{what}: claim {claim!r} is none of the PVCs given ({', '.join(sorted(pvcs)) or 'none'})")
        if len(config_maps) > 1:
            problems.append(f"the files name different ConfigMaps: {', '.join(sorted(config_maps))}")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"valid: {', '.join(args.files)} (Kubernetes {', '.join(K8S_VERSIONS)} strict; Argo spec strict)")
    return 0


def cmd_commands(args):
    sets = assignments(args.set, "--set")
    params = assignments(args.param, "--param")
    volumes = assignments(args.volume, "--volume")
    used = set()
    docs = load(args.file, sets, used)
    if set(sets) - used:
        raise Problem(f"--set {', '.join(sorted(set(sets) - used))}: not in {args.file}")
    out = []
    for doc in docs:
        if doc.get("kind") in ARGO_KINDS:
            out += workflow_commands(doc, params, volumes).out
        elif doc.get("kind") == "Job":
            if params:
                raise Problem("--param is for Argo workflows; a Job takes --set")
            out += job_commands(doc, volumes)
    if not out:
        raise Problem(f"{args.file}: no Workflow or Job")
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate")
    v.add_argument("--set", action="append")
    v.add_argument("files", nargs="+")
    c = sub.add_parser("commands")
    c.add_argument("file")
    c.add_argument("--param", action="append")
    c.add_argument("--set", action="append")
    c.add_argument("--volume", action="append")
    args = ap.parse_args()
    try:
        return cmd_validate(args) if args.cmd == "validate" else cmd_commands(args)
    except Problem as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
