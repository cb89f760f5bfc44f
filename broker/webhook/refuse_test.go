package webhook

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestMutateRefusesWithWhatToChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(*corev1.Pod)
		want   string
	}{
		{"an unknown role is refused", annotate(AnnotationRole, "db-admin"),
			`role "db-admin" is not in the lanyard catalog`},
		{"a role that is not a DNS label is refused", annotate(AnnotationRole, "Pod_Reader"),
			"is not a role name"},
		{"a ttl that is not a duration is refused", annotate(AnnotationTTL, "ten minutes"),
			"write for example 15m"},
		{"a ttl below ten minutes is refused", annotate(AnnotationTTL, "5m"),
			"below the minimum of 10m0s"},
		{"a ttl above the role's maxTTL is refused", annotate(AnnotationTTL, "2h"),
			"exceeds the maxTTL 1h0m0s of role pod-reader"},
		{"a relative mount path is refused", annotate(AnnotationMountPath, "secrets/kube"),
			"must be a clean absolute directory path"},
		{"an unclean mount path is refused", annotate(AnnotationMountPath, "/etc/../kube"),
			"must be a clean absolute directory path"},
		{"an unknown lanyard annotation is refused", annotate("lanyard.dev/audience", "x"),
			"unknown annotation lanyard.dev/audience: remove it"},
		{"an empty container name is refused", annotate(AnnotationContainers, "app,,metrics"),
			`"" is not a container name`},
		{"a container that does not exist is refused", annotate(AnnotationContainers, "ap"),
			`names "ap", which is not a container of this pod; containers are: app, metrics`},
		{"settings without a role are refused", func(p *corev1.Pod) {
			delete(p.Annotations, AnnotationRole)
			p.Annotations[AnnotationTTL] = "15m"
		}, "annotation lanyard.dev/ttl has no effect without lanyard.dev/role"},
		{"an explicit token projection is refused", func(p *corev1.Pod) {
			v := autoVolume()
			v.Name = "my-token"
			p.Spec.Volumes = append(p.Spec.Volumes, v)
		}, "volume my-token projects a service account token: remove it"},
		{"a secret mounted at the token path is refused", func(p *corev1.Pod) {
			p.Spec.Containers[1].VolumeMounts = []corev1.VolumeMount{
				{Name: "legacy", MountPath: DefaultMountPath + "/"}}
		}, "container metrics already mounts volume legacy at " + DefaultMountPath},
		{"a mount where the credential goes is refused", func(p *corev1.Pod) {
			p.Annotations[AnnotationMountPath] = "/data"
		}, "container app mounts volume data at /data, where lanyard mounts the credential"},
		{"an app mounting the agent's token is refused", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
				{Name: TokenVolumeName, MountPath: "/t"}}
		}, "container app mounts volume lanyard-token, which only the lanyard agent may mount"},
		{"a container on the agent's port is refused", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8099}}
		}, "container app declares port 8099"},
		{"a host network pod is refused", func(p *corev1.Pod) { p.Spec.HostNetwork = true },
			"hostNetwork: true"},
		{"a pod sharing its process namespace is refused", func(p *corev1.Pod) {
			p.Spec.ShareProcessNamespace = ptr(true)
		}, "could read its token through /proc; remove shareProcessNamespace or the " +
			"lanyard.dev/role annotation"},
		{"a pod in the host's process namespace is refused", func(p *corev1.Pod) {
			p.Spec.HostPID = true
		}, "remove hostPID or the lanyard.dev/role annotation"},
		{"a pod asking for the automounted token is refused", func(p *corev1.Pod) {
			p.Spec.AutomountServiceAccountToken = ptr(true)
		}, "the pod sets automountServiceAccountToken: true, which mounts a Kubernetes API " +
			"token into every container; lanyard delivers the credential itself: remove " +
			"automountServiceAccountToken"},
		{"an app container under the agent's name is refused", func(p *corev1.Pod) {
			p.Spec.Containers[1].Name = AgentContainerName
		}, "container name lanyard-agent is reserved for the lanyard agent"},
		{"an app init container mounting the agent's token is refused", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "s:1",
				VolumeMounts: []corev1.VolumeMount{{Name: TokenVolumeName, MountPath: "/t"}}}}
		}, "container setup mounts volume lanyard-token, which only the lanyard agent may mount"},
		{"an app mounting its own volume under the token's name is refused", func(p *corev1.Pod) {
			v := autoVolume()
			v.Name = TokenVolumeName
			p.Spec.Volumes = append(p.Spec.Volumes, v)
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts,
				corev1.VolumeMount{Name: TokenVolumeName, MountPath: "/api"})
		}, "container app mounts volume lanyard-token, which only the lanyard agent may mount"},
		{"containers of different users without a shared group are refused", func(p *corev1.Pod) {
			p.Spec.SecurityContext = nil
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(1))}
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(2))}
		}, "containers app, metrics run as different users and share no group"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := fixturePod()
			tc.change(pod)
			_, err := testInjector(t).Mutate(pod)
			var refusal *Refusal
			if !errors.As(err, &refusal) {
				t.Fatalf("Mutate error = %v, want a refusal", err)
			}
			if !strings.Contains(refusal.Message, tc.want) {
				t.Errorf("message %q does not contain %q", refusal.Message, tc.want)
			}
			if refusal.Code == "" {
				t.Error("refusal has no code to log")
			}
		})
	}
}

func annotate(key, value string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Annotations[key] = value }
}

func TestAgentIdentity(t *testing.T) {
	tests := []struct {
		name     string
		pod      corev1.PodSecurityContext
		app      *corev1.SecurityContext
		uid      int64
		gid      *int64
		warnings int
	}{
		{"the agent runs as the pod's user and group", corev1.PodSecurityContext{
			RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(1001))}, nil, 1000, ptr(int64(1001)), 0},
		{"fsGroup wins over the pod's group", corev1.PodSecurityContext{
			RunAsUser: ptr(int64(1000)), RunAsGroup: ptr(int64(1001)), FSGroup: ptr(int64(3))},
			nil, 1000, ptr(int64(3)), 0},
		{"a container's own user wins over the pod's", corev1.PodSecurityContext{
			RunAsUser: ptr(int64(1000))}, &corev1.SecurityContext{RunAsUser: ptr(int64(7))},
			7, nil, 0},
		{"a root app leaves the agent on its default user", corev1.PodSecurityContext{
			RunAsUser: ptr(int64(0)), RunAsGroup: ptr(int64(0))}, nil, 65532, ptr(int64(0)), 0},
		{"an unknown user warns", corev1.PodSecurityContext{}, nil, 65532, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &tc.pod,
				Containers: []corev1.Container{{Name: "app", SecurityContext: tc.app}}}}
			id, warnings, err := agentIdentity(pod, appContainers(pod), 65532)
			if err != nil {
				t.Fatal(err)
			}
			if id.uid != tc.uid || !equalPtr(id.gid, tc.gid) || len(warnings) != tc.warnings {
				t.Errorf("identity = %d/%v with %d warnings, want %d/%v with %d",
					id.uid, deref(id.gid), len(warnings), tc.uid, deref(tc.gid), tc.warnings)
			}
		})
	}
}

func equalPtr(a, b *int64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

func deref(p *int64) any {
	if p == nil {
		return "unset"
	}
	return *p
}
