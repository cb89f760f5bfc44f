package brokertest

import "testing"

func TestSecretsAreFoundWholeOrByTheirSignature(t *testing.T) {
	s := &secrets{}
	s.remember("header.payload.signature-of-a-token")
	s.remember("short")
	cases := []struct {
		name string
		text string
		want int
	}{
		{"a line with the whole token", `{"token":"header.payload.signature-of-a-token"}`, 0},
		{"a line with only the signature", `{"sig":"signature-of-a-token"}`, 1},
		{"a line with a secret too short to search for", `{"msg":"short"}`, -1},
		{"a line without secrets", `{"msg":"Credential issued"}`, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := s.find(c.text); got != c.want {
				t.Errorf("find(%s) = %d, want %d", c.text, got, c.want)
			}
		})
	}
}
