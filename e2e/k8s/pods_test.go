//go:build e2e_k8s

package k8s

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func meta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func objMeta(name, ns string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }

// testPod runs image on the node in the host's network namespace (no CNI
// here), bound to the node directly.
func testPod(ns, name, image string, policy corev1.PullPolicy) *corev1.Pod {
	zero := int64(0)
	return &corev1.Pod{TypeMeta: meta("v1", "Pod"), ObjectMeta: objMeta(name, ns), Spec: corev1.PodSpec{
		NodeName: nodeName, HostNetwork: true, TerminationGracePeriodSeconds: &zero,
		RestartPolicy: corev1.RestartPolicyNever,
		Tolerations:   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		Containers:    []corev1.Container{{Name: "c", Image: image, ImagePullPolicy: policy}},
	}}
}

// outcome is how a pod's start ended.
type outcome struct {
	running bool
	reason  string // the waiting reason (ErrImagePull, ImagePullBackOff, ...)
	message string
	took    time.Duration // from the pod's creation returning
}

func (o outcome) String() string {
	if o.running {
		return fmt.Sprintf("Running after %v", o.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s after %v: %s", o.reason, o.took.Round(time.Millisecond), o.message)
}

func pullFailed(reason string) bool {
	return reason == "ErrImagePull" || reason == "ImagePullBackOff"
}

// runPod creates the pod and waits until its container runs or its image
// pull fails.
func (c *cluster) runPod(p *corev1.Pod) outcome {
	c.t.Helper()
	c.create("/api/v1/namespaces/"+p.Namespace+"/pods", p)
	return c.waitPod(p.Namespace, p.Name, time.Now(), 3*time.Minute)
}

func (c *cluster) waitPod(ns, name string, since time.Time, d time.Duration) outcome {
	c.t.Helper()
	var o outcome
	waitFor(c.t, d, "pod "+ns+"/"+name+" running or failing to pull", func() (bool, error) {
		p, err := c.pod(ns, name)
		if err != nil {
			return false, err
		}
		for _, s := range p.Status.ContainerStatuses {
			switch {
			case s.State.Running != nil:
				o = outcome{running: true, took: time.Since(since)}
				return true, nil
			case s.State.Waiting != nil && pullFailed(s.State.Waiting.Reason):
				o = outcome{reason: s.State.Waiting.Reason, message: s.State.Waiting.Message, took: time.Since(since)}
				return true, nil
			case s.State.Terminated != nil:
				return false, fmt.Errorf("container terminated: %+v", s.State.Terminated)
			}
		}
		return false, fmt.Errorf("phase %s, statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
	})
	return o
}

// waitRunning waits for the pod to run, through pull errors and back-offs.
func (c *cluster) waitRunning(ns, name string, since time.Time, d time.Duration) outcome {
	c.t.Helper()
	var o outcome
	waitFor(c.t, d, "pod "+ns+"/"+name+" running", func() (bool, error) {
		p, err := c.pod(ns, name)
		if err != nil {
			return false, err
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running != nil {
				o = outcome{running: true, took: time.Since(since)}
				return true, nil
			}
		}
		return false, fmt.Errorf("statuses %+v", p.Status.ContainerStatuses)
	})
	return o
}

// mustRun fails unless the pod runs.
func (c *cluster) mustRun(p *corev1.Pod) outcome {
	c.t.Helper()
	o := c.runPod(p)
	if !o.running {
		c.t.Fatalf("pod %s/%s (%s): %v", p.Namespace, p.Name, p.Spec.Containers[0].Image, o)
	}
	return o
}

// mustBeRefused fails unless the pod's image pull fails with an
// authorisation error.
func (c *cluster) mustBeRefused(p *corev1.Pod) outcome {
	c.t.Helper()
	o := c.runPod(p)
	if o.running || !isAuthError(o.message) {
		c.t.Fatalf("pod %s/%s (%s): want an image pull refused for authorisation, got %v", p.Namespace, p.Name, p.Spec.Containers[0].Image, o)
	}
	return o
}

func isAuthError(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "401") || strings.Contains(m, "unauthorized") || strings.Contains(m, "403") ||
		strings.Contains(m, "forbidden") || strings.Contains(m, "authorization failed")
}
