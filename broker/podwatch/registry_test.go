package podwatch

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 20, 0, 0, 0, time.UTC)

func TestRegistry(t *testing.T) {
	web := Pod{UID: "uid-web", Namespace: "team-a", Name: "web"}
	cases := []struct {
		name  string
		setup func(r *registry)
		at    time.Time
		want  []string // leases taken for web
	}{
		{"a live lease is taken", func(r *registry) { r.add(web, leaseOf("l1", t0.Add(time.Hour))) },
			t0, []string{"l1"}},
		{"an expired lease is not taken", func(r *registry) {
			r.add(web, leaseOf("l1", t0.Add(time.Hour)))
			r.add(web, leaseOf("l2", t0.Add(time.Minute)))
		}, t0.Add(30 * time.Minute), []string{"l1"}},
		{"a lease expiring exactly now is not taken", func(r *registry) {
			r.add(web, leaseOf("l1", t0))
		}, t0, nil},
		{"a removed lease is not taken", func(r *registry) {
			r.add(web, leaseOf("l1", t0.Add(time.Hour)))
			r.add(web, leaseOf("l2", t0.Add(time.Hour)))
			r.remove(web.UID, "l1")
		}, t0, []string{"l2"}},
		{"another pod's leases are not taken", func(r *registry) {
			r.add(Pod{UID: "uid-other"}, leaseOf("l9", t0.Add(time.Hour)))
		}, t0, nil},
		{"removing an unknown lease changes nothing", func(r *registry) {
			r.add(web, leaseOf("l1", t0.Add(time.Hour)))
			r.remove("uid-other", "l1")
			r.remove(web.UID, "l7")
		}, t0, []string{"l1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRegistry()
			c.setup(r)
			pod, taken, ok := r.take(web.UID, c.at)
			got := leaseIDs(taken)
			if !slices.Equal(got, c.want) || ok != (len(c.want) > 0) {
				t.Errorf("take = %v %v, want %v", got, ok, c.want)
			}
			if ok && pod != web {
				t.Errorf("pod = %+v, want %+v", pod, web)
			}
			if _, again, _ := r.take(web.UID, c.at); len(again) != 0 {
				t.Errorf("second take = %v, want nothing", again)
			}
		})
	}
}

func TestRegistryPruneKeepsMemoryBounded(t *testing.T) {
	r := newRegistry()
	for i := range 100 {
		pod := Pod{UID: string(rune('a' + i%26)), Name: "p"}
		r.add(pod, leaseOf("lease-"+string(rune(i)), t0.Add(time.Duration(i)*time.Minute)))
	}
	r.prune(t0.Add(50 * time.Minute))
	if n := r.leases(); n != 49 {
		t.Errorf("leases after prune = %d, want the 49 expiring later", n)
	}
	r.prune(t0.Add(100 * time.Minute))
	if n, pods := r.leases(), len(r.list()); n != 0 || pods != 0 {
		t.Errorf("after every expiry: %d leases of %d pods, want none", n, pods)
	}
}
