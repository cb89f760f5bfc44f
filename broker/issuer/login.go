package issuer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

// Timing of the login loop.
const (
	// loginCallTimeout bounds one login, lookup or renewal call.
	loginCallTimeout = 15 * time.Second
	// backoffMin and backoffMax bound the wait between failed logins.
	backoffMin = time.Second
	backoffMax = 30 * time.Second
	// tokenFilePoll is how often token auth looks for a rotated token file,
	// and how often a token that never expires is looked up again.
	tokenFilePoll = 30 * time.Second
	// minRenewedTTL: a renewal that leaves less than this, or a third of
	// the token's first TTL when that is shorter (the token reached its max
	// TTL), makes the broker log in again instead.
	minRenewedTTL = 30 * time.Second
)

// Field names of log lines.
const (
	logError     = "error"
	logRetryIn   = "retry_in"
	logTTL       = "ttl"
	logAuth      = "auth"
	logReason    = "reason"
	logOp        = "op"
	logVaultRole = "vault_role"
)

// vaultToken is a token the broker logged in with.
type vaultToken struct {
	token     Secret
	ttl       time.Duration // 0: never expires
	renewable bool
	loginTTL  time.Duration // the TTL the token had when obtained
	obtained  time.Time
	fileSum   [32]byte // token auth: digest of the file it came from
}

// renewFloor is the least TTL worth keeping a token for.
func (t vaultToken) renewFloor() time.Duration {
	return min(minRenewedTTL, t.loginTTL/3)
}

func (t vaultToken) expires() time.Time {
	if t.ttl == 0 {
		return time.Time{}
	}
	return t.obtained.Add(t.ttl)
}

// Run logs in and keeps the Vault token renewed (re-login when renewal
// fails) until ctx ends. Failed logins are retried with jittered backoff
// between backoffMin and backoffMax. Run returns nil when ctx ends.
func (i *Issuer) Run(ctx context.Context) error {
	wait := backoffMin
	for ctx.Err() == nil {
		tok, err := i.logIn(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			i.setLoginFailed(err)
			delay := jitter(wait)
			i.log.Warn("Vault login failed", logAuth, i.cfg.Auth, logError, err.Error(),
				logRetryIn, delay.String())
			wait = min(2*wait, backoffMax)
			if !i.sleep(ctx, delay) {
				break
			}
			continue
		}
		wait = backoffMin
		i.setLoggedIn(tok.expires())
		i.log.Info("Logged in to Vault", logAuth, i.cfg.Auth, logTTL, tok.ttl.String())
		err = i.keepRenewed(ctx, tok)
		if ctx.Err() != nil {
			break
		}
		i.log.Warn("Vault token renewal stopped, logging in again", logReason, err.Error())
	}
	return nil
}

// logIn obtains a token and makes the client use it.
func (i *Issuer) logIn(ctx context.Context) (vaultToken, error) {
	ctx, cancel := context.WithTimeout(ctx, loginCallTimeout)
	defer cancel()
	if i.cfg.Auth == AuthToken {
		return i.logInWithTokenFile(ctx)
	}
	return i.logInWithKubernetes(ctx)
}

// logInWithKubernetes reads the service account token file anew, because
// the kubelet rotates it, and logs in with Vault's Kubernetes auth method.
func (i *Issuer) logInWithKubernetes(ctx context.Context) (vaultToken, error) {
	jwt, err := os.ReadFile(i.cfg.JWTFile)
	if err != nil {
		return vaultToken{}, fmt.Errorf("read service account token: %w", err)
	}
	started := i.clock.Now()
	// The login request must not carry the previous token.
	anon, err := i.client.Clone()
	if err != nil {
		return vaultToken{}, fmt.Errorf("vault client: %w", err)
	}
	anon.SetWrappingLookupFunc(func(string, string) string { return "" })
	secret, err := anon.Logical().WriteWithContext(ctx, "auth/"+i.cfg.AuthMount+"/login",
		map[string]any{"role": i.cfg.Role, "jwt": string(bytes.TrimSpace(jwt))})
	if err != nil {
		return vaultToken{}, classify("login", err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return vaultToken{}, errors.New("vault login: answer has no token")
	}
	tok := vaultToken{
		token:     Secret(secret.Auth.ClientToken),
		ttl:       time.Duration(secret.Auth.LeaseDuration) * time.Second,
		renewable: secret.Auth.Renewable,
		obtained:  started,
	}
	tok.loginTTL = tok.ttl
	i.client.SetToken(tok.token.Reveal())
	return tok, nil
}

// logInWithTokenFile reads a Vault token from a file and looks it up to
// learn its lifetime.
func (i *Issuer) logInWithTokenFile(ctx context.Context) (vaultToken, error) {
	data, err := os.ReadFile(i.cfg.TokenFile)
	if err != nil {
		return vaultToken{}, fmt.Errorf("read vault token file: %w", err)
	}
	token := string(bytes.TrimSpace(data))
	if token == "" {
		return vaultToken{}, fmt.Errorf("vault token file %s is empty", i.cfg.TokenFile)
	}
	started := i.clock.Now()
	i.client.SetToken(token)
	secret, err := i.client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return vaultToken{}, classify("token lookup", err)
	}
	ttl, err := secret.TokenTTL()
	if err != nil {
		return vaultToken{}, fmt.Errorf("vault token lookup: %w", err)
	}
	renewable, err := secret.TokenIsRenewable()
	if err != nil {
		return vaultToken{}, fmt.Errorf("vault token lookup: %w", err)
	}
	return vaultToken{
		token: Secret(token), ttl: ttl, loginTTL: ttl, renewable: renewable, obtained: started,
		fileSum: sha256.Sum256(data),
	}, nil
}

