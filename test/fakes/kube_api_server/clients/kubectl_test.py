#!/usr/bin/env python3
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""kubectl against the fake API server: a table of commands, each row asserting kubectl's exit
code and what it printed. Usage: kubectl_test.py SERVER_BINARY CRD_DIR [KUBECTL]"""

import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeserver import FakeServer  # noqa: E402

POD = """apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  nodeName: node-a
  containers:
  - name: app
    image: nginx:1
    ports: [{containerPort: 80}]
"""
POD_API = POD.replace("name: web", "name: api").replace("app: web, tier: front", "app: api") \
    .replace("node-a", "node-b")
POLICY = """apiVersion: security.ferry.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: allow-web}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]}]
"""
PEER = """apiVersion: security.ferry.dev/v1alpha1
kind: PeerAuthentication
metadata: {name: strict}
spec: {mtls: {mode: STRICT}}
"""

FILES = {
    "pod.yaml": POD,
    "pod-nginx2.yaml": POD.replace("nginx:1", "nginx:2"),
    "pod-api.yaml": POD_API,
    "policy.yaml": POLICY,
    "policy-deny.yaml": POLICY.replace("ALLOW", "DENY"),
    "policy-audit.yaml": POLICY.replace("ALLOW", "AUDIT"),
    "peer.yaml": PEER,
    "service-body.json": '{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}',
    "policy-no-kind.json": '{"metadata":{"name":"y"},"spec":{"action":"ALLOW"}}',
    "pod-bad-name.yaml": POD.replace("name: web", "name: Bad_Name"),
    "policy-unknown-field.yaml": POLICY.replace("action: ALLOW", "action: ALLOW\n  bogus: 1"),
    "policy-bad-action.yaml": POLICY.replace("name: allow-web", "name: bad")
    .replace("action: ALLOW", "action: MAYBE"),
    "policy-no-action.yaml": POLICY.replace("name: allow-web", "name: defaulted")
    .replace("  action: ALLOW\n", ""),
}


class Row:
    def __init__(self, args, expect, rc=0, whole=False):
        self.args, self.expect, self.rc, self.whole = args, expect, rc, whole


def rows():
    ok, fail = 0, 1
    return [
        Row("version", r"Server Version: v1\.32\.0"),
        Row("api-versions", r"(?m)^security\.ferry\.dev/v1alpha1$"),
        Row("api-resources", r"authorizationpolicies\s+fap\s+security\.ferry\.dev/v1alpha1\s+true"
            r"\s+AuthorizationPolicy"),
        Row("explain authorizationpolicies.spec.action", r"ENUM:\s+ALLOW\s+DENY\s+AUDIT"),
        Row("get pods", r"No resources found in default namespace\."),
        Row("create -f pod.yaml", r"pod/web created"),
        Row("create -f pod.yaml", r"\(AlreadyExists\).*pods \"web\" already exists", fail),
        Row("create -f pod-api.yaml", r"pod/api created"),
        Row("get pods -o wide", r"NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s*\n"
            r"api\s+0/1\s+Pending\s+0\s+\d+s\s+<none>\s+node-b\s*\n"
            r"web\s+0/1\s+Pending\s+0\s+\d+s\s+<none>\s+node-a\s*$"),
        Row("create namespace demo", r"namespace/demo created"),
        Row("create configmap settings --from-literal=mode=strict", r"configmap/settings created"),
        Row("get configmap settings -o jsonpath={.data.mode}", r"strict", whole=True),
        Row("get namespaces -o name", r"namespace/default\nnamespace/demo\nnamespace/kube-node-lease"
            r"\nnamespace/kube-public\nnamespace/kube-system", whole=True),
        Row("create -f pod.yaml -n nowhere", r"\(NotFound\).*namespaces \"nowhere\" not found",
            fail),
        Row("get configmaps", r"NAME\s+DATA\s+AGE\s*\nsettings\s+1\s+\d+s"),
        Row("apply -f pod-nginx2.yaml", r"pod/web configured"),
        Row("get pod web -o jsonpath={.spec.containers[0].image}", r"nginx:2", whole=True),
        Row("apply -f policy.yaml", r"authorizationpolicy\.security\.ferry\.dev/allow-web created"),
        Row("apply -f policy-deny.yaml", r"allow-web configured"),
        Row("get fap allow-web -o jsonpath={.spec.action}", r"DENY", whole=True),
        Row("get fap -o wide", r"NAME\s+ACTION\s+SELECTOR\s+AGE\s*\n"
            r"allow-web\s+DENY\s+\{\"app\":\"web\"\}\s+\d+s"),
        Row("apply --server-side -f policy-audit.yaml", r"allow-web serverside-applied"),
        Row("get fap allow-web -o jsonpath={.spec.action}", r"AUDIT", whole=True),
        Row("apply --server-side -f peer.yaml", r"peerauthentication\.security\.ferry\.dev/strict "
            r"serverside-applied"),
        Row("label pod web env=prod", r"pod/web labeled"),
        Row("get pods -l env=prod -o name", r"pod/web", whole=True),
        Row("get pods -l !env -o name", r"pod/api", whole=True),
        Row("get pods -l app\tin\t(api,db) -o name", r"pod/api", whole=True),
        Row("get pods --field-selector spec.nodeName=node-a -o name", r"pod/web", whole=True),
        Row("get pods --field-selector metadata.name!=web -o name", r"pod/api", whole=True),
        Row("get pods --field-selector spec.bogus=x", r"field label not supported: spec\.bogus",
            fail),
        Row("patch pod web -p {\"metadata\":{\"annotations\":{\"note\":\"x\"}}}",
            r"pod/web patched"),
        Row("patch pod web --type=merge -p {\"metadata\":{\"labels\":{\"tier\":null}}}",
            r"pod/web patched"),
        Row("get pod web -o jsonpath={.metadata.labels}",
            r'{"app":"web","env":"prod"}', whole=True),
        Row("patch pod web --type=json -p [{\"op\":\"replace\",\"path\":\"/spec/containers/0/image\","
            "\"value\":\"nginx:3\"}]", r"pod/web patched"),
        Row("get pod web -o jsonpath={.spec.containers[0].image}", r"nginx:3", whole=True),
        Row("patch pod web --type=json -p [{\"op\":\"test\",\"path\":\"/metadata/name\","
            "\"value\":\"other\"}]", r"The Pod \"web\" is invalid", fail),
        Row("patch fap allow-web --type=merge -p {\"spec\":{\"action\":\"ALLOW\"}}",
            r"allow-web patched"),
        Row("patch fap allow-web -p {\"spec\":{\"action\":\"DENY\"}}",
            r"application/strategic-merge-patch\+json is not supported", fail),
        Row("replace -f stale.json", r"\(Conflict\).*the object has been modified", fail),
        Row("create --raw /api/v1/namespaces/default/pods -f service-body.json",
            r"\(BadRequest\): Service in version \"v1\" cannot be handled as a Pod", fail),
        Row("create --raw /apis/security.ferry.dev/v1alpha1/namespaces/default/"
            "authorizationpolicies -f policy-no-kind.json",
            r"\(BadRequest\): Object 'Kind' is missing", fail),
        Row("replace --raw /api/v1/namespaces/default/pods/other -f stale.json",
            r"\(BadRequest\).*does not match the name on the URL", fail),
        Row("create -f pod-bad-name.yaml",
            r"The Pod \"Bad_Name\" is invalid: metadata\.name: Invalid value", fail),
        Row("apply -f policy-unknown-field.yaml",
            r"\(BadRequest\).*strict decoding error: unknown field \"spec\.bogus\"", fail),
        Row("apply -f policy-bad-action.yaml", r"The AuthorizationPolicy \"bad\" is invalid: "
            r"spec\.action: Unsupported value: \"MAYBE\"", fail),
        Row("create -f policy-no-action.yaml", r"authorizationpolicy\.security\.ferry\.dev/"
            r"defaulted created"),
        Row("get fap defaulted -o jsonpath={.spec.action}", r"ALLOW", whole=True),
        Row("WATCH", None),
        Row("WATCH-SELECTOR", None),
        Row("delete pod api", r"pod \"api\" deleted"),
        Row("get pod api", r"\(NotFound\): pods \"api\" not found", fail),
        Row("delete fap allow-web", r"authorizationpolicy\.security\.ferry\.dev \"allow-web\" "
            r"deleted"),
    ]


class Runner:
    def __init__(self, kubectl, server, workdir):
        self.kubectl, self.server, self.workdir = kubectl, server, workdir

    def run(self, args, timeout=30):
        # Tabs stand for spaces inside one argument (label selectors with "in (...)").
        argv = [a.replace("\t", " ") for a in args.split(" ")]
        env = dict(os.environ, KUBECONFIG=self.server.kubeconfig, HOME=self.workdir)
        p = subprocess.run([self.kubectl] + argv, cwd=self.workdir, env=env, timeout=timeout,
                           capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr, p.stdout.strip()

    def watch(self, args, mutations, expect_lines):
        """Starts a bounded watch, waits for its first line, mutates, checks the events."""
        env = dict(os.environ, KUBECONFIG=self.server.kubeconfig, HOME=self.workdir)
        proc = subprocess.Popen([self.kubectl] + args.split(" "), cwd=self.workdir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = [proc.stdout.readline(), proc.stdout.readline()]  # header + first event
        for m in mutations:
            rc, out, _ = self.run(m)
            if rc != 0:
                proc.kill()
                return 1, f"mutation {m!r} failed: {out}"
        # --request-timeout ends the watch; the timer only bounds a hang. (Not communicate():
        # it reads the pipe beneath the lines readline() already buffered.)
        killer = threading.Timer(30, proc.kill)
        killer.start()
        rest = proc.stdout.read()
        proc.wait()
        killer.cancel()
        text = "".join(lines) + rest
        events = [l.split()[:2] for l in text.splitlines()[1:] if l.strip()]
        return (0 if events == expect_lines else 1), text

    def check(self, row):
        if row.args == "WATCH":
            rc, out = self.watch(
                "get pods -w --output-watch-events --request-timeout=3s",
                ["label pod web color=blue", "delete pod web --wait=false", "create -f pod.yaml"],
                [["ADDED", "api"], ["ADDED", "web"], ["MODIFIED", "web"], ["DELETED", "web"],
                 ["ADDED", "web"]])
            return "get pods -w (label, delete, create)", rc == 0, out
        if row.args == "WATCH-SELECTOR":
            rc, out = self.watch(
                "get pods -w -l app=web --output-watch-events --request-timeout=3s",
                ["label pod web app=frontend --overwrite", "label pod api app=web --overwrite"],
                [["ADDED", "web"], ["DELETED", "web"], ["ADDED", "api"]])
            return "get pods -w -l app=web (objects leave and enter)", rc == 0, out
        rc, out, stdout = self.run(row.args)
        good = (rc == 0) == (row.rc == 0)
        if row.whole:
            good = good and re.fullmatch(row.expect, stdout) is not None
        else:
            good = good and re.search(row.expect, out, re.S) is not None
        return row.args.replace("\t", " "), good, out


def main():
    binary, crds = sys.argv[1], sys.argv[2]
    kubectl = sys.argv[3] if len(sys.argv) > 3 else "kubectl"
    server = FakeServer(binary, crds)
    try:
        for name, text in FILES.items():
            with open(os.path.join(server.dir.name, name), "w") as f:
                f.write(text)
        runner = Runner(kubectl, server, server.dir.name)
        passed, table = 0, rows()
        for i, row in enumerate(table, 1):
            if row.args.startswith("replace -f stale.json"):
                # A copy of web at its current version, then a change that makes it stale.
                _, _, current = runner.run("get pod web -o json")
                with open(os.path.join(server.dir.name, "stale.json"), "w") as f:
                    f.write(current)
                runner.run("label pod web bump=1")
            started = time.monotonic()
            name, good, out = runner.check(row)
            passed += good
            print(f"{'PASS' if good else 'FAIL'} {i:2d} kubectl {name} "
                  f"({time.monotonic() - started:.1f}s)")
            if not good:
                print("     | " + out.strip().replace("\n", "\n     | "))
        print(f"kubectl rows passed: {passed}/{len(table)}")
        return 0 if passed == len(table) else 1
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
