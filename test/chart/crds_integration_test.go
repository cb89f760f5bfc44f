//go:build integration

package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/lanyard-dev/lanyard/test/harness"
)

// crdModules is the directory, below this package, of the nested module that pins the
// projects whose CRDs the chart's custom resources must satisfy; being a module of its
// own keeps their requirements out of the root go.mod and out of `./...`.
const crdModules = "crds"

// crdFiles are the CRD manifests inside each pinned module. cert-manager's deploy/crds
// holds the plain controller-gen output; its Helm chart wraps the same in templates.
var crdFiles = map[string][]string{
	"github.com/cert-manager/cert-manager": {
		"deploy/crds/cert-manager.io_certificates.yaml",
		"deploy/crds/cert-manager.io_issuers.yaml",
	},
	"github.com/prometheus-operator/prometheus-operator": {
		"example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
	},
}

var crdResource = schema.GroupVersionResource{
	Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions",
}

// installCRDs creates the pinned CRDs in the API server of s, unless they exist already,
// and returns, once discovery lists every version they serve, the admin's dynamic and
// discovery clients.
func installCRDs(
	ctx context.Context,
	t *testing.T,
	s *harness.Stack,
) (dynamic.Interface, discovery.DiscoveryInterface) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(s.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(s.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	dirs := downloadModules(ctx, t, crdModules)
	var crds []*unstructured.Unstructured
	for module, files := range crdFiles {
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(dirs[module], f))
			if err != nil {
				t.Fatalf("CRD of %s: %v", module, err)
			}
			crds = append(crds, parseManifests(t, string(data))...)
		}
	}
	client := dyn.Resource(crdResource)
	opts := metav1.CreateOptions{FieldValidation: "Strict", FieldManager: "chart-test"}
	for _, crd := range crds {
		if _, err := client.Create(ctx, crd, opts); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", crd.GetName(), err)
		}
	}
	for _, crd := range crds {
		if err := waitServed(ctx, client, disc, crd.GetName()); err != nil {
			t.Fatalf("CRD %s: %v", crd.GetName(), err)
		}
	}
	return dyn, disc
}

// downloadModules fetches the requirements of the module in dir through the Go module
// proxy (or finds them in the module cache) and returns their directories by path.
func downloadModules(ctx context.Context, t *testing.T, dir string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var paths []string
	for module := range crdFiles {
		paths = append(paths, module)
	}
	slices.Sort(paths)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", append([]string{"mod", "download", "-json"}, paths...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	dirs := map[string]string{}
	var problems []string
	dec := json.NewDecoder(&stdout)
	for {
		var m struct{ Path, Version, Dir, Error string }
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("go mod download output: %v", err)
		}
		if m.Error != "" || m.Dir == "" {
			problems = append(problems, fmt.Sprintf("%s@%s: %s", m.Path, m.Version, m.Error))
			continue
		}
		dirs[m.Path] = m.Dir
	}
	if runErr != nil || len(problems) > 0 || len(dirs) != len(paths) {
		t.Fatalf("go mod download in %s: %v\n%s\n%s",
			dir, runErr, strings.Join(problems, "\n"), stderr.String())
	}
	return dirs
}

// waitServed waits until the CRD name is Established and discovery lists its resource in
// every version it serves, so that a RESTMapper built next finds it.
func waitServed(ctx context.Context, crds dynamic.ResourceInterface, disc discovery.DiscoveryInterface,
	name string) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true,
		func(ctx context.Context) (bool, error) {
			crd, err := crds.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			last = servedProblem(crd, disc)
			return last == nil, nil
		})
	if err != nil && last != nil {
		return fmt.Errorf("%w: %w", err, last)
	}
	return err
}

// servedProblem says why the CRD cannot be used yet, or returns nil.
func servedProblem(crd *unstructured.Unstructured, disc discovery.DiscoveryInterface) error {
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	established := slices.ContainsFunc(conditions, func(c any) bool {
		m, _ := c.(map[string]any)
		return m["type"] == "Established" && m["status"] == "True"
	})
	if !established {
		return errors.New("not established")
	}
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		v, _ := v.(map[string]any)
		if served, _ := v["served"].(bool); !served {
			continue
		}
		gv := fmt.Sprintf("%s/%s", group, v["name"])
		list, err := disc.ServerResourcesForGroupVersion(gv)
		if err != nil {
			return fmt.Errorf("discovery of %s: %w", gv, err)
		}
		listed := func(r metav1.APIResource) bool { return r.Name == plural }
		if !slices.ContainsFunc(list.APIResources, listed) {
			return fmt.Errorf("discovery of %s lacks %s", gv, plural)
		}
	}
	return nil
}

// TestTheInstalledCRDsRefuseFieldsTheirSchemaLacks shows that the chart's custom resources
// meet real schemas: a misspelt field in each is refused under strict validation.
func TestTheInstalledCRDsRefuseFieldsTheirSchemaLacks(t *testing.T) {
	s := harness.Shared(t)
	ctx := context.Background()
	dyn, _ := installCRDs(ctx, t, s)
	if err := s.CreateNamespace(ctx, "crd-strict", nil); err != nil {
		t.Fatal(err)
	}
	// Without an issuerRef the chart adds its own Issuers.
	objs := render(t, "crd-strict", "crd-strict", "-f", allFeatures,
		"--set", "tls.certManager.issuerRef=null")
	for _, kind := range []string{"Certificate", "Issuer", "ServiceMonitor"} {
		t.Run(kind, func(t *testing.T) {
			o := find(objs, kind, "")
			if o == nil {
				t.Fatalf("no %s rendered", kind)
			}
			o = o.DeepCopy()
			if err := unstructured.SetNestedField(o.Object, "x", "spec", "misspelt"); err != nil {
				t.Fatal(err)
			}
			gvk := o.GroupVersionKind()
			gvr := gvk.GroupVersion().WithResource(strings.ToLower(kind) + "s")
			_, err := dyn.Resource(gvr).Namespace("crd-strict").Create(ctx, o,
				metav1.CreateOptions{FieldValidation: "Strict", FieldManager: "chart-test"})
			if err == nil || !strings.Contains(err.Error(), "misspelt") {
				t.Errorf("create %s with spec.misspelt: error %v, want the unknown field named", kind, err)
			}
		})
	}
}
