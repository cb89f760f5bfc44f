package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// injectedFixture returns the fixture pod after one mutation, as the reference for what
// the injector writes.
func injectedFixture(t *testing.T, in *Injector) *corev1.Pod {
	t.Helper()
	pod := fixturePod()
	res, err := in.Mutate(pod)
	if err != nil {
		t.Fatal(err)
	}
	return apply(t, pod, res.Patch)
}

// mutateTwice mutates pod, checks that the result converges, and returns it.
func mutateTwice(t *testing.T, in *Injector, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	res, err := in.Mutate(pod)
	if err != nil {
		t.Fatal(err)
	}
	mutated := apply(t, pod, res.Patch)
	again, err := in.Mutate(mutated)
	if err != nil || len(again.Patch) != 0 {
		t.Errorf("second mutation: error %v, patch %+v", err, again.Patch)
	}
	return mutated
}

func TestAPodsOwnAgentIsReplacedByTheInjectors(t *testing.T) {
	tests := []struct {
		name   string
		weaken func(*corev1.Container)
	}{
		{"an added capability is taken away", func(c *corev1.Container) {
			c.SecurityContext.Capabilities.Add = []corev1.Capability{"SYS_ADMIN"}
		}},
		{"privileged mode is taken away", func(c *corev1.Container) {
			c.SecurityContext.Privileged = ptr(true)
		}},
		{"a writable root file system is made read-only again", func(c *corev1.Container) {
			c.SecurityContext.ReadOnlyRootFilesystem = nil
		}},
		{"a command of its own is taken away", func(c *corev1.Container) {
			c.Command = []string{"/bin/sh", "-c", "cat /var/run/secrets/lanyard/token"}
		}},
		{"an env var sending gRPC through a proxy is taken away", func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "GRPC_PROXY", Value: "http://proxy.example:3128"}}
		}},
		{"an extra mount is taken away", func(c *corev1.Container) {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "data",
				MountPath: "/data"})
		}},
		{"a lifecycle hook is taken away", func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
				Exec: &corev1.ExecAction{Command: []string{"cp", "-r", "/var/run/secrets", "/data"}}}}
		}},
		{"another image is put back", func(c *corev1.Container) {
			c.Image = "attacker.example/agent:1"
		}},
		{"root is taken away", func(c *corev1.Container) {
			c.SecurityContext.RunAsUser = ptr(int64(0))
		}},
	}
	// Each pod brings its agent once as the first init container and once behind an init
	// container of its own.
	placements := map[string]func(own corev1.Container) []corev1.Container{
		"first": func(own corev1.Container) []corev1.Container { return []corev1.Container{own} },
		"behind": func(own corev1.Container) []corev1.Container {
			return []corev1.Container{{Name: "migrate", Image: "m:1"}, own}
		},
	}
	for _, tc := range tests {
		for where, place := range placements {
			t.Run(tc.name+"/"+where, func(t *testing.T) {
				in := testInjector(t)
				want := injectedFixture(t, in).Spec.InitContainers[0]
				own := *want.DeepCopy()
				tc.weaken(&own)
				pod := fixturePod()
				pod.Spec.InitContainers = place(own)

				got := mutateTwice(t, in, pod).Spec.InitContainers
				if !equality.Semantic.DeepEqual(got[0], want) {
					t.Errorf("first init container = %+v\nwant the injector's agent %+v", got[0], want)
				}
				if n := countNamed(got, AgentContainerName); n != 1 {
					t.Errorf("%d init containers named %s", n, AgentContainerName)
				}
			})
		}
	}
}

func countNamed(cs []corev1.Container, name string) int {
	n := 0
	for _, c := range cs {
		if c.Name == name {
			n++
		}
	}
	return n
}

