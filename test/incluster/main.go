// Command incluster is an unmodified in-cluster client-go program: it builds
// its configuration with rest.InClusterConfig, reads its namespace from the
// service account directory and prints how many pods it can list there. The
// agent's integration tests run it against a credential directory mounted
// where Kubernetes mounts service account tokens.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "incluster:", err)
		os.Exit(1)
	}
}

func run() error {
	ns, err := os.ReadFile(namespaceFile)
	if err != nil {
		return fmt.Errorf("read namespace: %w", err)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("in-cluster config: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	namespace := strings.TrimSpace(string(ns))
	pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods in %s: %w", namespace, err)
	}
	fmt.Printf("pods in %s: %d\n", namespace, len(pods.Items))
	return nil
}
