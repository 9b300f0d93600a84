// Package k8s is the end-to-end suite on a real one-node Kubernetes:
// kube-apiserver on kine, kube-controller-manager, kube-scheduler, a
// kubelet driving the containerd the e2e suite uses, with Debian's runc.
// The chart is installed with helm, pods pull through the hub with the
// kubelet running pullgate-credential-provider. Run it with
// `make e2e-k8s` (build tag e2e_k8s; builds the Kubernetes binaries once
// with build-tools.sh).
package k8s
