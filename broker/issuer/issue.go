package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

// Lease is a credential Vault minted, and the lease that revokes it.
type Lease struct {
	ID             string // Vault lease id (not secret)
	Token          Secret
	ServiceAccount string
	Namespace      string
	IssuedAt       time.Time
	ExpiresAt      time.Time
}

// revokeTimeout bounds one revocation once it has a slot; Vault deletes
// the generated objects through its throttled Kubernetes client before it
// answers.
const revokeTimeout = 30 * time.Second

// Issue reads creds/lanyard-<role.Name> for namespace with ttl (and
// audiences, cluster_role_binding from the grant). Never retried (a retry
// could mint an orphan). Without a valid Vault token it fails at once with
// ErrUnavailable. A zero ttl means the role's default.
//
// Issue waits for one of the Config.MaxInFlight slots as long as ctx
// allows; a caller that gives up while waiting makes no Vault call. Once
// the creds call is sent it no longer follows ctx: Vault may mint whether
// or not anyone still listens, and only its answer names the lease to
// revoke. The call then runs until Vault answers or Config.Timeout passes,
// and Issue returns the lease even if ctx ended meanwhile: the caller must
// check ctx and revoke a credential it can no longer hand out.
func (i *Issuer) Issue(
	ctx context.Context,
	role *catalog.Role,
	namespace string,
	ttl time.Duration,
) (*Lease, error) {
	if err := i.Ready(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(credsRequest(role, namespace, ttl))
	if err != nil {
		return nil, fmt.Errorf("creds request: %w", err)
	}
	release, err := i.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), i.cfg.Timeout)
	defer cancel()
	started := i.clock.Now()
	resp, err := i.client.Logical().WriteRawWithContext(callCtx, i.credsPath(role.Name), body)
	if err != nil {
		closeBody(resp)
		return nil, classify("creds", err)
	}
	defer closeBody(resp)
	return parseLease(resp.Body, started)
}

// acquire takes one of the slots that cap the calls this broker has in
// Vault's secrets engine at once, waiting as long as ctx allows, and
// returns the function that gives it back. A ctx that has ended gets no
// slot, even when one is free.
//
// Creds calls and revocations share the slots: both end in Vault's
// Kubernetes client, which throttles itself (about 5 requests/s per
// mount), and a revocation of a generated account costs it more requests
// than a mint. Separate caps would only move the queue into Vault, where
// waiting callers cannot give up.
func (i *Issuer) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, slotError(err)
	}
	select {
	case i.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, slotError(ctx.Err())
	}
	// select picks at random when both are ready.
	if err := ctx.Err(); err != nil {
		<-i.sem
		return nil, slotError(err)
	}
	return func() { <-i.sem }, nil
}

func slotError(err error) error {
	return fmt.Errorf("%w: waiting for a free vault slot: %w", ErrUnavailable, err)
}

// credsRequest is the body of a creds call.
func credsRequest(role *catalog.Role, namespace string, ttl time.Duration) map[string]any {
	req := map[string]any{"kubernetes_namespace": namespace}
	if ttl > 0 {
		req["ttl"] = int64(ttl / time.Second)
	}
	if role.Grant.ClusterWide {
		req["cluster_role_binding"] = true
	}
	if auds := audiences(role.Grant.Audiences); len(auds) > 0 {
		req["audiences"] = auds
	}
	return req
}

func (i *Issuer) credsPath(catalogRole string) string {
	return i.cfg.Mount + "/creds/" + RoleName(catalogRole)
}

// parseLease reads a creds answer. The lease is taken to start before the
// call was sent, so that ExpiresAt is never later than Vault's own expiry.
func parseLease(body io.Reader, started time.Time) (*Lease, error) {
	secret, err := vault.ParseSecret(body)
	if err != nil {
		return nil, fmt.Errorf("vault creds: read answer: %w", err)
	}
	if secret == nil || secret.LeaseID == "" || secret.LeaseDuration <= 0 {
		return nil, errors.New("vault creds: answer has no lease")
	}
	token, _ := secret.Data["service_account_token"].(string)
	account, _ := secret.Data["service_account_name"].(string)
	namespace, _ := secret.Data["service_account_namespace"].(string)
	if token == "" || account == "" {
		return nil, fmt.Errorf("vault creds: answer for lease %s has no token or account",
			secret.LeaseID)
	}
	lease := &Lease{
		ID:             secret.LeaseID,
		Token:          Secret(token),
		ServiceAccount: account,
		Namespace:      namespace,
		IssuedAt:       started,
		ExpiresAt:      started.Add(time.Duration(secret.LeaseDuration) * time.Second),
	}
	// The token cannot outlive its own exp claim, whatever the lease says.
	if exp, ok := tokenExpiry(token); ok && exp.Before(lease.ExpiresAt) {
		lease.ExpiresAt = exp
	}
	return lease, nil
}

// tokenExpiry reads the exp claim of a JWT without verifying it: the token
// comes from Vault, and only its lifetime is wanted. Nothing of it is logged.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}

// Revoke revokes the lease; an unknown/expired lease is success. Only
// leases of this mount's lanyard roles are accepted, which the policy
// enforces too: the lease id goes into the request path. Like Issue, it
// waits for a slot as long as ctx allows (see acquire), then gives Vault
// at most revokeTimeout; unlike Issue, the call follows ctx: a revocation
// cut short can simply be asked for again.
//
// Vault deletes the account, role and binding it generated, so the token
// stops working (after the API server's ~10 s authentication cache). A
// credential of a serviceAccount grant stays valid until it expires:
// Vault has nothing to delete for it, and Kubernetes cannot revoke a single
// token of an existing account.
func (i *Issuer) Revoke(ctx context.Context, leaseID string) error {
	if !i.ownsLease(leaseID) {
		return fmt.Errorf("revoke: lease %q is not a lanyard lease of mount %s", leaseID, i.cfg.Mount)
	}
	if err := i.Ready(); err != nil {
		return err
	}
	release, err := i.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, revokeTimeout)
	defer cancel()
	resp, err := i.client.Logical().WriteRawWithContext(ctx, "sys/leases/revoke/"+leaseID, nil)
	closeBody(resp)
	if err != nil && isUnknownLease(err) {
		return nil
	}
	return classify("revoke", err)
}

// leaseIDChars are the characters of the lease ids Vault creates: a path
// and a random suffix.
var leaseIDChars = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)

func (i *Issuer) ownsLease(leaseID string) bool {
	return strings.HasPrefix(leaseID, i.cfg.Mount+"/creds/"+RolePrefix) &&
		leaseIDChars.MatchString(leaseID) &&
		!strings.Contains(leaseID, "..") && !strings.Contains(leaseID, "//")
}

// isUnknownLease tells whether Vault refused a revocation because it does
// not know the lease: it expired, was revoked already, or never existed.
func isUnknownLease(err error) bool {
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	text := strings.ToLower(strings.Join(re.Errors, " "))
	return strings.Contains(text, "invalid lease") || strings.Contains(text, "lease not found")
}

func closeBody(resp *vault.Response) {
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
}
