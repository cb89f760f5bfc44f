//go:build integration

package chart

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/lanyard-dev/lanyard/broker/webhook"
)

const (
	tokenMountRefusal = "mounts volume lanyard-token, which holds the lanyard agent's " +
		"Kubernetes token: remove that volume mount"
	agentTargetRefusal = "targets container lanyard-agent, whose Kubernetes token it could " +
		"read through /proc: target an app container instead"
)

// The pods stay Pending, as the test API server has no kubelet, but the API server still
// takes ephemeral containers for them, which is all a debug session needs to be judged.
func TestDebugContainersCannotReachTheAgentsToken(t *testing.T) {
	pods := guardedPods(t, "debug-a")
	ctx := context.Background()
	stripAnnotations(t, pods, "stripped")
	waitForEphemeralHook(t, pods, "web")

	tests := []struct {
		name  string
		pod   string
		added corev1.EphemeralContainer
		want  string // part of the refusal; empty: admitted
	}{
		{"a debug container mounting the agent's token is refused", "web",
			debugMounting("mount-token", webhook.TokenVolumeName, true), tokenMountRefusal},
		{"a debug container targeting the agent is refused", "web",
			debugTargeting("target-agent", webhook.AgentContainerName), agentTargetRefusal},
		{"a pod whose lanyard annotations were removed is still guarded", "stripped",
			debugMounting("mount-token", webhook.TokenVolumeName, true), tokenMountRefusal},
		// Refused cases come first: an admitted ephemeral container stays in the pod for good.
		{"a plain debug container is admitted", "web", debugPlain("plain"), ""},
		{"a debug container targeting an app container is admitted", "web",
			debugTargeting("target-app", "app"), ""},
		{"a debug container reading the credential is admitted", "web",
			debugMounting("read-credential", webhook.CredentialVolumeName, true), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stored, err := addEphemeral(ctx, pods, tc.pod, tc.added, false)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), "ephemeral container "+
					tc.added.Name+" "+tc.want) {
					t.Errorf("error = %v, want it to contain %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !hasEphemeral(stored, tc.added.Name) {
				t.Errorf("ephemeral container %s is not in the stored pod", tc.added.Name)
			}
		})
	}
}

// registerValidatingHook registers the chart's ValidatingWebhookConfiguration as rendered,
// only pointed at the test's webhook server, so that the API server evaluates the chart's
// rules, namespace selector and match condition.
func registerValidatingHook(t *testing.T, env *injectorEnv) {
	t.Helper()
	var config admissionregistrationv1.ValidatingWebhookConfiguration
	fromUnstructured(t, find(render(t, "ephemeral", "lanyard"), "ValidatingWebhookConfiguration", ""),
		&config)
	config.Name, config.Annotations = "lanyard-e2e-validating", nil
	url := env.url + "/validate"
	for i := range config.Webhooks {
		config.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{
			URL: &url, CABundle: env.stack.CA.CertPEM}
	}
	hooks := env.stack.Admin.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := hooks.Create(context.Background(), &config, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = hooks.Delete(context.Background(), config.Name, metav1.DeleteOptions{})
	})
}

// waitForEphemeralHook waits until the API server sends debug sessions to the webhook (its
// configuration cache lags), probing with a dry run so that nothing sticks to the pod.
func waitForEphemeralHook(t *testing.T, pods typedcorev1.PodInterface, name string) {
	t.Helper()
	probe := debugTargeting("probe", webhook.AgentContainerName)
	eventually(t, 30*time.Second, func() error {
		_, err := addEphemeral(context.Background(), pods, name, probe, true)
		switch {
		case err == nil:
			return errors.New("a debug container targeting the agent was admitted")
		case !strings.Contains(err.Error(), agentTargetRefusal):
			return err
		}
		return nil
	})
}

// stripAnnotations removes every lanyard annotation from the stored pod, as anyone who may
// update the pod can.
func stripAnnotations(t *testing.T, pods typedcorev1.PodInterface, name string) {
	t.Helper()
	ctx := context.Background()
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range pod.Annotations {
		if strings.HasPrefix(k, webhook.AnnotationPrefix) {
			delete(pod.Annotations, k)
		}
	}
	if _, err := pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// addEphemeral adds c to the pod through the ephemeralcontainers subresource, as kubectl
// debug does, and returns the pod as stored.
func addEphemeral(
	ctx context.Context,
	pods typedcorev1.PodInterface,
	name string,
	c corev1.EphemeralContainer,
	dryRun bool,
) (*corev1.Pod, error) {
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, c)
	opts := metav1.UpdateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return pods.UpdateEphemeralContainers(ctx, name, pod, opts)
}

func hasEphemeral(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func debugPlain(name string) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: name, Image: "example.invalid/busybox:1", Stdin: true, TTY: true}}
}

func debugMounting(name, volume string, readOnly bool) corev1.EphemeralContainer {
	c := debugPlain(name)
	c.VolumeMounts = []corev1.VolumeMount{{Name: volume, MountPath: "/debug", ReadOnly: readOnly}}
	return c
}

func debugTargeting(name, target string) corev1.EphemeralContainer {
	c := debugPlain(name)
	c.TargetContainerName = target
	return c
}

// guardedPods starts the injector and its validating webhook for namespace ns, labelled
// for injection, and creates two injected pods there, "web" and "stripped" (whose
// annotations the test may remove).
func guardedPods(t *testing.T, ns string) typedcorev1.PodInterface {
	t.Helper()
	env := startInjector(t)
	env.prepareNamespace(t, ns, map[string]string{"lanyard.dev/inject": "enabled"})
	registerValidatingHook(t, env)
	pods := env.stack.Admin.CoreV1().Pods(ns)
	for _, name := range []string{"web", "stripped"} {
		_, err := pods.Create(context.Background(), annotatedPod(name), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	return pods
}
