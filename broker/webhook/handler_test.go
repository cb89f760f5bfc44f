package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
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

func reviewBody(t testing.TB, pod *corev1.Pod) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "0b3c5f5e-1111-4a4a-9c9c-123456789abc",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: pod.Namespace,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func serve(t *testing.T, body []byte) (*httptest.ResponseRecorder, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	h := NewHandler(testInjector(t), slog.New(slog.NewJSONHandler(&logs, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body)))
	return rec, &logs
}

func decodeResponse(t *testing.T, rec *httptest.ResponseRecorder) *admissionv1.AdmissionResponse {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Response == nil {
		t.Fatalf("response review = %s", rec.Body)
	}
	return out.Response
}

func TestHandlerAnswersWithAJSONPatch(t *testing.T) {
	rec, _ := serve(t, reviewBody(t, fixturePod()))
	resp := decodeResponse(t, rec)
	if !resp.Allowed || resp.UID != "0b3c5f5e-1111-4a4a-9c9c-123456789abc" {
		t.Errorf("allowed=%v uid=%s", resp.Allowed, resp.UID)
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch || len(resp.Patch) == 0 {
		t.Error("no JSON patch in the response")
	}
}

func TestHandlerRefusesWithTheMessage(t *testing.T) {
	pod := fixturePod()
	pod.Annotations[AnnotationRole] = "db-admin"
	rec, _ := serve(t, reviewBody(t, pod))
	resp := decodeResponse(t, rec)
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusForbidden ||
		!strings.Contains(resp.Result.Message, `role "db-admin" is not in the lanyard catalog`) {
		t.Errorf("response = %+v", resp)
	}
}

func TestHandlerLogsARefusalByItsCodeOnly(t *testing.T) {
	pod := fixturePod()
	pod.Annotations[AnnotationContainers] = "app,secret-sauce"
	_, logs := serve(t, reviewBody(t, pod))
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log = %q: %v", logs, err)
	}
	if line["reason"] != "annotation" || strings.Contains(logs.String(), "secret-sauce") {
		t.Errorf("refusal log = %s, want reason annotation and no pod content", logs)
	}
}

func TestHandlerLogsTheDecisionButNeverThePodSpec(t *testing.T) {
	pod := fixturePod()
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", Value: "hunter2-secret"}}
	_, logs := serve(t, reviewBody(t, pod))
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log = %q: %v", logs, err)
	}
	want := map[string]any{"msg": "Pod injected", "namespace": "team-a", "pod": "web",
		"role": "pod-reader", "decision": "injected", "uid": "0b3c5f5e-1111-4a4a-9c9c-123456789abc"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log field %s = %v, want %v", k, line[k], v)
		}
	}
	if strings.Contains(logs.String(), "hunter2") || strings.Contains(logs.String(), "example.com") {
		t.Errorf("log holds pod spec content: %s", logs)
	}
}

func TestHandlerRejectsBadRequests(t *testing.T) {
	big := bytes.Repeat([]byte("x"), MaxRequestBytes+1)
	tests := []struct {
		name string
		body []byte
		code int
	}{
		{"a body over 1 MiB is refused unread", big, http.StatusRequestEntityTooLarge},
		{"a body that is not JSON is refused", []byte("{"), http.StatusBadRequest},
		{"a review of another version is refused",
			[]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}`),
			http.StatusBadRequest},
		{"a review without request is refused",
			[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
			http.StatusBadRequest},
		{"a review of a deployment is refused", []byte(`{"apiVersion":"admission.k8s.io/v1",` +
			`"kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps",` +
			`"version":"v1","kind":"Deployment"},"object":{}}}`), http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, _ := serve(t, tc.body)
			if rec.Code != tc.code {
				t.Errorf("status = %d, want %d", rec.Code, tc.code)
			}
		})
	}
}

func FuzzDecodeReview(f *testing.F) {
	f.Add(reviewBody(f, fixturePod()))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":` +
		`{"uid":"u","kind":{"kind":"Pod"},"object":{"metadata":{"annotations":` +
		`{"lanyard.dev/role":"pod-reader","lanyard.dev/containers":"a,b"}},` +
		`"spec":{"containers":[{"name":"a"}]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`))
	own := fixturePod()
	own.Spec.InitContainers = []corev1.Container{{Name: AgentContainerName, Image: "a:1",
		SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
			Add: []corev1.Capability{"SYS_ADMIN"}}}}}
	f.Add(reviewBody(f, own))
	for _, seed := range append(ephemeralSeeds(f), podUpdateSeeds(f)...) {
		f.Add(seed)
	}
	in, err := NewInjector(testConfig(), roleTable{"pod-reader": 3600e9})
	if err != nil {
		f.Fatal(err)
	}
	validating := NewHandler(in, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, body []byte) {
		review, pod, err := DecodeReview(body)
		if err != nil {
			return
		}
		if review.Request == nil || pod == nil {
			t.Fatal("DecodeReview returned no request or pod without error")
		}
		// The validating path must answer every decoded review, debug sessions included,
		// with the request's UID and never with a patch, which the API server would refuse.
		if resp := validating.review(review.Request, pod, false); resp.UID != review.Request.UID ||
			resp.Patch != nil || resp.PatchType != nil {
			t.Fatalf("validating answer uid=%s patch=%s", resp.UID, resp.Patch)
		}
		if err := CheckEphemeralContainers(review.Request, pod); err != nil {
			var refusal *Refusal
			if !errors.As(err, &refusal) || refusal.Code == "" {
				t.Fatalf("ephemeral check error %v is not a coded refusal", err)
			}
		}
		var refusal *Refusal
		if err := CheckPodUpdate(review.Request, pod); errors.As(err, &refusal) &&
			refusal.Code != RefusedAgentChanged {
			t.Fatalf("pod update refused with code %q", refusal.Code)
		}
		res, err := in.Mutate(pod)
		if err != nil || len(res.Patch) == 0 {
			return
		}
		again, err := in.Mutate(apply(t, pod, res.Patch))
		if err != nil || len(again.Patch) != 0 {
			t.Fatalf("mutation does not converge: %v, %+v", err, again.Patch)
		}
	})
}
