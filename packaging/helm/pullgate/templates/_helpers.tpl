{{/* Names */}}
{{- define "pullgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pullgate.fullname" -}}
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

{{- define "pullgate.hub.fullname" -}}
{{- printf "%s-hub" (include "pullgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pullgate.agent.fullname" -}}
{{- printf "%s-agent" (include "pullgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels */}}
{{- define "pullgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "pullgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pullgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "pullgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pullgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pullgate.hub.labels" -}}
{{ include "pullgate.labels" . }}
app.kubernetes.io/component: hub
{{- end -}}

{{- define "pullgate.hub.selectorLabels" -}}
{{ include "pullgate.selectorLabels" . }}
app.kubernetes.io/component: hub
{{- end -}}

{{- define "pullgate.agent.labels" -}}
{{ include "pullgate.labels" . }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "pullgate.agent.selectorLabels" -}}
{{ include "pullgate.selectorLabels" . }}
app.kubernetes.io/component: agent
{{- end -}}

{{/* image: repository@digest or repository:tag (default appVersion). Call with (dict "image" .Values.hub.image "ctx" $). */}}
{{- define "pullgate.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "pullgate.hub.serviceAccountName" -}}
{{- if .Values.hub.serviceAccount.create -}}
{{- default (include "pullgate.hub.fullname" .) .Values.hub.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.hub.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pullgate.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create -}}
{{- default (include "pullgate.agent.fullname" .) .Values.agent.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.agent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The hub keeps something in its data dir unless everything is external. */}}
{{- define "pullgate.hub.needsData" -}}
{{- $h := .Values.hub -}}
{{- if or (not (or $h.database.url $h.database.existingSecret)) (not $h.nats.url) (not $h.keys.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "pullgate.hub.pvc" -}}
{{- if and .Values.hub.persistence.enabled (include "pullgate.hub.needsData" .) -}}true{{- end -}}
{{- end -}}

{{- define "pullgate.hub.databaseSecret" -}}
{{- default (printf "%s-database" (include "pullgate.hub.fullname" .)) .Values.hub.database.existingSecret -}}
{{- end -}}

{{- define "pullgate.agent.joinTokenSecret" -}}
{{- default (printf "%s-join-token" (include "pullgate.agent.fullname" .)) .Values.agent.joinToken.existingSecret -}}
{{- end -}}

{{- define "pullgate.agent.natsURL" -}}
{{- if .Values.agent.natsURL -}}
{{- .Values.agent.natsURL -}}
{{- else if .Values.hub.nats.url -}}
{{- .Values.hub.nats.url -}}
{{- else -}}
{{- printf "nats://%s.%s.svc:%d" (include "pullgate.hub.fullname" .) .Release.Namespace (int .Values.hub.service.natsPort) -}}
{{- end -}}
{{- end -}}

{{/* The hub's URL as nodes reach it, for containerd's hosts.toml. */}}
{{- define "pullgate.agent.hubURL" -}}
{{- if .Values.agent.containerd.hubURL -}}
{{- .Values.agent.containerd.hubURL -}}
{{- else if and .Values.hub.enabled .Values.hub.publicURL -}}
{{- .Values.hub.publicURL -}}
{{- end -}}
{{- end -}}

{{/*
The kubelet's credential provider paths on the nodes, from the preset and
the overrides, as a YAML dict: binDir, configPath, mountConfigDir.
*/}}
{{- define "pullgate.agent.kubeletPaths" -}}
{{- $k := .Values.agent.kubelet -}}
{{- $presets := dict
  "kubeadm" (dict "binDir" "/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec" "configPath" "/etc/kubernetes/image-credential-provider-config.yaml" "mountConfigDir" false)
  "k3s" (dict "binDir" "/var/lib/rancher/credentialprovider/bin" "configPath" "/var/lib/rancher/credentialprovider/config.yaml" "mountConfigDir" true)
  "rke2" (dict "binDir" "/var/lib/rancher/credentialprovider/bin" "configPath" "/var/lib/rancher/credentialprovider/config.yaml" "mountConfigDir" true)
  "custom" (dict "binDir" "" "configPath" "" "mountConfigDir" $k.mountConfigDir)
-}}
{{- $p := get $presets $k.preset -}}
{{- if not $p -}}
{{- fail (printf "agent.kubelet.preset %q: want kubeadm, k3s, rke2 or custom" $k.preset) -}}
{{- end -}}
{{- $bin := default $p.binDir $k.binDir -}}
{{- $cfg := default $p.configPath $k.configPath -}}
{{- if not $bin -}}
{{- fail "agent.kubelet.binDir is required with preset custom: the kubelet's --image-credential-provider-bin-dir" -}}
{{- end -}}
{{- if and $k.writeConfig (not $cfg) -}}
{{- fail "agent.kubelet.configPath is required with preset custom: the kubelet's --image-credential-provider-config" -}}
{{- end -}}
{{- if or (not (isAbs $bin)) (and $cfg (not (isAbs $cfg))) -}}
{{- fail "agent.kubelet.binDir and agent.kubelet.configPath must be absolute paths on the node" -}}
{{- end -}}
binDir: {{ $bin | clean | quote }}
configPath: {{ $cfg | clean | quote }}
mountConfigDir: {{ $p.mountConfigDir }}
{{- end -}}

{{/* Checks that fail rendering with a message saying what to set. */}}
{{- define "pullgate.validate" -}}
{{- $h := .Values.hub -}}
{{- if $h.enabled -}}
{{- if lt (int $h.replicas) 1 -}}
{{- fail (printf "hub.replicas=%v: want at least 1" $h.replicas) -}}
{{- end -}}
{{- if and $h.database.url $h.database.existingSecret -}}
{{- fail "set hub.database.url or hub.database.existingSecret, not both" -}}
{{- end -}}
{{- if and $h.database.url (not (or (hasPrefix "postgres://" $h.database.url) (hasPrefix "postgresql://" $h.database.url))) -}}
{{- fail "hub.database.url: want a postgres:// or postgresql:// URL" -}}
{{- end -}}
{{- if and $h.nats.url (not (regexMatch "^(nats|tls|ws|wss)://" $h.nats.url)) -}}
{{- fail "hub.nats.url: want a nats:// (or tls://, ws://, wss://) URL" -}}
{{- end -}}
{{- if gt (int $h.replicas) 1 -}}
{{- $missing := list -}}
{{- if not (or $h.database.url $h.database.existingSecret) -}}
{{- $missing = append $missing "PostgreSQL (hub.database.url or hub.database.existingSecret)" -}}
{{- end -}}
{{- if not $h.nats.url -}}
{{- $missing = append $missing "an external NATS (hub.nats.url)" -}}
{{- end -}}
{{- if not $h.keys.existingSecret -}}
{{- $missing = append $missing "the keys all replicas share (hub.keys.existingSecret)" -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "hub.replicas=%d: more than one hub replica needs %s. The embedded SQLite and NATS (the default) run exactly one replica." (int $h.replicas) (join ", " $missing)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $a := .Values.agent -}}
{{- if $a.enabled -}}
{{- if not (or $a.joinToken.value $a.joinToken.existingSecret) -}}
{{- fail "agent.joinToken.value or agent.joinToken.existingSecret is required: create the cluster at the hub (pullgate-hub cluster create) and pass its join token" -}}
{{- end -}}
{{- if and $a.joinToken.value $a.joinToken.existingSecret -}}
{{- fail "set agent.joinToken.value or agent.joinToken.existingSecret, not both" -}}
{{- end -}}
{{- if and (not $a.natsURL) (not $h.enabled) (not $h.nats.url) -}}
{{- fail "agent.natsURL is required when this release does not deploy the hub (hub.enabled=false): the hub's NATS URL, e.g. nats://hub.example.com:4222" -}}
{{- end -}}
{{- if and $a.kubelet.install $a.kubelet.writeConfig (not $a.kubelet.matchImages) -}}
{{- fail "agent.kubelet.matchImages is required to write the kubelet config: the upstream hosts the nodes pull through the hub and the hub's host, e.g. {ghcr.io,hub.example.com}" -}}
{{- end -}}
{{- if and $a.containerd.configPath (not (include "pullgate.agent.hubURL" .)) -}}
{{- fail "agent.containerd.hubURL is required with agent.containerd.configPath (or hub.publicURL when this release deploys the hub): the hub's URL as the nodes' containerd reaches it" -}}
{{- end -}}
{{- if and (not $a.containerd.configPath) (or $a.containerd.hubURL $a.containerd.hubCAFile $a.containerd.mirrorHosts) -}}
{{- fail "agent.containerd.hubURL, hubCAFile and mirrorHosts need agent.containerd.configPath (containerd's registry config_path on the nodes)" -}}
{{- end -}}
{{- $_ := include "pullgate.agent.kubeletPaths" . -}}
{{- end -}}
{{- end -}}
