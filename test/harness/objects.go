package harness

import (
	"context"
	"fmt"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// CreateNamespace creates a namespace with labels; an existing one is kept.
func (s *Stack) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	_, err := s.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// CreateServiceAccount creates a service account; an existing one is kept.
func (s *Stack) CreateServiceAccount(ctx context.Context, namespace, name string) error {
	_, err := s.Admin.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	return nil
}

// CreatePod creates a pod object running as serviceAccount with labels. The
// pod never runs; it exists so that tokens can be bound to it. The service
// account is created when missing.
func (s *Stack) CreatePod(
	ctx context.Context,
	namespace, name, serviceAccount string,
	labels map[string]string,
) (*corev1.Pod, error) {
	if err := s.CreateServiceAccount(ctx, namespace, serviceAccount); err != nil {
		return nil, err
	}
	automount := false
	pod, err := s.Admin.CoreV1().Pods(namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName:           serviceAccount,
			AutomountServiceAccountToken: &automount,
			Containers:                   []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", namespace, name, err)
	}
	return pod, nil
}

// PodToken mints the token the kubelet would project into pod: bound to the
// pod, for audience, valid for expiry (at least 10 minutes).
func (s *Stack) PodToken(ctx context.Context, pod *corev1.Pod, audience string, expiry time.Duration) (string, error) {
	ref := &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	return s.ServiceAccountToken(ctx, pod.Namespace, pod.Spec.ServiceAccountName, []string{audience}, expiry, ref)
}

// ServiceAccountToken mints a token for a service account with TokenRequest.
// Empty audiences mean the API server's own; ref optionally binds the token
// to an object.
func (s *Stack) ServiceAccountToken(
	ctx context.Context,
	namespace, name string,
	audiences []string,
	expiry time.Duration,
	ref ...*authnv1.BoundObjectReference,
) (string, error) {
	seconds := int64(expiry / time.Second)
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences:         audiences,
		ExpirationSeconds: &seconds,
	}}
	if len(ref) > 0 {
		req.Spec.BoundObjectRef = ref[0]
	}
	resp, err := s.Admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token request for %s/%s: %w", namespace, name, err)
	}
	return resp.Status.Token, nil
}

// ConfigForToken returns a client configuration that authenticates with token.
func (s *Stack) ConfigForToken(token string) *rest.Config {
	return &rest.Config{
		Host:            s.APIServerURL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CA.CertPEM},
		QPS:             50,
		Burst:           100,
	}
}

// ClientForToken returns a clientset that authenticates with token.
func (s *Stack) ClientForToken(token string) (kubernetes.Interface, error) {
	c, err := kubernetes.NewForConfig(s.ConfigForToken(token))
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	return c, nil
}
