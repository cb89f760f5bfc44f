package webhook

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// identity is the user and group the agent runs as. The agent writes its files with
// mode 0440, so the app containers must share its user or its group to read them.
type identity struct {
	uid int64
	gid *int64 // nil: the container runtime's default
}

// agentIdentity picks the agent's user and group from the pod's security settings:
//   - the user all selected containers run as, when they agree and it is not root;
//   - otherwise the default non-root user of the agent image.
//
// The group is the pod's fsGroup when set (the kubelet gives every container that group
// and the volume is set-group-ID to it), else the group all selected containers share.
// It returns warnings when the app may be unable to read the files, and an error when
// the containers run as different users with nothing in common.
func agentIdentity(
	pod *corev1.Pod,
	selected []*corev1.Container,
	defaultUID int64,
) (identity, []string, error) {
	uids, uidKnown := commonValue(pod, selected, runAsUser)
	gids, gidKnown := commonValue(pod, selected, runAsGroup)
	fsGroup := podSecurity(pod).FSGroup

	id := identity{uid: defaultUID}
	if uidKnown && len(uids) == 1 && uids[0] != 0 {
		id.uid = uids[0]
	}
	switch {
	case fsGroup != nil:
		id.gid = ptr(*fsGroup)
	case gidKnown && len(gids) == 1:
		id.gid = ptr(gids[0])
	}

	if len(uids) > 1 && id.gid == nil {
		return identity{}, nil, fmt.Errorf("containers %s run as different users and share "+
			"no group, so not all of them could read the credential: set "+
			"spec.securityContext.fsGroup", containerNames(selected))
	}
	var warnings []string
	if !uidKnown && id.gid == nil {
		warnings = append(warnings, "lanyard: no runAsUser or fsGroup is set, so the agent "+
			"runs as its default user and the app may not be able to read the credential; "+
			"set spec.securityContext.runAsUser or fsGroup")
	}
	return id, warnings, nil
}

func runAsUser(sc *corev1.SecurityContext) *int64  { return sc.RunAsUser }
func runAsGroup(sc *corev1.SecurityContext) *int64 { return sc.RunAsGroup }

// commonValue returns the distinct effective values of a setting across the selected
// containers (container level first, then pod level), and whether every one is known.
func commonValue(
	pod *corev1.Pod,
	selected []*corev1.Container,
	get func(*corev1.SecurityContext) *int64,
) ([]int64, bool) {
	pc := podSecurity(pod)
	podLevel := get(&corev1.SecurityContext{RunAsUser: pc.RunAsUser, RunAsGroup: pc.RunAsGroup})
	var values []int64
	known := len(selected) > 0
	for _, c := range selected {
		v := podLevel
		if c.SecurityContext != nil && get(c.SecurityContext) != nil {
			v = get(c.SecurityContext)
		}
		if v == nil {
			known = false
			continue
		}
		if !containsInt(values, *v) {
			values = append(values, *v)
		}
	}
	return values, known
}

func podSecurity(pod *corev1.Pod) *corev1.PodSecurityContext {
	if pod.Spec.SecurityContext == nil {
		return &corev1.PodSecurityContext{}
	}
	return pod.Spec.SecurityContext
}

func containsInt(values []int64, v int64) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}

func containerNames(cs []*corev1.Container) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func ptr[T any](v T) *T { return &v }
