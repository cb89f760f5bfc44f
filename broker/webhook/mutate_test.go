package webhook

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMutateFixturePodMatchesGolden(t *testing.T) {
	res, err := testInjector(t).Mutate(fixturePod())
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(res.Patch, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "fixture-patch.golden"), append(got, '\n'))
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run go test -update after checking the change):\n%s", path, got)
	}
}

func TestMutatedPodIsShapedAsSpecified(t *testing.T) {
	pod := fixturePod()
	res, err := testInjector(t).Mutate(pod)
	if err != nil {
		t.Fatal(err)
	}
	m := apply(t, pod, res.Patch)
	if a := m.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Error("automountServiceAccountToken is not false")
	}
	if len(m.Spec.Volumes) != 3 || volumeIndex(m.Spec.Volumes, "kube-api-access-x7k2p") >= 0 {
		t.Errorf("volumes = %v, want data and the two lanyard volumes", volumeNames(m))
	}
	agent := m.Spec.InitContainers[0]
	if agent.Name != AgentContainerName || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("first init container = %s, want the agent as a native sidecar", agent.Name)
	}
	if p := agent.StartupProbe.HTTPGet; p.Path != "/readyz" || p.Port.IntValue() != 8099 {
		t.Errorf("startup probe = %s on %s, want /readyz on 8099", p.Path, p.Port.String())
	}
	if !contains(agent.Args, "--health-addr=:8099") {
		t.Errorf("agent args %v do not open the health port to the kubelet", agent.Args)
	}
	sc := agent.SecurityContext
	if *sc.RunAsUser != 1000 || *sc.RunAsGroup != 2000 || !*sc.RunAsNonRoot ||
		!*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation {
		t.Errorf("agent security context not hardened or not the pod's user: %+v", sc)
	}
	for _, c := range m.Spec.Containers {
		want := []string{CredentialVolumeName + ":" + DefaultMountPath + ":ro"}
		if c.Name == "app" {
			want = append([]string{"data:/data:rw"}, want...)
		}
		if got := mountNames(c); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("container %s mounts %v, want %v", c.Name, got, want)
		}
	}
	if m.Annotations[AnnotationBrokerCA] != testCA {
		t.Error("the broker CA annotation is missing")
	}
}

func TestMutationConverges(t *testing.T) {
	tests := map[string]func(*corev1.Pod){
		"a pod the ServiceAccount plugin gave a token": func(*corev1.Pod) {},
		"a pod without any volume": func(p *corev1.Pod) {
			p.Spec.Volumes = nil
			for i := range p.Spec.Containers {
				p.Spec.Containers[i].VolumeMounts = nil
			}
		},
		"a pod limiting the credential to one container": func(p *corev1.Pod) {
			p.Annotations[AnnotationContainers] = "metrics"
		},
		"a pod with init containers of its own": func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "m:1"}}
		},
		"a pod moving the mount and setting a ttl": func(p *corev1.Pod) {
			p.Annotations[AnnotationMountPath] = "/etc/kube"
			p.Annotations[AnnotationTTL] = "30m"
		},
		"a pod without security context": func(p *corev1.Pod) { p.Spec.SecurityContext = nil },
		"a pod that turned automount off itself": func(p *corev1.Pod) {
			p.Spec.AutomountServiceAccountToken = ptr(false)
			p.Spec.Volumes = p.Spec.Volumes[:1]
			p.Spec.Containers[0].VolumeMounts = p.Spec.Containers[0].VolumeMounts[:1]
			p.Spec.Containers[1].VolumeMounts = nil
		},
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			in := testInjector(t)
			pod := fixturePod()
			change(pod)
			first, err := in.Mutate(pod)
			if err != nil || len(first.Patch) == 0 {
				t.Fatalf("first mutation: %d ops, error %v", len(first.Patch), err)
			}
			mutated := apply(t, pod, first.Patch)
			again, err := in.Mutate(mutated)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Patch) != 0 {
				t.Errorf("second mutation patched again: %+v", again.Patch)
			}
		})
	}
}

func TestAgentRejoinsTheFrontWhenAnotherWebhookAddsAnInitContainer(t *testing.T) {
	in := testInjector(t)
	pod := fixturePod()
	res, _ := in.Mutate(pod)
	m := apply(t, pod, res.Patch)
	m.Spec.InitContainers = append([]corev1.Container{{Name: "istio-init"}}, m.Spec.InitContainers...)
	m.Spec.Containers = append(m.Spec.Containers, corev1.Container{Name: "added"})
	res, err := in.Mutate(m)
	if err != nil {
		t.Fatal(err)
	}
	m = apply(t, m, res.Patch)
	if m.Spec.InitContainers[0].Name != AgentContainerName {
		t.Errorf("init containers start with %s", m.Spec.InitContainers[0].Name)
	}
	if got := mountNames(m.Spec.Containers[2]); len(got) != 1 {
		t.Errorf("added container mounts %v, want the credential", got)
	}
}

func TestPodsWithoutRoleAreLeftAlone(t *testing.T) {
	pod := fixturePod()
	delete(pod.Annotations, AnnotationRole)
	res, err := testInjector(t).Mutate(pod)
	if err != nil || len(res.Patch) != 0 || res.Role != "" {
		t.Errorf("Mutate = %+v, %v; want nothing", res, err)
	}
}

func TestClusterTrustBundleReplacesTheCAAnnotation(t *testing.T) {
	cfg := testConfig()
	cfg.BrokerCA, cfg.ClusterTrustBundle = nil, "lanyard-broker-ca"
	in, err := NewInjector(cfg, roleTable{"pod-reader": time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pod := fixturePod()
	res, err := in.Mutate(pod)
	if err != nil {
		t.Fatal(err)
	}
	m := apply(t, pod, res.Patch)
	if _, ok := m.Annotations[AnnotationBrokerCA]; ok {
		t.Error("CA annotation written although a ClusterTrustBundle is configured")
	}
	v := m.Spec.Volumes[volumeIndex(m.Spec.Volumes, TokenVolumeName)]
	ctb := v.Projected.Sources[1].ClusterTrustBundle
	if ctb == nil || *ctb.Name != "lanyard-broker-ca" || ctb.Path != "ca.crt" {
		t.Errorf("token volume sources = %+v, want the trust bundle as ca.crt", v.Projected.Sources)
	}
}

func volumeNames(p *corev1.Pod) []string {
	var out []string
	for _, v := range p.Spec.Volumes {
		out = append(out, v.Name)
	}
	return out
}

func mountNames(c corev1.Container) []string {
	var out []string
	for _, m := range c.VolumeMounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		out = append(out, m.Name+":"+m.MountPath+":"+mode)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
