{{/* Names, labels and the pieces every Deployment shares. */}}

{{- define "greentic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "greentic.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "greentic.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "greentic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: greentic
{{- end }}

{{/* Selector labels of one service: (dict "ctx" $ "service" "router") */}}
{{- define "greentic.selectorLabels" -}}
app.kubernetes.io/name: {{ include "greentic.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end }}

{{- define "greentic.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "greentic.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "greentic.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "greentic.natsUrl" -}}
{{- if .Values.natsConnection.url }}
{{- .Values.natsConnection.url }}
{{- else if .Values.nats.enabled }}
{{- printf "nats://%s-nats:%d" .Release.Name (int .Values.natsConnection.port) }}
{{- else }}
{{- printf "nats://nats:%d" (int .Values.natsConnection.port) }}
{{- end }}
{{- end }}

{{- define "greentic.natsMonitoringEndpoint" -}}
{{- if .Values.natsConnection.monitoringEndpoint }}
{{- .Values.natsConnection.monitoringEndpoint }}
{{- else if .Values.nats.enabled }}
{{- printf "%s-nats-headless.%s.svc.cluster.local:8222" .Release.Name .Release.Namespace }}
{{- else }}
{{- printf "nats.%s.svc.cluster.local:8222" .Release.Namespace }}
{{- end }}
{{- end }}

{{- define "greentic.bundleConfigMap" -}}
{{- default (printf "%s-bundle" (include "greentic.fullname" .)) .Values.bundle.existingConfigMap }}
{{- end }}

{{- define "greentic.providersSecret" -}}
{{- default (printf "%s-providers" (include "greentic.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "greentic.trustKeysSecret" -}}
{{- default (printf "%s-trust-keys" (include "greentic.fullname" .)) .Values.secrets.existingTrustKeysSecret }}
{{- end }}

{{- define "greentic.hasTrustKeys" -}}
{{- if or .Values.secrets.trustKeys .Values.secrets.existingTrustKeysSecret }}true{{ end }}
{{- end }}

{{- define "greentic.hasProviderSecrets" -}}
{{- if or .Values.secrets.providers .Values.secrets.existingSecret }}true{{ end }}
{{- end }}

{{- define "greentic.leaseName" -}}
{{- default (printf "%s-pack-loader" (include "greentic.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "greentic.publicUrl" -}}
{{- if .Values.webchat.publicUrl }}
{{- .Values.webchat.publicUrl }}
{{- else if and .Values.publicIngress.enabled .Values.publicIngress.hosts }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.publicIngress.tls) 0)) (first .Values.publicIngress.hosts) }}
{{- end }}
{{- end }}

{{/* The most executors that may run at once (GREENTIC_EXECUTOR_REPLICAS). */}}
{{- define "greentic.executorMax" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.maxReplicas }}{{ else }}{{ .Values.executor.replicas }}{{ end }}
{{- end }}

{{/* The KEDA formula adding up every partition consumer's lag: "p0 + p1 + …". */}}
{{- define "greentic.partitionLagSum" -}}
{{- $names := list }}
{{- range $partition := until (int .Values.partitions) }}{{ $names = append $names (printf "p%d" $partition) }}{{ end }}
{{- join " + " $names }}
{{- end }}

{{/* Refuse values the schema cannot express. */}}
{{- define "greentic.validate" -}}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- if le $grace (int .Values.ackWaitSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed ackWaitSeconds (%d): a pod killed earlier leaves its messages for redelivery only after ack_wait" $grace (int .Values.ackWaitSeconds)) }}
{{- end }}
{{- if le $grace (add (int .Values.preStopSleepSeconds) (int .Values.drainTimeoutSeconds)) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + drainTimeoutSeconds (%d)" $grace (add (int .Values.preStopSleepSeconds) (int .Values.drainTimeoutSeconds))) }}
{{- end }}
{{- if and (eq .Values.sessions.backend "redis") (not (or .Values.sessions.redis.url .Values.sessions.redis.existingSecret)) }}
{{- fail "sessions.backend=redis needs sessions.redis.url or sessions.redis.existingSecret" }}
{{- end }}
{{- if and .Values.admin.enabled (not (or .Values.admin.tokens .Values.admin.existingSecret)) }}
{{- fail "admin.enabled needs admin.tokens or admin.existingSecret (GREENTIC_ADMIN_TOKENS)" }}
{{- end }}
{{- if and .Values.admin.enabled (eq (int .Values.ports.admin) (int .Values.ports.http)) }}
{{- fail "ports.admin must differ from ports.http: the admin API is never on the public port" }}
{{- end }}
{{- if gt (int (include "greentic.executorMax" .)) (int .Values.partitions) }}
{{- fail (printf "at most %d executors get work with partitions=%d: raise partitions (for a new deployment) or lower the executor count" (int .Values.partitions) (int .Values.partitions)) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must be >= autoscaling.minReplicas" }}
{{- end }}
{{- end }}
