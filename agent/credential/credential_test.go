package credential

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

func TestTokenNeverPrints(t *testing.T) {
	tok := Token("s3cr3t-value")
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("Test", "token", tok)
	outputs := []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %s %q %#v %x", tok, tok, tok, tok, tok),
		fmt.Sprintf("%+v", Credential{Token: tok}), fmt.Errorf("wrap %v", tok).Error(),
		logged.String(),
	}
	for _, out := range outputs {
		if strings.Contains(out, "s3cr3t") {
			t.Errorf("token leaked: %s", out)
		}
	}
	if tok.Reveal() != "s3cr3t-value" {
		t.Errorf("Reveal() lost the token")
	}
}

func TestFromProto(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	valid := func() *lanyardv1.Credential {
		return &lanyardv1.Credential{
			Id: "c1", Token: "t", Namespace: "ns", ApiServer: "https://api", CaCert: []byte("pem"),
			IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(10 * time.Minute)),
		}
	}
	cases := []struct {
		name    string
		edit    func(*lanyardv1.Credential)
		wantErr string
	}{
		{"a complete credential is accepted", func(*lanyardv1.Credential) {}, ""},
		{"a missing issued_at falls back to the receipt time",
			func(p *lanyardv1.Credential) { p.IssuedAt = nil }, ""},
		{"a missing token is refused", func(p *lanyardv1.Credential) { p.Token = "" }, "token"},
		{"missing fields are all named", func(p *lanyardv1.Credential) { p.Id, p.CaCert = "", nil },
			"missing [id ca_cert]"},
		{"an expiry before the issue is refused",
			func(p *lanyardv1.Credential) { p.ExpiresAt = timestamppb.New(now) }, "not after"},
		{"a missing expiry is refused",
			func(p *lanyardv1.Credential) { p.ExpiresAt = nil }, "not after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			tc.edit(p)
			c, err := FromProto(p, now)
			if tc.wantErr == "" {
				if err != nil || c.Lifetime() != 10*time.Minute {
					t.Fatalf("FromProto() = %v, lifetime %v", err, c.Lifetime())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("FromProto() error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
