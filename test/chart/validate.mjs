// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

// Validates Ferry's chart output, CRDs and policy manifests. Each mode prints one line per
// checked item and exits non-zero on any failure (ctest runs one mode per test):
//
//   node validate.mjs crds CHART_DIR
//   node validate.mjs rendered RENDERED.yaml NAMESPACE [--contract]
//   node validate.mjs policies CHART_DIR POLICY_FILE_OR_DIR
//   node validate.mjs table CHART_DIR TABLE.yaml
//   node validate.mjs render RENDERER CHART_DIR NAMESPACE [--contract] [-f VALUES]...
//   node validate.mjs render-fails RENDERER CHART_DIR EXPECTED_MESSAGE -f VALUES
//   node validate.mjs dockerfile DOCKERFILE
//
// RENDERER is ferry-chart-render (test/chart/render), run as `helm template` would be.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { crValidator, printerColumnProblems, structuralProblems } from "./lib/crd.mjs";
import { schemaErrors } from "./lib/kinds.mjs";
import { semanticErrors } from "./lib/semantic.mjs";
import { contractErrors } from "./lib/contract.mjs";
import { flagErrors } from "./lib/flags.mjs";
import { dockerfileErrors } from "./lib/dockerfile.mjs";

let passed = 0;
let failed = 0;

function report(name, errors) {
  if (errors.length === 0) {
    passed++;
    console.log(`ok    ${name}`);
  } else {
    failed++;
    console.log(`FAIL  ${name}`);
    for (const e of errors) {
      console.log(`        ${e}`);
    }
  }
}

function readDocs(file) {
  const docs = parseAllDocuments(fs.readFileSync(file, "utf8"));
  const out = [];
  for (const d of docs) {
    if (d.errors.length) {
      throw new Error(`${file}: YAML error: ${d.errors[0].message}`);
    }
    const obj = d.toJS();
    if (obj !== null && obj !== undefined) {
      out.push(obj);
    }
  }
  return out;
}

