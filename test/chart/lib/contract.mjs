// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

// What Ferry's chart promises (issue 9, docs/install.md), checked on the default render: the
// agent's exact privileges and mounts, probes and ports, controller HA, and RBAC least privilege.

// Tried against the kernel by chart_agent_caps_test (test/chart/agent_caps_test.cc).
const kAgentCaps = ["BPF", "NET_ADMIN", "SYS_ADMIN"];
const kAgentHostPaths = [
  "/sys/fs/bpf", "/sys/fs/cgroup", "/var/run/netns", "/run/ferry", "/opt/cni/bin",
  "/etc/cni/net.d",
];
const kReadOnlyVerbs = new Set(["get", "list", "watch"]);

function find(objects, kind, name) {
  return objects.find((o) => o.kind === kind && o.metadata?.name === name);
}

export function contractErrors(objects) {
  const errors = [];
  const need = (cond, msg) => {
    if (!cond) {
      errors.push(msg);
    }
  };

  const ds = find(objects, "DaemonSet", "ferry-agent");
  need(ds, "DaemonSet/ferry-agent is not rendered");
  if (ds) {
    const pod = ds.spec.template.spec;
    const agent = pod.containers.find((c) => c.name === "agent");
    const installer = pod.containers.find((c) => c.name === "cni-installer");
    need(pod.hostNetwork === true, "agent: hostNetwork must be true");
    need(pod.priorityClassName === "system-node-critical", "agent: priorityClassName");
    need(
      (pod.tolerations ?? []).some((t) => t.operator === "Exists" && !t.key && !t.effect),
      "agent: needs a toleration for every taint (operator Exists, no key)",
    );
    need(pod.automountServiceAccountToken === false, "agent: must not automount an API token");
    const hostPaths = (pod.volumes ?? []).filter((v) => v.hostPath).map((v) => v.hostPath.path);
    for (const p of kAgentHostPaths) {
      need(hostPaths.includes(p), `agent: hostPath ${p} is not mounted`);
    }
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      need(c.securityContext?.privileged !== true, `agent pod: container ${c.name} is privileged`);
      need(
        (c.securityContext?.capabilities?.drop ?? []).includes("ALL"),
        `agent pod: container ${c.name} must drop ALL capabilities`,
      );
      need(c.securityContext?.readOnlyRootFilesystem === true, `${c.name}: writable root fs`);
    }
    need(agent, "agent container missing");
    if (agent) {
      const caps = [...(agent.securityContext?.capabilities?.add ?? [])].sort();
      need(
        JSON.stringify(caps) === JSON.stringify(kAgentCaps),
        `agent: capabilities ${caps.join(",")} differ from the documented ${kAgentCaps.join(",")}`,
      );
      const rp = agent.readinessProbe?.httpGet;
      need(rp?.path === "/healthz/ready" && rp?.port === 15021, "agent: readiness probe :15021/healthz/ready");
      // Upgrades surge (a new agent beside the old one): no host port may be claimed, and with
      // hostNetwork every container port is one.
      need((agent.ports ?? []).length === 0, "agent: no container ports (they block maxSurge)");
      const ru = ds.spec.updateStrategy?.rollingUpdate ?? {};
      need(ru.maxSurge === 1 && ru.maxUnavailable === 0,
        "agent: rolling update with maxSurge 1, maxUnavailable 0");
      const grace = (agent.args ?? []).find((a) => a.startsWith("--drain-grace="));
      need(grace, "agent: --drain-grace is set");
      if (grace) {
        const seconds = parseInt(grace.slice("--drain-grace=".length), 10);
        need(pod.terminationGracePeriodSeconds === seconds + 5,
          "agent: terminationGracePeriodSeconds is the drain grace plus 5 s");
      }
      const cgroup = agent.volumeMounts.find((m) => m.mountPath === "/sys/fs/cgroup");
      need(cgroup?.readOnly === true, "agent: cgroup mount must be read-only");
    }
    need(installer, "cni-installer container missing");
    if (installer) {
      need(
        (installer.securityContext?.capabilities?.add ?? []).length === 0,
        "cni-installer: must add no capability",
      );
      need(installer.lifecycle?.preStop?.exec, "cni-installer: preStop uninstall hook missing");
    }
    const ann = ds.spec.template.metadata.annotations ?? {};
    need(ann["prometheus.io/scrape"] === "true" && ann["prometheus.io/port"] === "15020",
      "agent: prometheus.io scrape annotations");
  }

  const dep = find(objects, "Deployment", "ferry-controller");
  need(dep, "Deployment/ferry-controller is not rendered");
  if (dep) {
    need(dep.spec.replicas === 2, "controller: 2 replicas");
    const c = dep.spec.template.spec.containers[0];
    need(c.args.includes("--leader-elect"), "controller: leader election flag");
    need(c.securityContext?.allowPrivilegeEscalation === false, "controller: no privilege escalation");
    need(dep.spec.template.spec.securityContext?.runAsNonRoot === true, "controller: runAsNonRoot");
  }
  const svc = find(objects, "Service", "ferry-controller");
  need(svc?.spec.ports.some((p) => p.port === 15012 && p.name === "grpc"), "controller Service :15012");
  need(find(objects, "PodDisruptionBudget", "ferry-controller"), "controller PodDisruptionBudget");

  const cr = find(objects, "ClusterRole", "ferry-controller");
  need(cr, "ClusterRole/ferry-controller is not rendered");
  for (const r of cr?.rules ?? []) {
    const isTokenReview = r.resources.includes("tokenreviews");
    for (const v of r.verbs) {
      need(
        kReadOnlyVerbs.has(v) || (isTokenReview && v === "create"),
        `ClusterRole: ${v} on ${r.resources.join(",")} is more than read-only`,
      );
    }
    need(!r.resources.includes("secrets"), "ClusterRole must not grant secrets");
    need(!r.verbs.includes("*") && !r.resources.includes("*"), "ClusterRole must not use *");
  }
  for (const role of objects.filter((o) => o.kind === "Role")) {
    for (const r of role.rules) {
      if (r.resources.includes("secrets") && !r.verbs.every((v) => v === "create")) {
        need(r.resourceNames?.length, `Role/${role.metadata.name}: secrets only by resourceName`);
      }
      need(!r.verbs.includes("*") && !r.resources.includes("*"), `Role/${role.metadata.name}: *`);
    }
  }
  const lease = objects
    .filter((o) => o.kind === "Role" && o.metadata.name === "ferry-controller")
    .flatMap((o) => o.rules)
    .filter((r) => r.apiGroups.includes("coordination.k8s.io"));
  need(
    ["get", "create", "update"].every((v) => lease.some((r) => r.verbs.includes(v))),
    "controller Role: leases get/create/update",
  );
  return errors;
}
