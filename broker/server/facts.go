package server

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lanyard-dev/lanyard/broker/authn"
	"github.com/lanyard-dev/lanyard/broker/catalog"
)

// KubeFacts looks up pod and namespace labels with GETs to the Kubernetes
// API, each at most once per caller and only when a role needs it.
func KubeFacts(client kubernetes.Interface) FactsFunc {
	return func(caller *authn.Caller) catalog.Facts {
		return &kubeFacts{client: client, caller: *caller}
	}
}

type kubeFacts struct {
	client kubernetes.Interface
	caller authn.Caller

	podOnce, nsOnce sync.Once
	pod, ns         map[string]string
	podErr, nsErr   error
}

// PodLabels returns the labels of the caller's pod. A pod that is gone, or
// was replaced by another of the same name, fails authentication: the token
// belongs to a pod that no longer exists.
func (f *kubeFacts) PodLabels(ctx context.Context) (map[string]string, error) {
	f.podOnce.Do(func() { f.pod, f.podErr = f.getPod(ctx) })
	return f.pod, f.podErr
}

func (f *kubeFacts) getPod(ctx context.Context) (map[string]string, error) {
	c := f.caller
	pod, err := f.client.CoreV1().Pods(c.Namespace).Get(ctx, c.Pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, authn.Fail(authn.ReasonPodGone, "pod "+c.Namespace+"/"+c.Pod+" no longer exists")
	case err != nil:
		return nil, apiError("get pod", err)
	case string(pod.UID) != c.PodUID:
		return nil, authn.Fail(authn.ReasonPodGone, "pod "+c.Namespace+"/"+c.Pod+" was replaced")
	}
	return pod.Labels, nil
}

// NamespaceLabels returns the labels of the caller's namespace.
func (f *kubeFacts) NamespaceLabels(ctx context.Context) (map[string]string, error) {
	f.nsOnce.Do(func() {
		ns, err := f.client.CoreV1().Namespaces().Get(ctx, f.caller.Namespace, metav1.GetOptions{})
		if err != nil {
			f.nsErr = apiError("get namespace", err)
			return
		}
		f.ns = ns.Labels
	})
	return f.ns, f.nsErr
}

// apiError marks failures to reach the API as unavailable; a refusal by the
// API (forbidden) is the broker's own misconfiguration and stays internal.
func apiError(op string, err error) error {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, authn.ErrUnavailable, err)
}