function yamlFiles(dir) {
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

function loadCrds(chartDir) {
  return yamlFiles(path.join(chartDir, "crds")).flatMap((f) =>
    readDocs(f).map((obj) => ({ file: f, obj })),
  );
}

// kind -> validate(obj), for every served version of every chart CRD.
function crValidators(chartDir) {
  const out = new Map();
  for (const { obj: crd } of loadCrds(chartDir)) {
    for (const v of crd.spec.versions.filter((x) => x.served)) {
      out.set(`${crd.spec.group}/${v.name} ${crd.spec.names.kind}`, crValidator(crd, v.name));
    }
  }
  return out;
}

async function validateManifest(obj, crs) {
  const key = `${obj?.apiVersion} ${obj?.kind}`;
  if (crs.has(key)) {
    return crs.get(key)(obj);
  }
  return schemaErrors(obj);
}

async function modeCrds(chartDir) {
  const crds = loadCrds(chartDir);
  if (crds.length === 0) {
    report(`CRDs in ${chartDir}/crds`, ["no CRD found"]);
  }
  for (const { file, obj } of crds) {
    const errors = [...(await schemaErrors(obj))];
    if (obj.kind === "CustomResourceDefinition") {
      if (obj.metadata?.name !== `${obj.spec?.names?.plural}.${obj.spec?.group}`) {
        errors.push("metadata.name must be <plural>.<group>");
      }
      const storage = (obj.spec?.versions ?? []).filter((v) => v.storage);
      if (storage.length !== 1) {
        errors.push("exactly one version must be the storage version");
      }
      for (const v of obj.spec?.versions ?? []) {
        errors.push(...structuralProblems(v.schema?.openAPIV3Schema, `${v.name}.openAPIV3Schema`));
        errors.push(...printerColumnProblems(v));
        if (!v.additionalPrinterColumns?.length) {
          errors.push(`${v.name}: no printer columns`);
        }
        try {
          crValidator(obj, v.name);
        } catch (e) {
          errors.push(`${v.name}: schema does not compile: ${e.message}`);
        }
      }
    } else {
      errors.push(`${obj.kind}: only CustomResourceDefinitions belong in crds/`);
    }
    report(`${path.basename(file)} (${obj.metadata?.name})`, errors);
  }
}

function runRenderer(renderer, chartDir, namespace, valueFiles) {
  const args = ["--include-crds", "--namespace", namespace, chartDir];
  for (const f of valueFiles) {
    args.push("-f", f);
  }
  const r = spawnSync(renderer, args, { encoding: "utf8" });
  if (r.error) {
    throw new Error(`cannot run ${renderer}: ${r.error.message}`);
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

function valueFilesOf(args) {
  const files = [];
  args.forEach((a, i) => {
    if (a === "-f") {
      files.push(args[i + 1]);
    }
  });
  return files;
}

async function modeRender(renderer, chartDir, namespace, args) {
  const valueFiles = valueFilesOf(args);
  const r = runRenderer(renderer, chartDir, namespace, valueFiles);
  const label = `render ${path.basename(chartDir)} ${valueFiles.map((f) => path.basename(f)).join(" ")}`;
  report(label, r.code === 0 ? [] : [`renderer exited ${r.code}: ${r.stderr}`]);
  if (r.code !== 0) {
    return;
  }
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ferry-chart-")), "rendered.yaml");
  fs.writeFileSync(out, r.stdout);
  console.log(`      (rendered manifests: ${out})`);
  await modeRendered(out, namespace, args.includes("--contract"), binariesOf(args));
}

// --binaries ferry-agent=PATH,ferry-controller=PATH
function binariesOf(args) {
  const i = args.indexOf("--binaries");
  if (i < 0) {
    return null;
  }
  return Object.fromEntries(args[i + 1].split(",").map((kv) => kv.split("=")));
}

async function modeRenderFails(renderer, chartDir, expected, args) {
  const valueFiles = valueFilesOf(args);
  const r = runRenderer(renderer, chartDir, "ferry-system", valueFiles);
  const label = `render refuses ${valueFiles.map((f) => path.basename(f)).join(" ")}`;
  if (r.code === 0) {
    report(label, ["rendered without error"]);
  } else if (!r.stderr.includes(expected)) {
    report(label, [`error does not mention ${JSON.stringify(expected)}: ${r.stderr}`]);
  } else {
    report(label, []);
    console.log(`        refused: ${r.stderr}`);
  }
}

async function modeRendered(file, namespace, contract, binaries = null) {
  const objects = readDocs(file);
  if (objects.length === 0) {
    report(file, ["nothing was rendered"]);
  }
  for (const o of objects) {
    report(`${o.kind}/${o.metadata?.name} against the Kubernetes schema`, await schemaErrors(o));
  }
  report("cross-object rules", semanticErrors(objects, namespace));
  if (contract) {
    report("Ferry chart contract (issue 9)", contractErrors(objects));
  }
  if (binaries) {
    report("flags the chart passes exist in the binaries", flagErrors(objects, binaries));
  }
}

// POLICIES is one manifest file or a folder of them.
async function modePolicies(chartDir, policies) {
  const crs = crValidators(chartDir);
  const files = fs.statSync(policies).isDirectory() ? yamlFiles(policies) : [policies];
  if (files.length === 0) {
    report(`examples in ${policies}`, ["no policy example found"]);
  }
  for (const f of files) {
    let docs;
    try {
      docs = readDocs(f);
    } catch (e) {
      report(path.basename(f), [e.message]);
      continue;
    }
    for (const obj of docs) {
      const name = `${path.basename(f)}: ${obj.kind}/${obj.metadata?.name}`;
      report(name, await validateManifest(obj, crs));
    }
  }
}

// A table of rows {name, expect: valid | invalid, error?: substring, manifest}. An invalid row
// passes only when validation fails and (if given) some error contains `error`.
async function modeTable(chartDir, tableFile) {
  const crs = crValidators(chartDir);
  const rows = readDocs(tableFile).flatMap((d) => d.rows ?? []);
  if (rows.length === 0) {
    report(tableFile, ["table has no rows"]);
  }
  for (const row of rows) {
    const errors = await validateManifest(row.manifest, crs);
    const problems = [];
    if (row.expect === "valid" && errors.length) {
      problems.push("expected valid, got:", ...errors);
    } else if (row.expect === "invalid") {
      if (errors.length === 0) {
        problems.push("expected a validation error, got none");
      } else if (row.error && !errors.some((e) => e.includes(row.error))) {
        problems.push(`expected an error containing ${JSON.stringify(row.error)}, got:`, ...errors);
      }
    } else if (row.expect !== "valid") {
      problems.push(`row expect must be valid or invalid, not ${row.expect}`);
    }
    report(`${row.expect}: ${row.name}`, problems);
    if (row.expect === "invalid" && problems.length === 0) {
      console.log(`        refused: ${errors.find((e) => !row.error || e.includes(row.error))}`);
    }
  }
}

function modeDockerfile(dockerfile) {
  const errors = dockerfileErrors(fs.readFileSync(dockerfile, "utf8"));
  report(`${dockerfile}: lint + Ferry's image rules`, errors);
}

async function main(argv) {
  const [mode, ...args] = argv;
  try {
    if (mode === "crds" && args.length === 1) {
      await modeCrds(args[0]);
    } else if (mode === "rendered" && args.length >= 2) {
      await modeRendered(args[0], args[1], args.includes("--contract"));
    } else if (mode === "policies" && args.length === 2) {
      await modePolicies(args[0], args[1]);
    } else if (mode === "table" && args.length === 2) {
      await modeTable(args[0], args[1]);
    } else if (mode === "dockerfile" && args.length === 1) {
      modeDockerfile(args[0], args[1]);
    } else if (mode === "render" && args.length >= 3) {
      await modeRender(args[0], args[1], args[2], args.slice(3));
    } else if (mode === "render-fails" && args.length >= 5) {
      await modeRenderFails(args[0], args[1], args[2], args.slice(3));
    } else {
      console.error("usage: validate.mjs crds|rendered|policies|table ARGS (see the header)");
      return 2;
    }
  } catch (e) {
    console.error(`validate.mjs: ${e.message}`);
    return 1;
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
