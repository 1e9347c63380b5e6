# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""Starts ferry-fake-kube-apiserver as a child process and writes a kubeconfig for it."""

import os
import subprocess
import tempfile


class FakeServer:
    def __init__(self, binary, crds):
        self.dir = tempfile.TemporaryDirectory(prefix="fake-kube-")
        # stdin stays open while we run; the server stops when it closes (also if we crash).
        self.proc = subprocess.Popen([binary, f"--crds={crds}"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            raise SystemExit(f"fake API server did not start (printed {self.url!r})")
        self.kubeconfig = os.path.join(self.dir.name, "kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{self.url}"}}}}]
users: [{{name: tester, user: {{}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: tester, namespace: default}}}}]
current-context: fake
""")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.dir.cleanup()
