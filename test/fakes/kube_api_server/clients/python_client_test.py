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
    """(name, check) in order; a check returns whether the answer was right. One failing or
    raising check does not stop the others (they only share the objects they create)."""
    def names(items):
        return sorted(o.metadata.name for o in items)

    def pod_image():
        return core.read_namespaced_pod("web", NS).spec.containers[0].image

    def strategic_patch():
        p = core.patch_namespaced_pod("web", NS, {"metadata": {"labels": {"tier": "front"}}})
        return p.metadata.labels == {"app": "web", "tier": "front"}

    def json_patch():
        core.patch_namespaced_pod(
            "web", NS, [{"op": "replace", "path": "/spec/containers/0/image", "value": "app:2"}])
        return pod_image() == "app:2"

    def stale_replace():
        stale = core.read_namespaced_pod("web", NS)
        core.patch_namespaced_pod("web", NS, {"metadata": {"annotations": {"bump": "1"}}})
        stale.metadata.labels["late"] = "yes"
        return status_of(lambda: core.replace_namespaced_pod("web", NS, stale)) == \
            (409, "Conflict")

    def bounded_watch():
        # From the list's version: the events after it, and the stream ends on its own.
        rv = core.list_namespaced_pod(NS).metadata.resource_version
        events, w = [], watch.Watch()

        def consume():
            for e in w.stream(core.list_namespaced_pod, NS, resource_version=rv,
                              timeout_seconds=2, label_selector="app=web"):
                events.append((e["type"], e["object"].metadata.name))

        t = threading.Thread(target=consume)
        t.start()
        core.patch_namespaced_pod("web", NS, {"metadata": {"labels": {"color": "blue"}}})
        core.patch_namespaced_pod("api", NS, {"metadata": {"labels": {"color": "red"}}})
        core.delete_namespaced_pod("web", NS)
        t.join(timeout=15)
        print(f"     watch events: {events}")
        return not t.is_alive() and events == [("MODIFIED", "web"), ("DELETED", "web")]

    policy = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AuthorizationPolicy",
              "metadata": {"name": "allow-web"}, "spec": {"action": "ALLOW"}}
    bad = dict(policy, metadata={"name": "bad"}, spec={"action": "MAYBE"})
    no_kind = {"metadata": {"name": "x"}, "spec": {}}
    return [
        ("create_namespaced_pod web", lambda: core.create_namespaced_pod(
            NS, pod("web", {"app": "web"})).metadata.name == "web"),
        ("create_namespaced_pod api", lambda: core.create_namespaced_pod(
            NS, pod("api", {"app": "api"}, node="node-b")).metadata.resource_version is not None),
        ("list_namespaced_pod: 2 pods and a list resourceVersion", lambda: (
            lambda pods: names(pods.items) == ["api", "web"] and
            int(pods.metadata.resource_version) > 0)(core.list_namespaced_pod(NS))),
        ("list_namespaced_pod label_selector=app=web", lambda: names(
            core.list_namespaced_pod(NS, label_selector="app=web").items) == ["web"]),
        ("list_pod_for_all_namespaces field_selector=spec.nodeName=node-b", lambda: names(
            core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-b").items) ==
            ["api"]),
        ("list_namespaced_pod limit=1 pages with continue",
         lambda: _paged_names(core) == ["api", "web"]),
        ("patch_namespaced_pod (strategic merge) adds a label", strategic_patch),
        ("patch_namespaced_pod (JSON patch) replaces the image", json_patch),
        ("replace_namespaced_pod with a stale resourceVersion: 409 Conflict", stale_replace),
        ("create_namespaced_pod again: 409 AlreadyExists", lambda: status_of(
            lambda: core.create_namespaced_pod(NS, pod("web", {}))) == (409, "AlreadyExists")),
        ("read_namespaced_pod missing: 404 NotFound", lambda: status_of(
            lambda: core.read_namespaced_pod("nope", NS)) == (404, "NotFound")),
        ("create_namespaced_pod with an invalid name: 422 Invalid", lambda: status_of(
            lambda: core.create_namespaced_pod(NS, pod("Not_Valid", {}))) == (422, "Invalid")),
        ("create_namespaced_pod with a Service body: 400 BadRequest", lambda: status_of(
            lambda: core.create_namespaced_pod(
                NS, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})) ==
            (400, "BadRequest")),
        ("list_namespaced_pod with a bad field selector: 400 BadRequest", lambda: status_of(
            lambda: core.list_namespaced_pod(NS, field_selector="spec.nope=1")) ==
            (400, "BadRequest")),
        ("watch app=web with timeout_seconds=2: MODIFIED, DELETED, then the stream ends",
         bounded_watch),
        ("create_namespaced_custom_object AuthorizationPolicy", lambda: custom
         .create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, policy)["metadata"][
             "name"] == "allow-web"),
        ("patch_namespaced_custom_object (merge) sets spec.action", lambda: custom
         .patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "allow-web",
                                         {"spec": {"action": "DENY"}})["spec"]["action"] ==
         "DENY"),
        ("list_namespaced_custom_object", lambda: [
            o["metadata"]["name"] for o in
            custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]] ==
         ["allow-web"]),
        ("create_namespaced_custom_object without kind: 400 BadRequest", lambda: status_of(
            lambda: custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL,
                                                           no_kind)) == (400, "BadRequest")),
        ("create_namespaced_custom_object with an action outside the enum: 422 Invalid",
         lambda: status_of(lambda: custom.create_namespaced_custom_object(
             GROUP, VERSION, NS, PLURAL, bad)) == (422, "Invalid")),
        ("create_namespace + list_namespace", lambda: core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name="demo"))) is not None and
         "demo" in names(core.list_namespace().items)),
        ("create_namespaced_pod in a namespace that does not exist: 404 NotFound",
         lambda: status_of(lambda: core.create_namespaced_pod("nowhere", pod("p", {}))) ==
         (404, "NotFound")),
        ("get_code (/version)", lambda: client.VersionApi().get_code().git_version == "v1.32.0"),
        ("get_api_versions (/apis)", lambda: GROUP in [
            g.name for g in client.ApisApi().get_api_versions().groups]),
    ]


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
        for name, check in checks(core, custom):
            total += 1
            try:
                good = bool(check())
            except Exception as e:  # an unexpected client error fails this check only
                good = False
                name += f" (unexpected {type(e).__name__}: {str(e).splitlines()[0]})"
            passed += good
            print(f"{'PASS' if good else 'FAIL'} {total:2d} {name}")
        print(f"python client checks passed: {passed}/{total}")
        return 0 if passed == total else 1
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