// keepRenewed renews tok at two thirds of its lifetime until a renewal
// fails, the token can no longer be renewed for long, or (token auth) the
// token file changes. It returns why it stopped.
func (i *Issuer) keepRenewed(ctx context.Context, tok vaultToken) error {
	for {
		if !i.sleep(ctx, i.renewWait(tok)) {
			return ctx.Err()
		}
		if i.cfg.Auth == AuthToken && i.tokenFileChanged(tok) {
			return errors.New("vault token file changed")
		}
		if tok.ttl == 0 || i.clock.Now().Before(tok.renewAt()) {
			continue
		}
		if !tok.renewable {
			return errors.New("vault token is not renewable and expires soon")
		}
		renewed, err := i.renew(ctx, tok)
		if err != nil {
			return err
		}
		tok = renewed
		i.setLoggedIn(tok.expires())
		i.log.Debug("Renewed Vault token", logTTL, tok.ttl.String())
	}
}

// renewAt is when to renew the token, or to replace one that cannot be.
func (t vaultToken) renewAt() time.Time {
	if t.renewable {
		return t.obtained.Add(t.ttl * 2 / 3)
	}
	return t.expires().Add(-t.renewFloor())
}

// renewWait is how long to wait before the next renewal or check; token
// auth also looks at its file every tokenFilePoll.
func (i *Issuer) renewWait(tok vaultToken) time.Duration {
	wait := tokenFilePoll
	if tok.ttl > 0 {
		wait = tok.renewAt().Sub(i.clock.Now())
	}
	if i.cfg.Auth == AuthToken {
		wait = min(wait, tokenFilePoll)
	}
	return max(wait, time.Second)
}

func (i *Issuer) renew(ctx context.Context, tok vaultToken) (vaultToken, error) {
	ctx, cancel := context.WithTimeout(ctx, loginCallTimeout)
	defer cancel()
	started := i.clock.Now()
	increment := int(tok.ttl / time.Second)
	secret, err := i.client.Auth().Token().RenewSelfWithContext(ctx, increment)
	if err != nil {
		return tok, classify("token renewal", err)
	}
	if secret == nil || secret.Auth == nil {
		return tok, errors.New("vault token renewal: answer has no auth")
	}
	ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second
	if ttl < tok.renewFloor() {
		return tok, fmt.Errorf("vault token reached its max TTL (%s left)", ttl)
	}
	tok.ttl, tok.obtained, tok.renewable = ttl, started, secret.Auth.Renewable
	return tok, nil
}

func (i *Issuer) tokenFileChanged(tok vaultToken) bool {
	data, err := os.ReadFile(i.cfg.TokenFile)
	return err == nil && sha256.Sum256(data) != tok.fileSum
}

// sleep waits for d on the issuer's clock; false when ctx ended first.
func (i *Issuer) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-i.clock.After(d):
		return true
	}
}

// jitter spreads d over [d/2, d), so that replicas do not log in together.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(half+1) //nolint:gosec // G404: jitter needs no secret randomness
}

// Login logs in once, for commands that make a few calls and exit instead
// of running Run.
func (i *Issuer) Login(ctx context.Context) error {
	tok, err := i.logIn(ctx)
	if err != nil {
		i.setLoginFailed(err)
		return err
	}
	i.setLoggedIn(tok.expires())
	return nil
}
