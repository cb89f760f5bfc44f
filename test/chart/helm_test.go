// Package chart tests the Helm chart in deploy/helm/lanyard: rendered with the pinned helm,
// checked as data, and (with -tags integration) created in a real API server.
package chart

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/test/harness"
)

const (
	chartDir    = "../../deploy/helm/lanyard"
	allFeatures = "all-features.yaml"
)

// helmBin finds the pinned helm built by test/tools/build.sh helm.
func helmBin(t *testing.T) string {
	t.Helper()
	dir, err := harness.ToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("helm is missing from %s: run test/tools/build.sh helm", dir)
	}
	return bin
}

// helm runs the pinned helm and returns stdout, or stderr as the error text.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBin(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &helmError{msg: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

type helmError struct{ msg string }

func (e *helmError) Error() string { return e.msg }

// render templates the chart as release in namespace with extra helm arguments and
// returns every object, tests hooks included.
func render(t *testing.T, release, namespace string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, append([]string{"template", release, chartDir, "-n", namespace}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v", args, err)
	}
	return parseManifests(t, out)
}

func parseManifests(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(out, "\n---") {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if string(js) == "null" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// podSpecs returns the pod specs of Deployments and Pods, by object name.
func podSpecs(objs []*unstructured.Unstructured) map[string]map[string]any {
	specs := map[string]map[string]any{}
	for _, o := range objs {
		path := []string{"spec", "template", "spec"}
		if o.GetKind() == "Pod" {
			path = []string{"spec"}
		}
		if spec, ok, _ := unstructured.NestedMap(o.Object, path...); ok {
			specs[o.GetKind()+"/"+o.GetName()] = spec
		}
	}
	return specs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	return nil
}
