package webhook

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Refusal is an admission refusal; its message tells the pod author what to change.
type Refusal struct {
	// Code classifies the refusal for logs, which must not carry pod content.
	Code RefusalCode
	// Message is for the pod author and may quote the pod.
	Message string
}

// Error returns the message for the pod author.
func (r *Refusal) Error() string { return r.Message }

// RefusalCode is the fixed, loggable reason of a refusal.
type RefusalCode string

// Refusal codes.
//
//nolint:gosec // G101: refusal codes, not credentials
const (
	RefusedAnnotation         RefusalCode = "annotation"          // malformed or unknown annotation
	RefusedRole               RefusalCode = "unknown_role"        // role not in the catalog
	RefusedTTL                RefusalCode = "ttl"                 // above the role's maxTTL
	RefusedTokenMount         RefusalCode = "token_mount"         // a container would see a token
	RefusedConflict           RefusalCode = "conflict"            // a name, mount or port is taken
	RefusedHostNetwork        RefusalCode = "host_network"        // hostNetwork pods are refused
	RefusedProcessNamespace   RefusalCode = "process_namespace"   // processes shared with the agent
	RefusedIdentity           RefusalCode = "mixed_identity"      // no user or group in common
	RefusedWritableCredential RefusalCode = "credential_writable" // a debugger could replace it
	RefusedAgentChanged       RefusalCode = "agent_changed"       // an update edits the agent
)

func refuse(code RefusalCode, format string, args ...any) error {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Result is what the injector decided for one pod.
type Result struct {
	// Role is the requested role; empty when the pod did not opt in.
	Role string
	// Patch is empty when the pod needs no change.
	Patch []Op
	// Warnings are shown to the client that created the pod.
	Warnings []string
}

// Injector computes the mutation of opted-in pods.
type Injector struct {
	cfg   Config
	roles Roles
}

// NewInjector checks cfg and returns an injector that looks roles up in roles.
func NewInjector(cfg Config, roles Roles) (*Injector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("injector config: %w", err)
	}
	return &Injector{cfg: cfg, roles: roles}, nil
}

// Mutate returns the patch that makes pod match what its annotations ask for. The
// mutation converges: applied to its own output it returns an empty patch, which is
// what makes the injector idempotent and safe to reinvoke. A *Refusal error means the
// pod must be refused; any other error is the injector's own failure.
func (in *Injector) Mutate(pod *corev1.Pod) (Result, error) {
	if !wantsInjection(pod.Annotations) {
		return Result{}, strayAnnotations(pod.Annotations)
	}
	req, err := parseRequest(pod.Annotations)
	if err != nil {
		return Result{}, &Refusal{Code: RefusedAnnotation, Message: err.Error()}
	}
	res := Result{Role: req.role}
	if err := in.checkRole(req); err != nil {
		return res, err
	}
	p, err := in.plan(pod, req)
	if err != nil {
		return res, err
	}
	res.Warnings = p.warnings
	res.Patch, err = p.ops(in.cfg)
	return res, err
}

// strayAnnotations refuses lanyard settings on a pod that does not ask for a role:
// they have no effect, and the author most likely forgot the role.
func strayAnnotations(annotations map[string]string) error {
	for k := range annotations {
		if strings.HasPrefix(k, AnnotationPrefix) && k != AnnotationInjected &&
			k != AnnotationBrokerCA {
			return refuse(RefusedAnnotation,
				"annotation %s has no effect without %s: add %s or remove %s",
				k, AnnotationRole, AnnotationRole, k)
		}
	}
	return nil
}

func (in *Injector) checkRole(req request) error {
	maxTTL, ok := in.roles.MaxTTL(req.role)
	if !ok {
		return refuse(RefusedRole,
			"role %q is not in the lanyard catalog: fix annotation %s or ask "+
				"the security team to add the role", req.role, AnnotationRole)
	}
	if req.ttl > maxTTL {
		return refuse(RefusedTTL,
			"annotation %s: %s exceeds the maxTTL %s of role %s: ask for %s or less",
			AnnotationTTL, req.ttl, maxTTL, req.role, maxTTL)
	}
	return nil
}

// isAutoTokenVolume recognises the volume the ServiceAccount admission plugin adds
// before webhooks run when automountServiceAccountToken is not false. The injector
// removes it; any other token projection is the author's and gets the pod refused.
func isAutoTokenVolume(v corev1.Volume) bool {
	if !strings.HasPrefix(v.Name, "kube-api-access-") || v.Projected == nil {
		return false
	}
	var token, ca, ns bool
	for _, s := range v.Projected.Sources {
		switch {
		case s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience == "":
			token = true
		case s.ConfigMap != nil && s.ConfigMap.Name == "kube-root-ca.crt":
			ca = true
		case s.DownwardAPI != nil:
			ns = true
		default:
			return false
		}
	}
	return token && ca && ns
}

func hasTokenProjection(v corev1.Volume) bool {
	if v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}
