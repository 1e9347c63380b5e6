// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

// The chart passes command-line flags to Ferry's binaries; each must be one the binary knows.
// Known flags are read from the binary's own `--help`, so a renamed or removed flag fails here
// instead of in a crash-looping pod.

import { spawnSync } from "node:child_process";

const helpCache = new Map();

function knownFlags(binary) {
  if (!helpCache.has(binary)) {
    const r = spawnSync(binary, ["--help"], { encoding: "utf8" });
    if (r.error || r.status !== 0) {
      throw new Error(`${binary} --help failed: ${r.error?.message ?? r.stderr}`);
    }
    const names = new Set([...`${r.stdout}${r.stderr}`.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
    helpCache.set(binary, names);
  }
  return helpCache.get(binary);
}

// binaries: {"ferry-agent": "/path/ferry-agent", ...}; containers whose command names one of
// them are checked.
export function flagErrors(objects, binaries) {
  const errors = [];
  let checked = 0;
  for (const o of objects) {
    const spec = o.spec?.template?.spec;
    if (!spec) {
      continue;
    }
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const program = (c.command ?? [])[0];
      const binary = binaries[program];
      if (!binary) {
        continue;
      }
      checked++;
      let known;
      try {
        known = knownFlags(binary);
      } catch (e) {
        errors.push(e.message);
        continue;
      }
      for (const arg of [...(c.command ?? []).slice(1), ...(c.args ?? [])]) {
        const m = /^--([^=]+)/.exec(arg);
        if (!m) {
          errors.push(`${o.kind}/${o.metadata.name} ${c.name}: "${arg}" is not a --flag`);
        } else if (!known.has(m[1])) {
          errors.push(`${o.kind}/${o.metadata.name} ${c.name}: ${program} has no flag --${m[1]}`);
        }
      }
    }
  }
  if (checked === 0) {
    errors.push(`no container runs any of ${Object.keys(binaries).join(", ")}`);
  }
  return errors;
}
