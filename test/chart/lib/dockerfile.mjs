// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

// Checks packaging/Dockerfile without a container engine: the Dockerfile language service's
// linter (dockerfile-utils, as used by editors), then Ferry's own rules — Debian 12 bases,
// stage references (scratch only for a stage of COPYs), the build stage taking its packages from scripts/setup.sh (through
// packaging/build-packages.sh, tested by chart_packaging_scripts), and runtime stages
// installing no compiler or -dev package.

import { validate } from "dockerfile-utils";
import { DockerfileParser } from "dockerfile-ast";

const kImages = ["agent", "controller", "cni", "ferryctl"];
const kBuildOnly = /(-dev$|^build-essential$|^clang|^llvm|^cmake$|^gcc|^g\+\+|^ninja-build$)/;

function aptPackages(runText) {
  const m = runText.match(/apt-get install ([^&]*)/);
  if (!m) {
    return [];
  }
  return m[1]
    .replace(/\\\n/g, " ")
    .split(/\s+/)
    .filter((w) => w && !w.startsWith("-"));
}

export function dockerfileErrors(text) {
  const errors = [];
  for (const d of validate(text)) {
    errors.push(`lint line ${d.range.start.line + 1}: ${d.message}`);
  }
  const df = DockerfileParser.parse(text);
  const args = Object.fromEntries(
    df.getInitialARGs().flatMap((a) => a.getProperties().map((p) => [p.getName(), p.getValue()])),
  );
  const stages = [];
  for (const from of df.getFROMs()) {
    const image = from.getImageName().replace(/^\$\{(\w+)\}$/, (_, n) => args[n] ?? "");
    const base = image.split(":")[0];
    // scratch only for a stage that carries files in (the prebuilt binaries), nothing to run.
    const onlyCopies = () => {
      const next = df.getFROMs().find((f) => f.getRange().start.line > from.getRange().start.line);
      return df
        .getInstructions()
        .filter(
          (i) =>
            i.getRange().start.line > from.getRange().start.line &&
            (!next || i.getRange().start.line < next.getRange().start.line),
        )
        .every((i) => i.getKeyword() === "COPY");
    };
    if (!stages.includes(base) && image !== "debian:12" && !(image === "scratch" && onlyCopies())) {
      errors.push(`stage ${from.getBuildStage()}: base ${image} is neither debian:12 nor a stage`);
    }
    stages.push(from.getBuildStage());
  }
  for (const want of ["build", "runtime", ...kImages]) {
    if (!stages.includes(want)) {
      errors.push(`no stage named ${want}`);
    }
  }
  for (const image of df.getFROMs()) {
    const name = image.getBuildStage();
    const range = image.getRange();
    const next = df.getFROMs().find((f) => f.getRange().start.line > range.start.line);
    const body = df
      .getInstructions()
      .filter(
        (i) =>
          i.getRange().start.line > range.start.line &&
          (!next || i.getRange().start.line < next.getRange().start.line),
      );
    for (const i of body) {
      const from = i.getKeyword() === "COPY" ? i.getFromFlag?.()?.getValue() : undefined;
      if (from !== undefined && !stages.slice(0, stages.indexOf(name)).includes(from)) {
        errors.push(`stage ${name}: COPY --from=${from} names no earlier stage`);
      }
      if (i.getKeyword() !== "RUN") {
        continue;
      }
      const run = i.getArgumentsContent() ?? "";
      if (name === "build" && /apt-get install/.test(run) && !/build-packages\.sh/.test(run)) {
        errors.push("build stage must install the packages build-packages.sh reads from setup.sh");
      }
      if (name !== "build") {
        for (const p of aptPackages(run).filter((x) => kBuildOnly.test(x))) {
          errors.push(`stage ${name} installs build-only package ${p}`);
        }
      }
    }
    if (kImages.includes(name) && !body.some((i) => i.getKeyword() === "ENTRYPOINT")) {
      errors.push(`stage ${name} has no ENTRYPOINT`);
    }
    if (["controller", "ferryctl"].includes(name)) {
      const user = body.filter((i) => i.getKeyword() === "USER").pop();
      if (!user || /^(0|root)\b/.test(user.getArgumentsContent())) {
        errors.push(`stage ${name} must run as a non-root USER`);
      }
    }
  }
  return errors;
}
