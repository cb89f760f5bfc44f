package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxRequestBytes bounds an admission request body. The API server sends at most a few
// hundred KiB for the largest pods; anything beyond is refused unread.
const MaxRequestBytes = 1 << 20

// Log field names. The webhook never logs a pod spec: env values may hold secrets.
const (
	logNamespace = "namespace"
	logPod       = "pod"
	logUID       = "uid"
	logRole      = "role"
	logDecision  = "decision"
	logReason    = "reason"
	logError     = "error"
)

// Handler serves AdmissionReview v1 requests for pods. It injects into pods being created,
// checks the ephemeral containers added to injected pods and refuses updates that change
// their agent; every other request passes untouched.
type Handler struct {
	injector *Injector
	logger   *slog.Logger
}

// NewHandler returns the /mutate handler.
func NewHandler(injector *Injector, logger *slog.Logger) *Handler {
	return &Handler{injector: injector, logger: logger}
}

// ServeHTTP answers /mutate: one review decided, answered with the same UID.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, true)
}

// Validating returns the handler of /validate, for a ValidatingWebhookConfiguration: the
// same checks, but it never patches, since the API server refuses a patch from a
// validating webhook. Pod creation passes it untouched; injecting is /mutate's job.
func (h *Handler) Validating() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, false) })
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, mutate bool) {
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		http.Error(w, "request body unreadable or over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	review, pod, err := DecodeReview(body)
	if err != nil {
		h.logger.Warn("Admission request rejected", logError, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := h.review(review.Request, pod, mutate)
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out); err != nil {
		h.logger.Warn("Admission response not written", logError, err.Error())
	}
}

// DecodeReview parses an AdmissionReview v1 carrying a pod. It refuses every other
// shape, so what follows may rely on a request, a UID and a pod.
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, *corev1.Pod, error) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return nil, nil, fmt.Errorf("decode admission review: %w", err)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		return nil, nil, fmt.Errorf("want an admission.k8s.io/v1 AdmissionReview, got %s %s",
			review.APIVersion, review.Kind)
	}
	req := review.Request
	switch {
	case req == nil:
		return nil, nil, errors.New("admission review has no request")
	case req.UID == "":
		return nil, nil, errors.New("admission request has no uid")
	case req.Kind.Group != "" || req.Kind.Kind != "Pod":
		return nil, nil, fmt.Errorf("admission request is for %s, not a core Pod", req.Kind.Kind)
	case len(req.Object.Raw) == 0:
		return nil, nil, errors.New("admission request carries no object")
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, nil, fmt.Errorf("decode pod: %w", err)
	}
	return &review, &pod, nil
}

func (h *Handler) review(
	req *admissionv1.AdmissionRequest,
	pod *corev1.Pod,
	mutate bool,
) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	name := pod.Name
	if name == "" {
		name = pod.GenerateName
	}
	log := h.logger.With(logNamespace, req.Namespace, logPod, name, logUID, string(req.UID))
	switch {
	case isEphemeralUpdate(req) && !injected(pod):
		log.Debug("Pod skipped", logDecision, "skipped")
		return resp
	case isEphemeralUpdate(req):
		return verdict(resp, CheckEphemeralContainers(req, pod), log, ephemeralLog)
	case isPodUpdate(req):
		return verdict(resp, CheckPodUpdate(req, pod), log, podUpdateLog)
	case mutate && isPodCreate(req):
		return h.inject(resp, pod, log)
	}
	log.Debug("Request skipped", logDecision, "skipped")
	return resp
}

// verdictLog names the log lines of one kind of check.
type verdictLog struct {
	refused, failed, admitted string
	admittedLevel             slog.Level
	failPrefix                string // of the message of a check that could not run
}

var (
	ephemeralLog = verdictLog{refused: "Ephemeral container refused",
		failed: "Ephemeral containers not checked", admitted: "Ephemeral containers admitted",
		admittedLevel: slog.LevelInfo, failPrefix: "check failure"}
	// An admitted pod update is logged at Debug only: controllers update pods for labels
	// and finalizers all the time, and such an update leaves the agent as it was.
	podUpdateLog = verdictLog{refused: "Pod update refused", failed: "Pod update not checked",
		admitted: "Pod update admitted", admittedLevel: slog.LevelDebug, failPrefix: "check failure"}
)

// verdict answers a check that refuses with a *Refusal (403, logged with its code) or
// fails with any other error (500), and logs the outcome as names says. It logs no
// container name or role: after creation those are whatever the pod's editors wrote.
func verdict(
	resp *admissionv1.AdmissionResponse,
	err error,
	log *slog.Logger,
	names verdictLog,
) *admissionv1.AdmissionResponse {
	level, msg := names.admittedLevel, names.admitted
	attrs := []any{logDecision, "admitted"}
	var refusal *Refusal
	switch {
	case errors.As(err, &refusal):
		level, msg = slog.LevelInfo, names.refused
		attrs = []any{logDecision, "refused", logReason, string(refusal.Code)}
		resp = deny(resp, http.StatusForbidden, "lanyard: "+refusal.Message)
	case err != nil:
		level, msg = slog.LevelError, names.failed
		attrs = []any{logDecision, "error", logError, err.Error()}
		resp = deny(resp, http.StatusInternalServerError,
			"lanyard: "+names.failPrefix+": "+err.Error())
	}
	//nolint:sloglint // msg is one of the fixed messages of a verdictLog
	log.Log(context.Background(), level, msg, attrs...)
	return resp
}

func (h *Handler) inject(
	resp *admissionv1.AdmissionResponse,
	pod *corev1.Pod,
	log *slog.Logger,
) *admissionv1.AdmissionResponse {
	res, err := h.injector.Mutate(pod)
	var refusal *Refusal
	switch {
	case errors.As(err, &refusal):
		log.Info("Pod refused", logRole, res.Role, logDecision, "refused",
			logReason, string(refusal.Code))
		return deny(resp, http.StatusForbidden, "lanyard: "+refusal.Message)
	case err != nil:
		log.Error("Pod not mutated", logRole, res.Role, logDecision, "error", logError, err.Error())
		return deny(resp, http.StatusInternalServerError, "lanyard: injector failure: "+err.Error())
	case res.Role == "":
		log.Debug("Pod skipped", logDecision, "skipped")
		return resp
	}
	resp.Warnings = res.Warnings
	if len(res.Patch) == 0 {
		log.Info("Pod already injected", logRole, res.Role, logDecision, "unchanged")
		return resp
	}
	patch, err := json.Marshal(res.Patch)
	if err != nil {
		return deny(resp, http.StatusInternalServerError, "lanyard: encode patch: "+err.Error())
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	log.Info("Pod injected", logRole, res.Role, logDecision, "injected")
	return resp
}

func deny(
	resp *admissionv1.AdmissionResponse,
	code int32,
	msg string,
) *admissionv1.AdmissionResponse {
	reason := metav1.StatusReasonForbidden
	if code >= http.StatusInternalServerError {
		reason = metav1.StatusReasonInternalError
	}
	resp.Allowed = false
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Message: msg,
		Reason: reason}
	return resp
}
