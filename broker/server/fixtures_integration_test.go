//go:build integration

package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/test/harness"
)

// integrationCatalog has one role per grant kind, and roles that need pod
// and namespace labels.
const integrationCatalog = `apiVersion: lanyard.dev/v1alpha1
kind: RoleCatalog
roles:
  - name: pod-reader
    description: Read pods in the caller's namespace (rules)
    subjects:
      - namespace: team-a
        serviceAccounts: [app]
    grant:
      namespace: caller
      rules:
        - apiGroups: [""]
          resources: [pods]
          verbs: [get, list]
    ttl: 10m
    maxTTL: 1h
  - name: viewer
    description: The view ClusterRole in the caller's namespace (clusterRole)
    subjects:
      - namespaceSelector: {matchLabels: {team: a}}
        serviceAccounts: ["*"]
    grant: {namespace: caller, clusterRole: view}
  - name: config-editor
    description: The config-editor Role of team-a, for web pods only (role)
    subjects:
      - namespace: team-a
        serviceAccounts: [app]
        podSelector: {matchLabels: {app: web}}
    grant: {namespace: team-a, role: config-editor}
  - name: reporter
    description: The existing reporter account of team-a (serviceAccount)
    subjects:
      - namespace: team-a
        serviceAccounts: [app]
    grant: {namespace: team-a, serviceAccount: reporter}
  - name: ns-lister
    description: List namespaces (clusterWide rules)
    subjects:
      - namespace: team-a
        serviceAccounts: [app]
    grant:
      namespace: caller
      clusterWide: true
      rules:
        - apiGroups: [""]
          resources: [namespaces]
          verbs: [list]
`

// createFixtures creates the namespaces, the Role and the existing account
// the catalog refers to.
func createFixtures(ctx context.Context, s *harness.Stack) error {
	for ns, labels := range map[string]map[string]string{
		"team-a": {"team": "a"}, "team-b": {"team": "b"},
	} {
		if err := s.CreateNamespace(ctx, ns, labels); err != nil {
			return err
		}
	}
	_, err := s.Admin.RbacV1().Roles("team-a").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "config-editor"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			Verbs: []string{"get", "list", "create"}}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := s.CreateServiceAccount(ctx, "team-a", "reporter"); err != nil {
		return err
	}
	_, err = s.Admin.RbacV1().RoleBindings("team-a").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reporter-view"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "team-a", Name: "reporter"}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// newPod creates a pod with a unique name and returns it with a projected
// token for audience "lanyard".
func newPod(t *testing.T, lb *liveBroker, ns, sa string, labels map[string]string) (*corev1.Pod, string) {
	t.Helper()
	ctx := context.Background()
	name := "p-" + newRequestID()
	pod, err := lb.stack.CreatePod(ctx, ns, name, sa, labels)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := lb.stack.PodToken(ctx, pod, "lanyard", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rememberSecret(tok)
	return pod, tok
}

// expiredToken signs, with the stack's service account signing key, a token
// shaped like a projected one for pod but expired an hour ago. TokenRequest
// cannot mint a token shorter than 10 minutes, and tests must not wait.
func expiredToken(t *testing.T, lb *liveBroker, pod *corev1.Pod) string {
	t.Helper()
	key := signingKey(t, filepath.Join(lb.stack.Dir, "sa.key"))
	now := time.Now()
	claims := map[string]any{
		"iss": lb.stack.Issuer, "aud": []string{"lanyard"},
		"sub": "system:serviceaccount:" + pod.Namespace + ":" + pod.Spec.ServiceAccountName,
		"iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(),
		"exp": now.Add(-time.Hour).Unix(), "jti": "expired-" + newRequestID(),
		"kubernetes.io": map[string]any{
			"namespace": pod.Namespace,
			"pod":       map[string]string{"name": pod.Name, "uid": string(pod.UID)},
			"serviceaccount": map[string]string{"name": pod.Spec.ServiceAccountName,
				"uid": serviceAccountUID(t, lb, pod)},
		},
	}
	enc := base64.RawURLEncoding.EncodeToString
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	signed := enc(header) + "." + enc(payload)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	tok := signed + "." + enc(sig)
	rememberSecret(tok)
	return tok
}

func signingKey(t *testing.T, path string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal(errors.New("no PEM in the signing key file"))
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serviceAccountUID(t *testing.T, lb *liveBroker, pod *corev1.Pod) string {
	t.Helper()
	sa, err := lb.stack.Admin.CoreV1().ServiceAccounts(pod.Namespace).
		Get(context.Background(), pod.Spec.ServiceAccountName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(sa.UID)
}
