package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// isPodUpdate reports whether req updates the pod object itself. Its subresources (status,
// ephemeralcontainers, resize) go through requests of their own.
func isPodUpdate(req *admissionv1.AdmissionRequest) bool {
	return req.Operation == admissionv1.Update && req.SubResource == ""
}

// CheckPodUpdate refuses an update of an injected pod that changes the lanyard-agent init
// container. Kubernetes lets a pod update replace the image of any container, init
// containers included, so whoever may update or patch the pod could otherwise run an image
// of their own as lanyard-agent, with the agent's token mounted. The container is compared
// whole rather than by image, so that a field a later Kubernetes release makes mutable is
// covered as well. Every other update passes: labels, annotations, finalizers,
// tolerations, the app containers' images.
//
// The pod counts as injected when either side looks injected: the new pod is what the
// updater wrote, the old one what the API server stored.
//
// The API server sends the old pod with every update of the pod. Without a readable one the
// agent cannot be shown unchanged, so the update is refused rather than admitted: as for
// ephemeral containers, what the webhook cannot read makes it stricter, never looser. Such
// a request is a fault of the API server or of a proxy, not of the updater, hence an error
// rather than a refusal; the handler's denial stands even under failurePolicy Ignore, which
// only covers a webhook that does not answer. The error is a *Refusal when the agent
// changed, any other error when the old pod is unreadable, and nil otherwise.
func CheckPodUpdate(req *admissionv1.AdmissionRequest, pod *corev1.Pod) error {
	old, err := decodeOldPod(req)
	if err != nil {
		return err
	}
	if !injected(old) && !injected(pod) {
		return nil
	}
	before, after := agentInitContainer(old), agentInitContainer(pod)
	// Both sides carry the API server's defaults, so semantic equality is enough; it also
	// takes 100m and 0.1 CPU for the same quantity.
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	return refuse(RefusedAgentChanged,
		"the update %s init container %s, which mounts the lanyard agent's Kubernetes token: "+
			"the lanyard agent cannot be changed after the pod is created; delete and "+
			"recreate the pod instead", agentChange(before, after), AgentContainerName)
}

// decodeOldPod returns the pod as stored before req.
func decodeOldPod(req *admissionv1.AdmissionRequest) (*corev1.Pod, error) {
	if len(req.OldObject.Raw) == 0 {
		return nil, errors.New("pod update carries no old object")
	}
	var old corev1.Pod
	if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
		return nil, fmt.Errorf("decode old pod: %w", err)
	}
	return &old, nil
}

// agentInitContainer returns the pod's lanyard-agent init container, or nil.
func agentInitContainer(pod *corev1.Pod) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == AgentContainerName {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// agentChange words the change for the refusal. Only the image can change today; adding or
// removing the container is refused by the API server's own validation, which runs before
// validating webhooks but after mutating ones.
func agentChange(before, after *corev1.Container) string {
	switch {
	case before == nil:
		return "adds"
	case after == nil:
		return "removes"
	case before.Image != after.Image:
		return "changes the image of"
	}
	return "changes"
}
