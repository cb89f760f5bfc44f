package brokertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Caller is a pod that may call the broker: the pod object (it never runs)
// and a file holding its projected token, as the kubelet would mount it.
type Caller struct {
	Pod       *corev1.Pod
	TokenFile string
}

// NewCaller creates a pod named name-<random> in namespace, running as
// serviceAccount with labels (namespace and account are created when
// missing), and writes a token bound to it for the broker's audience, valid
// for an hour, into a file of the test's. The token is remembered as a
// secret the broker must not log.
func (b *Broker) NewCaller(
	t testing.TB,
	namespace, name, serviceAccount string,
	labels map[string]string,
) Caller {
	t.Helper()
	c, token, err := newCaller(context.Background(), b, t.TempDir(), namespace, name,
		serviceAccount, labels)
	if err != nil {
		t.Fatalf("brokertest: caller: %v", err)
	}
	b.Remember(token)
	return c
}

func newCaller(
	ctx context.Context,
	b *Broker,
	dir, namespace, name, serviceAccount string,
	labels map[string]string,
) (Caller, string, error) {
	if err := b.stack.CreateNamespace(ctx, namespace, nil); err != nil {
		return Caller{}, "", err
	}
	pod, err := b.stack.CreatePod(ctx, namespace, name+"-"+rand.String(5), serviceAccount, labels)
	if err != nil {
		return Caller{}, "", err
	}
	token, err := b.stack.PodToken(ctx, pod, Audience, time.Hour)
	if err != nil {
		return Caller{}, "", err
	}
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		return Caller{}, "", fmt.Errorf("write caller token: %w", err)
	}
	return Caller{Pod: pod, TokenFile: path}, token, nil
}
