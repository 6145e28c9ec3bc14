{{/* The four services, in the order they are rendered. */}}
{{- define "credentialing.services" -}}gateway credential chat stats{{- end -}}
{{/* The services that autoscale, and the query each scales on. */}}
{{- define "credentialing.scaled" -}}gateway credential chat{{- end -}}

{{- define "credentialing.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "credentialing.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: <fullname>-<component>. */}}
{{- define "credentialing.component" -}}
{{- printf "%s-%s" (include "credentialing.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "credentialing.selectorLabels" -}}
app.kubernetes.io/name: {{ include "credentialing.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "credentialing.labels" -}}
{{ include "credentialing.selectorLabels" . }}
app.kubernetes.io/version: {{ include "credentialing.tag" .root | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: credentialing
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "credentialing.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "credentialing.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .name (include "credentialing.tag" .root) -}}
{{- end -}}

{{/* Seconds of a Go duration such as 30s, 2m or 1h30m (whole seconds). */}}
{{- define "credentialing.seconds" -}}
{{- $d := . | toString -}}
{{- $total := 0 -}}
{{- range $part := regexFindAll "[0-9]+(h|ms|m|s)" $d -1 -}}
{{- $n := regexFind "^[0-9]+" $part | atoi -}}
{{- if hasSuffix "ms" $part -}}{{- else if hasSuffix "h" $part -}}{{- $total = add $total (mul $n 3600) -}}
{{- else if hasSuffix "m" $part -}}{{- $total = add $total (mul $n 60) -}}
{{- else -}}{{- $total = add $total $n -}}{{- end -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* The pod's grace period: the preStop pause, the drain, and 5s to exit. */}}
{{- define "credentialing.gracePeriod" -}}
{{- add .root.Values.preStopSeconds (include "credentialing.seconds" .svc.drainTimeout | atoi) 5 -}}
{{- end -}}

{{- define "credentialing.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.podSecurityContext.runAsUser }}
runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "credentialing.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* Environment every service shares. */}}
{{- define "credentialing.commonEnv" -}}
{{- $v := .root.Values -}}
- name: HTTP_ADDR
  value: ":8080"
- name: LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: REQUEST_TIMEOUT
  value: {{ $v.config.requestTimeout | quote }}
- name: READ_TIMEOUT
  value: {{ $v.config.readTimeout | quote }}
- name: SHUTDOWN_TIMEOUT
  value: {{ .svc.drainTimeout | quote }}
- name: MAX_CONCURRENT_FILE_OPERATIONS
  value: {{ $v.config.maxConcurrentFileOperations | quote }}
{{- with $v.config.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
# The internal signing keys, mounted from their Secret (never inlined).
- name: INTERNAL_AUTH_KEYS_FILE
  value: {{ include "credentialing.internalAuthFile" . | quote }}
{{- if ne .name "gateway" }}
{{ include "credentialing.secretEnv" (dict "env" "DATABASE_URL" "secret" $v.secrets.database.existingSecret "key" $v.secrets.database.urlKey) }}
{{ include "credentialing.secretEnv" (dict "env" "CURSOR_SECRET" "secret" $v.secrets.cursor.existingSecret "key" $v.secrets.cursor.key) }}
{{- end }}
{{- end -}}

{{/* Where every pod finds INTERNAL_AUTH_KEYS (a file of the Secret volume). */}}
{{- define "credentialing.internalAuthDir" -}}/etc/provcred/internal-auth{{- end -}}
{{- define "credentialing.apiKeysDir" -}}/etc/provcred/api-keys{{- end -}}
{{- define "credentialing.apiKeysFile" -}}{{ include "credentialing.apiKeysDir" . }}/keys{{- end -}}
{{- define "credentialing.internalAuthFile" -}}{{ include "credentialing.internalAuthDir" . }}/keys{{- end -}}

{{/* Environment of one service beyond the common part. */}}
{{- define "credentialing.serviceEnv" -}}
{{- $v := .root.Values -}}
{{- $svc := .svc -}}
{{- if eq .name "gateway" }}
- name: CREDENTIAL_URL
  value: {{ printf "http://%s:8080" (include "credentialing.component" (dict "root" .root "name" "credential")) | quote }}
- name: STATS_URL
  value: {{ printf "http://%s:8080" (include "credentialing.component" (dict "root" .root "name" "stats")) | quote }}
- name: CHAT_URL
  value: {{ printf "http://%s:8080" (include "credentialing.component" (dict "root" .root "name" "chat")) | quote }}
- name: MAX_CONCURRENT_CONNECTIONS
  value: {{ $svc.maxConcurrentConnections | quote }}
- name: RATE_LIMIT_REQUESTS_PER_MINUTE
  value: {{ $svc.rateLimitRequestsPerMinute | quote }}
- name: UPSTREAM_TIMEOUT
  value: {{ $svc.upstreamTimeout | quote }}
- name: IMPORT_TIMEOUT
  value: {{ $v.config.importTimeout | quote }}
{{- with $svc.trustedProxies }}
- name: TRUSTED_PROXIES
  value: {{ join "," . | quote }}
{{- end }}
- name: API_KEYS_FILE
  value: {{ include "credentialing.apiKeysFile" . }}
{{- with $v.secrets.redis.existingSecret }}
{{ include "credentialing.secretEnv" (dict "env" "REDIS_URL" "secret" . "key" $v.secrets.redis.urlKey) }}
{{- end }}
{{- else if eq .name "credential" }}
- name: IMPORT_TIMEOUT
  value: {{ $v.config.importTimeout | quote }}
- name: MAX_CONCURRENT_BATCH_REQUESTS
  value: {{ $svc.maxConcurrentBatchRequests | quote }}
- name: NPPES_MODE
  value: {{ $svc.nppesMode | quote }}
- name: NPPES_API_URL
  value: {{ $svc.nppesApiURL | quote }}
{{- with $svc.licenseVerifyURLs }}
- name: LICENSE_VERIFY_URLS
  value: {{ . | quote }}
{{- end }}
{{- else if eq .name "chat" }}
- name: LLM_BASE_URL
  value: {{ $svc.llmBaseURL | quote }}
- name: LLM_MODEL
  value: {{ $svc.llmModel | quote }}
- name: LLM_TIMEOUT
  value: {{ $svc.llmTimeout | quote }}
- name: MAX_CONCURRENT_LLM_REQUESTS
  value: {{ $svc.maxConcurrentLLMRequests | quote }}
- name: CREDENTIAL_URL
  value: {{ printf "http://%s:8080" (include "credentialing.component" (dict "root" .root "name" "credential")) | quote }}
- name: STATS_URL
  value: {{ printf "http://%s:8080" (include "credentialing.component" (dict "root" .root "name" "stats")) | quote }}
{{- with $v.secrets.llm.existingSecret }}
{{ include "credentialing.secretEnv" (dict "env" "LLM_API_KEY" "secret" . "key" $v.secrets.llm.key) }}
{{- end }}
{{- else if eq .name "stats" }}
{{- with $v.secrets.database.replicaUrlKey }}
{{ include "credentialing.secretEnv" (dict "env" "STATS_DATABASE_URL" "secret" $v.secrets.database.existingSecret "key" . "optional" true) }}
{{- end }}
{{- end }}
{{- with $svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy peers of one component's pods. */}}
{{- define "credentialing.peer" -}}
- podSelector:
    matchLabels:
      {{- include "credentialing.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* Egress rule: to peers on TCP ports (and UDP for DNS). */}}
{{- define "credentialing.egressRule" -}}
{{- if .rule.to -}}
- to:
    {{- toYaml .rule.to | nindent 4 }}
  ports:
    {{- range .rule.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- if $.udp }}
    - {protocol: UDP, port: {{ . }}}
    {{- end }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* The query each autoscaled service scales on (KEDA trigger, and the
     prometheus-adapter external metric of deploy/prometheus-adapter). */}}
{{- define "credentialing.scaleQuery" -}}
{{- $ns := .root.Release.Namespace -}}
{{- if eq .name "gateway" -}}
sum(http_server_inflight_requests{service="gateway",namespace="{{ $ns }}"})
{{- else if eq .name "credential" -}}
max(credential_batch_queue_depth{service="credential",namespace="{{ $ns }}"})
{{- else if eq .name "chat" -}}
(sum(semaphore_in_use{service="chat",name="llm",namespace="{{ $ns }}"}) + sum(semaphore_waiting{service="chat",name="llm",namespace="{{ $ns }}"})) / sum(semaphore_capacity{service="chat",name="llm",namespace="{{ $ns }}"})
{{- end -}}
{{- end -}}

{{/* The target: per pod (AverageValue) for in-flight and queue depth, a
     share of capacity (Value) for the chat semaphore. */}}
{{- define "credentialing.scaleTarget" -}}
{{- $a := (index .root.Values .name).autoscaling -}}
{{- if eq .name "gateway" -}}AverageValue {{ $a.inflightPerPod }}
{{- else if eq .name "credential" -}}AverageValue {{ $a.queuedJobsPerPod }}
{{- else if eq .name "chat" -}}Value {{ $a.llmSaturation }}
{{- end -}}
{{- end -}}

{{/* External metric names served by prometheus-adapter for the HPAs. */}}
{{- define "credentialing.externalMetric" -}}
{{- if eq .name "gateway" -}}credentialing_gateway_inflight_requests
{{- else if eq .name "credential" -}}credentialing_credential_batch_queue_depth
{{- else if eq .name "chat" -}}credentialing_chat_llm_saturation
{{- end -}}
{{- end -}}
