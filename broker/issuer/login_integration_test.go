//go:build integration

package issuer

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestBrokerTokenHoldsOnlyTheLanyardPolicy: every other integration test
// of the issuer runs with this token, so they show that the policy of
// `lanyard-broker vault policy` alone suffices, without Vault's default
// policy.
func TestBrokerTokenHoldsOnlyTheLanyardPolicy(t *testing.T) {
	env := sharedBroker(t)
	secret, err := env.issuer.client.Auth().Token().LookupSelfWithContext(context.Background())
	must(t, err)
	policies, err := secret.TokenPolicies()
	must(t, err)
	if !slices.Equal(policies, []string{brokerPolicy}) {
		t.Errorf("the broker's Vault token has policies %v, want only %s", policies, brokerPolicy)
	}
}

// TestRunRenewsAndLogsInAgainAgainstVault gives the broker a 6 s token that
// may live 12 s: Run must renew it (renew-self allowed by the policy) and,
// once the max TTL nears, log in again.
func TestRunRenewsAndLogsInAgainAgainstVault(t *testing.T) {
	env := sharedBroker(t)
	ctx := context.Background()
	s := env.stack
	root, err := s.VaultClient(s.VaultRootToken)
	must(t, err)
	_, err = root.Logical().WriteWithContext(ctx, "auth/"+s.VaultAuthMount+"/role/lanyard-broker-short",
		map[string]any{
			"bound_service_account_names":      []string{brokerAccount},
			"bound_service_account_namespaces": []string{brokerNamespace},
			"token_policies":                   []string{brokerPolicy},
			"token_no_default_policy":          true,
			"token_ttl":                        "6s",
			"token_max_ttl":                    "12s",
		})
	must(t, err)
	jwt, err := s.ServiceAccountToken(ctx, brokerNamespace, brokerAccount, nil, time.Hour)
	must(t, err)
	jwtFile := filepath.Join(t.TempDir(), "jwt")
	must(t, os.WriteFile(jwtFile, []byte(jwt), 0o600))
	logs := &syncBuffer{secrets: []string{jwt}}
	i, err := New(Config{
		Addr: s.VaultAddr, Mount: s.VaultMount, AuthMount: s.VaultAuthMount,
		Role: "lanyard-broker-short", JWTFile: jwtFile,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	must(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- i.Run(runCtx) }()
	defer func() {
		cancel()
		must(t, <-done)
	}()

	must(t, waitReady(i))
	deadline := time.Now().Add(60 * time.Second)
	for logs.count("Renewed Vault token") < 1 || logs.count("Logged in to Vault") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal and second login within a minute; renewals %d, logins %d",
				logs.count("Renewed Vault token"), logs.count("Logged in to Vault"))
		}
		logs.remember(i.client.Token())
		time.Sleep(200 * time.Millisecond)
	}
	if logs.count("Vault login failed") != 0 {
		t.Fatal("a login failed")
	}
	if err := i.Ready(); err != nil {
		t.Fatalf("Ready after logging in again: %v", err)
	}
	logs.assertNoSecret(t)
}
