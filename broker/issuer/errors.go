package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// ErrUnavailable marks errors after which the caller may try again later:
// Vault unreachable, sealed, overloaded (5xx, 429) or too slow. Every other
// error from this package is internal: a retry will not help.
var ErrUnavailable = errors.New("vault unavailable")

// errNotLoggedIn is returned while the broker has no Vault token.
var errNotLoggedIn = fmt.Errorf("%w: not logged in yet", ErrUnavailable)

// classify turns an error of a Vault call into this package's errors. op
// names the call ("creds", "revoke", ...). Vault's own error text is kept
// for 4xx answers, after scrub, because it says what to fix ("role
// 'lanyard-x' does not exist"); Vault does not echo tokens in errors, and
// scrub makes sure of it.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var re *vault.ResponseError
	if errors.As(err, &re) {
		msg := scrub(strings.Join(re.Errors, "; "))
		if re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("%w: %s: status %d: %s", ErrUnavailable, op, re.StatusCode, msg)
		}
		return fmt.Errorf("vault %s: status %d: %s", op, re.StatusCode, msg)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: timed out", ErrUnavailable, op)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("vault %s: %w", op, context.Canceled)
	}
	// Everything else is the transport: refused or reset connections, DNS,
	// TLS handshakes. The text names the address, never a header.
	return fmt.Errorf("%w: %s: %s", ErrUnavailable, op, scrub(err.Error()))
}

// tokenLike matches what could be a credential inside an error text: JWTs
// (service account tokens) and Vault tokens (hvs., hvb., hvr., s.).
var tokenLike = regexp.MustCompile(
	`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*|\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{16,}`)

// scrub removes anything token-like from text taken from Vault.
func scrub(text string) string {
	return tokenLike.ReplaceAllString(text, redacted)
}
