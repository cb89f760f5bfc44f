//go:build integration

package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

// TestAGrantsAudiencesAreTheMintedTokensAudiences shows that a grant's
// audiences reach the token Vault mints: the token carries exactly them, a
// TokenReview for one of them accepts it, and the API server, which is not
// among them, refuses it.
func TestAGrantsAudiencesAreTheMintedTokensAudiences(t *testing.T) {
	env := sharedBroker(t)
	ctx := context.Background()
	setUpIssueFixtures(t, env)
	audiences := []string{"billing.example", "reports.example"}
	role := testRole("audiences", catalog.Grant{
		Namespace: catalog.CallerNamespace, Rules: podReadRules, Audiences: audiences,
	}, catalog.Subject{Namespace: nsTarget, ServiceAccounts: []string{"app"}})
	if _, err := env.issuer.Sync(ctx, syncCatalog(role), false); err != nil {
		t.Fatalf("Sync: %v", err)
	}

	lease, err := env.issuer.Issue(ctx, role, nsTarget, 10*time.Minute)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	env.logs.remember(lease.Token.Reveal())
	t.Cleanup(func() {
		env.logs.assertNoSecret(t)
		_ = env.issuer.Revoke(context.Background(), lease.ID)
	})

	if got := tokenAudiences(t, lease.Token.Reveal()); !slices.Equal(got, audiences) {
		t.Errorf("minted token audiences = %v, want %v", got, audiences)
	}
	review, err := env.stack.Admin.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: lease.Token.Reveal(), Audiences: audiences[1:]},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated {
		t.Errorf("TokenReview for %s: not authenticated (%s)", audiences[1], review.Status.Error)
	}
	client, err := env.stack.ClientForToken(lease.Token.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if err := listPods(nsTarget).do(ctx, client); !apierrors.IsUnauthorized(err) {
		t.Errorf("the API server, not an audience, answered %v; want 401", apiStatus(err))
	}
}

// tokenAudiences reads the aud claim of a JWT without verifying it: the test
// only asks what Vault put there.
func tokenAudiences(t *testing.T, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("minted token has %d parts, want a JWT", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("minted token payload: %v", err)
	}
	var claims struct {
		Aud json.RawMessage `json:"aud"`
	}
	must(t, json.Unmarshal(payload, &claims))
	var many []string
	if json.Unmarshal(claims.Aud, &many) == nil {
		return many
	}
	var one string
	must(t, json.Unmarshal(claims.Aud, &one))
	return []string{one}
}
