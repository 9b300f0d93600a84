{{- define "pullgate.notes" -}}
{{- $ns := .Release.Namespace -}}
{{- if .Values.hub.enabled }}
pullgate hub: {{ include "pullgate.hub.fullname" . }} in namespace {{ $ns }}
  HTTP (proxy, API): port {{ .Values.hub.service.httpPort }}{{ if not .Values.hub.nats.url }}, NATS (agents, TLS{{ if .Values.hub.nats.insecure }}: OFF, plain text{{ end }}): port {{ .Values.hub.service.natsPort }}{{ end }}
{{- if and (not .Values.hub.nats.url) (not .Values.hub.nats.insecure) }}
  Agents of other clusters: agent.natsURL=tls://<hub host>:{{ .Values.hub.service.natsPort }} and, in agent.natsCA,
  the CA: kubectl -n {{ $ns }} get secret {{ include "pullgate.hub.natsTLSSecret" . }} -o jsonpath='{.data.ca\.crt}' | base64 -d
{{- end }}

The operator CLI runs inside the hub pod with its admin token:

  kubectl -n {{ $ns }} exec deploy/{{ include "pullgate.hub.fullname" . }} -- \
    pullgate-hub --token-file /var/lib/pullgate/admin.token {{ if .Values.hub.tls.secretName }}--hub https://127.0.0.1:5080 {{ end }}workspace list

Nodes pull through the hub with their own containerd, which does not use the
cluster's DNS: make the hub reachable from the nodes (hub.service.type, an
Ingress or a load balancer) and set hub.publicURL to that address.
{{- if not .Values.hub.publicURL }}
WARNING: hub.publicURL is not set; auth challenges will name whatever
address each client used.
{{- end }}
{{- end }}
{{- if .Values.agent.enabled }}
{{- $paths := include "pullgate.agent.kubeletPaths" . | fromYaml }}

pullgate agent: DaemonSet {{ include "pullgate.agent.fullname" . }}, connecting to {{ include "pullgate.agent.natsURL" . }}
{{- if .Values.agent.kubelet.install }}

Each node gets the credential helper in {{ $paths.binDir }}
{{- if .Values.agent.kubelet.writeConfig }} and pullgate's
provider in {{ $paths.configPath }}{{ end }}. The chart cannot change kubelet
flags: start the kubelet with

  --image-credential-provider-bin-dir={{ $paths.binDir }}
  --image-credential-provider-config={{ $paths.configPath }}

{{- if or (eq .Values.agent.kubelet.preset "k3s") (eq .Values.agent.kubelet.preset "rke2") }}
({{ .Values.agent.kubelet.preset }} passes these two flags by itself when both paths exist at its start)
{{- end }}
and restart it ({{ if eq .Values.agent.kubelet.preset "k3s" }}systemctl restart k3s or k3s-agent{{ else if eq .Values.agent.kubelet.preset "rke2" }}systemctl restart rke2-server or rke2-agent{{ else }}systemctl restart kubelet{{ end }}) once after the first
install: it reads that config only when it starts.
{{- end }}
{{- if .Values.agent.kubelet.shared }}

Shared cluster: the kubelet passes pods' service-account tokens (audience
{{ .Values.agent.kubelet.audience | quote }}). Needs Kubernetes 1.34+ (or 1.33 with the
KubeletServiceAccountTokenForCredentialProviders feature gate on).
{{- end }}
{{- end }}
{{- if .Values.akash.enabled }}

Akash binding controller: Deployment {{ include "pullgate.akash.fullname" . }}, cluster {{ .Values.akash.cluster | quote }} on {{ include "pullgate.akash.hubURL" . }}.
The hub accepts its service-account token only once the cluster names it:

  pullgate-hub cluster update {{ .Values.akash.cluster }} --akash-provider akash1... \
    --akash-controller {{ .Release.Namespace }}:{{ include "pullgate.akash.fullname" . }}
{{- if .Values.akash.importCredentials }}

Credentials import is on (the hub needs --akash-import-credentials). The
provider still keeps the SDL's password in its Manifest and Secret: ask
tenants to move the credential to the hub and rotate it.
{{- end }}
{{- end }}

{{- end -}}
