//go:build integration

package chart

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/lanyard-dev/lanyard/broker/webhook"
)

const agentChangeRefusal = "init container lanyard-agent, which mounts the lanyard agent's " +
	"Kubernetes token: the lanyard agent cannot be changed after the pod is created; " +
	"delete and recreate the pod instead"

// agentImagePatch is what kubectl set image sends to swap the agent's image.
var agentImagePatch = `{"spec":{"initContainers":[{"name":"lanyard-agent",` +
	`"image":"example.invalid/own-agent:1"}]}}`

// The patches are strategic merge patches, as kubectl patch and kubectl set image send;
// the API server turns each into an UPDATE of the pod for the webhooks.
func TestPodUpdatesCannotChangeTheAgent(t *testing.T) {
	pods := guardedPods(t, "update-a")
	ctx := context.Background()
	waitForUpdateHook(t, pods, "web")
	// An update the webhook judges, and must admit: it leaves the agent alone.
	stripAnnotations(t, pods, "stripped")

	tests := []struct {
		name    string
		pod     string
		patches []string // applied in order; only the last may be refused
		refused bool
		check   func(*corev1.Pod) error
	}{
		{name: "a new image for the agent is refused", pod: "web",
			patches: []string{agentImagePatch},
			refused: true},
		{name: "a new image for the agent of a pod whose annotations went earlier is refused",
			pod: "stripped", patches: []string{agentImagePatch},
			refused: true},
		{name: "a new image for the agent is refused when the patch also drops the annotations",
			pod: "web", patches: []string{`{"metadata":{"annotations":{"lanyard.dev/role":null,` +
				`"lanyard.dev/injected":null,"lanyard.dev/broker-ca":null}},` +
				agentImagePatch[1:]},
			refused: true},
		{name: "a label is accepted", pod: "web",
			patches: []string{`{"metadata":{"labels":{"tier":"web"}}}`},
			check: func(p *corev1.Pod) error {
				if p.Labels["tier"] != "web" {
					return fmt.Errorf("labels = %v", p.Labels)
				}
				return nil
			}},
		{name: "a new image for an app container is accepted", pod: "web",
			patches: []string{`{"spec":{"containers":[{"name":"app","image":"example.invalid/app:2"}]}}`},
			check: func(p *corev1.Pod) error {
				if got := p.Spec.Containers[0].Image; got != "example.invalid/app:2" {
					return fmt.Errorf("app image = %s", got)
				}
				return nil
			}},
		{name: "a finalizer can be added and removed", pod: "web",
			patches: []string{`{"metadata":{"finalizers":["example.com/hold"]}}`,
				`{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/hold"]}}`},
			check: func(p *corev1.Pod) error {
				if len(p.Finalizers) != 0 {
					return fmt.Errorf("finalizers = %v", p.Finalizers)
				}
				return nil
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stored *corev1.Pod
			var err error
			for _, patch := range tc.patches {
				stored, err = pods.Patch(ctx, tc.pod, types.StrategicMergePatchType,
					[]byte(patch), metav1.PatchOptions{})
				if err != nil {
					break
				}
			}
			if tc.refused {
				want := "lanyard: the update changes the image of " + agentChangeRefusal
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error = %v, want it to contain %q", err, want)
				}
				assertAgentImage(t, pods, tc.pod)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if err := tc.check(stored); err != nil {
				t.Error(err)
			}
			if got := agentImage(stored); got != testAgentImage {
				t.Errorf("agent image = %q after an update that did not touch it", got)
			}
		})
	}
}

// waitForUpdateHook waits until the API server sends pod updates to the webhook (its
// configuration cache lags), probing with a dry run so that nothing reaches the pod.
func waitForUpdateHook(t *testing.T, pods typedcorev1.PodInterface, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		_, err := pods.Patch(context.Background(), name, types.StrategicMergePatchType,
			[]byte(agentImagePatch), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case err == nil:
			return errors.New("a new image for the agent was admitted")
		case !strings.Contains(err.Error(), agentChangeRefusal):
			return err
		}
		return nil
	})
}

// assertAgentImage fails unless the stored pod still runs the injector's agent image.
func assertAgentImage(t *testing.T, pods typedcorev1.PodInterface, name string) {
	t.Helper()
	pod, err := pods.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := agentImage(pod); got != testAgentImage {
		t.Errorf("stored agent image = %q after a refused update", got)
	}
}

func agentImage(pod *corev1.Pod) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == webhook.AgentContainerName {
			return c.Image
		}
	}
	return ""
}
