// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

// Cross-field and cross-object rules that an OpenAPI schema cannot express but the API server
// (or a working install) enforces: selectors match their pods, mounts name real volumes,
// bindings name real roles and accounts, RBAC resourceNames only where they take effect.

const kCapabilities = new Set([
  "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
  "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER",
  "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN",
  "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP",
  "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT",
  "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG",
  "WAKE_ALARM", "ALL",
]);
const kDns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const kPortName = /^(?=.{1,15}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const kClusterScoped = new Set([
  "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace",
  "PriorityClass", "StorageClass",
]);
const kNameOnlyVerbs = new Set(["get", "update", "patch", "delete"]);

function podTemplates(objects) {
  return objects
    .filter((o) => ["DaemonSet", "Deployment", "StatefulSet", "Job"].includes(o.kind))
    .map((o) => ({ owner: o, template: o.spec?.template }));
}

function selects(matchLabels, labels) {
  return Object.entries(matchLabels ?? {}).every(([k, v]) => labels?.[k] === v);
}

function checkContainer(where, c, spec, errors) {
  const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
  const mountPaths = new Set();
  for (const m of c.volumeMounts ?? []) {
    if (!volumes.has(m.name)) {
      errors.push(`${where}: volumeMount ${m.name} names no volume of the pod`);
    }
    if (mountPaths.has(m.mountPath)) {
      errors.push(`${where}: two mounts at ${m.mountPath}`);
    }
    mountPaths.add(m.mountPath);
  }
  const portNames = new Set();
  for (const p of c.ports ?? []) {
    if (p.name !== undefined) {
      if (!kPortName.test(p.name)) {
        errors.push(`${where}: port name ${p.name} is not an IANA service name (<= 15 chars)`);
      }
      if (portNames.has(p.name)) {
        errors.push(`${where}: duplicate port name ${p.name}`);
      }
      portNames.add(p.name);
    }
    if (spec.hostNetwork && p.hostPort !== undefined && p.hostPort !== p.containerPort) {
      errors.push(`${where}: with hostNetwork, hostPort must equal containerPort`);
    }
  }
  for (const probeName of ["readinessProbe", "livenessProbe", "startupProbe"]) {
    const port = c[probeName]?.httpGet?.port ?? c[probeName]?.tcpSocket?.port;
    if (typeof port === "string" && !portNames.has(port)) {
      errors.push(`${where}: ${probeName} uses port ${port}, which the container does not name`);
    }
  }
  const env = new Set((c.env ?? []).map((e) => e.name));
  for (const arg of [...(c.command ?? []), ...(c.args ?? [])]) {
    for (const [, name] of String(arg).matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
      if (!env.has(name)) {
        errors.push(`${where}: argument refers to $(${name}), which is not in env`);
      }
    }
  }
  const sc = c.securityContext ?? {};
  const added = sc.capabilities?.add ?? [];
  for (const cap of [...added, ...(sc.capabilities?.drop ?? [])]) {
    if (!kCapabilities.has(cap)) {
      errors.push(`${where}: ${cap} is not a Linux capability name (no CAP_ prefix)`);
    }
  }
  if (sc.allowPrivilegeEscalation === false && (sc.privileged || added.includes("SYS_ADMIN"))) {
    errors.push(
      `${where}: the API server refuses allowPrivilegeEscalation=false with privileged or ` +
        "CAP_SYS_ADMIN",
    );
  }
  for (const m of c.volumeMounts ?? []) {
    if (m.mountPropagation === "Bidirectional" && !sc.privileged) {
      errors.push(`${where}: Bidirectional mount propagation needs a privileged container`);
    }
  }
}

export function semanticErrors(objects, releaseNamespace) {
  const errors = [];
  const byKind = (k) => objects.filter((o) => o.kind === k);
  const names = (k) => new Set(byKind(k).map((o) => o.metadata?.name));
  const seen = new Set();

  for (const o of objects) {
    const id = `${o.kind}/${o.metadata?.name}`;
    if (seen.has(`${id}@${o.metadata?.namespace ?? ""}`)) {
      errors.push(`${id}: rendered twice`);
    }
    seen.add(`${id}@${o.metadata?.namespace ?? ""}`);
    if (!kDns1123Subdomain.test(o.metadata?.name ?? "")) {
      errors.push(`${id}: name is not a DNS-1123 subdomain`);
    }
    if (kClusterScoped.has(o.kind)) {
      if (o.metadata?.namespace !== undefined) {
        errors.push(`${id}: cluster-scoped object has a namespace`);
      }
    } else if (o.metadata?.namespace !== releaseNamespace) {
      errors.push(`${id}: namespace ${o.metadata?.namespace} is not the release namespace`);
    }
  }

  const accounts = names("ServiceAccount");
  for (const { owner, template } of podTemplates(objects)) {
    const id = `${owner.kind}/${owner.metadata.name}`;
    const spec = template?.spec ?? {};
    if (!selects(owner.spec?.selector?.matchLabels, template?.metadata?.labels)) {
      errors.push(`${id}: selector does not match the pod template's labels`);
    }
    if (spec.serviceAccountName && !accounts.has(spec.serviceAccountName)) {
      errors.push(`${id}: serviceAccount ${spec.serviceAccountName} is not rendered`);
    }
    const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
    const cnames = all.map((c) => c.name);
    if (new Set(cnames).size !== cnames.length) {
      errors.push(`${id}: duplicate container names`);
    }
    const vnames = (spec.volumes ?? []).map((v) => v.name);
    if (new Set(vnames).size !== vnames.length) {
      errors.push(`${id}: duplicate volume names`);
    }
    for (const c of all) {
      checkContainer(`${id} container ${c.name}`, c, spec, errors);
    }
  }

  const templates = podTemplates(objects).map((t) => t.template);
  for (const svc of byKind("Service")) {
    const pods = templates.filter((t) => selects(svc.spec?.selector, t?.metadata?.labels));
    if (svc.spec?.selector && pods.length === 0) {
      errors.push(`Service/${svc.metadata.name}: selector matches no rendered pod template`);
    }
    for (const p of svc.spec?.ports ?? []) {
      if (typeof p.targetPort !== "string") {
        continue;
      }
      const named = pods.some((t) =>
        (t.spec?.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort)),
      );
      if (!named) {
        errors.push(`Service/${svc.metadata.name}: targetPort ${p.targetPort} names no pod port`);
      }
    }
  }
  for (const pdb of byKind("PodDisruptionBudget")) {
    if (!templates.some((t) => selects(pdb.spec?.selector?.matchLabels, t?.metadata?.labels))) {
      errors.push(`PodDisruptionBudget/${pdb.metadata.name}: selector matches no pod template`);
    }
  }

  for (const role of [...byKind("Role"), ...byKind("ClusterRole")]) {
    (role.rules ?? []).forEach((r, i) => {
      if (!r.resourceNames) {
        return;
      }
      const bad = (r.verbs ?? []).filter((v) => !kNameOnlyVerbs.has(v));
      if (bad.length) {
        errors.push(
          `${role.kind}/${role.metadata.name} rule ${i}: resourceNames cannot limit ${bad.join(", ")}` +
            " (the rule would grant nothing for them)",
        );
      }
    });
  }
  for (const b of [...byKind("RoleBinding"), ...byKind("ClusterRoleBinding")]) {
    if (!names(b.roleRef?.kind).has(b.roleRef?.name)) {
      errors.push(`${b.kind}/${b.metadata.name}: roleRef ${b.roleRef?.kind}/${b.roleRef?.name} not rendered`);
    }
    for (const s of b.subjects ?? []) {
      if (s.kind === "ServiceAccount" && !accounts.has(s.name)) {
        errors.push(`${b.kind}/${b.metadata.name}: subject ServiceAccount ${s.name} not rendered`);
      }
    }
  }
  for (const o of objects) {
    for (const [k, v] of Object.entries(o.metadata?.labels ?? {})) {
      const key = k.includes("/") ? k.split("/")[1] : k;
      if (!/^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/.test(key) || String(v).length > 63) {
        errors.push(`${o.kind}/${o.metadata.name}: bad label ${k}=${v}`);
      }
    }
  }
  return errors;
}
