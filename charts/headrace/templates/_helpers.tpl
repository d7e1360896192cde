{{/* Names and labels shared by every template. */}}

{{- define "headrace.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "headrace.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "headrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "headrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "headrace.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "headrace.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: headrace
{{- end -}}

{{- define "headrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "headrace.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "headrace.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Namespaces that get the flow ServiceAccount: the release's, the watched ones, extras. */}}
{{- define "headrace.flowNamespaces" -}}
{{- $all := concat (list .Release.Namespace) .Values.watchNamespaces .Values.flowServiceAccount.extraNamespaces -}}
{{- toJson (uniq $all) -}}
{{- end -}}

{{/*
Exactly the API calls the operator makes (see the chart's README section "RBAC"):
- flowruns: kopf lists and watches them, patches its finalizer and progress annotations;
  the reconcile gets them; schedules create them; Replace patches `spec.cancel`;
  history limits delete them.
- flowruns/status, deployments/status: the operator writes every status field.
- deployments.headrace.dev: read for each run; kopf watches them for schedules and
  patches its finalizer and annotations on them.
- pods: one per attempt: get, list/watch (kopf events), create, delete (timeouts, cancel),
  patch (removing the attempt-outcome finalizer).
- events: created on FlowRuns (`kubectl describe`).
*/}}
{{/*
kopf's resource and namespace observers: read-only, cluster-scoped. Without them kopf still
works (it falls back to the resources and namespaces it was given) but only after about a
minute of retries at every start, and it never notices CRDs that change while it runs.
*/}}
{{- define "headrace.discoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.watchNamespaces }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end -}}

{{- define "headrace.rules" -}}
- apiGroups: ["headrace.dev"]
  resources: ["flowruns"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["headrace.dev"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["headrace.dev"]
  resources: ["flowruns/status", "deployments/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create", "delete"]
{{- if eq .Values.config.daskClusters "dask-kubernetes" }}
- apiGroups: ["kubernetes.dask.org"]
  resources: ["daskclusters", "daskworkergroups"]
  verbs: ["create", "delete"]
{{- end }}
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* The web UI's labels: the operator's, with component ui. */}}
{{- define "headrace.uiLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "headrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ui
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: headrace
{{- end -}}

{{/*
Entries of an env list from values (`extraEnv`, `ui.extraEnv`): name with value or valueFrom.
*/}}
{{- define "headrace.extraEnv" -}}
{{- range . }}
- name: {{ .name }}
  {{- if hasKey . "value" }}
  value: {{ .value | toString | quote }}
  {{- end }}
  {{- with .valueFrom }}
  valueFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
