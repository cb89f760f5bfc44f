package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// check is one real API call made with a credential.
type check struct {
	what string
	want string // "allowed" or "refused"
	call func(context.Context, kubernetes.Interface) error
}

var dryRun = []string{metav1.DryRunAll}

// podReader fetches a pod-reader credential with `lanyard-agent once` and
// probes what it may do.
func (d *demo) podReader(ctx context.Context) ([]row, error) {
	d.step("lanyard-agent once --role %s as %s/%s", podReader, teamA, webPod)
	client, err := d.agentOnce(ctx, webPod, appAccount, podReader)
	if err != nil {
		return nil, err
	}
	return probe(ctx, client, podReader, []check{
		{"list pods in team-a", "allowed", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods(teamA).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"get pod team-a/web", "allowed", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods(teamA).Get(ctx, webPod, metav1.GetOptions{})
			return err
		}},
		{"delete pod team-a/web", "refused", func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoreV1().Pods(teamA).Delete(ctx, webPod, metav1.DeleteOptions{DryRun: dryRun})
		}},
		{"list pods in team-b", "refused", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods(teamB).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list secrets in team-a", "refused", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(teamA).List(ctx, metav1.ListOptions{})
			return err
		}},
	}), nil
}

// viewer fetches a credential bound to the ClusterRole view.
func (d *demo) viewer(ctx context.Context) ([]row, error) {
	d.step("lanyard-agent once --role %s as %s/%s", viewerRole, teamA, webPod)
	client, err := d.agentOnce(ctx, webPod, appAccount, viewerRole)
	if err != nil {
		return nil, err
	}
	return probe(ctx, client, viewerRole, []check{
		{"list configmaps in team-a", "allowed", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().ConfigMaps(teamA).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create a configmap in team-a", "refused", func(ctx context.Context, c kubernetes.Interface) error {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
			_, err := c.CoreV1().ConfigMaps(teamA).Create(ctx, cm, metav1.CreateOptions{DryRun: dryRun})
			return err
		}},
		{"list secrets in team-a", "refused", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(teamA).List(ctx, metav1.ListOptions{})
			return err
		}},
	}), nil
}

// deniedIdentity asks for pod-reader as a service account the catalog does
// not name, and shows the broker's reason.
func (d *demo) deniedIdentity(ctx context.Context) ([]row, error) {
	d.step("lanyard-agent once --role %s as %s/%s (not a subject)", podReader, teamA, otherPod)
	tokenFile, err := d.podToken(ctx, otherPod, otherSA)
	if err != nil {
		return nil, err
	}
	args := append([]string{"once"}, d.agentArgs(tokenFile, podReader, d.path("denied"))...)
	out, err := output(ctx, d.bin("lanyard-agent"), args, nil)
	var exit *exitError
	if !errors.As(err, &exit) {
		return nil, fmt.Errorf("lanyard-agent once for a denied identity: want exit 1, got %w", err)
	}
	got := "denied: " + brokerReason(exit.stderr+out)
	return []row{{
		role: podReader, what: "request as " + teamA + "/" + otherSA, want: "denied", got: got,
		ok: strings.Contains(got, "not a subject"),
	}}, nil
}

// revocation runs the agent as a sidecar, stops it as Kubernetes would, and
// shows that the credential it held stops working.
func (d *demo) revocation(ctx context.Context) ([]row, error) {
	d.step("lanyard-agent run, then SIGTERM: the agent revokes its credential")
	tokenFile, err := d.podToken(ctx, webPod, appAccount)
	if err != nil {
		return nil, err
	}
	outDir := d.path("run")
	args := append([]string{"run"}, d.agentArgs(tokenFile, podReader, outDir)...)
	p, err := d.start("agent-run", d.bin("lanyard-agent"), args)
	if err != nil {
		return nil, err
	}
	client, err := waitForCredential(ctx, outDir)
	if err != nil {
		return nil, err
	}
	if _, err := client.CoreV1().Pods(teamA).List(ctx, metav1.ListOptions{}); err != nil {
		return nil, fmt.Errorf("the running agent's credential does not work: %w", err)
	}
	start := time.Now()
	if err := p.terminate(10 * time.Second); err != nil {
		return nil, err
	}
	got := "still accepted after 60s"
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, err := client.CoreV1().Pods(teamA).List(ctx, metav1.ListOptions{})
		if apierrors.IsUnauthorized(err) {
			got = fmt.Sprintf("refused (401) %ds after SIGTERM", int(time.Since(start).Seconds()))
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return []row{{
		role: podReader, what: "list pods after the agent stopped", want: "refused", got: got,
		ok: strings.HasPrefix(got, "refused"),
	}}, nil
}

// agentOnce runs `lanyard-agent once` for pod and returns a client built from
// the kubeconfig it wrote.
func (d *demo) agentOnce(ctx context.Context, pod, account, role string) (kubernetes.Interface, error) {
	tokenFile, err := d.podToken(ctx, pod, account)
	if err != nil {
		return nil, err
	}
	outDir := d.path(role + "-once")
	args := append([]string{"once"}, d.agentArgs(tokenFile, role, outDir)...)
	if _, err := output(ctx, d.bin("lanyard-agent"), args, nil); err != nil {
		return nil, err
	}
	return kubeconfigClient(outDir)
}

func kubeconfigClient(dir string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return nil, fmt.Errorf("load the agent's kubeconfig: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

func waitForCredential(ctx context.Context, dir string) (kubernetes.Interface, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err == nil {
			return kubeconfigClient(dir)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("the agent wrote no credential into %s within 60s", dir)
}

func probe(ctx context.Context, c kubernetes.Interface, role string, checks []check) []row {
	rows := make([]row, 0, len(checks))
	for _, ch := range checks {
		got := outcome(ch.call(ctx, c))
		rows = append(rows, row{
			role: role, what: ch.what, want: ch.want, got: got,
			ok: strings.HasPrefix(got, ch.want),
		})
	}
	return rows
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "allowed"
	case apierrors.IsForbidden(err):
		return "refused (403)"
	case apierrors.IsUnauthorized(err):
		return "refused (401)"
	default:
		return "error: " + err.Error()
	}
}

// brokerReason picks the broker's reason out of the agent's error output.
func brokerReason(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "service account "); i >= 0 {
			reason := line[i:]
			if j := strings.Index(reason, "\""); j >= 0 {
				reason = reason[:j]
			}
			return strings.TrimSpace(reason)
		}
	}
	return strings.TrimSpace(out)
}
