//go:build integration

package chart

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/lanyard-dev/lanyard/broker/webhook"
)

func TestInjectorMutatesPodsCreatedThroughTheAPIServer(t *testing.T) {
	env := startInjector(t)
	env.prepareNamespace(t, "team-a", map[string]string{"lanyard.dev/inject": "enabled"})
	ctx := context.Background()
	pods := env.stack.Admin.CoreV1().Pods("team-a")

	created, err := pods.Create(ctx, annotatedPod("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := pods.Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "injected-pod.golden"), goldenView(t, pod, env.brokerCA))

	if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Error("automountServiceAccountToken is not false")
	}
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "kube-api-access-") {
			t.Errorf("the ServiceAccount plugin's token volume %s survived", v.Name)
		}
	}
	if c := pod.Spec.InitContainers[0]; c.Name != webhook.AgentContainerName ||
		c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("first init container %s is not the agent as a native sidecar", c.Name)
	}
	for _, c := range pod.Spec.Containers {
		if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != webhook.DefaultMountPath ||
			!c.VolumeMounts[0].ReadOnly {
			t.Errorf("container %s mounts %+v, want only the credential, read-only", c.Name, c.VolumeMounts)
		}
	}
	again, err := env.injector.Mutate(pod)
	if err != nil || len(again.Patch) != 0 {
		t.Errorf("the stored pod mutated again: %v %+v", err, again.Patch)
	}

	// The ServiceAccount plugin does mount a token here when lanyard is not asked to.
	plain := annotatedPod("plain")
	plain.Annotations = nil
	dry, err := pods.Create(ctx, plain, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Spec.Volumes) != 1 || !strings.HasPrefix(dry.Spec.Volumes[0].Name, "kube-api-access-") {
		t.Errorf("a pod without the annotation has volumes %+v, want the automounted token", dry.Spec.Volumes)
	}
}

func TestInjectorRefusalReachesTheClient(t *testing.T) {
	env := startInjector(t)
	env.prepareNamespace(t, "team-b", map[string]string{"lanyard.dev/inject": "enabled"})
	tests := map[string]struct {
		change func(*corev1.Pod)
		want   string
	}{
		"an unknown role": {func(p *corev1.Pod) { p.Annotations[webhook.AnnotationRole] = "db-admin" },
			`role "db-admin" is not in the lanyard catalog`},
		"a malformed ttl": {func(p *corev1.Pod) { p.Annotations[webhook.AnnotationTTL] = "soon" },
			`annotation lanyard.dev/ttl: "soon" is not a duration`},
		"an explicit token volume": {func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{tokenVolume("own-token", "")}
		}, "volume own-token projects a service account token"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := annotatedPod("refused")
			tc.change(pod)
			_, err := env.stack.Admin.CoreV1().Pods("team-b").Create(context.Background(), pod,
				metav1.CreateOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("create error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func tokenVolume(name, audience string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: audience, Path: "token"},
		}}}}}
}

func TestEnforcementPolicyRefusesTokensAndAdmitsInjectedPods(t *testing.T) {
	env := startInjector(t)
	createPolicy(t, env)
	labels := map[string]string{"lanyard.dev/inject": "enabled", "lanyard.dev/enforce": "true"}
	env.prepareNamespace(t, "enforced", labels)
	pods := env.stack.Admin.CoreV1().Pods("enforced")
	ctx := context.Background()

	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "plain"}, Spec: corev1.PodSpec{
		ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "x.invalid/a:1"}}}}
	eventually(t, 30*time.Second, func() error {
		_, err := pods.Create(ctx, plain, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			return errors.New("a pod automounting a token was admitted")
		}
		if !strings.Contains(err.Error(), "forbids service account tokens") {
			return err
		}
		return nil
	})

	explicit := plain.DeepCopy()
	explicit.Name = "explicit"
	explicit.Spec.AutomountServiceAccountToken = ptr(false)
	explicit.Spec.Volumes = []corev1.Volume{tokenVolume("api", "")}
	_, err := pods.Create(ctx, explicit, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "forbids projected service account tokens") {
		t.Errorf("pod projecting an API token: error = %v", err)
	}

	if _, err := pods.Create(ctx, annotatedPod("injected"), metav1.CreateOptions{}); err != nil {
		t.Errorf("injected pod refused: %v", err)
	}
}

// createPolicy creates the chart's ValidatingAdmissionPolicy and binding as rendered.
func createPolicy(t *testing.T, env *injectorEnv) {
	t.Helper()
	objs := render(t, "policy", "lanyard")
	ctx := context.Background()
	api := env.stack.Admin.AdmissionregistrationV1()
	var policy admissionregistrationv1.ValidatingAdmissionPolicy
	var binding admissionregistrationv1.ValidatingAdmissionPolicyBinding
	fromUnstructured(t, find(objs, "ValidatingAdmissionPolicy", ""), &policy)
	fromUnstructured(t, find(objs, "ValidatingAdmissionPolicyBinding", ""), &binding)
	policies, bindings := api.ValidatingAdmissionPolicies(), api.ValidatingAdmissionPolicyBindings()
	if _, err := policies.Create(ctx, &policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = policies.Delete(context.Background(), policy.Name, metav1.DeleteOptions{})
	})
	if _, err := bindings.Create(ctx, &binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bindings.Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if u == nil {
		t.Fatal("object missing from the render")
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatal(err)
	}
}