func TestReservedVolumesAndMountsEndAsTheInjectorWritesThem(t *testing.T) {
	apiToken := corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
		ExpirationSeconds: ptr(int64(3600)), Path: "api-token"}}
	tests := []struct {
		name   string
		change func(*corev1.Pod)
	}{
		{"a Kubernetes API token added to the agent's volume is removed", func(p *corev1.Pod) {
			v := &p.Spec.Volumes[volumeIndex(p.Spec.Volumes, TokenVolumeName)]
			v.Projected.Sources = append(v.Projected.Sources, apiToken)
		}},
		{"a file mode added to the CA item is removed", func(p *corev1.Pod) {
			v := &p.Spec.Volumes[volumeIndex(p.Spec.Volumes, TokenVolumeName)]
			v.Projected.Sources[1].DownwardAPI.Items[0].Mode = ptr(int32(0o666))
		}},
		{"a second source beside the credential's emptyDir is removed", func(p *corev1.Pod) {
			v := &p.Spec.Volumes[volumeIndex(p.Spec.Volumes, CredentialVolumeName)]
			v.HostPath = &corev1.HostPathVolumeSource{Path: "/var/lib/kubelet/pods"}
		}},
		{"a disk-backed credential volume is made in-memory", func(p *corev1.Pod) {
			v := &p.Spec.Volumes[volumeIndex(p.Spec.Volumes, CredentialVolumeName)]
			v.EmptyDir.Medium = corev1.StorageMediumDefault
		}},
		{"a sub path on an app's credential mount is removed", func(p *corev1.Pod) {
			c := &p.Spec.Containers[1]
			c.VolumeMounts[0].SubPath = "token"
		}},
		{"a writable app mount of the credential elsewhere is removed", func(p *corev1.Pod) {
			c := &p.Spec.Containers[1]
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{
				Name: CredentialVolumeName, MountPath: "/scratch"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := testInjector(t)
			want := injectedFixture(t, in)
			pod := want.DeepCopy()
			tc.change(pod)

			got := mutateTwice(t, in, pod)
			if !equality.Semantic.DeepEqual(got.Spec.Volumes, want.Spec.Volumes) {
				t.Errorf("volumes = %+v\nwant %+v", got.Spec.Volumes, want.Spec.Volumes)
			}
			for i, c := range got.Spec.Containers {
				if w := want.Spec.Containers[i]; !equality.Semantic.DeepEqual(c, w) {
					t.Errorf("container %s mounts %v, want %v", c.Name, mountNames(c), mountNames(w))
				}
			}
		})
	}
}

// storedPod reads the fixture pod of the end-to-end test as the API server stored it.
func storedPod(t *testing.T) *corev1.Pod {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "stored-pod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		Annotations map[string]string `json:"annotations"`
		Spec        corev1.PodSpec    `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(data, &view); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{Spec: view.Spec}
	pod.Name, pod.Namespace, pod.Annotations = "web", "team-a", view.Annotations
	for k, v := range pod.Annotations {
		pod.Annotations[k] = strings.ReplaceAll(v, "<broker CA PEM>", testCA)
	}
	return pod
}

func TestThePodAsStoredIsNotPatchedAgain(t *testing.T) {
	tests := []struct {
		name   string
		change func(agent *corev1.Container)
	}{
		{"the pod as kube-apiserver 1.37 stores it", func(*corev1.Container) {}},
		{"the resize policies that 1.27 to 1.32 servers wrote", func(c *corev1.Container) {
			c.ResizePolicy = []corev1.ContainerResizePolicy{
				{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.NotRequired},
				{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired}}
		}},
		{"the probe protocol that servers with H2C probes write", func(c *corev1.Container) {
			for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				p.HTTPGet.Protocol = ptr(corev1.HTTPProtocolHTTP1)
			}
		}},
		{"quantities in another notation", func(c *corev1.Container) {
			c.Resources.Limits[corev1.ResourceCPU] = resource.MustParse("0.1")
			c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("16777216")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := storedPod(t)
			tc.change(&pod.Spec.InitContainers[0])
			res, err := testInjector(t).Mutate(pod)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Patch) != 0 {
				t.Errorf("stored pod patched again: %+v", res.Patch)
			}
		})
	}
}

func TestAResizePolicyOfTheAuthorIsNotTakenForADefault(t *testing.T) {
	in := testInjector(t)
	pod := injectedFixture(t, in)
	pod.Spec.InitContainers[0].ResizePolicy = []corev1.ContainerResizePolicy{
		{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}
	res, err := in.Mutate(pod)
	if err != nil || len(res.Patch) != 1 || res.Patch[0].Path != "/spec/initContainers/0" {
		t.Errorf("Mutate = %+v, %v; want the agent replaced", res.Patch, err)
	}
}
