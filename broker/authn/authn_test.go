package authn

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// fakeReviews answers TokenReviews with a fixed status and counts calls.
type fakeReviews struct {
	authnclient.TokenReviewInterface
	status authnv1.TokenReviewStatus
	err    error
	calls  int
	last   *authnv1.TokenReview
}

func (f *fakeReviews) Create(
	_ context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions,
) (*authnv1.TokenReview, error) {
	f.calls++
	f.last = tr
	if f.err != nil {
		return nil, f.err
	}
	return &authnv1.TokenReview{Status: f.status}, nil
}

// jwt returns a token of the right shape with the given header.
func jwt(header string) Token {
	enc := base64.RawURLEncoding.EncodeToString
	return Token(enc([]byte(header)) + "." + enc([]byte(`{"sub":"x"}`)) + "." + enc([]byte("sig")))
}

var goodToken = jwt(`{"alg":"RS256","kid":"k"}`)

func podStatus() authnv1.TokenReviewStatus {
	return authnv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     []string{"lanyard"},
		User: authnv1.UserInfo{
			Username: "system:serviceaccount:team-a:app",
			Extra: map[string]authnv1.ExtraValue{
				extraPodName:      {"web-1"},
				extraPodUID:       {"uid-1"},
				extraCredentialID: {"JTI=jti-1"},
			},
		},
	}
}

func TestAuthenticateAcceptsAPodBoundToken(t *testing.T) {
	reviews := &fakeReviews{status: podStatus()}
	got, err := NewTokenReviewer(reviews, "lanyard").Authenticate(context.Background(), goodToken)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	want := Caller{Namespace: "team-a", ServiceAccount: "app", Pod: "web-1", PodUID: "uid-1", TokenID: "jti-1"}
	if *got != want {
		t.Errorf("caller = %+v, want %+v", *got, want)
	}
	if reviews.calls != 1 {
		t.Errorf("token reviews = %d, want 1", reviews.calls)
	}
	if a := reviews.last.Spec.Audiences; len(a) != 1 || a[0] != "lanyard" {
		t.Errorf("review audiences = %v, want [lanyard]", a)
	}
}

func TestAuthenticateRefuses(t *testing.T) {
	type tc struct {
		name    string
		token   Token
		status  func(*authnv1.TokenReviewStatus)
		reason  Reason
		reviews int
	}
	cases := []tc{
		{"random bytes without asking the API", Token("\x00\xffnot a token"), nil, ReasonMalformedToken, 0},
		{"a 1 MiB token without asking the API", Token(strings.Repeat("a", 1<<20)), nil, ReasonOversizedToken, 0},
		{"two segments", Token("abc.def"), nil, ReasonMalformedToken, 0},
		{"an empty segment", Token("abc..def"), nil, ReasonMalformedToken, 0},
		{"a header that is not JSON", jwt("nope"), nil, ReasonMalformedToken, 0},
		{"a header without alg", jwt(`{"typ":"JWT"}`), nil, ReasonMalformedToken, 0},
		{"alg none", jwt(`{"alg":"none"}`), nil, ReasonMalformedToken, 0},
		{"a token the API does not authenticate", goodToken, func(s *authnv1.TokenReviewStatus) {
			*s = authnv1.TokenReviewStatus{Error: "token has expired"}
		}, ReasonTokenRejected, 1},
		{"a token for another audience", goodToken, func(s *authnv1.TokenReviewStatus) {
			s.Audiences = []string{"other"}
		}, ReasonWrongAudience, 1},
		{"a user that is not a service account", goodToken, func(s *authnv1.TokenReviewStatus) {
			s.User.Username = "alice"
		}, ReasonNotServiceAccount, 1},
		{"a token not bound to a pod", goodToken, func(s *authnv1.TokenReviewStatus) {
			delete(s.User.Extra, extraPodName)
			delete(s.User.Extra, extraPodUID)
		}, ReasonNotPodBound, 1},
		{"a token bound to a pod without uid", goodToken, func(s *authnv1.TokenReviewStatus) {
			delete(s.User.Extra, extraPodUID)
		}, ReasonNotPodBound, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := podStatus()
			if c.status != nil {
				c.status(&st)
			}
			reviews := &fakeReviews{status: st}
			_, err := NewTokenReviewer(reviews, "lanyard").Authenticate(context.Background(), c.token)
			if r, ok := ReasonOf(err); !ok || r != c.reason {
				t.Fatalf("error = %v, want reason %s", err, c.reason)
			}
			if reviews.calls != c.reviews {
				t.Errorf("token reviews = %d, want %d", reviews.calls, c.reviews)
			}
			if strings.Contains(err.Error(), string(c.token)) && len(c.token) > 8 {
				t.Errorf("error contains the token")
			}
		})
	}
}

