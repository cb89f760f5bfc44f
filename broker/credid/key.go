package credid

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
)

// LoadKey reads the shared credential key from path. The file holds at
// least MinKeySize bytes, either raw or base64-encoded (standard or URL
// alphabet, padded or not; surrounding whitespace is ignored), as
// `head -c 32 /dev/urandom | base64` or a Kubernetes Secret produce.
// The error never contains the key.
func LoadKey(path string) ([]byte, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: the operator names this file
	if err != nil {
		return nil, fmt.Errorf("read credential key: %w", err)
	}
	if key, ok := decodeBase64(bytes.TrimSpace(data)); ok && len(key) >= MinKeySize {
		return key, nil
	}
	if len(data) >= MinKeySize {
		return data, nil
	}
	return nil, fmt.Errorf("credential key %s: want at least %d bytes, raw or base64",
		path, MinKeySize)
}

func decodeBase64(text []byte) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		if key, err := enc.DecodeString(string(text)); err == nil {
			return key, true
		}
	}
	return nil, false
}
