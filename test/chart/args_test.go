package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// lanyardBin builds cmd/<pkg> as lanyard-<pkg> into a directory of the test.
func lanyardBin(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "lanyard-"+pkg)
	if msg, err := exec.Command("go", "build", "-o", out, "../../cmd/"+pkg).CombinedOutput(); err != nil {
		t.Fatalf("build lanyard-%s: %v\n%s", pkg, err, msg)
	}
	return out
}

// acceptsArgs runs bin with args and --help: flag parsing fails on any flag
// the command does not know or a value it cannot parse, and --help then stops
// it from doing anything else.
func acceptsArgs(t *testing.T, bin string, args []string) {
	t.Helper()
	cmd := exec.Command(bin, append(slices.Clone(args), "--help")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s refuses the arguments %q: %v\n%s", filepath.Base(bin), args, err, out)
	}
}

func TestTheChartsArgumentsAreOnesTheBinariesAccept(t *testing.T) {
	broker := lanyardBin(t, "broker")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "default values"},
		{name: "every feature on", args: []string{"-f", allFeatures}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := 0
			for _, obj := range render(t, "lanyard", "lanyard", tc.args...) {
				if obj.GetKind() != "Deployment" {
					continue
				}
				var d struct {
					Spec struct {
						Template corev1.PodTemplateSpec `json:"template"`
					} `json:"spec"`
				}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
					t.Fatal(err)
				}
				for _, c := range d.Spec.Template.Spec.Containers {
					if len(c.Args) > 0 && (c.Args[0] == "serve" || c.Args[0] == "webhook") {
						acceptsArgs(t, broker, c.Args)
						seen++
					}
				}
			}
			if seen != 2 {
				t.Errorf("checked %d broker containers, want the broker and the webhook", seen)
			}
		})
	}
}

func TestTheInjectedAgentsArgumentsAreOnesTheAgentAccepts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "injected-pod.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var pod struct {
		Spec corev1.PodSpec `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &pod); err != nil {
		t.Fatal(err)
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == "lanyard-agent" {
			acceptsArgs(t, lanyardBin(t, "agent"), c.Args)
			return
		}
	}
	t.Fatal("the injected pod has no lanyard-agent init container")
}
