package brokerclient

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"google.golang.org/grpc/metadata"

	"github.com/lanyard-dev/lanyard/agent/renew"
)

// maxTokenSize is the broker's limit; a larger file is not a token.
const maxTokenSize = 16 << 10

// authorize reads the caller token afresh and attaches it to ctx. Errors name
// the file, never its content.
func (c *Client) authorize(ctx context.Context) (context.Context, error) {
	b, err := os.ReadFile(c.opts.TokenFile)
	if err != nil {
		return nil, &renew.LocalError{Err: fmt.Errorf("read caller token file: %w", err)}
	}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		err = fmt.Errorf("caller token file %s is empty", c.opts.TokenFile)
	case len(b) > maxTokenSize:
		err = fmt.Errorf("caller token file %s holds %d bytes, more than a token's %d",
			c.opts.TokenFile, len(b), maxTokenSize)
	}
	if err != nil {
		return nil, &renew.LocalError{Err: err}
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+string(b)), nil
}
