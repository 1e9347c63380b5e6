// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

// CustomResourceDefinition checks and custom-resource validation.
//
// structuralProblems() applies the rules the API server enforces on a CRD's openAPIV3Schema
// beyond what the CRD's own OpenAPI type says (apiextensions "structural schema" rules).
// crValidator() turns a version's openAPIV3Schema into an Ajv validator that behaves like the
// API server with kubectl's default strict field validation: unknown fields are errors (the
// server would prune them; kubectl --validate=strict refuses them), except under
// x-kubernetes-preserve-unknown-fields.

import Ajv from "ajv";

const kExtensionKeywords = [
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-int-or-string",
  "x-kubernetes-embedded-resource",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  // CEL rules run only in the API server; their syntax is not checked here.
  "x-kubernetes-validations",
];

const kTypes = new Set(["object", "array", "string", "integer", "number", "boolean"]);
const kJunctors = ["allOf", "anyOf", "oneOf", "not"];
// Inside allOf/anyOf/oneOf/not only value validations are allowed, not structure.
const kForbiddenInJunctors = [
  "type", "additionalProperties", "default", "nullable", "description",
  "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
  "x-kubernetes-embedded-resource",
];

// Returns a list of "path: reason" strings; empty when the schema is structural.
export function structuralProblems(schema, path = "openAPIV3Schema", isRoot = true) {
  const problems = [];
  const walk = (node, p, root) => {
    if (node === null || typeof node !== "object" || Array.isArray(node)) {
      problems.push(`${p}: schema must be an object`);
      return;
    }
    const intOrString = node["x-kubernetes-int-or-string"] === true;
    const preserve = node["x-kubernetes-preserve-unknown-fields"] === true;
    if (!node.type && !intOrString && !preserve) {
      problems.push(`${p}: every node needs a type (structural schema)`);
    }
    if (node.type && !kTypes.has(node.type)) {
      problems.push(`${p}: unknown type ${JSON.stringify(node.type)}`);
    }
    if (node.properties && node.additionalProperties !== undefined) {
      problems.push(`${p}: additionalProperties and properties are mutually exclusive`);
    }
    if (node.additionalProperties === false) {
      problems.push(`${p}: additionalProperties: false is not allowed in a CRD schema`);
    }
    if (node.properties && node.type !== "object") {
      problems.push(`${p}: properties on a node of type ${node.type}`);
    }
    if (node.items !== undefined && node.type !== "array") {
      problems.push(`${p}: items on a node of type ${node.type}`);
    }
    if (node.type === "array" && (node.items === undefined || Array.isArray(node.items))) {
      problems.push(`${p}: arrays need a single items schema`);
    }
    if (node.uniqueItems === true) {
      problems.push(`${p}: uniqueItems is forbidden (quadratic)`);
    }
    for (const banned of ["$ref", "definitions", "patternProperties", "dependencies", "id"]) {
      if (node[banned] !== undefined) {
        problems.push(`${p}: ${banned} is not supported in CRD schemas`);
      }
    }
    if (node.pattern !== undefined) {
      try {
        new RegExp(node.pattern, "u");
      } catch (e) {
        problems.push(`${p}: bad pattern: ${e.message}`);
      }
    }
    if (node.enum !== undefined && (!Array.isArray(node.enum) || node.enum.length === 0)) {
      problems.push(`${p}: enum must be a non-empty list`);
    }
    if (node.required !== undefined && node.properties) {
      for (const r of node.required) {
        if (!(r in node.properties)) {
          problems.push(`${p}: required field ${r} is not among the properties`);
        }
      }
    }
    if (root) {
      if (node.type !== "object") {
        problems.push(`${p}: the root must be of type object`);
      }
      const meta = node.properties?.metadata;
      if (meta && Object.keys(meta).some((k) => !["type", "description"].includes(k))) {
        problems.push(`${p}.metadata: only type and description may be set at the root`);
      }
    }
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      walk(child, `${p}.properties.${name}`, false);
    }
    if (node.items && !Array.isArray(node.items)) {
      walk(node.items, `${p}.items`, false);
    }
    if (node.additionalProperties && typeof node.additionalProperties === "object") {
      walk(node.additionalProperties, `${p}.additionalProperties`, false);
    }
    for (const j of kJunctors) {
      const branches = j === "not" ? (node.not ? [node.not] : []) : (node[j] ?? []);
      branches.forEach((b, i) => {
        for (const k of kForbiddenInJunctors) {
          if (b[k] !== undefined) {
            problems.push(`${p}.${j}[${i}]: ${k} is not allowed inside ${j}`);
          }
        }
      });
    }
  };
  walk(schema, path, isRoot);
  return problems;
}

