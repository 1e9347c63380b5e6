// Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0

// ferry-chart-render renders a Helm chart the way `helm template` does, for tests on machines
// without Helm. It uses the engine Helm is built on — Go's text/template with the sprig
// function library — and re-creates Helm's own additions (include, tpl, required, toYaml,
// fromYaml, toJson, fromJson, lookup) and its built-in objects (.Values, .Release, .Chart,
// .Capabilities, .Template, .Files.Get). It is not Helm: the rest of .Files, hooks, subcharts,
// values.schema.json and Capabilities discovery are not implemented, and a chart that uses them fails to render here
// (an unknown function is a parse error), never silently renders differently.
//
// Usage: ferry-chart-render [--include-crds] [--namespace NS] [--name NAME] [-f values.yaml]... CHART_DIR
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type options struct {
	chartDir    string
	valueFiles  []string
	namespace   string
	releaseName string
	includeCrds bool
}

func parseArgs(args []string) (options, error) {
	opts := options{namespace: "ferry-system", releaseName: "ferry"}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		next := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", arg)
			}
			i++
			return args[i], nil
		}
		var err error
		switch arg {
		case "-f", "--values":
			var v string
			v, err = next()
			opts.valueFiles = append(opts.valueFiles, v)
		case "--namespace", "-n":
			opts.namespace, err = next()
		case "--name":
			opts.releaseName, err = next()
		case "--include-crds":
			opts.includeCrds = true
		default:
			if strings.HasPrefix(arg, "-") || opts.chartDir != "" {
				return opts, fmt.Errorf("unexpected argument %q", arg)
			}
			opts.chartDir = arg
		}
		if err != nil {
			return opts, err
		}
	}
	if opts.chartDir == "" {
		return opts, errors.New("usage: ferry-chart-render [--include-crds] [-n NS] [--name NAME] [-f values.yaml]... CHART_DIR")
	}
	return opts, nil
}

func readYamlMap(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// coalesce merges src over dst as Helm does for -f files: maps merge key by key, other values
// replace, and an explicit null deletes the key.
func coalesce(dst, src map[string]interface{}) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		srcMap, srcIsMap := v.(map[string]interface{})
		dstMap, dstIsMap := dst[k].(map[string]interface{})
		if srcIsMap && dstIsMap {
			coalesce(dstMap, srcMap)
		} else {
			dst[k] = v
		}
	}
}

// chartMetadata exposes Chart.yaml with the capitalized field names templates use.
func chartMetadata(raw map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range raw {
		out[strings.ToUpper(k[:1])+k[1:]] = v
	}
	return out
}

func toYaml(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYaml(s string) map[string]interface{} {
	out := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &out); err != nil {
		out["Error"] = err.Error()
	}
	return out
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	out := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		out["Error"] = err.Error()
	}
	return out
}

// chartFiles is Helm's .Files, reduced to Get: a file of the chart by its path relative to the
// chart folder, "" when it is missing (as Helm answers; templates use `required` to fail).
type chartFiles struct {
	dir string
}

func (f chartFiles) Get(name string) string {
	clean := filepath.Clean(name)
	if filepath.IsAbs(clean) || strings.HasPrefix(clean, "..") || strings.HasPrefix(clean, "templates/") {
		return ""
	}
	data, err := os.ReadFile(filepath.Join(f.dir, clean))
	if err != nil {
		return ""
	}
	return string(data)
}

type renderer struct {
	tmpl *template.Template
}

func (r *renderer) funcMap() template.FuncMap {
	funcs := sprig.TxtFuncMap()
	// Helm removes these so a chart renders the same on every machine.
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYaml
	funcs["fromYaml"] = fromYaml
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		if err := r.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := r.tmpl.Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	// `helm template` has no cluster either: lookup finds nothing.
	funcs["lookup"] = func(string, string, string, string) map[string]interface{} {
		return map[string]interface{}{}
	}
	return funcs
}

func listFiles(dir string, exts ...string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		for _, ext := range exts {
			if strings.HasSuffix(e.Name(), ext) {
				out = append(out, e.Name())
				break
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func run(opts options) (string, error) {
	chartRaw, err := readYamlMap(filepath.Join(opts.chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	chartName, _ := chartRaw["name"].(string)
	if chartName == "" {
		return "", errors.New("Chart.yaml has no name")
	}
	values, err := readYamlMap(filepath.Join(opts.chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range opts.valueFiles {
		overlay, err := readYamlMap(f)
		if err != nil {
			return "", err
		}
		coalesce(values, overlay)
	}

	r := &renderer{tmpl: template.New(chartName)}
	// Helm's non-strict mode: a missing key renders empty, not "<no value>".
	r.tmpl.Option("missingkey=zero")
	r.tmpl.Funcs(r.funcMap())
	tdir := filepath.Join(opts.chartDir, "templates")
	names, err := listFiles(tdir, ".yaml", ".yml", ".tpl", ".txt")
	if err != nil {
		return "", err
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(tdir, n))
		if err != nil {
			return "", err
		}
		if _, err := r.tmpl.New(chartName + "/templates/" + n).Parse(string(data)); err != nil {
			return "", err
		}
	}

	top := map[string]interface{}{
		"Values": values,
		"Chart":  chartMetadata(chartRaw),
		"Files":  chartFiles{dir: opts.chartDir},
		"Release": map[string]interface{}{
			"Name": opts.releaseName, "Namespace": opts.namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{
				"Version": "v1.30.0", "Major": "1", "Minor": "30", "GitVersion": "v1.30.0",
			},
			"APIVersions": []string{},
		},
	}

	var out strings.Builder
	if opts.includeCrds {
		cdir := filepath.Join(opts.chartDir, "crds")
		crds, err := listFiles(cdir, ".yaml", ".yml", ".json")
		if err != nil {
			return "", err
		}
		for _, n := range crds {
			data, err := os.ReadFile(filepath.Join(cdir, n))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&out, "---\n# Source: %s/crds/%s\n%s\n", chartName, n, strings.TrimSpace(string(data)))
		}
	}
	for _, n := range names {
		// Partials (leading underscore) and NOTES.txt are not manifests.
		if strings.HasPrefix(n, "_") || strings.HasSuffix(n, ".txt") {
			continue
		}
		name := chartName + "/templates/" + n
		scope := map[string]interface{}{}
		for k, v := range top {
			scope[k] = v
		}
		scope["Template"] = map[string]interface{}{"Name": name, "BasePath": chartName + "/templates"}
		var buf bytes.Buffer
		if err := r.tmpl.ExecuteTemplate(&buf, name, scope); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(text))
	}
	return out.String(), nil
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-chart-render:", err)
		os.Exit(2)
	}
	out, err := run(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry-chart-render:", err)
		os.Exit(1)
	}
	fmt.Print(out)
}
