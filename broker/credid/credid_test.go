package credid

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	testLease = "kubernetes/creds/lanyard-pod-reader/Xb3YzTq0aW7nCk2vRd9Lp4Ef"
	testPod   = "0f4c1d2e-8a7b-4c6d-9e0f-1a2b3c4d5e6f"
)

func testSealer(t testing.TB, fill byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{fill}, MinKeySize))
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

func TestSealThenOpenReturnsWhatWasSealed(t *testing.T) {
	s := testSealer(t, 7)
	expires := time.Unix(1_900_000_000, 0)
	tests := []struct{ name, lease, pod string }{
		{"a real lease and pod", testLease, testPod},
		{"empty fields", "", ""},
		{"a long lease id", strings.Repeat("x", 70_000), testPod},
		{"non-ascii bytes", "l\x00e\xffase", "p\u00e9d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := s.Seal(tt.lease, tt.pod, expires)
			lease, pod, exp, err := s.Open(id)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if lease != tt.lease || pod != tt.pod || !exp.Equal(expires) {
				t.Fatalf("Open = %q, %q, %v; want the sealed values", lease, pod, exp)
			}
		})
	}
}

func TestSealedIDIsURLSafeAndHidesTheLease(t *testing.T) {
	id := testSealer(t, 7).Seal(testLease, testPod, time.Now())
	if strings.ContainsAny(id, "+/=") {
		t.Fatalf("id %q is not unpadded base64url", id)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(id)
	if bytes.Contains(raw, []byte("lanyard")) || bytes.Contains(raw, []byte(testPod)) {
		t.Fatal("sealed id contains the lease id or pod UID in clear")
	}
	if id == testSealer(t, 7).Seal(testLease, testPod, time.Now()) {
		t.Fatal("two seals of the same values are equal; the nonce is not random")
	}
}

func TestOpenRejectsWhatSealDidNotProduce(t *testing.T) {
	s := testSealer(t, 7)
	id := s.Seal(testLease, testPod, time.Unix(1_900_000_000, 0))
	raw, _ := base64.RawURLEncoding.DecodeString(id)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name, id string
		opener   *Sealer
	}{
		{"an id sealed with another key", id, testSealer(t, 8)},
		{"a flipped bit in the version", flip(0), s},
		{"a flipped bit in the nonce", flip(3), s},
		{"a flipped bit in the ciphertext", flip(20), s},
		{"a flipped bit in the tag", flip(len(raw) - 1), s},
		{"a truncated id", id[:len(id)-4], s},
		{"a truncated id shorter than a nonce", id[:10], s},
		{"an empty id", "", s},
		{"padding and standard alphabet", id + "==", s},
		{"not base64 at all", "not an id!", s},
		{"an appended byte", base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0)), s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := tt.opener.Open(tt.id)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Open = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestRandomSealersDoNotShareIDs(t *testing.T) {
	a, err := RandomSealer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := RandomSealer()
	if err != nil {
		t.Fatal(err)
	}
	id := a.Seal(testLease, testPod, time.Now())
	if _, _, _, err := a.Open(id); err != nil {
		t.Fatalf("own id: %v", err)
	}
	if _, _, _, err := b.Open(id); !errors.Is(err, ErrInvalid) {
		t.Fatalf("other process opened the id: %v", err)
	}
}

func TestNewSealerRefusesAShortKey(t *testing.T) {
	if _, err := NewSealer(make([]byte, MinKeySize-1)); err == nil {
		t.Fatal("NewSealer accepted a 31-byte key")
	}
}

func TestLoadKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xa5}, 32)
	tests := []struct {
		name    string
		content []byte
		want    []byte
		wantErr bool
	}{
		{"raw bytes", raw, raw, false},
		{"standard base64 with a newline", []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), raw, false},
		{"unpadded url base64", []byte(base64.RawURLEncoding.EncodeToString(raw)), raw, false},
		{"too short raw", raw[:16], nil, true},
		{"too short base64", []byte(base64.StdEncoding.EncodeToString(raw[:16])), nil, true},
		{"empty file", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadKey(path)
			if tt.wantErr {
				if err == nil {
					t.Fatal("LoadKey accepted the file")
				}
				if len(tt.content) > 0 && strings.Contains(err.Error(), string(tt.content)) {
					t.Fatal("error contains the key")
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("LoadKey = %x, %v; want %x", got, err, tt.want)
			}
		})
	}
}

func TestLoadKeyOfAMissingFileSaysSo(t *testing.T) {
	_, err := LoadKey(filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadKey = %v, want a not-exist error", err)
	}
}

func FuzzOpen(f *testing.F) {
	s := testSealer(f, 7)
	f.Add(s.Seal(testLease, testPod, time.Unix(1_900_000_000, 0)))
	f.Add("")
	f.Add("AQ")
	f.Add(strings.Repeat("A", 60))
	f.Fuzz(func(t *testing.T, id string) {
		lease, pod, _, err := s.Open(id)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Open error %v does not wrap ErrInvalid", err)
			}
			return
		}
		again, _, _, err := s.Open(s.Seal(lease, pod, time.Now()))
		if err != nil || again != lease {
			t.Fatalf("an opened id does not reseal: %v", err)
		}
	})
}
