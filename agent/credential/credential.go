// Package credential holds the credential the agent receives from the broker
// and a token type that never prints its secret.
package credential

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// Token is a bearer token. It prints as "[redacted]" through fmt, %#v and
// slog, so that it cannot leak into a log line or an error by accident; use
// Reveal where the secret itself is needed.
type Token string

const redacted = "[redacted]"

// String returns a placeholder, never the token.
func (Token) String() string { return redacted }

// GoString returns a placeholder, never the token.
func (Token) GoString() string { return redacted }

// LogValue returns a placeholder, never the token.
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format prints a placeholder for every verb, never the token.
func (Token) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// Reveal returns the secret. Call it only to write or send the token.
func (t Token) Reveal() string { return string(t) }

// Credential is a short-lived Kubernetes credential issued by the broker.
type Credential struct {
	// ID is the broker's opaque handle used to revoke; it may be logged.
	ID string
	// Token is the bearer token for the API server.
	Token Token
	// IssuedAt and ExpiresAt are the broker's times of minting and expiry.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Namespace the credential's permissions apply to.
	Namespace string
	// ServiceAccount the token authenticates as.
	ServiceAccount string
	// Role is the catalog role the credential was issued for.
	Role string
	// APIServer is the URL of the Kubernetes API server.
	APIServer string
	// CACert is the PEM bundle of the API server's certificate authority.
	CACert []byte
}

// Lifetime is how long the credential is valid from its issue.
func (c Credential) Lifetime() time.Duration { return c.ExpiresAt.Sub(c.IssuedAt) }

// FromProto checks a credential received from the broker. received stands in
// for a missing issued_at.
func FromProto(p *lanyardv1.Credential, received time.Time) (Credential, error) {
	if p == nil {
		return Credential{}, errors.New("broker returned no credential")
	}
	c := Credential{
		ID:             p.GetId(),
		Token:          Token(p.GetToken()),
		Namespace:      p.GetNamespace(),
		ServiceAccount: p.GetServiceAccount(),
		Role:           p.GetRole(),
		APIServer:      p.GetApiServer(),
		CACert:         p.GetCaCert(),
		IssuedAt:       received,
	}
	if p.GetIssuedAt() != nil {
		c.IssuedAt = p.GetIssuedAt().AsTime()
	}
	if p.GetExpiresAt() != nil {
		c.ExpiresAt = p.GetExpiresAt().AsTime()
	}
	if err := c.validate(); err != nil {
		return Credential{}, fmt.Errorf("broker returned an unusable credential: %w", err)
	}
	return c, nil
}

func (c Credential) validate() error {
	var missing []string
	fields := []struct{ name, value string }{
		{"id", c.ID}, {"token", string(c.Token)}, {"namespace", c.Namespace},
		{"api_server", c.APIServer}, {"ca_cert", string(c.CACert)},
	}
	for _, f := range fields {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %v", missing)
	}
	if !c.ExpiresAt.After(c.IssuedAt) {
		return fmt.Errorf("expires_at %s is not after issued_at %s",
			c.ExpiresAt.Format(time.RFC3339), c.IssuedAt.Format(time.RFC3339))
	}
	return nil
}
