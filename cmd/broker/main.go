// Command lanyard-broker authenticates pods, checks the role catalog and
// mints short-lived Kubernetes credentials through Vault.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	// Mozilla's roots, used only where the system has none: the broker's image is scratch,
	// and Vault's certificate is verified against system roots unless vault.caConfigMap
	// (--vault-ca-file) names a CA.
	_ "golang.org/x/crypto/x509roots/fallback"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}
