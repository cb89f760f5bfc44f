package webhook

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// The agent container and the two lanyard volumes are compared whole with what the
// injector would write, never as "holds at least these fields": a pod may bring its own
// lanyard-agent or lanyard-token, and whatever the injector did not write there (an added
// capability, a command, an env var such as GRPC_PROXY, one more mount) would run next to
// the agent's token. A pod the injector already mutated must still compare equal as the
// API server stores it, so both sides first get the defaults the API server fills into
// the fields the injector writes. Fields the injector never writes need no default: any
// value there is a difference.
//
// On a difference the injector replaces the object instead of refusing the pod. A pod
// created again from its stored spec after an agent upgrade, a list of defaults that falls
// behind a Kubernetes release, or another admission plugin touching the agent (a
// LimitRange default, a mesh webhook) then costs one more replace, on reinvocation bounded
// by the API server, instead of refusing pods under failurePolicy Fail. What a webhook
// adds after the injector's last invocation is beyond its reach.

// sameContainer reports whether actual is want once both carry the API server's defaults.
func sameContainer(actual, want corev1.Container) bool {
	return equality.Semantic.DeepEqual(containerDefaults(actual), containerDefaults(want))
}

// sameVolume reports whether actual is want once both carry the API server's defaults.
func sameVolume(actual, want corev1.Volume) bool {
	return equality.Semantic.DeepEqual(volumeDefaults(actual), volumeDefaults(want))
}

// sameMount compares mounts exactly; the API server defaults none of their fields.
// Semantic equality still treats a nil and an empty value alike.
func sameMount(actual, want corev1.VolumeMount) bool {
	return equality.Semantic.DeepEqual(actual, want)
}

func containerDefaults(c corev1.Container) *corev1.Container {
	d := c.DeepCopy()
	if d.TerminationMessagePath == "" {
		d.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if d.TerminationMessagePolicy == "" {
		d.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range d.Ports {
		if d.Ports[i].Protocol == "" {
			d.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	resourceDefaults(&d.Resources)
	for _, p := range []*corev1.Probe{d.StartupProbe, d.ReadinessProbe, d.LivenessProbe} {
		probeDefaults(p)
	}
	d.ResizePolicy = explicitResizePolicies(d.ResizePolicy)
	return d
}

// resourceDefaults copies limits into missing requests, as the API server does for pods,
// and rounds quantities up to milli units as it stores them.
func resourceDefaults(r *corev1.ResourceRequirements) {
	for name, limit := range r.Limits {
		if _, ok := r.Requests[name]; !ok {
			if r.Requests == nil {
				r.Requests = corev1.ResourceList{}
			}
			r.Requests[name] = limit.DeepCopy()
		}
	}
	for _, list := range []corev1.ResourceList{r.Limits, r.Requests} {
		for name, q := range list {
			q.RoundUp(-3)
			list[name] = q
		}
	}
}

func probeDefaults(p *corev1.Probe) {
	if p == nil {
		return
	}
	orDefault(&p.TimeoutSeconds, 1)
	orDefault(&p.PeriodSeconds, 10)
	orDefault(&p.SuccessThreshold, 1)
	orDefault(&p.FailureThreshold, 3)
	h := p.HTTPGet
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
	// Servers with the H2CContainerProbe feature record the HTTP/1.1 default.
	if h.Protocol == nil {
		h.Protocol = ptr(corev1.HTTPProtocolHTTP1)
	}
}

func orDefault(field *int32, value int32) {
	if *field == 0 {
		*field = value
	}
}

// explicitResizePolicies drops the NotRequired policies that servers with in-place
// resize (1.27 to 1.32) wrote for every resource with requests or limits: NotRequired is
// also what an absent policy means.
func explicitResizePolicies(
	policies []corev1.ContainerResizePolicy,
) []corev1.ContainerResizePolicy {
	var out []corev1.ContainerResizePolicy
	for _, p := range policies {
		if p.RestartPolicy != corev1.NotRequired {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ResourceName < out[j].ResourceName })
	return out
}

func volumeDefaults(v corev1.Volume) *corev1.Volume {
	d := v.DeepCopy()
	pv := d.Projected
	if pv == nil {
		return d
	}
	if pv.DefaultMode == nil {
		pv.DefaultMode = ptr(corev1.ProjectedVolumeSourceDefaultMode)
	}
	for _, s := range pv.Sources {
		if t := s.ServiceAccountToken; t != nil && t.ExpirationSeconds == nil {
			t.ExpirationSeconds = ptr(int64(3600))
		}
		if s.DownwardAPI == nil {
			continue
		}
		for _, item := range s.DownwardAPI.Items {
			if item.FieldRef != nil && item.FieldRef.APIVersion == "" {
				item.FieldRef.APIVersion = "v1"
			}
		}
	}
	return d
}
