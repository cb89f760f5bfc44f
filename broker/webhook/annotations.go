package webhook

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Annotations a pod author sets, and the ones the injector writes itself.
const (
	// AnnotationPrefix starts every lanyard annotation.
	AnnotationPrefix = "lanyard.dev/"
	// AnnotationRole asks for injection and names the catalog role.
	AnnotationRole = AnnotationPrefix + "role"
	// AnnotationTTL sets the credential lifetime (a Go duration, at least 10m).
	AnnotationTTL = AnnotationPrefix + "ttl"
	// AnnotationMountPath overrides where app containers see the credential.
	AnnotationMountPath = AnnotationPrefix + "mount-path"
	// AnnotationContainers limits the mount to a comma-separated list of containers.
	AnnotationContainers = AnnotationPrefix + "containers"
	// AnnotationInjected records that the injector mutated the pod. It is informational:
	// the injector converges every pod it sees, so setting it by hand bypasses nothing.
	AnnotationInjected = AnnotationPrefix + "injected"
	// AnnotationBrokerCA carries the broker's CA certificate (public) to the agent
	// through a downward API projection.
	AnnotationBrokerCA = AnnotationPrefix + "broker-ca"
)

// DefaultMountPath is where client libraries look for the in-cluster credential.
const DefaultMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// minTTL is Kubernetes' minimum token lifetime, repeated here so the injector refuses
// early what the broker would refuse later.
const minTTL = 10 * time.Minute

var knownAnnotations = map[string]bool{
	AnnotationRole:       true,
	AnnotationTTL:        true,
	AnnotationMountPath:  true,
	AnnotationContainers: true,
	AnnotationInjected:   true,
	AnnotationBrokerCA:   true,
}

// request is what a pod's annotations ask of the injector.
type request struct {
	role       string
	ttl        time.Duration // zero: the role's default
	mountPath  string
	containers []string // nil: every app container
}

// wantsInjection reports whether the pod opted in.
func wantsInjection(annotations map[string]string) bool {
	_, ok := annotations[AnnotationRole]
	return ok
}

// parseRequest reads and checks the lanyard annotations. Its errors are refusal
// messages for the pod author: each says which annotation is wrong and what to write.
func parseRequest(annotations map[string]string) (request, error) {
	if err := checkKeys(annotations); err != nil {
		return request{}, err
	}
	r := request{role: annotations[AnnotationRole], mountPath: DefaultMountPath}
	if errs := validation.IsDNS1123Label(r.role); len(errs) > 0 {
		return request{}, fmt.Errorf("annotation %s: %q is not a role name (%s)",
			AnnotationRole, r.role, strings.Join(errs, "; "))
	}
	if v, ok := annotations[AnnotationTTL]; ok {
		ttl, err := parseTTL(v)
		if err != nil {
			return request{}, err
		}
		r.ttl = ttl
	}
	if v, ok := annotations[AnnotationMountPath]; ok {
		p, err := parseMountPath(v)
		if err != nil {
			return request{}, err
		}
		r.mountPath = p
	}
	if v, ok := annotations[AnnotationContainers]; ok {
		names, err := parseContainers(v)
		if err != nil {
			return request{}, err
		}
		r.containers = names
	}
	return r, nil
}

func checkKeys(annotations map[string]string) error {
	var unknown []string
	for k := range annotations {
		if strings.HasPrefix(k, AnnotationPrefix) && !knownAnnotations[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("unknown annotation %s: remove it; lanyard understands %s, %s, %s and %s",
		strings.Join(unknown, ", "), AnnotationRole, AnnotationTTL, AnnotationMountPath,
		AnnotationContainers)
}

func parseTTL(v string) (time.Duration, error) {
	ttl, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("annotation %s: %q is not a duration; write for example 15m or 1h",
			AnnotationTTL, v)
	}
	if ttl < minTTL {
		return 0, fmt.Errorf("annotation %s: %s is below the minimum of %s that Kubernetes allows",
			AnnotationTTL, v, minTTL)
	}
	return ttl, nil
}

func parseMountPath(v string) (string, error) {
	if !path.IsAbs(v) || path.Clean(v) != v || v == "/" || strings.Contains(v, ":") {
		return "", fmt.Errorf("annotation %s: %q must be a clean absolute directory path "+
			"such as %s", AnnotationMountPath, v, DefaultMountPath)
	}
	return v, nil
}

func parseContainers(v string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			return nil, fmt.Errorf("annotation %s: %q is not a container name; write a comma-"+
				"separated list such as app,worker", AnnotationContainers, n)
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names, nil
}
