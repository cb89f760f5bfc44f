package webhook

import (
	"fmt"
	"path"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// plan is the checked intent for one pod, from which the patch follows.
type plan struct {
	pod         *corev1.Pod
	req         request
	autoVolumes map[string]bool // token volumes the ServiceAccount plugin added
	selected    map[string]bool // app containers that get the credential
	id          identity
	warnings    []string
}

func (in *Injector) plan(pod *corev1.Pod, req request) (*plan, error) {
	p := &plan{pod: pod, req: req, autoVolumes: map[string]bool{}, selected: map[string]bool{}}
	if err := checkPodSettings(pod); err != nil {
		return nil, err
	}
	if err := p.scanVolumes(); err != nil {
		return nil, err
	}
	apps := appContainers(pod)
	if err := p.selectContainers(apps); err != nil {
		return nil, err
	}
	var selected []*corev1.Container
	for _, c := range apps {
		if err := p.checkContainer(c, in.cfg.HealthPort); err != nil {
			return nil, err
		}
		if p.selected[c.Name] {
			selected = append(selected, c)
		}
	}
	var err error
	p.id, p.warnings, err = agentIdentity(pod, selected, in.cfg.DefaultUID)
	if err != nil {
		return nil, &Refusal{Code: RefusedIdentity, Message: err.Error()}
	}
	return p, nil
}

// checkPodSettings refuses pod-wide settings under which the agent's token or health
// port would not stay the agent's own.
func checkPodSettings(pod *corev1.Pod) error {
	spec := pod.Spec
	switch {
	case spec.HostNetwork:
		return refuse(RefusedHostNetwork,
			"lanyard does not inject into pods with hostNetwork: true, "+
				"where the agent's health port would open on the node; remove hostNetwork or "+
				"the %s annotation", AnnotationRole)
	// The agent runs as the app's user so that the app can read the credential; in a
	// shared process namespace that same user could read the agent's projected token
	// through /proc/<pid>/root.
	case spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace:
		return refuse(RefusedProcessNamespace, "lanyard does not inject into pods with "+
			"shareProcessNamespace: true: the agent runs as the app's user, so the other "+
			"containers could read its token through /proc; remove shareProcessNamespace "+
			"or the %s annotation", AnnotationRole)
	case spec.HostPID:
		return refuse(RefusedProcessNamespace, "lanyard does not inject into pods with "+
			"hostPID: true: the agent runs as the app's user, so the app could read its "+
			"token through /proc; remove hostPID or the %s annotation", AnnotationRole)
	// False is what the injector writes, so only an explicit true is the author's.
	case spec.AutomountServiceAccountToken != nil && *spec.AutomountServiceAccountToken:
		return refuse(RefusedTokenMount, "the pod sets automountServiceAccountToken: true, "+
			"which mounts a Kubernetes API token into every container; lanyard delivers "+
			"the credential itself: remove automountServiceAccountToken (lanyard sets it to "+
			"false) or remove the %s annotation", AnnotationRole)
	}
	for _, c := range spec.Containers {
		if c.Name == AgentContainerName {
			return refuse(RefusedConflict, "container name %s is reserved for the lanyard "+
				"agent, which the injector adds as an init container: rename the container",
				AgentContainerName)
		}
	}
	return nil
}

func (p *plan) scanVolumes() error {
	for _, v := range p.pod.Spec.Volumes {
		switch {
		case v.Name == TokenVolumeName || v.Name == CredentialVolumeName:
			// A reserved name: volumeOps replaces the volume unless it already is exactly
			// the injector's, so whatever the author defined under it does not survive.
		case isAutoTokenVolume(v):
			p.autoVolumes[v.Name] = true
		case hasTokenProjection(v):
			return refuse(RefusedTokenMount,
				"volume %s projects a service account token: remove it, or remove "+
					"the %s annotation; lanyard delivers the credential itself",
				v.Name, AnnotationRole)
		}
	}
	return nil
}

// appContainers lists every container but the agent: init containers first, since
// those that follow the agent also see the credential.
func appContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name != AgentContainerName {
			out = append(out, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

func (p *plan) selectContainers(apps []*corev1.Container) error {
	exists := map[string]bool{}
	for _, c := range apps {
		exists[c.Name] = true
		if p.req.containers == nil {
			p.selected[c.Name] = true
		}
	}
	for _, name := range p.req.containers {
		if !exists[name] {
			return refuse(RefusedAnnotation,
				"annotation %s names %q, which is not a container of this pod; "+
					"containers are: %s", AnnotationContainers, name, containerNames(apps))
		}
		p.selected[name] = true
	}
	return nil
}

func (p *plan) checkContainer(c *corev1.Container, healthPort int32) error {
	for _, port := range c.Ports {
		if port.ContainerPort == healthPort {
			return refuse(RefusedConflict,
				"container %s declares port %d, where the lanyard agent serves "+
					"its health checks: use another port", c.Name, healthPort)
		}
	}
	for _, m := range c.VolumeMounts {
		if p.autoVolumes[m.Name] || m.Name == CredentialVolumeName {
			continue
		}
		mp := path.Clean(m.MountPath)
		switch {
		case m.Name == TokenVolumeName:
			return refuse(RefusedTokenMount,
				"container %s mounts volume %s, which only the lanyard agent may "+
					"mount: remove that mount", c.Name, TokenVolumeName)
		case within(mp, DefaultMountPath):
			return refuse(RefusedTokenMount,
				"container %s already mounts volume %s at %s, the service account "+
					"token path: remove that mount", c.Name, m.Name, m.MountPath)
		case p.selected[c.Name] && within(mp, p.req.mountPath):
			return refuse(RefusedConflict,
				"container %s mounts volume %s at %s, where lanyard mounts the "+
					"credential: remove that mount or set %s", c.Name, m.Name, m.MountPath,
				AnnotationMountPath)
		}
	}
	return nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func (p *plan) ops(cfg Config) ([]Op, error) {
	ops, err := p.annotationOps(cfg)
	if err != nil {
		return nil, err
	}
	// An explicit true was refused in plan.
	if p.pod.Spec.AutomountServiceAccountToken == nil {
		ops = append(ops, add("/spec/automountServiceAccountToken", false))
	}
	ops = append(ops, p.volumeOps(cfg)...)
	ops = append(ops, p.mountOps("containers", p.pod.Spec.Containers)...)
	ops = append(ops, p.mountOps("initContainers", p.pod.Spec.InitContainers)...)
	return append(ops, p.agentOps(cfg)...), nil
}

func (p *plan) annotationOps(cfg Config) ([]Op, error) {
	want := map[string]string{AnnotationInjected: "true"}
	if cfg.ClusterTrustBundle == "" {
		ca, err := cfg.BrokerCA()
		if err != nil {
			return nil, fmt.Errorf("read the broker CA: %w", err)
		}
		want[AnnotationBrokerCA] = string(ca)
	}
	var ops []Op
	for _, k := range []string{AnnotationInjected, AnnotationBrokerCA} {
		if v, ok := want[k]; ok && p.pod.Annotations[k] != v {
			ops = append(ops, add("/metadata/annotations/"+escape(k), v))
		}
	}
	return ops, nil
}

func (p *plan) volumeOps(cfg Config) []Op {
	var ops []Op
	vols := p.pod.Spec.Volumes
	var kept []corev1.Volume
	for i := len(vols) - 1; i >= 0; i-- {
		if p.autoVolumes[vols[i].Name] {
			ops = append(ops, remove(fmt.Sprintf("/spec/volumes/%d", i)))
		}
	}
	for _, v := range vols {
		if !p.autoVolumes[v.Name] {
			kept = append(kept, v)
		}
	}
	// An empty list counts as absent: adding the whole list is right whether the request
	// spelled it [] or left it out, while appending to it fails when it was left out.
	present := len(vols) > 0
	for _, want := range []corev1.Volume{tokenVolume(cfg), credentialVolume(cfg)} {
		j := volumeIndex(kept, want.Name)
		switch {
		case j >= 0 && sameVolume(kept[j], want):
		case j >= 0:
			ops = append(ops, replace(fmt.Sprintf("/spec/volumes/%d", j), want))
		case !present:
			ops = append(ops, add("/spec/volumes", []corev1.Volume{want}))
			present = true
		default:
			ops = append(ops, add("/spec/volumes/-", want))
		}
	}
	return ops
}

func volumeIndex(vols []corev1.Volume, name string) int {
	for i, v := range vols {
		if v.Name == name {
			return i
		}
	}
	return -1
}

func (p *plan) mountOps(field string, containers []corev1.Container) []Op {
	var ops []Op
	for i, c := range containers {
		if c.Name == AgentContainerName {
			continue
		}
		mounts := p.mounts(c)
		if sameMounts(mounts, c.VolumeMounts) {
			continue
		}
		at := fmt.Sprintf("/spec/%s/%d/volumeMounts", field, i)
		if len(mounts) == 0 {
			ops = append(ops, remove(at))
		} else {
			ops = append(ops, add(at, mounts))
		}
	}
	return ops
}

func sameMounts(a, b []corev1.VolumeMount) bool {
	return (len(a) == 0 && len(b) == 0) || reflect.DeepEqual(a, b)
}

// mounts returns c's volume mounts without the removed token volume, and with the
// credential mounted once, read-only, when c is selected. An existing correct mount
// keeps its place.
func (p *plan) mounts(c corev1.Container) []corev1.VolumeMount {
	want := corev1.VolumeMount{Name: CredentialVolumeName, MountPath: p.req.mountPath,
		ReadOnly: true}
	var out []corev1.VolumeMount
	found := false
	for _, m := range c.VolumeMounts {
		switch {
		case p.autoVolumes[m.Name]:
		case m.Name != CredentialVolumeName:
			out = append(out, m)
		case p.selected[c.Name] && !found && sameMount(m, want):
			out = append(out, m)
			found = true
		}
	}
	if p.selected[c.Name] && !found {
		out = append(out, want)
	}
	return out
}

// agentOps puts the injector's agent first among the init containers. An init container
// already named lanyard-agent is kept only when it is the injector's agent in every field
// (see sameContainer); otherwise it is replaced whole, so that a pod cannot run its own
// variant of the agent with the lanyard token.
func (p *plan) agentOps(cfg Config) []Op {
	want := agentContainer(cfg, p.req, p.id)
	inits := p.pod.Spec.InitContainers
	k := -1
	for i, c := range inits {
		if c.Name == AgentContainerName {
			k = i
			break
		}
	}
	switch {
	case k == 0 && sameContainer(inits[0], want):
		return nil
	case k == 0:
		return []Op{replace("/spec/initContainers/0", want)}
	case k > 0:
		return []Op{remove(fmt.Sprintf("/spec/initContainers/%d", k)),
			add("/spec/initContainers/0", want)}
	case len(inits) == 0:
		return []Op{add("/spec/initContainers", []corev1.Container{want})}
	default:
		return []Op{add("/spec/initContainers/0", want)}
	}
}
