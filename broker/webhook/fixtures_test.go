package webhook

import (
	"encoding/json"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testCA stands in for the broker's CA; the injector copies it without parsing.
const testCA = "-----BEGIN CERTIFICATE-----\nbGFueWFyZCB0ZXN0IENB\n-----END CERTIFICATE-----\n"

// roleTable is a fake catalog: role name to maxTTL.
type roleTable map[string]time.Duration

func (t roleTable) MaxTTL(role string) (time.Duration, bool) {
	d, ok := t[role]
	return d, ok
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.AgentImage = "ghcr.io/lanyard-dev/lanyard-agent:test"
	cfg.BrokerAddr = "lanyard-broker.lanyard.svc:8443"
	cfg.BrokerCA = func() ([]byte, error) { return []byte(testCA), nil }
	return cfg
}

func testInjector(t *testing.T) *Injector {
	t.Helper()
	in, err := NewInjector(testConfig(), roleTable{"pod-reader": time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// autoVolume is what the ServiceAccount admission plugin adds before webhooks run.
func autoVolume() corev1.Volume {
	exp := int64(3607)
	return corev1.Volume{Name: "kube-api-access-x7k2p", VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				ExpirationSeconds: &exp, Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{
					APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}}}}
}

// fixturePod is an app pod as the injector receives it: annotated, with the token
// volume of the ServiceAccount plugin mounted into both containers.
func fixturePod() *corev1.Pod {
	autoMount := corev1.VolumeMount{Name: "kube-api-access-x7k2p", ReadOnly: true,
		MountPath: DefaultMountPath}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a",
			Annotations: map[string]string{AnnotationRole: "pod-reader"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "app",
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr(int64(1000)),
				RunAsGroup: ptr(int64(1000)), FSGroup: ptr(int64(2000))},
			Containers: []corev1.Container{
				{Name: "app", Image: "example.com/app:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, autoMount}},
				{Name: "metrics", Image: "example.com/metrics:1",
					VolumeMounts: []corev1.VolumeMount{autoMount}},
			},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{
					EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				autoVolume(),
			},
		},
	}
}

// apply runs the patch over pod the way the API server does.
func apply(t *testing.T, pod *corev1.Pod, ops []Op) *corev1.Pod {
	t.Helper()
	doc, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		t.Fatalf("decode patch: %v", err)
	}
	out, err := patch.Apply(doc)
	if err != nil {
		t.Fatalf("apply patch %s: %v", raw, err)
	}
	var mutated corev1.Pod
	if err := json.Unmarshal(out, &mutated); err != nil {
		t.Fatal(err)
	}
	return &mutated
}
