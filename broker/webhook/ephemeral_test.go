package webhook

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ephemeralReview is the review the API server sends when kubectl debug adds ephemeral
// containers to old, turning it into pod. A nil old leaves the old object out.
func ephemeralReview(
	t testing.TB,
	op admissionv1.Operation,
	subresource string,
	old, pod *corev1.Pod,
) []byte {
	t.Helper()
	raw := func(p *corev1.Pod) runtime.RawExtension {
		if p == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:         "7d1e0c2a-2222-4b4b-8d8d-abcdefabcdef",
			Kind:        metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:    metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			SubResource: subresource,
			Name:        pod.Name,
			Namespace:   pod.Namespace,
			Operation:   op,
			Object:      raw(pod),
			OldObject:   raw(old),
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// debugContainer is what kubectl debug adds, before the test gives it mounts or a target.
func debugContainer(name string) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: name, Image: "busybox:1.37", Stdin: true, TTY: true}}
}

func mounting(name, volume string, readOnly bool) corev1.EphemeralContainer {
	c := debugContainer(name)
	c.VolumeMounts = []corev1.VolumeMount{{Name: volume, MountPath: "/debug", ReadOnly: readOnly}}
	return c
}

func subPath(c corev1.EphemeralContainer) corev1.EphemeralContainer {
	c.VolumeMounts[0].SubPath = "token"
	return c
}

func targeting(name, target string) corev1.EphemeralContainer {
	c := debugContainer(name)
	c.TargetContainerName = target
	return c
}

// serveAt sends body to path on the webhook's routes and returns the response and logs.
func serveAt(t *testing.T, path string, body []byte) (*admissionv1.AdmissionResponse, string) {
	t.Helper()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := NewServer(NewHandler(testInjector(t), logger), nil, logger).Mux()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
	return decodeResponse(t, rec), logs.String()
}

func TestEphemeralContainersThatReachTheAgentsTokenAreRefused(t *testing.T) {
	tests := []struct {
		name     string
		existing []corev1.EphemeralContainer // already in the pod
		added    []corev1.EphemeralContainer // added by this update
		noOld    bool                        // the request carries no old object
		change   func(*corev1.Pod)           // applied to old and new pod alike
		want     string                      // part of the refusal; empty: admitted
	}{
		{name: "a plain debug container is admitted",
			added: []corev1.EphemeralContainer{debugContainer("debugger")}},
		{name: "a debug container targeting an app container is admitted",
			added: []corev1.EphemeralContainer{targeting("debugger", "app")}},
		{name: "a read-only mount of the credential is admitted",
			added: []corev1.EphemeralContainer{mounting("debugger", CredentialVolumeName, true)}},
		{name: "a mount of the agent's token is refused",
			added: []corev1.EphemeralContainer{mounting("debugger", TokenVolumeName, true)},
			want: "ephemeral container debugger mounts volume lanyard-token, which holds the " +
				"lanyard agent's Kubernetes token: remove that volume mount"},
		{name: "a sub path of the agent's token is refused as well",
			added: []corev1.EphemeralContainer{subPath(mounting("debugger", TokenVolumeName, true))},
			want:  "mounts volume lanyard-token"},
		{name: "targeting the agent is refused",
			added: []corev1.EphemeralContainer{targeting("debugger", AgentContainerName)},
			want: "ephemeral container debugger targets container lanyard-agent, whose " +
				"Kubernetes token it could read through /proc: target an app container instead"},
		{name: "a writable mount of the credential is refused",
			added: []corev1.EphemeralContainer{mounting("debugger", CredentialVolumeName, false)},
			want:  "mounts volume lanyard-credential writable",
		},
		{name: "the first offending container of several is named",
			added: []corev1.EphemeralContainer{debugContainer("fine"),
				targeting("second", AgentContainerName), mounting("third", TokenVolumeName, true)},
			want: "ephemeral container second targets"},
		{name: "an offending container added earlier does not block the next debug session",
			existing: []corev1.EphemeralContainer{mounting("old", TokenVolumeName, true)},
			added:    []corev1.EphemeralContainer{debugContainer("debugger")}},
		{name: "a new offending container is refused beside earlier ones",
			existing: []corev1.EphemeralContainer{debugContainer("old")},
			added:    []corev1.EphemeralContainer{targeting("debugger", AgentContainerName)},
			want:     "ephemeral container debugger targets"},
		{name: "without the old pod every container counts as new",
			existing: []corev1.EphemeralContainer{mounting("old", TokenVolumeName, true)},
			added:    []corev1.EphemeralContainer{debugContainer("debugger")}, noOld: true,
			want: "ephemeral container old mounts volume lanyard-token"},
		{name: "a pod whose lanyard annotations were removed is still checked",
			added:  []corev1.EphemeralContainer{mounting("debugger", TokenVolumeName, true)},
			change: func(p *corev1.Pod) { p.Annotations = nil },
			want:   "mounts volume lanyard-token"},
		{name: "a pod lanyard did not inject passes untouched, whatever its names",
			added: []corev1.EphemeralContainer{targeting("debugger", AgentContainerName)},
			change: func(p *corev1.Pod) {
				p.Annotations = map[string]string{"team": "a"}
				p.Spec.InitContainers, p.Spec.Volumes = nil, nil
				p.Spec.Containers = []corev1.Container{{Name: AgentContainerName, Image: "own:1"}}
			}},
	}
	for _, tc := range tests {
		for _, path := range []string{"/validate", "/mutate"} {
			t.Run(tc.name+" on "+path, func(t *testing.T) {
				old := storedPod(t)
				if tc.change != nil {
					tc.change(old)
				}
				old.Spec.EphemeralContainers = tc.existing
				pod := old.DeepCopy()
				pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, tc.added...)
				if tc.noOld {
					old = nil
				}
				body := ephemeralReview(t, admissionv1.Update, SubresourceEphemeralContainers, old, pod)
				resp, logs := serveAt(t, path, body)
				if resp.Patch != nil || resp.PatchType != nil {
					t.Errorf("the review of ephemeral containers came back with a patch")
				}
				if tc.want == "" {
					if !resp.Allowed {
						t.Errorf("refused: %+v", resp.Result)
					}
					return
				}
				if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusForbidden ||
					!strings.Contains(resp.Result.Message, tc.want) {
					t.Fatalf("response = %+v, want a 403 containing %q", resp.Result, tc.want)
				}
				if !strings.HasPrefix(resp.Result.Message, "lanyard: ") {
					t.Errorf("message %q does not say it comes from lanyard", resp.Result.Message)
				}
				if strings.Contains(logs, "busybox") || strings.Contains(logs, "debugger") {
					t.Errorf("log holds pod content: %s", logs)
				}
			})
		}
	}
}

