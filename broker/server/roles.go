package server

import (
	"context"

	"google.golang.org/protobuf/types/known/durationpb"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// ListRoles tells the caller, for every catalog role, whether it may request
// it and why not. It writes no audit event: it decides nothing and mints
// nothing.
func (s *Server) ListRoles(
	ctx context.Context,
	_ *lanyardv1.ListRolesRequest,
) (*lanyardv1.ListRolesResponse, error) {
	resp, err := s.listRoles(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, nil)
	}
	return resp, nil
}

func (s *Server) listRoles(ctx context.Context) (*lanyardv1.ListRolesResponse, error) {
	caller, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	cat := s.cfg.Catalog.Current()
	if cat == nil {
		return nil, errNoCatalog
	}
	decisions, err := cat.Explain(ctx, catalogCaller(caller), s.cfg.Facts(caller))
	if err != nil {
		return nil, err
	}
	resp := &lanyardv1.ListRolesResponse{}
	for _, d := range decisions {
		st := &lanyardv1.RoleStatus{Name: d.Role, Allowed: d.Allowed}
		if !d.Allowed {
			st.Reason = d.Reason
		}
		if role, ok := cat.Role(d.Role); ok {
			st.Description = role.Description
			st.DefaultTtl = durationpb.New(role.TTL)
			st.MaxTtl = durationpb.New(role.MaxTTL)
		}
		resp.Roles = append(resp.Roles, st)
	}
	return resp, nil
}
