#!/usr/bin/env python3
# Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0
"""The chart's PrometheusRule holds exactly the groups of charts/ferry/alerts/ferry-rules.yaml.

Usage: chart_rule_test.py RENDERER CHART_DIR VALUES_FILE
Renders the chart with its defaults (no PrometheusRule: it is off by default) and with
VALUES_FILE (which enables it), and compares the rendered spec.groups with the plain file.
"""
import subprocess
import sys

import yaml


def render(renderer, chart, *args):
    out = subprocess.run([renderer, *args, chart], check=True, capture_output=True, text=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def rules_of(docs):
    return [d for d in docs if d.get("kind") == "PrometheusRule"]


def main():
    renderer, chart, values = sys.argv[1:4]
    failures = []
    if rules_of(render(renderer, chart)):
        failures.append("the default render has a PrometheusRule (it must be off by default)")
    rules = rules_of(render(renderer, chart, "-f", values))
    with open(f"{chart}/alerts/ferry-rules.yaml") as f:
        plain = yaml.safe_load(f)
    if len(rules) != 1:
        failures.append(f"{values}: expected one PrometheusRule, got {len(rules)}")
    elif rules[0]["spec"] != {"groups": plain["groups"]}:
        failures.append("the PrometheusRule's spec differs from alerts/ferry-rules.yaml's groups")
    else:
        names = [r.get("alert") or r.get("record") for g in plain["groups"] for r in g["rules"]]
        print(f"PrometheusRule == alerts/ferry-rules.yaml: {len(names)} rules in "
              f"{len(plain['groups'])} groups ({', '.join(names)})")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
