// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

import { unknownFields } from "./strict.mjs";

// Finds the kubernetes-models class (an Ajv validator compiled from the Kubernetes OpenAPI
// schema) for an object's apiVersion and kind, across the packages the chart needs.

const kPackages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
};

export async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    throw new Error("object has no apiVersion/kind");
  }
  const slash = apiVersion.indexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const pkg = kPackages[group] ?? "kubernetes-models";
  const spec = `${pkg}/${apiVersion}/${kind}`;
  let mod;
  try {
    mod = await import(spec);
  } catch (e) {
    throw new Error(`no Kubernetes schema for ${apiVersion} ${kind} (${spec}): ${e.message}`);
  }
  const cls = mod[kind];
  if (typeof cls !== "function") {
    throw new Error(`${spec} exports no ${kind}`);
  }
  return { cls, spec };
}

// Validates against the Kubernetes OpenAPI schema (types, required fields, enums, formats) and
// refuses unknown fields; returns a list of errors.
export async function schemaErrors(obj) {
  let model;
  try {
    model = await modelFor(obj?.apiVersion, obj?.kind);
  } catch (e) {
    return [e.message];
  }
  const errors = [];
  try {
    new model.cls(obj).validate();
  } catch (e) {
    errors.push(...e.message.split(", ").map((m) => m.replace(/^data/, "")));
  }
  errors.push(...unknownFields(obj, model.spec));
  return errors;
}
