package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/lanyard-dev/lanyard/broker/audit"
	"github.com/lanyard-dev/lanyard/broker/credid"
	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// RevokeCredential revokes a credential for the pod it was issued to. The
// owner is checked from the sealed id alone, so any replica can answer. It
// is not rate limited: a pod revoking on shutdown must not be turned away,
// and it can only revoke what it was issued. Its Vault call still waits,
// for as long as the caller does, for one of the issuer's slots, which
// creds calls and revocations share.
func (s *Server) RevokeCredential(
	ctx context.Context,
	req *lanyardv1.RevokeCredentialRequest,
) (*lanyardv1.RevokeCredentialResponse, error) {
	start := s.now()
	ev := audit.Event{RequestID: RequestID(ctx), CredentialID: recordedID(req.GetId())}
	err := s.revoke(ctx, req.GetId(), &ev)
	ev.DurationMS = s.since(start)
	if err != nil {
		return nil, s.fail(ctx, err, &ev)
	}
	ev.Event = audit.CredentialRevoked
	s.audit(ctx, ev)
	return &lanyardv1.RevokeCredentialResponse{}, nil
}

func (s *Server) revoke(ctx context.Context, id string, ev *audit.Event) error {
	caller, err := s.authenticate(ctx)
	if err != nil {
		return err
	}
	ev.Caller = auditCaller(caller)
	if id == "" {
		return refuse(codes.InvalidArgument, ReasonInvalidRequest, "credential id is required")
	}
	if len(id) > maxCredentialIDLen {
		return fmt.Errorf("%w: longer than %d characters", credid.ErrInvalid, maxCredentialIDLen)
	}
	leaseID, podUID, expires, err := s.cfg.Sealer.Open(id)
	if err != nil {
		return err
	}
	ev.ExpiresAt = &expires
	if podUID != caller.PodUID {
		return refuse(codes.PermissionDenied, ReasonNotOwner,
			"credential was issued to another pod; only that pod may revoke it")
	}
	defer s.timeVault("revoke", s.now())
	if err := s.cfg.Issuer.Revoke(ctx, leaseID); err != nil {
		return fmt.Errorf("revoke credential: %w", err)
	}
	if s.cfg.Pods != nil {
		s.cfg.Pods.Unregister(podUID, leaseID)
	}
	return nil
}