func TestEphemeralRefusalIsLoggedByItsCode(t *testing.T) {
	tests := []struct {
		name  string
		added corev1.EphemeralContainer
		code  RefusalCode
	}{
		{"a token mount is logged as token_mount",
			mounting("debugger", TokenVolumeName, true), RefusedTokenMount},
		{"targeting the agent is logged as process_namespace",
			targeting("debugger", AgentContainerName), RefusedProcessNamespace},
		{"a writable credential is logged as credential_writable",
			mounting("debugger", CredentialVolumeName, false), RefusedWritableCredential},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := storedPod(t)
			pod := old.DeepCopy()
			pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{tc.added}
			_, logs := serveAt(t, "/validate",
				ephemeralReview(t, admissionv1.Update, SubresourceEphemeralContainers, old, pod))
			var line map[string]any
			if err := json.Unmarshal([]byte(logs), &line); err != nil {
				t.Fatalf("log = %q: %v", logs, err)
			}
			want := map[string]any{"msg": "Ephemeral container refused", "namespace": "team-a",
				"pod": "web", "decision": "refused", "reason": string(tc.code),
				"uid": "7d1e0c2a-2222-4b4b-8d8d-abcdefabcdef"}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("log field %s = %v, want %v", k, line[k], v)
				}
			}
		})
	}
}

// Updates of the pod itself are judged in podupdate_test.go.
func TestRequestsOtherThanPodCreationUpdateAndDebugPassUntouched(t *testing.T) {
	offending := func(t *testing.T) (*corev1.Pod, *corev1.Pod) {
		old := storedPod(t)
		pod := old.DeepCopy()
		pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{
			mounting("debugger", TokenVolumeName, true)}
		return old, pod
	}
	tests := []struct {
		name string
		path string
		body func(t *testing.T) []byte
	}{
		{"a status update of an injected pod passes", "/mutate", func(t *testing.T) []byte {
			old, pod := offending(t)
			return ephemeralReview(t, admissionv1.Update, "status", old, pod)
		}},
		{"a create of the ephemeralcontainers subresource is not a debug session", "/validate",
			func(t *testing.T) []byte {
				_, pod := offending(t)
				return ephemeralReview(t, admissionv1.Create, SubresourceEphemeralContainers, nil, pod)
			}},
		{"pod creation on /validate is admitted without a patch", "/validate",
			func(t *testing.T) []byte { return reviewBody(t, fixturePod()) }},
		{"an unknown role on /validate is left to /mutate", "/validate", func(t *testing.T) []byte {
			pod := fixturePod()
			pod.Annotations[AnnotationRole] = "db-admin"
			return reviewBody(t, pod)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := serveAt(t, tc.path, tc.body(t))
			if !resp.Allowed || resp.Patch != nil || resp.PatchType != nil {
				t.Errorf("allowed=%v patch=%s, want admitted untouched", resp.Allowed, resp.Patch)
			}
		})
	}
}

// fuzzSeedPod is a small injected pod for the fuzz seeds, which cannot use storedPod.
func fuzzSeedPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a",
			Annotations: map[string]string{AnnotationRole: "pod-reader", AnnotationInjected: "true"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: AgentContainerName, Image: "agent:1"}},
			Containers:     []corev1.Container{{Name: "app", Image: "app:1"}},
			Volumes:        []corev1.Volume{{Name: TokenVolumeName}, {Name: CredentialVolumeName}},
		},
	}
}

// ephemeralSeeds are reviews of debug sessions for FuzzDecodeReview.
func ephemeralSeeds(f *testing.F) [][]byte {
	old := fuzzSeedPod()
	var seeds [][]byte
	for _, c := range []corev1.EphemeralContainer{debugContainer("d"),
		mounting("d", TokenVolumeName, true), mounting("d", CredentialVolumeName, false),
		targeting("d", AgentContainerName)} {
		pod := old.DeepCopy()
		pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{c}
		seeds = append(seeds,
			ephemeralReview(f, admissionv1.Update, SubresourceEphemeralContainers, old, pod))
	}
	pod := old.DeepCopy()
	pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{targeting("d", AgentContainerName)}
	seeds = append(seeds,
		ephemeralReview(f, admissionv1.Update, SubresourceEphemeralContainers, nil, pod))
	seeds = append(seeds, []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",`+
		`"request":{"uid":"u","kind":{"kind":"Pod"},"operation":"UPDATE",`+
		`"subResource":"ephemeralcontainers","object":{"spec":{"volumes":[{"name":"lanyard-token"}],`+
		`"ephemeralContainers":[{"name":"d","volumeMounts":[{"name":"lanyard-token"}]}]}},`+
		`"oldObject":{"spec":{"ephemeralContainers":"not a list"}}}}`))
	return seeds
}
