package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/authn"
	"github.com/lanyard-dev/lanyard/broker/catalog"
	"github.com/lanyard-dev/lanyard/broker/issuer"
	"github.com/lanyard-dev/lanyard/broker/podwatch"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// IssueCredential authenticates the caller, asks the catalog, and mints one
// credential with exactly one Vault call. A mint is never retried: a retry
// after a lost answer would leave an orphaned credential.
func (s *Server) IssueCredential(
	ctx context.Context,
	req *lanyardv1.IssueCredentialRequest,
) (*lanyardv1.IssueCredentialResponse, error) {
	start := s.now()
	ev := audit.Event{RequestID: RequestID(ctx), Role: recordedRole(req.GetRole())}
	cred, err := s.issue(ctx, req, &ev)
	ev.DurationMS = s.since(start)
	if err != nil {
		return nil, s.fail(ctx, err, &ev)
	}
	ev.Event = audit.CredentialIssued
	s.audit(ctx, ev)
	return &lanyardv1.IssueCredentialResponse{Credential: cred}, nil
}

// issue does the work of IssueCredential, filling ev as it learns.
func (s *Server) issue(
	ctx context.Context,
	req *lanyardv1.IssueCredentialRequest,
	ev *audit.Event,
) (*lanyardv1.Credential, error) {
	caller, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	ev.Caller = auditCaller(caller)
	if err := checkRoleName(req.GetRole()); err != nil {
		return nil, err
	}
	role, err := s.authorize(ctx, caller, req.GetRole())
	if err != nil {
		return nil, err
	}
	namespace, ttl, err := validate(req, role, caller.Namespace)
	ev.TargetNamespace = namespace
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Limiter.Allow(caller.PodUID, s.now()); err != nil {
		return nil, err
	}
	lease, err := s.mint(ctx, role, namespace, ttl)
	if err != nil {
		return nil, err
	}
	ev.CredentialID = s.cfg.Sealer.Seal(lease.ID, caller.PodUID, lease.ExpiresAt)
	ev.ExpiresAt = &lease.ExpiresAt
	if err := ctx.Err(); err != nil {
		return nil, s.orphaned(ctx, caller, role, lease, ev.CredentialID, err)
	}
	s.logIssued(ctx, caller, role, lease, ev.CredentialID)
	s.watchPod(ctx, caller, role, lease, ev.CredentialID)
	return s.credential(ev.CredentialID, role, lease), nil
}

// watchPod hands the lease to the pod watch, which revokes it should the pod
// go away before the agent revokes it.
func (s *Server) watchPod(
	ctx context.Context,
	caller *authn.Caller,
	role *catalog.Role,
	lease *issuer.Lease,
	credentialID string,
) {
	if s.cfg.Pods == nil {
		return
	}
	pod := podwatch.Pod{UID: caller.PodUID, Namespace: caller.Namespace, Name: caller.Pod,
		ServiceAccount: caller.ServiceAccount}
	s.cfg.Pods.Register(ctx, pod, podwatch.Lease{ID: lease.ID, CredentialID: credentialID,
		Role: role.Name, Namespace: lease.Namespace, TokenID: caller.TokenID,
		ExpiresAt: lease.ExpiresAt})
}

// orphaned deals with a credential minted for a caller that left (left is
// its context's error) and returns the error the request ends with. The
// credential is revoked; should that fail, the pod watch gets it, so that it
// dies with the pod at the latest. The audit event of the request carries
// its id, so that what Vault created is accounted for either way.
func (s *Server) orphaned(
	ctx context.Context,
	caller *authn.Caller,
	role *catalog.Role,
	lease *issuer.Lease,
	credentialID string,
	left error,
) error {
	if err := s.revokeOrphan(ctx, lease); err != nil {
		fate := "it lives until it expires"
		if s.cfg.Pods != nil {
			s.watchPod(ctx, caller, role, lease, credentialID)
			fate = "it lives until it expires or its pod goes"
		}
		return fmt.Errorf("caller left before the credential was delivered; "+
			"revoking it failed (%v), so %s: %w", err, fate, left)
	}
	return fmt.Errorf("caller left before the credential was delivered; revoked: %w", left)
}

// authorize asks the current catalog whether caller may request role.
func (s *Server) authorize(ctx context.Context, caller *authn.Caller, name string) (*catalog.Role, error) {
	cat := s.cfg.Catalog.Current()
	if cat == nil {
		return nil, errNoCatalog
	}
	d, err := cat.Decide(ctx, name, catalogCaller(caller), s.cfg.Facts(caller))
	if err != nil {
		return nil, err
	}
	if !d.Allowed {
		return nil, refuse(codes.PermissionDenied, string(d.Code), d.Reason)
	}
	role, ok := cat.Role(name)
	if !ok {
		return nil, fmt.Errorf("catalog allowed role %s it does not hold", name)
	}
	return role, nil
}

