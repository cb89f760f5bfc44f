package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

const agentChangeRefusal = "init container lanyard-agent, which mounts the lanyard agent's " +
	"Kubernetes token: the lanyard agent cannot be changed after the pod is created; " +
	"delete and recreate the pod instead"

// setAgentImage gives the pod's lanyard-agent init container an image of the updater's.
func setAgentImage(p *corev1.Pod) { agentInitContainer(p).Image = "registry.example/own:1" }

// withOldObject replaces the old object of the review body with raw, as written.
func withOldObject(t *testing.T, body []byte, raw string) []byte {
	t.Helper()
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		t.Fatal(err)
	}
	review.Request.OldObject.Raw = []byte(raw)
	out, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPodUpdatesCannotChangeTheAgent(t *testing.T) {
	tests := []struct {
		name   string
		before func(*corev1.Pod) // applied to the stored pod, so to both sides
		update func(*corev1.Pod) // what the update changes
		oldRaw string            // replaces the old object; "-" leaves it out
		code   int32             // 0: admitted
		want   string            // part of the denial
	}{
		{name: "a label change passes",
			update: func(p *corev1.Pod) { p.Labels = map[string]string{"tier": "web"} }},
		{name: "a new image for an app container passes",
			update: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "example.invalid/app:2" }},
		{name: "removing a finalizer passes",
			before: func(p *corev1.Pod) { p.Finalizers = []string{"example.com/hold"} },
			update: func(p *corev1.Pod) { p.Finalizers = nil }},
		{name: "new tolerations and a deadline pass",
			update: func(p *corev1.Pod) {
				p.Spec.ActiveDeadlineSeconds = ptr(int64(600))
				p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{
					Key: "example.com/drain", Operator: corev1.TolerationOpExists})
			}},
		{name: "removing the lanyard annotations passes while the agent stays",
			update: func(p *corev1.Pod) { p.Annotations = nil }},
		{name: "an offending debug container added earlier does not block an update",
			before: func(p *corev1.Pod) {
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{
					mounting("old", TokenVolumeName, true)}
			},
			update: func(p *corev1.Pod) { delete(p.Annotations, AnnotationInjected) }},
		{name: "a new image for the agent is refused", update: setAgentImage,
			code: http.StatusForbidden, want: "the update changes the image of " + agentChangeRefusal},
		{name: "a new image for the agent is refused when the update also drops the annotations",
			update: func(p *corev1.Pod) { setAgentImage(p); p.Annotations = nil },
			code:   http.StatusForbidden, want: "changes the image of init container lanyard-agent"},
		{name: "a new image for the agent is refused in a pod whose annotations went earlier",
			before: func(p *corev1.Pod) { p.Annotations = nil }, update: setAgentImage,
			code: http.StatusForbidden, want: "changes the image of init container lanyard-agent"},
		{name: "a change to any other field of the agent is refused",
			update: func(p *corev1.Pod) {
				a := agentInitContainer(p)
				a.Env = append(a.Env, corev1.EnvVar{Name: "GRPC_PROXY", Value: "http://proxy:3128"})
			},
			code: http.StatusForbidden, want: "the update changes " + agentChangeRefusal},
		{name: "an update without the agent is refused though the API server never sends one",
			update: func(p *corev1.Pod) { p.Spec.InitContainers = nil },
			code:   http.StatusForbidden, want: "the update removes init container lanyard-agent"},
		{name: "a pod lanyard did not inject changes its init containers freely",
			before: func(p *corev1.Pod) {
				p.Annotations, p.Spec.Volumes = map[string]string{"team": "a"}, nil
				p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "setup:1"}}
			},
			update: func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "setup:2" }},
		{name: "an update without the old pod is refused as unchecked",
			update: func(p *corev1.Pod) { p.Labels = map[string]string{"tier": "web"} },
			oldRaw: "-", code: http.StatusInternalServerError,
			want: "lanyard: check failure: pod update carries no old object"},
		{name: "an update with an unreadable old pod is refused as unchecked",
			update: func(p *corev1.Pod) { p.Labels = map[string]string{"tier": "web"} },
			oldRaw: `{"spec":{"initContainers":"not a list"}}`, code: http.StatusInternalServerError,
			want: "lanyard: check failure: decode old pod"},
	}
	for _, tc := range tests {
		for _, path := range []string{"/validate", "/mutate"} {
			t.Run(tc.name+" on "+path, func(t *testing.T) {
				old := storedPod(t)
				if tc.before != nil {
					tc.before(old)
				}
				pod := old.DeepCopy()
				tc.update(pod)
				body := ephemeralReview(t, admissionv1.Update, "", old, pod)
				switch tc.oldRaw {
				case "":
				case "-":
					body = ephemeralReview(t, admissionv1.Update, "", nil, pod)
				default:
					body = withOldObject(t, body, tc.oldRaw)
				}
				resp, logs := serveAt(t, path, body)
				if resp.Patch != nil || resp.PatchType != nil {
					t.Errorf("the review of a pod update came back with a patch")
				}
				if tc.code == 0 {
					if !resp.Allowed {
						t.Errorf("refused: %+v", resp.Result)
					}
					return
				}
				if resp.Allowed || resp.Result == nil || resp.Result.Code != tc.code ||
					!strings.Contains(resp.Result.Message, tc.want) {
					t.Fatalf("response = %+v, want a %d containing %q", resp.Result, tc.code, tc.want)
				}
				if !strings.HasPrefix(resp.Result.Message, "lanyard: ") {
					t.Errorf("message %q does not say it comes from lanyard", resp.Result.Message)
				}
				if strings.Contains(logs, "registry.example") || strings.Contains(logs, "proxy") {
					t.Errorf("log holds pod content: %s", logs)
				}
			})
		}
	}
}

func TestAgentChangeIsLoggedAsAgentChanged(t *testing.T) {
	old := storedPod(t)
	pod := old.DeepCopy()
	setAgentImage(pod)
	_, logs := serveAt(t, "/validate", ephemeralReview(t, admissionv1.Update, "", old, pod))
	var line map[string]any
	if err := json.Unmarshal([]byte(logs), &line); err != nil {
		t.Fatalf("log = %q: %v", logs, err)
	}
	want := map[string]any{"level": "INFO", "msg": "Pod update refused", "namespace": "team-a",
		"pod": "web", "decision": "refused", "reason": string(RefusedAgentChanged),
		"uid": "7d1e0c2a-2222-4b4b-8d8d-abcdefabcdef"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log field %s = %v, want %v", k, line[k], v)
		}
	}
}

// podUpdateSeeds are reviews of pod updates for FuzzDecodeReview.
func podUpdateSeeds(f *testing.F) [][]byte {
	old := fuzzSeedPod()
	relabelled, swapped := old.DeepCopy(), old.DeepCopy()
	relabelled.Labels = map[string]string{"tier": "web"}
	swapped.Spec.InitContainers[0].Image = "own:1"
	return [][]byte{
		ephemeralReview(f, admissionv1.Update, "", old, relabelled),
		ephemeralReview(f, admissionv1.Update, "", old, swapped),
		ephemeralReview(f, admissionv1.Update, "", nil, swapped),
	}
}
