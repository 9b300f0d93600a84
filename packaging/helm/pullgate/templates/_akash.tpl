{{/* Akash binding controller (akash.enabled): names, labels, checks. */}}
{{- define "pullgate.akash.fullname" -}}
{{- printf "%s-akash" (include "pullgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pullgate.akash.labels" -}}
{{ include "pullgate.labels" . }}
app.kubernetes.io/component: akash-controller
{{- end -}}

{{- define "pullgate.akash.selectorLabels" -}}
{{ include "pullgate.selectorLabels" . }}
app.kubernetes.io/component: akash-controller
{{- end -}}

{{- define "pullgate.akash.tlsSecret" -}}
{{- default (printf "%s-webhook-tls" (include "pullgate.akash.fullname" .)) .Values.akash.webhook.tls.secretName -}}
{{- end -}}

{{/* The hub's URL for the controller: akash.hubURL, else hub.publicURL. */}}
{{- define "pullgate.akash.hubURL" -}}
{{- if .Values.akash.hubURL -}}
{{- .Values.akash.hubURL -}}
{{- else if .Values.hub.publicURL -}}
{{- .Values.hub.publicURL -}}
{{- end -}}
{{- end -}}

{{/* Whether the webhook runs: it serves only imported credentials' images. */}}
{{- define "pullgate.akash.webhook" -}}
{{- if and .Values.akash.importCredentials .Values.akash.webhook.enabled -}}true{{- end -}}
{{- end -}}

{{- define "pullgate.akash.validate" -}}
{{- $k := .Values.akash -}}
{{- if not $k.cluster -}}
{{- fail "akash.cluster is required with akash.enabled: the hub's name of this cluster (pullgate-hub cluster create NAME --akash-provider akash1... --akash-controller NAMESPACE:SERVICEACCOUNT)" -}}
{{- end -}}
{{- $u := include "pullgate.akash.hubURL" . -}}
{{- if not $u -}}
{{- fail "akash.hubURL is required with akash.enabled (or hub.publicURL): the hub's URL as the controller reaches it" -}}
{{- end -}}
{{- if not (regexMatch "^https?://[^/]+" $u) -}}
{{- fail (printf "akash.hubURL %q: want https://HOST[:PORT]" $u) -}}
{{- end -}}
{{- if and (hasPrefix "http://" $u) (not $k.insecureHub) (not (regexMatch "^http://(127\\.[0-9.]+|localhost|\\[::1\\])(:[0-9]+)?(/.*)?$" $u)) -}}
{{- fail (printf "akash.hubURL %s is plain text: the controller's service-account token would cross the network in clear text; use https:// or set akash.insecureHub=true" $u) -}}
{{- end -}}
{{- if and $k.apiServer (not (regexMatch "^[^:/\\s]+:[0-9]+$" $k.apiServer)) -}}
{{- fail (printf "akash.apiServer %q: want HOST:PORT of the Kubernetes API server" $k.apiServer) -}}
{{- end -}}
{{- if and $k.hubCA.secretName $k.hubCA.configMapName -}}
{{- fail "set akash.hubCA.secretName or akash.hubCA.configMapName, not both" -}}
{{- end -}}
{{- end -}}
