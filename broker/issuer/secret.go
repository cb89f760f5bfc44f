package issuer

import "log/slog"

const redacted = "[redacted]"

// Secret is a token. It prints, logs and marshals as "[redacted]"; only
// Reveal returns the token itself, so that a token reaches a log line, an
// error or an audit event only by someone writing Reveal.
type Secret string

// Reveal returns the token.
func (s Secret) Reveal() string { return string(s) }

// String redacts the token.
func (s Secret) String() string { return redacted }

// GoString redacts the token in %#v.
func (s Secret) GoString() string { return redacted }

// LogValue redacts the token in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON redacts the token in JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText redacts the token wherever text marshalling is used.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
