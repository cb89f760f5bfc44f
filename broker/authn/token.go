// Package authn authenticates the pods that call the broker: it takes the
// projected service account token from the gRPC metadata, checks its shape
// before any API call, and asks the Kubernetes TokenReview API who it
// belongs to.
package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"

	"google.golang.org/grpc/metadata"
)

// MaxTokenSize is the largest caller token accepted, in bytes. Projected
// service account tokens are around 1 KiB; anything past this is refused
// before it reaches the API server.
const MaxTokenSize = 16 << 10

// Token is a caller's bearer token. It redacts itself wherever it could be
// printed; Reveal returns the value for the one place that needs it.
type Token string

const redacted = "[redacted]"

// Reveal returns the token itself.
func (t Token) Reveal() string { return string(t) }

// String redacts the token.
func (Token) String() string { return redacted }

// GoString redacts the token.
func (Token) GoString() string { return redacted }

// LogValue redacts the token.
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON redacts the token.
func (Token) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText redacts the token wherever text marshalling is used.
func (Token) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// FromContext returns the bearer token of the gRPC call in ctx.
func FromContext(ctx context.Context) (Token, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get("authorization")
	switch {
	case len(values) == 0:
		return "", fail(ReasonMissingToken, "no authorization metadata")
	case len(values) > 1:
		return "", fail(ReasonMalformedToken, "more than one authorization value")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", fail(ReasonMalformedToken, "authorization is not a bearer token")
	}
	t := Token(strings.TrimSpace(token))
	if t == "" {
		return "", fail(ReasonMissingToken, "empty bearer token")
	}
	return t, nil
}

// Precheck refuses what cannot be a service account token without calling
// any API: oversized values, values that are not three base64url segments,
// and headers that are not JSON naming an algorithm. It does not check the
// signature; the TokenReview does.
func Precheck(t Token) error {
	raw := string(t)
	if len(raw) > MaxTokenSize {
		return fail(ReasonOversizedToken, "token is larger than 16 KiB")
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return fail(ReasonMalformedToken, "token is not three dot-separated segments")
	}
	for _, p := range parts {
		if p == "" || !isBase64URL(p) {
			return fail(ReasonMalformedToken, "token segment is not base64url")
		}
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return fail(ReasonMalformedToken, "token header is not base64url")
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(header, &h); err != nil {
		return fail(ReasonMalformedToken, "token header is not JSON")
	}
	if h.Alg == "" || strings.EqualFold(h.Alg, "none") {
		return fail(ReasonMalformedToken, "token header names no signing algorithm")
	}
	return nil
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
