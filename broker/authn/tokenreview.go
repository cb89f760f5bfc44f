package authn

import (
	"context"
	"fmt"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// Caller is an authenticated pod.
type Caller struct {
	Namespace      string
	ServiceAccount string
	Pod            string
	PodUID         string
	// TokenID is the caller token's JTI (credential-id), for correlation.
	TokenID string
}

// Keys of the extra fields TokenReview returns for pod-bound tokens.
const (
	extraPodName      = "authentication.kubernetes.io/pod-name"
	extraPodUID       = "authentication.kubernetes.io/pod-uid"
	extraCredentialID = "authentication.kubernetes.io/credential-id"
	saPrefix          = "system:serviceaccount:"
)

// TokenReviewer authenticates callers with one TokenReview per call.
//
// It keeps no cache on purpose: the API server already accepts a reviewed
// token for about 10 s after its pod is deleted (its own success cache, see
// LANDSCAPE.md), and a broker cache would lengthen that window.
type TokenReviewer struct {
	reviews  authnclient.TokenReviewInterface
	audience string
}

// NewTokenReviewer returns an authenticator that requires tokens for audience.
func NewTokenReviewer(reviews authnclient.TokenReviewInterface, audience string) *TokenReviewer {
	return &TokenReviewer{reviews: reviews, audience: audience}
}

// Authenticate prechecks t, reviews it, and returns the pod it belongs to.
// Failures about the token are *Error; failures to reach the API wrap
// ErrUnavailable.
func (r *TokenReviewer) Authenticate(ctx context.Context, t Token) (*Caller, error) {
	if err := Precheck(t); err != nil {
		return nil, err
	}
	review, err := r.reviews.Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: t.Reveal(), Audiences: []string{r.audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, reviewError(err)
	}
	return r.callerFrom(review.Status, t)
}

func reviewError(err error) error {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		return fmt.Errorf("token review refused to the broker: %w", err)
	}
	return fmt.Errorf("token review: %w: %w", ErrUnavailable, err)
}

func (r *TokenReviewer) callerFrom(st authnv1.TokenReviewStatus, t Token) (*Caller, error) {
	if !st.Authenticated {
		return nil, fail(ReasonTokenRejected, scrub(st.Error, t))
	}
	if !slices.Contains(st.Audiences, r.audience) {
		return nil, fail(ReasonWrongAudience, "token is not for audience "+r.audience)
	}
	ns, sa, ok := serviceAccount(st.User.Username)
	if !ok {
		return nil, fail(ReasonNotServiceAccount, "token is not a service account token")
	}
	pod, podUID := first(st.User.Extra[extraPodName]), first(st.User.Extra[extraPodUID])
	if pod == "" || podUID == "" {
		return nil, fail(ReasonNotPodBound, "token of "+ns+"/"+sa+" is not bound to a pod")
	}
	return &Caller{
		Namespace:      ns,
		ServiceAccount: sa,
		Pod:            pod,
		PodUID:         podUID,
		TokenID:        strings.TrimPrefix(first(st.User.Extra[extraCredentialID]), "JTI="),
	}, nil
}

// serviceAccount splits system:serviceaccount:NS:SA.
func serviceAccount(username string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(username, saPrefix)
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	if !ok || namespace == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return namespace, name, true
}

func first(values authnv1.ExtraValue) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// scrub removes the token from an API error message, should one ever echo it.
func scrub(msg string, t Token) string {
	if msg == "" {
		return "token review did not authenticate the token"
	}
	if t != "" {
		msg = strings.ReplaceAll(msg, t.Reveal(), redacted)
	}
	return msg
}
