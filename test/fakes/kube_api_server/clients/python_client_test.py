#!/usr/bin/python3
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""The Python kubernetes client (Debian python3-kubernetes) against the fake API server: each
check calls the client as an application would and asserts on the answer.
Usage: python_client_test.py SERVER_BINARY CRD_DIR"""

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeserver import FakeServer  # noqa: E402

try:
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException
except ImportError as e:
    sys.exit(f"needs the Python kubernetes client (Debian python3-kubernetes): {e}")

NS = "default"
GROUP, VERSION, PLURAL = "security.ferry.dev", "v1alpha1", "authorizationpolicies"


def pod(name, labels, node="node-a", image="app:1"):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(node_name=node,
                              containers=[client.V1Container(name="app", image=image)]))


def status_of(fn):
    """The HTTP status and Status reason an API call fails with (None if it succeeds)."""
    try:
        fn()
        return None
    except ApiException as e:
        return e.status, json.loads(e.body).get("reason")


def checks(core, custom):
    yield "create_namespaced_pod web", \
        core.create_namespaced_pod(NS, pod("web", {"app": "web"})).metadata.name == "web"
    yield "create_namespaced_pod api", \
        core.create_namespaced_pod(NS, pod("api", {"app": "api"}, node="node-b")) \
        .metadata.resource_version is not None
    pods = core.list_namespaced_pod(NS)
    yield "list_namespaced_pod: 2 pods and a list resourceVersion", \
        sorted(p.metadata.name for p in pods.items) == ["api", "web"] and \
        int(pods.metadata.resource_version) > 0
    yield "list_namespaced_pod label_selector=app=web", \
        [p.metadata.name for p in core.list_namespaced_pod(NS, label_selector="app=web").items] \
        == ["web"]
    yield "list_pod_for_all_namespaces field_selector=spec.nodeName=node-b", \
        [p.metadata.name for p in
         core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-b").items] == ["api"]
    yield "list_namespaced_pod limit=1 pages with continue", \
        _paged_names(core) == ["api", "web"]
    patched = core.patch_namespaced_pod("web", NS, {"metadata": {"labels": {"tier": "front"}}})
    yield "patch_namespaced_pod (strategic merge) adds a label", \
        patched.metadata.labels == {"app": "web", "tier": "front"}
    patched = core.patch_namespaced_pod(
        "web", NS, [{"op": "replace", "path": "/spec/containers/0/image", "value": "app:2"}])
    yield "patch_namespaced_pod (JSON patch) replaces the image", \
        patched.spec.containers[0].image == "app:2"
    stale = core.read_namespaced_pod("web", NS)
    core.patch_namespaced_pod("web", NS, {"metadata": {"annotations": {"bump": "1"}}})
    stale.metadata.labels["late"] = "yes"
    yield "replace_namespaced_pod with a stale resourceVersion: 409 Conflict", \
        status_of(lambda: core.replace_namespaced_pod("web", NS, stale)) == (409, "Conflict")
    yield "create_namespaced_pod again: 409 AlreadyExists", \
        status_of(lambda: core.create_namespaced_pod(NS, pod("web", {}))) == \
        (409, "AlreadyExists")
    yield "read_namespaced_pod missing: 404 NotFound", \
        status_of(lambda: core.read_namespaced_pod("nope", NS)) == (404, "NotFound")
    yield "create_namespaced_pod with an invalid name: 422 Invalid", \
        status_of(lambda: core.create_namespaced_pod(NS, pod("Not_Valid", {}))) == \
        (422, "Invalid")
    yield "create_namespaced_pod with a Service body: 400 BadRequest", \
        status_of(lambda: core.create_namespaced_pod(
            NS, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})) == \
        (400, "BadRequest")
    yield "list_namespaced_pod with a bad field selector: 400 BadRequest", \
        status_of(lambda: core.list_namespaced_pod(NS, field_selector="spec.nope=1")) == \
        (400, "BadRequest")

    # Watch from the list's version: the events after it, and the stream ends on its own.
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    events = []
    w = watch.Watch()

    def consume():
        for e in w.stream(core.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=2,
                          label_selector="app=web"):
            events.append((e["type"], e["object"].metadata.name))

    t = threading.Thread(target=consume)
    t.start()
    core.patch_namespaced_pod("web", NS, {"metadata": {"labels": {"color": "blue"}}})
    core.patch_namespaced_pod("api", NS, {"metadata": {"labels": {"color": "red"}}})
    core.delete_namespaced_pod("web", NS)
    t.join(timeout=15)
    yield f"watch app=web timeout_seconds=2 (got {events})", \
        not t.is_alive() and events == [("MODIFIED", "web"), ("DELETED", "web")]

    policy = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AuthorizationPolicy",
              "metadata": {"name": "allow-web"}, "spec": {"action": "ALLOW"}}
    yield "create_namespaced_custom_object AuthorizationPolicy", \
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, policy)["metadata"][
            "name"] == "allow-web"
    yield "patch_namespaced_custom_object (merge) sets spec.action", \
        custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "allow-web",
                                              {"spec": {"action": "DENY"}})["spec"][
            "action"] == "DENY"
    yield "list_namespaced_custom_object", \
        [o["metadata"]["name"] for o in
         custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]] == \
        ["allow-web"]
    no_kind = {"metadata": {"name": "x"}, "spec": {}}
    yield "create_namespaced_custom_object without kind: 400 BadRequest", \
        status_of(lambda: custom.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, no_kind)) == (400, "BadRequest")
    bad = dict(policy, metadata={"name": "bad"}, spec={"action": "MAYBE"})
    yield "create_namespaced_custom_object with an action outside the enum: 422 Invalid", \
        status_of(lambda: custom.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, bad)) == (422, "Invalid")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="demo")))
    yield "create_namespace + list_namespace", \
        [n.metadata.name for n in core.list_namespace().items] == ["demo"]
    yield "get_code (/version)", client.VersionApi().get_code().git_version == "v1.32.0"
    yield "get_api_versions (/apis)", GROUP in \
        [g.name for g in client.ApisApi().get_api_versions().groups]


def _paged_names(core):
    names, token = [], None
    while True:
        page = core.list_namespaced_pod(NS, limit=1, _continue=token)
        names += [p.metadata.name for p in page.items]
        token = page.metadata._continue
        if not token:
            return names


def main():
    server = FakeServer(sys.argv[1], sys.argv[2])
    try:
        config.load_kube_config(config_file=server.kubeconfig)
        core, custom = client.CoreV1Api(), client.CustomObjectsApi()
        passed = total = 0
        try:
            for name, good in checks(core, custom):
                total += 1
                passed += bool(good)
                print(f"{'PASS' if good else 'FAIL'} {total:2d} {name}")
        except Exception as e:  # an unexpected client error is a failed check, not a crash
            total += 1
            print(f"FAIL {total:2d} unexpected {type(e).__name__}: {e}")
        print(f"python client checks passed: {passed}/{total}")
        return 0 if passed == total else 1
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
