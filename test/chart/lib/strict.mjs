// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

// Unknown-field check for built-in kinds. kubernetes-models' validators, like the API server
// without strict field validation, ignore fields they do not know, so a typo such as
// `readinesProbe` would pass them. kubectl (field validation "Strict", its default) refuses it.
// This walks an object alongside the TypeScript declarations kubernetes-models generates from
// the same OpenAPI schemas and reports every field the type does not declare.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// Fields newer than the declarations installed here, accepted on purpose. Gateway API's
// experimental channel (v1.2+, GEP-1731) adds HTTPRoute spec.rules[].retry; the Gateway API
// models that run on Node 20 predate it. Their content is not checked here.
const kNewerFields = {
  HTTPRoute: [/^HTTPRoute\.spec\.rules\[\d+\]\.retry$/],
};
const kLeaves = new Set(["string", "number", "boolean", "any", "unknown", "object", "null", "Date"]);

function tokenize(text) {
  const stripped = text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
  const re = /\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*|\d+|=>|[{}[\]<>;:?|,()=.&])/gy;
  const out = [];
  let m;
  while ((m = re.exec(stripped)) !== null) {
    out.push(m[1]);
  }
  return out;
}

class Parser {
  constructor(tokens, at) {
    this.t = tokens;
    this.i = at;
  }
  peek() {
    return this.t[this.i];
  }
  next() {
    return this.t[this.i++];
  }
  expect(tok) {
    const got = this.next();
    if (got !== tok) {
      throw new Error(`expected ${tok}, got ${got}`);
    }
  }
  type() {
    const members = [this.primary()];
    while (this.peek() === "|") {
      this.next();
      members.push(this.primary());
    }
    return members.length === 1 ? members[0] : { kind: "union", members };
  }
  primary() {
    const tok = this.next();
    let t;
    if (tok === "{") {
      t = this.objectBody();
    } else if (tok === "(") {
      t = this.type();
      this.expect(")");
    } else if (/^["'\d]/.test(tok)) {
      t = { kind: "leaf" };
    } else if (tok === "Array" && this.peek() === "<") {
      this.next();
      t = { kind: "array", of: this.type() };
      this.expect(">");
    } else {
      t = { kind: "ref", name: tok };
      if (this.peek() === "<") {
        // Generic we do not model (Record, Partial...): treat as a leaf.
        let depth = 0;
        do {
          const x = this.next();
          depth += x === "<" ? 1 : x === ">" ? -1 : 0;
        } while (depth > 0);
        t = { kind: "leaf" };
      }
    }
    while (this.peek() === "[" && this.t[this.i + 1] === "]") {
      this.i += 2;
      t = { kind: "array", of: t };
    }
    return t;
  }
  objectBody() {
    const fields = new Map();
    let index = null;
    while (this.peek() !== "}") {
      if (this.peek() === "[") {
        this.next();
        this.next(); // key name
        this.expect(":");
        this.type();
        this.expect("]");
        this.expect(":");
        index = this.type();
      } else {
        const name = this.next().replace(/^["']|["']$/g, "");
        if (this.peek() === "?") {
          this.next();
        }
        this.expect(":");
        fields.set(name, this.type());
      }
      if (this.peek() === ";" || this.peek() === ",") {
        this.next();
      }
    }
    this.expect("}");
    return { kind: "object", fields, index };
  }
}

const files = new Map();

// {interfaces: local name -> type, exported: exported name -> local name, imports: name -> spec}
function loadDts(file) {
  if (files.has(file)) {
    return files.get(file);
  }
  const text = fs.readFileSync(file, "utf8");
  const tokens = tokenize(text);
  const info = { file, interfaces: new Map(), exported: new Map(), imports: new Map() };
  for (const m of text.matchAll(/import \{([^}]*)\} from "([^"]+)"/g)) {
    for (const n of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
      info.imports.set(n.split(/\s+as\s+/).pop(), m[2]);
    }
  }
  for (const m of text.matchAll(/export \{([^}]*)\}/g)) {
    for (const part of m[1].split(",")) {
      const [local, exported] = part.trim().split(/\s+as\s+/);
      info.exported.set(exported ?? local, local);
    }
  }
  for (let i = 0; i < tokens.length - 2; i++) {
    if (tokens[i] !== "interface") {
      continue;
    }
    // `interface IName [extends A, B] {`: the bases here (TypeMeta) only add apiVersion/kind,
    // which every interface also declares itself.
    let open = i + 2;
    while (open < tokens.length && tokens[open] !== "{") {
      open++;
    }
    info.interfaces.set(tokens[i + 1], new Parser(tokens, open + 1).objectBody());
  }
  files.set(file, info);
  return info;
}

function dtsOf(spec, fromFile) {
  const js = spec.startsWith(".")
    ? path.resolve(path.dirname(fromFile), spec)
    : require.resolve(spec).replace(/\.(c|m)?js$/, "");
  return js.endsWith(".d.ts") ? js : `${js}.d.ts`;
}

// The object type a name stands for in `info`, or null for a leaf (alias of a scalar, ...).
function resolve(name, info) {
  if (kLeaves.has(name)) {
    return null;
  }
  const local = info.exported.get(name) ?? name;
  if (info.interfaces.has(local)) {
    return { type: info.interfaces.get(local), info };
  }
  const spec = info.imports.get(name);
  if (!spec) {
    return null;
  }
  return resolve(name, loadDts(dtsOf(spec, info.file)));
}

function walk(value, type, info, where, errors) {
  if (value === null || value === undefined || !type) {
    return;
  }
  switch (type.kind) {
    case "ref": {
      const r = resolve(type.name, info);
      if (r) {
        walk(value, r.type, r.info, where, errors);
      }
      return;
    }
    case "array":
      if (Array.isArray(value)) {
        value.forEach((v, i) => walk(v, type.of, info, `${where}[${i}]`, errors));
      }
      return;
    case "union": {
      const objects = type.members.filter((m) => m.kind !== "leaf");
      if (objects.length === 1) {
        walk(value, objects[0], info, where, errors);
      }
      return;
    }
    case "object":
      if (typeof value !== "object" || Array.isArray(value)) {
        return;
      }
      for (const [k, v] of Object.entries(value)) {
        if (type.fields.has(k)) {
          walk(v, type.fields.get(k), info, `${where}.${k}`, errors);
        } else if (type.index) {
          walk(v, type.index, info, `${where}.${k}`, errors);
        } else if (type.fields.size > 0) {
          errors.push(`${where}.${k}: unknown field (kubectl's strict validation refuses it)`);
        }
      }
      return;
    default:
  }
}

// Unknown fields of `obj`, given the package module spec its model came from.
export function unknownFields(obj, moduleSpec) {
  const info = loadDts(dtsOf(moduleSpec, import.meta.url));
  const local = [...info.interfaces.keys()].find((n) => n === `I${obj.kind}`);
  if (!local) {
    return [`no type declarations for ${obj.kind} in ${moduleSpec}`];
  }
  const errors = [];
  walk(obj, info.interfaces.get(local), info, obj.kind, errors);
  const allowed = kNewerFields[obj.kind] ?? [];
  return errors.filter((e) => !allowed.some((re) => re.test(e.split(":")[0])));
}
