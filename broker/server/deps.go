// Package server is the broker's gRPC service: it authenticates the calling
// pod, asks the role catalog whether the pod may have the role, and mints the
// credential through the issuer. It also carries the listeners around it:
// TLS with certificate reload, health and readiness, metrics, and the
// interceptors that give every call a request id, a log line and metrics.
package server

import (
	"context"
	"time"

	"github.com/lanyard-dev/lanyard/broker/authn"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/podwatch"
)

// Authenticator tells which pod a caller token belongs to. Errors about the
// token are *authn.Error; failures to reach Kubernetes wrap
// authn.ErrUnavailable. *authn.TokenReviewer implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, t authn.Token) (*authn.Caller, error)
}

// CatalogSource hands out the catalog being served. *catalog.Watcher
// implements it.
type CatalogSource interface {
	Current() *catalog.Catalog
}

// Minter mints and revokes credentials in Vault. *issuer.Issuer implements it.
//
// Issue and Revoke wait for Vault capacity only as long as ctx allows, and
// make no Vault call when ctx ends first. Once Issue has asked Vault it no
// longer follows ctx: it returns the lease even if ctx ended meanwhile, and
// the caller revokes what it cannot hand out.
type Minter interface {
	Issue(
		ctx context.Context,
		role *catalog.Role,
		namespace string,
		ttl time.Duration,
	) (*issuer.Lease, error)
	Revoke(ctx context.Context, leaseID string) error
}

// Sealer turns what revocation needs into an opaque credential id and back.
// *credid.Sealer implements it.
type Sealer interface {
	Seal(leaseID, podUID string, expires time.Time) string
	Open(id string) (leaseID, podUID string, expires time.Time, err error)
}

// PodLeases remembers which leases each pod holds, so that they are revoked
// when the pod is deleted. It knows only what this replica issued, and
// forgets it all on restart. *podwatch.Watcher implements it.
type PodLeases interface {
	Register(ctx context.Context, pod podwatch.Pod, lease podwatch.Lease)
	Unregister(podUID, leaseID string)
}

// FactsFunc returns the lazy facts lookup for one authenticated caller.
type FactsFunc func(caller *authn.Caller) catalog.Facts

var (
	_ Authenticator = (*authn.TokenReviewer)(nil)
	_ CatalogSource = (*catalog.Watcher)(nil)
	_ Minter        = (*issuer.Issuer)(nil)
	_ PodLeases     = (*podwatch.Watcher)(nil)
)