// Every printer column's jsonPath must name a field the schema defines.
export function printerColumnProblems(version) {
  const problems = [];
  const root = version.schema?.openAPIV3Schema;
  for (const col of version.additionalPrinterColumns ?? []) {
    if (col.jsonPath === ".metadata.creationTimestamp") {
      continue;
    }
    let node = root;
    for (const part of col.jsonPath.replace(/^\./, "").split(".")) {
      // "items[*]" or "items[0]": the list's item schema.
      const list = part.match(/^([^[]+)\[(\*|[0-9]+)\]$/);
      node = list ? node?.properties?.[list[1]]?.items : node?.properties?.[part];
    }
    if (!node) {
      problems.push(`printer column ${col.name}: ${col.jsonPath} is not in the schema`);
    }
  }
  return problems;
}

// Deep copy of a CRD schema with unknown fields closed off, as strict field validation does.
function strictCopy(node, isRoot) {
  if (Array.isArray(node)) {
    return node.map((n) => strictCopy(n, false));
  }
  if (node === null || typeof node !== "object") {
    return node;
  }
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "properties") {
      out.properties = {};
      for (const [name, child] of Object.entries(v)) {
        out.properties[name] = strictCopy(child, false);
      }
    } else if (["items", "additionalProperties", "not"].includes(k) && typeof v === "object") {
      out[k] = strictCopy(v, false);
    } else if (kJunctors.includes(k)) {
      out[k] = v.map((b) => strictCopy(b, false));
    } else {
      out[k] = v;
    }
  }
  if (isRoot && out.properties?.metadata) {
    // The API server validates ObjectMeta itself; the fields a manifest may set are these.
    out.properties.metadata = {
      type: "object",
      required: ["name"],
      properties: {
        name: {
          type: "string",
          maxLength: 253,
          pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        },
        namespace: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 },
        labels: { type: "object", additionalProperties: { type: "string" } },
        annotations: { type: "object", additionalProperties: { type: "string" } },
      },
      additionalProperties: false,
    };
  }
  const closed =
    out.type === "object" &&
    out.properties &&
    out.additionalProperties === undefined &&
    out["x-kubernetes-preserve-unknown-fields"] !== true;
  if (closed) {
    out.additionalProperties = false;
  }
  return out;
}

// Returns validate(object) -> [] or a list of "path: message" errors, for one CRD version.
export function crValidator(crd, versionName) {
  const version = crd.spec.versions.find((v) => v.name === versionName);
  if (!version) {
    throw new Error(`${crd.metadata.name} has no version ${versionName}`);
  }
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const k of kExtensionKeywords) {
    ajv.addKeyword({ keyword: k });
  }
  const schema = strictCopy(version.schema.openAPIV3Schema, true);
  const apiVersion = `${crd.spec.group}/${versionName}`;
  schema.properties.apiVersion = { type: "string", const: apiVersion };
  schema.properties.kind = { type: "string", const: crd.spec.names.kind };
  schema.required = [...new Set([...(schema.required ?? []), "apiVersion", "kind", "metadata"])];
  const validate = ajv.compile(schema);
  return (obj) => {
    if (validate(obj)) {
      return [];
    }
    return validate.errors.map((e) => {
      const where = e.instancePath || "/";
      const extra =
        e.keyword === "additionalProperties" ? ` (${e.params.additionalProperty})` : "";
      return `${where}: ${e.message}${extra}`;
    });
  };
}
