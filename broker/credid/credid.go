// Package credid seals what the broker must remember about a credential into
// the credential's opaque id, so that the broker itself stays stateless.
//
// An id carries the Vault lease id, the UID of the pod that received the
// credential and its expiry, encrypted and authenticated with AES-256-GCM
// under a key that every broker replica shares. On RevokeCredential, any
// replica opens the id and compares the sealed pod UID with the UID of the
// authenticated caller: only the pod that received the credential may revoke
// it. No replica needs to ask another, or a database, who owns a credential,
// because nobody without the key can forge an id or move one to another pod:
// changing a single bit makes Open fail. This is why the key must be shared
// (--credential-key-file) when more than one replica runs, and why a random
// per-process key (RandomSealer) suits only a single replica: an id sealed by
// one process cannot be opened by another.
//
// The lease id is not a secret (revoking it needs a Vault token holding the
// broker's policy), but sealing hides it anyway, so that an id reveals
// neither the Vault mount layout nor which role minted it, and the pod UID
// does not leak to whoever sees the id in a log.
package credid

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalid is returned by Open for an id that was not sealed by a Sealer
// with the same key, or was altered or truncated.
var ErrInvalid = errors.New("invalid credential id")

// version is the first byte of every sealed id; it is also authenticated.
const version byte = 1

// MinKeySize is the least number of key bytes NewSealer accepts.
const MinKeySize = 32

const nonceSize = 12

// Sealer seals and opens credential ids. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for key, which must hold at least MinKeySize
// bytes of secret randomness. The AES-256 key is derived from it with HKDF,
// so a longer key is fine.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("credential key has %d bytes, want at least %d", len(key), MinKeySize)
	}
	aesKey, err := hkdf.Key(sha256.New, key, nil, "lanyard credential id v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive credential key: %w", err)
	}
	block, err := aes.NewCipher(aesKey)
	if err != nil {
		return nil, fmt.Errorf("credential cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("credential cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// RandomSealer returns a Sealer with a random key that lives only in this
// process: ids it seals cannot be opened by another replica or after a
// restart.
func RandomSealer() (*Sealer, error) {
	key := make([]byte, MinKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("random credential key: %w", err)
	}
	return NewSealer(key)
}

// Seal returns the URL-safe id for a lease issued to the pod with podUID.
// The expiry keeps whole seconds.
func (s *Sealer) Seal(leaseID, podUID string, expires time.Time) string {
	plain := encode(leaseID, podUID, expires)
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plain)+s.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		// crypto/rand does not fail on supported platforms; a repeated
		// nonce would be worse than stopping.
		panic("credid: read random nonce: " + err.Error())
	}
	out = s.aead.Seal(out, out[1:1+nonceSize], plain, out[:1])
	return base64.RawURLEncoding.EncodeToString(out)
}

// Open returns what Seal sealed into id. Any id not produced by Seal with
// the same key yields an error that wraps ErrInvalid.
func (s *Sealer) Open(id string) (leaseID, podUID string, expires time.Time, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: not base64url", ErrInvalid)
	}
	if len(raw) < 1+nonceSize+s.aead.Overhead() {
		return "", "", time.Time{}, fmt.Errorf("%w: too short", ErrInvalid)
	}
	if raw[0] != version {
		return "", "", time.Time{}, fmt.Errorf("%w: unknown version %d", ErrInvalid, raw[0])
	}
	plain, err := s.aead.Open(nil, raw[1:1+nonceSize], raw[1+nonceSize:], raw[:1])
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("%w: not sealed with this key or altered", ErrInvalid)
	}
	return decode(plain)
}

// encode lays out the expiry in Unix seconds as a varint, then the pod UID
// and the lease id, each after its length as a uvarint.
func encode(leaseID, podUID string, expires time.Time) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen64+len(podUID)+len(leaseID))
	b = binary.AppendVarint(b, expires.Unix())
	b = binary.AppendUvarint(b, uint64(len(podUID)))
	b = append(b, podUID...)
	b = binary.AppendUvarint(b, uint64(len(leaseID)))
	return append(b, leaseID...)
}

func decode(b []byte) (leaseID, podUID string, expires time.Time, err error) {
	unix, size := binary.Varint(b)
	if size <= 0 {
		return "", "", time.Time{}, fmt.Errorf("%w: bad expiry", ErrInvalid)
	}
	expires = time.Unix(unix, 0)
	podUID, b, ok := field(b[size:])
	if !ok {
		return "", "", time.Time{}, fmt.Errorf("%w: bad pod uid", ErrInvalid)
	}
	leaseID, b, ok = field(b)
	if !ok || len(b) != 0 {
		return "", "", time.Time{}, fmt.Errorf("%w: bad lease id", ErrInvalid)
	}
	return leaseID, podUID, expires, nil
}

// field reads one length-prefixed string and returns the rest.
func field(b []byte) (string, []byte, bool) {
	n, size := binary.Uvarint(b)
	if size <= 0 || n > math.MaxInt32 {
		return "", nil, false
	}
	length, rest := int(n), b[size:]
	if length > len(rest) {
		return "", nil, false
	}
	return string(rest[:length]), rest[length:], true
}
