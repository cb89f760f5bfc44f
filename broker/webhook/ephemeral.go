package webhook

import (
	"encoding/json"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// SubresourceEphemeralContainers is the pod subresource through which kubectl debug adds
// ephemeral containers to a running pod. The API server sends its UPDATE with the whole
// pod as the object, so the injected pod's annotations and spec are there to check.
const SubresourceEphemeralContainers = "ephemeralcontainers"

// isEphemeralUpdate reports whether req adds ephemeral containers to a pod.
func isEphemeralUpdate(req *admissionv1.AdmissionRequest) bool {
	return req.Operation == admissionv1.Update && req.SubResource == SubresourceEphemeralContainers
}

// isPodCreate reports whether req creates a pod, the only request the injector mutates.
func isPodCreate(req *admissionv1.AdmissionRequest) bool {
	return req.Operation == admissionv1.Create && req.SubResource == ""
}

// injected reports whether pod carries the agent. The annotation is not enough on its own:
// anyone who may update the pod can remove annotations, whereas init containers and volumes
// are fixed once the pod exists, so they still give the pod away.
func injected(pod *corev1.Pod) bool {
	if pod.Annotations[AnnotationInjected] == "true" {
		return true
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == AgentContainerName {
			return true
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name == TokenVolumeName {
			return true
		}
	}
	return false
}

// CheckEphemeralContainers refuses the ephemeral containers that req adds to an injected
// pod when they could read the agent's Kubernetes token: by mounting lanyard-token, or by
// targeting lanyard-agent, which puts them in the agent's process namespace where
// /proc/<pid>/root reaches the token. The agent runs as the app's user, so no file mode
// stands in the way in either case.
//
// The credential volume may be mounted read-only: it holds only what every selected app
// container already reads, so a debugger sees nothing the app could not show it. A
// writable mount is refused, as it would let the debugger replace the credential the app
// relies on.
//
// Only containers absent from the old pod are checked. The API server lets no one change
// or remove an ephemeral container once added, so refusing the update for an old one would
// close nothing and would block every later debug session of the pod. Without a readable
// old pod every container counts as new. The error is a *Refusal or nil.
func CheckEphemeralContainers(req *admissionv1.AdmissionRequest, pod *corev1.Pod) error {
	if !injected(pod) {
		return nil
	}
	existing := oldEphemeralNames(req)
	for i := range pod.Spec.EphemeralContainers {
		c := &pod.Spec.EphemeralContainers[i]
		if existing[c.Name] {
			continue
		}
		if err := checkEphemeralContainer(c); err != nil {
			return err
		}
	}
	return nil
}

func checkEphemeralContainer(c *corev1.EphemeralContainer) error {
	if c.TargetContainerName == AgentContainerName {
		return refuse(RefusedProcessNamespace,
			"ephemeral container %s targets container %s, whose Kubernetes token it could "+
				"read through /proc: target an app container instead (kubectl debug "+
				"--target=<app container>) or set no target", c.Name, AgentContainerName)
	}
	for _, m := range c.VolumeMounts {
		switch {
		case m.Name == TokenVolumeName:
			return refuse(RefusedTokenMount,
				"ephemeral container %s mounts volume %s, which holds the lanyard agent's "+
					"Kubernetes token: remove that volume mount; to see the credential the app "+
					"uses, mount volume %s read-only", c.Name, TokenVolumeName,
				CredentialVolumeName)
		case m.Name == CredentialVolumeName && !m.ReadOnly:
			return refuse(RefusedWritableCredential,
				"ephemeral container %s mounts volume %s writable, which would let it replace "+
					"the app's credential: set readOnly: true on that volume mount",
				c.Name, CredentialVolumeName)
		}
	}
	return nil
}

// oldEphemeralNames lists the ephemeral containers the pod had before req. It decodes
// only the names, and yields none when the old object is missing or unreadable, which
// makes the check stricter, never looser.
func oldEphemeralNames(req *admissionv1.AdmissionRequest) map[string]bool {
	var old struct {
		Spec struct {
			EphemeralContainers []struct {
				Name string `json:"name"`
			} `json:"ephemeralContainers"`
		} `json:"spec"`
	}
	names := map[string]bool{}
	if len(req.OldObject.Raw) == 0 || json.Unmarshal(req.OldObject.Raw, &old) != nil {
		return names
	}
	for _, c := range old.Spec.EphemeralContainers {
		names[c.Name] = true
	}
	return names
}