func TestAuthenticateScrubsTheTokenFromAPIErrors(t *testing.T) {
	st := authnv1.TokenReviewStatus{Error: "bad token " + string(goodToken)}
	_, err := NewTokenReviewer(&fakeReviews{status: st}, "lanyard").
		Authenticate(context.Background(), goodToken)
	if err == nil || strings.Contains(err.Error(), string(goodToken)) {
		t.Fatalf("error = %v, want one without the token", err)
	}
}

func TestAuthenticateClassifiesAPIFailures(t *testing.T) {
	gr := schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}
	cases := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"an unreachable API is unavailable", errors.New("dial tcp: connection refused"), true},
		{"a server timeout is unavailable", apierrors.NewServerTimeout(gr, "create", 1), true},
		{"a forbidden review is not", apierrors.NewForbidden(gr, "", errors.New("no")), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewTokenReviewer(&fakeReviews{err: c.err}, "lanyard").
				Authenticate(context.Background(), goodToken)
			if errors.Is(err, ErrUnavailable) != c.unavailable {
				t.Errorf("error = %v, unavailable = %v, want %v", err, !c.unavailable, c.unavailable)
			}
			if _, ok := ReasonOf(err); ok {
				t.Errorf("error = %v, want no caller failure", err)
			}
		})
	}
}

func TestFromContext(t *testing.T) {
	cases := []struct {
		name   string
		md     metadata.MD
		want   Token
		reason Reason
	}{
		{"a bearer token", metadata.Pairs("authorization", "Bearer abc"), "abc", ""},
		{"a lowercase scheme", metadata.Pairs("authorization", "bearer abc"), "abc", ""},
		{"no metadata", nil, "", ReasonMissingToken},
		{"an empty token", metadata.Pairs("authorization", "Bearer "), "", ReasonMissingToken},
		{"a basic scheme", metadata.Pairs("authorization", "Basic abc"), "", ReasonMalformedToken},
		{"two values", metadata.Pairs("authorization", "Bearer a", "authorization", "Bearer b"), "",
			ReasonMalformedToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(context.Background(), c.md)
			got, err := FromContext(ctx)
			if r, _ := ReasonOf(err); r != c.reason || got != c.want {
				t.Errorf("FromContext = %q, %v; want %q, reason %q", got.Reveal(), err, c.want, c.reason)
			}
		})
	}
}

func TestTokenRedactsItself(t *testing.T) {
	tok := Token("secret-value")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("Test", "token", tok)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("Test", "token", tok)
	asJSON, _ := json.Marshal(map[string]Token{"t": tok})
	asText, _ := tok.MarshalText()
	printed := fmt.Sprintf("%v %s %#v %+v", tok, tok, tok, struct{ T Token }{tok}) + buf.String() +
		string(asJSON) + string(asText)
	if strings.Contains(printed, "secret-value") {
		t.Errorf("token printed: %s", printed)
	}
	if tok.Reveal() != "secret-value" {
		t.Errorf("Reveal = %q", tok.Reveal())
	}
}

func FuzzPrecheck(f *testing.F) {
	f.Add(string(goodToken))
	f.Add("a.b.c")
	f.Add("\x00")
	f.Add(strings.Repeat(".", 100))
	f.Fuzz(func(t *testing.T, s string) {
		err := Precheck(Token(s))
		if err == nil && (len(s) > MaxTokenSize || strings.Count(s, ".") != 2) {
			t.Fatalf("accepted a token of %d bytes with %d dots", len(s), strings.Count(s, "."))
		}
		if err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			if len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error repeats the input")
			}
		}
	})
}
