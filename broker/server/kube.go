package server

import (
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Client-side rate limits of the broker's Kubernetes client. client-go's
// default (5 requests/s, burst 10) would cap the broker at a few calls per
// second, as each call needs a TokenReview and may need a pod GET.
const (
	kubeQPS   = 200
	kubeBurst = 400
)

// kube is the broker's Kubernetes client and what agents should use to
// reach the API server.
type kube struct {
	client      kubernetes.Interface
	meta        metadata.Interface // for the pod watch
	agentServer string
	agentCA     []byte
}

func newKube(o Options) (*kube, error) {
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = kubeQPS, kubeBurst
	cfg.UserAgent = "lanyard-broker"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes metadata client: %w", err)
	}
	k := &kube{client: client, meta: meta, agentServer: cfg.Host}
	if o.KubeAPIServerURL != "" {
		k.agentServer = o.KubeAPIServerURL
	}
	k.agentCA, err = agentCA(cfg, o.KubeCAFile)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// restConfig uses the kubeconfig file when given, else the in-cluster config.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster kubernetes config (or set --kubeconfig): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// agentCA returns the CA bundle handed to agents: --kube-ca-file, or the
// one the broker itself trusts.
func agentCA(cfg *rest.Config, file string) ([]byte, error) {
	if file == "" {
		file = cfg.CAFile
	}
	if file == "" {
		return cfg.CAData, nil
	}
	data, err := os.ReadFile(file) //nolint:gosec // G304: the operator's --kube-ca-file
	if err != nil {
		return nil, fmt.Errorf("read kubernetes ca: %w", err)
	}
	return data, nil
}
