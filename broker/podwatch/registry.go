package podwatch

import (
	"sync"
	"time"
)

// Pod names the pod a credential was issued to. UID is what identifies it:
// a pod deleted and created again under the same name is another pod.
type Pod struct {
	UID            string
	Namespace      string
	Name           string
	ServiceAccount string
}

// Lease is one credential a pod holds: what revoking it needs, and what
// its audit line records.
type Lease struct {
	ID           string // Vault lease id
	CredentialID string // the id the pod received
	Role         string
	Namespace    string // where the credential acts
	TokenID      string // JTI of the caller token it was issued for
	ExpiresAt    time.Time
}

// podLeases are the live leases of one pod, by lease id.
type podLeases struct {
	pod    Pod
	leases map[string]Lease
}

// registry holds the live leases of each pod this process issued. A lease
// is dropped when it expires, so its size follows the credentials alive now.
type registry struct {
	mu   sync.Mutex
	pods map[string]*podLeases
}

func newRegistry() *registry {
	return &registry{pods: map[string]*podLeases{}}
}

// add remembers that pod holds lease until it expires.
func (r *registry) add(pod Pod, lease Lease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pods[pod.UID]
	if !ok {
		p = &podLeases{pod: pod, leases: map[string]Lease{}}
		r.pods[pod.UID] = p
	}
	p.leases[lease.ID] = lease
}

// remove forgets one lease of the pod with uid.
func (r *registry) remove(uid, leaseID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pods[uid]
	if !ok {
		return
	}
	delete(p.leases, leaseID)
	if len(p.leases) == 0 {
		delete(r.pods, uid)
	}
}

// take forgets the pod with uid and returns it with its leases still alive
// at now; ok is false when the pod holds none.
func (r *registry) take(uid string, now time.Time) (pod Pod, leases []Lease, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, found := r.pods[uid]
	if !found {
		return Pod{}, nil, false
	}
	delete(r.pods, uid)
	for _, l := range p.leases {
		if now.Before(l.ExpiresAt) {
			leases = append(leases, l)
		}
	}
	return p.pod, leases, len(leases) > 0
}

// prune drops the leases expired at now, and the pods left with none.
func (r *registry) prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for uid, p := range r.pods {
		for id, l := range p.leases {
			if !now.Before(l.ExpiresAt) {
				delete(p.leases, id)
			}
		}
		if len(p.leases) == 0 {
			delete(r.pods, uid)
		}
	}
}

// list returns the pods that hold leases.
func (r *registry) list() []Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Pod, 0, len(r.pods))
	for _, p := range r.pods {
		out = append(out, p.pod)
	}
	return out
}

// leases counts the leases held, expired or not.
func (r *registry) leases() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.pods {
		n += len(p.leases)
	}
	return n
}
