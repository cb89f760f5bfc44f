package webhook

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// agentContainer is the native sidecar the injector adds: an init container that
// restarts always, so it starts before the app containers, keeps running beside them,
// and ends after them (Jobs complete normally).
//
// The agent listens for health on the pod IP, not on its default loopback address,
// because the kubelet probes the pod IP; /readyz and /healthz expose no secret.
func agentContainer(cfg Config, req request, id identity) corev1.Container {
	args := []string{
		"run",
		"--broker-addr=" + cfg.BrokerAddr,
		"--broker-ca-file=" + agentTokenDir + "/ca.crt",
		"--token-file=" + agentTokenDir + "/token",
		"--role=" + req.role,
		"--output-dir=" + agentOutputDir,
		fmt.Sprintf("--health-addr=:%d", cfg.HealthPort),
	}
	if req.ttl > 0 {
		args = append(args, "--ttl="+req.ttl.String())
	}
	always := corev1.ContainerRestartPolicyAlways
	// Written out even when unset, as Config promises: left empty, the API server would
	// pick a policy from the image tag and the stored agent would not compare equal.
	pull := corev1.PullPolicy(cfg.AgentImagePullPolicy)
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	return corev1.Container{
		Name:            AgentContainerName,
		Image:           cfg.AgentImage,
		ImagePullPolicy: pull,
		Args:            args,
		RestartPolicy:   &always,
		Ports: []corev1.ContainerPort{{
			Name: "lanyard-health", ContainerPort: cfg.HealthPort, Protocol: corev1.ProtocolTCP,
		}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU: cfg.CPURequest, corev1.ResourceMemory: cfg.MemoryRequest,
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU: cfg.CPULimit, corev1.ResourceMemory: cfg.MemoryLimit,
			},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: TokenVolumeName, MountPath: agentTokenDir, ReadOnly: true},
			{Name: CredentialVolumeName, MountPath: agentOutputDir},
		},
		// Up to two minutes for the first credential: Vault may queue requests.
		StartupProbe:             probe(cfg.HealthPort, "/readyz", 1, 120),
		ReadinessProbe:           probe(cfg.HealthPort, "/readyz", 10, 3),
		LivenessProbe:            probe(cfg.HealthPort, "/healthz", 10, 3),
		SecurityContext:          agentSecurity(id),
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func probe(port int32, path string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
		}},
		TimeoutSeconds:   1,
		PeriodSeconds:    period,
		SuccessThreshold: 1,
		FailureThreshold: failures,
	}
}

func agentSecurity(id identity) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsUser:                ptr(id.uid),
		RunAsGroup:               id.gid,
		RunAsNonRoot:             ptr(true),
		ReadOnlyRootFilesystem:   ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		Privileged:               ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{
			Type: corev1.SeccompProfileTypeRuntimeDefault,
		},
	}
}

// tokenVolume projects the pod-bound token the agent presents to the broker, and the
// broker's CA, either from the pod's own annotation or from a ClusterTrustBundle. Only
// the agent mounts it.
func tokenVolume(cfg Config) corev1.Volume {
	expiry := int64(cfg.TokenExpiration.Seconds())
	sources := []corev1.VolumeProjection{{
		ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: cfg.Audience, ExpirationSeconds: &expiry, Path: "token",
		},
	}}
	if cfg.ClusterTrustBundle != "" {
		sources = append(sources, corev1.VolumeProjection{
			ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{
				Name: ptr(cfg.ClusterTrustBundle), Path: "ca.crt",
			},
		})
	} else {
		sources = append(sources, corev1.VolumeProjection{
			DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "ca.crt",
				FieldRef: &corev1.ObjectFieldSelector{
					APIVersion: "v1",
					FieldPath:  "metadata.annotations['" + AnnotationBrokerCA + "']",
				},
			}}},
		})
	}
	return corev1.Volume{
		Name: TokenVolumeName,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: sources, DefaultMode: ptr(int32(0o644)),
		}},
	}
}

// credentialVolume holds the credential in memory only; the agent writes it and the
// app containers mount it read-only.
func credentialVolume(cfg Config) corev1.Volume {
	return corev1.Volume{
		Name: CredentialVolumeName,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: ptr(cfg.CredentialSizeLimit),
		}},
	}
}