// validate checks the requested namespace and ttl against role and returns
// the namespace and lifetime to mint for.
func validate(
	req *lanyardv1.IssueCredentialRequest,
	role *catalog.Role,
	callerNamespace string,
) (string, time.Duration, error) {
	namespace := role.TargetNamespace(callerNamespace)
	if ns := req.GetNamespace(); ns != "" && ns != namespace {
		return namespace, 0, refuse(codes.InvalidArgument, ReasonInvalidNamespace, fmt.Sprintf(
			"role %s grants access to namespace %s, not %s", role.Name, namespace,
			recordedNamespace(ns)))
	}
	ttl := role.TTL
	if req.GetTtl() != nil {
		if err := req.GetTtl().CheckValid(); err != nil {
			return namespace, 0, refuse(codes.InvalidArgument, ReasonInvalidTTL, "ttl is not a valid duration")
		}
		ttl = req.GetTtl().AsDuration()
	}
	switch {
	case ttl > role.MaxTTL:
		return namespace, 0, refuse(codes.InvalidArgument, ReasonInvalidTTL, fmt.Sprintf(
			"ttl %s is above the maxTTL %s of role %s", ttl, role.MaxTTL, role.Name))
	case ttl < catalog.MinTTL:
		return namespace, 0, refuse(codes.InvalidArgument, ReasonInvalidTTL, fmt.Sprintf(
			"ttl %s is below the Kubernetes minimum of %s", ttl, catalog.MinTTL))
	}
	return namespace, ttl, nil
}

// mint asks Vault for the credential. A caller that goes away while the
// issuer waits for a free Vault slot costs no Vault call. Once the call is
// sent it no longer follows the caller (Vault may mint anyway, and only its
// answer names the lease to revoke): the issuer bounds it with its own
// timeout and returns the lease, which issue then revokes as an orphan.
func (s *Server) mint(
	ctx context.Context,
	role *catalog.Role,
	namespace string,
	ttl time.Duration,
) (*issuer.Lease, error) {
	defer s.timeVault("issue", s.now())
	lease, err := s.cfg.Issuer.Issue(ctx, role, namespace, ttl)
	if err != nil {
		return nil, fmt.Errorf("issue credential for role %s: %w", role.Name, err)
	}
	return lease, nil
}

// orphanRevokeTimeout bounds the revocation of a credential nobody
// received, waiting for a free Vault slot included: the issuer caps creds
// calls and revocations together, and under load a slot may be held by a
// creds call that waits in Vault's queue for most of its own timeout.
const orphanRevokeTimeout = time.Minute

// revokeOrphan revokes a credential whose caller left while Vault minted it:
// nobody will ever hold it, so it must not live until it expires. A caller
// that hangs up later, while the answer is on its way, is not noticed here;
// its credential dies at expiry or with its pod. So does one whose mint is
// still running when the broker stops: shutdown waits --shutdown-timeout for
// calls in flight, not for Vault.
func (s *Server) revokeOrphan(ctx context.Context, lease *issuer.Lease) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orphanRevokeTimeout)
	defer cancel()
	err := s.cfg.Issuer.Revoke(rctx, lease.ID)
	attrs := []slog.Attr{
		slog.String(keyRequestID, RequestID(ctx)),
		slog.String(keyLeaseID, lease.ID),
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "Orphaned credential not revoked",
			append(attrs, slog.Time(keyExpiresAt, lease.ExpiresAt), slog.String(keyError, err.Error()))...)
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "Orphaned credential revoked", attrs...)
	return nil
}

func (s *Server) credential(id string, role *catalog.Role, lease *issuer.Lease) *lanyardv1.Credential {
	return &lanyardv1.Credential{
		Id:             id,
		Token:          lease.Token.Reveal(),
		ExpiresAt:      timestamppb.New(lease.ExpiresAt),
		IssuedAt:       timestamppb.New(lease.IssuedAt),
		Namespace:      lease.Namespace,
		ServiceAccount: lease.ServiceAccount,
		Role:           role.Name,
		ApiServer:      s.cfg.APIServer,
		CaCert:         s.cfg.CACert,
	}
}

func (s *Server) logIssued(
	ctx context.Context,
	caller *authn.Caller,
	role *catalog.Role,
	lease *issuer.Lease,
	id string,
) {
	s.log.LogAttrs(ctx, slog.LevelDebug, "Credential issued",
		slog.String(keyRequestID, RequestID(ctx)),
		slog.String(keyRole, role.Name),
		slog.String(keyCallerNS, caller.Namespace),
		slog.String(keyCallerSA, caller.ServiceAccount),
		slog.String(keyCallerPod, caller.Pod),
		slog.String(keyTokenID, caller.TokenID),
		slog.String(keyCredentialID, id),
		slog.String(keyLeaseID, lease.ID),
		slog.String(keyNamespace, lease.Namespace),
		slog.String(keyAccount, lease.ServiceAccount),
		slog.Time(keyExpiresAt, lease.ExpiresAt))
}

func catalogCaller(c *authn.Caller) catalog.Caller {
	return catalog.Caller{Namespace: c.Namespace, ServiceAccount: c.ServiceAccount, Pod: c.Pod}
}
