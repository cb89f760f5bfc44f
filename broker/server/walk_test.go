package server

import (
	"context"
	"maps"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	lanyardv1 "github.com/lanyard-dev/lanyard/proto/lanyard/v1"
)

// rpcs calls every method of the Broker service once.
var rpcs = map[string]func(ctx context.Context, tb *testBroker, opts ...grpc.CallOption) error{
	"IssueCredential": func(ctx context.Context, tb *testBroker, opts ...grpc.CallOption) error {
		_, err := tb.client.IssueCredential(ctx, &lanyardv1.IssueCredentialRequest{Role: "pod-reader"}, opts...)
		return err
	},
	"RevokeCredential": func(ctx context.Context, tb *testBroker, opts ...grpc.CallOption) error {
		_, err := tb.client.RevokeCredential(ctx, &lanyardv1.RevokeCredentialRequest{Id: ownID(tb)}, opts...)
		return err
	},
	"ListRoles": func(ctx context.Context, tb *testBroker, opts ...grpc.CallOption) error {
		_, err := tb.client.ListRoles(ctx, &lanyardv1.ListRolesRequest{}, opts...)
		return err
	},
}

func TestWalkCoversEveryRPC(t *testing.T) {
	for _, m := range lanyardv1.Broker_ServiceDesc.Methods {
		if _, ok := rpcs[m.MethodName]; !ok {
			t.Errorf("RPC %s is not walked by TestEveryRPCForEveryCallerKind", m.MethodName)
		}
	}
}

func TestEveryRPCForEveryCallerKind(t *testing.T) {
	type want map[string]codes.Code
	kinds := []struct {
		name  string
		token string
		want  want
	}{
		{"a caller without a token", "", want{"IssueCredential": codes.Unauthenticated,
			"RevokeCredential": codes.Unauthenticated, "ListRoles": codes.Unauthenticated}},
		{"a caller with a malformed token", "not-a-jwt", want{"IssueCredential": codes.Unauthenticated,
			"RevokeCredential": codes.Unauthenticated, "ListRoles": codes.Unauthenticated}},
		{"a caller whose token is not pod-bound", tokUnbound, want{"IssueCredential": codes.Unauthenticated,
			"RevokeCredential": codes.Unauthenticated, "ListRoles": codes.Unauthenticated}},
		{"a caller while the kubernetes api is down", tokDown, want{"IssueCredential": codes.Unavailable,
			"RevokeCredential": codes.Unavailable, "ListRoles": codes.Unavailable}},
		{"the pod the role allows and that owns the credential", tokApp, want{"IssueCredential": codes.OK,
			"RevokeCredential": codes.OK, "ListRoles": codes.OK}},
		{"a pod of the allowed account that owns nothing", tokOtherPod, want{"IssueCredential": codes.OK,
			"RevokeCredential": codes.PermissionDenied, "ListRoles": codes.OK}},
		{"a service account the role does not name", tokBatch, want{"IssueCredential": codes.PermissionDenied,
			"RevokeCredential": codes.PermissionDenied, "ListRoles": codes.OK}},
	}
	for _, k := range kinds {
		for _, method := range slices.Sorted(maps.Keys(rpcs)) {
			t.Run(k.name+"/"+method, func(t *testing.T) {
				tb := newTestBroker(t)
				var header metadata.MD
				err := rpcs[method](as(k.token), tb, grpc.Header(&header))
				if got := status.Code(err); got != k.want[method] {
					t.Errorf("%s = %v (%v), want %v", method, got, err, k.want[method])
				}
				if ids := header.Get(RequestIDHeader); len(ids) != 1 || len(ids[0]) != 16 {
					t.Errorf("x-request-id = %v, want one id", ids)
				}
				if n := tb.requestCount(t, method, k.want[method]); n != 1 {
					t.Errorf("requests_total{%s,%v} = %v, want 1", method, k.want[method], n)
				}
				tb.assertNoSecrets(t)
			})
		}
	}
}

// requestCount reads lanyard_broker_requests_total for method and code.
func (tb *testBroker) requestCount(t *testing.T, method string, code codes.Code) float64 {
	t.Helper()
	families, err := tb.metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "lanyard_broker_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method && labels["code"] == code.String() {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
