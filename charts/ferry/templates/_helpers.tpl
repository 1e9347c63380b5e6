{{/* Copyright Ferry authors. SPDX-License-Identifier: Apache-2.0 */}}

{{/* Labels every object carries. */}}
{{- define "ferry.labels" -}}
app.kubernetes.io/part-of: ferry
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ferry.image" -}}
{{- $root := index . 0 -}}
{{- printf "%s/%s:%s" $root.Values.image.repository (index . 1) (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}

{{- define "ferry.rootNamespace" -}}
{{- default .Release.Namespace .Values.rootNamespace -}}
{{- end -}}

{{- define "ferry.controllerAddress" -}}
{{- printf "ferry-controller.%s.svc:%v" .Release.Namespace .Values.controller.ports.grpc -}}
{{- end -}}

{{/* Fails the render with a clear reason on values that cannot work. */}}
{{- define "ferry.validate" -}}
{{- if not (has .Values.ca.source (list "generated" "secret" "file")) -}}
{{- fail (printf "ca.source must be generated, secret or file (got %q)" .Values.ca.source) -}}
{{- end -}}
{{- if and (eq .Values.ca.source "file") (empty .Values.ca.file.volume) -}}
{{- fail "ca.source=file needs ca.file.volume (the volume that holds the PEM files)" -}}
{{- end -}}
{{- if not (has .Values.logLevel (list "debug" "info" "warn" "error")) -}}
{{- fail (printf "logLevel must be debug, info, warn or error (got %q)" .Values.logLevel) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" .Values.trustDomain) -}}
{{- fail (printf "trustDomain must be a lower-case DNS name (got %q)" .Values.trustDomain) -}}
{{- end -}}
{{- if not (regexMatch "^[A-Za-z0-9._-]{1,63}$" (toString .Values.cluster.name)) -}}
{{- fail (printf "cluster.name must be 1-63 letters, digits, '-', '_' or '.' (got %q)" (toString .Values.cluster.name)) -}}
{{- end -}}
{{- if or (empty .Values.cluster.podCIDRs) (empty .Values.cluster.serviceCIDRs) -}}
{{- fail "cluster.podCIDRs and cluster.serviceCIDRs must list the cluster's pod and Service ranges" -}}
{{- end -}}
{{- if lt (int .Values.controller.replicas) 1 -}}
{{- fail "controller.replicas must be at least 1" -}}
{{- end -}}
{{- end -}}
