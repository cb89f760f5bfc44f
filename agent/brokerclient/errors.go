package brokerclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// preflightTimeout bounds the TLS handshake that explains a connection
// failure.
const preflightTimeout = 5 * time.Second

// CallError is a failed broker call. It keeps the gRPC status, so that
// status.FromError and status.Code see the broker's code.
type CallError struct {
	// Op says what the agent was doing.
	Op string
	// Status is the call's status.
	Status *status.Status
	// Cause explains an UNAVAILABLE status when the agent could tell why
	// (the TLS handshake or the connection failed); nil otherwise.
	Cause error
}

// Error says what failed and the broker's code and reason.
func (e *CallError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: broker unreachable: %v", e.Op, e.Cause)
	}
	if e.Status.Code() == codes.Unavailable || e.Status.Code() == codes.DeadlineExceeded {
		return fmt.Sprintf("%s: broker unavailable (%s): %s", e.Op, e.Status.Code(), e.Status.Message())
	}
	return fmt.Sprintf("%s: broker refused (%s): %s", e.Op, e.Status.Code(), e.Status.Message())
}

// GRPCStatus returns the call's status.
func (e *CallError) GRPCStatus() *status.Status { return e.Status }

// Unwrap returns the explanation of an unreachable broker, if any.
func (e *CallError) Unwrap() error { return e.Cause }

// callError wraps a failed call. gRPC reports every TLS and connection
// failure as UNAVAILABLE with the cause flattened into text, so for that code
// a TLS handshake of our own finds the typed cause.
func (c *Client) callError(ctx context.Context, op string, err error) error {
	st := status.Convert(err)
	e := &CallError{Op: op, Status: st}
	if st.Code() == codes.Unavailable {
		e.Cause = c.preflight(ctx)
	}
	return e
}

// preflight dials the broker with the client's TLS settings and returns why
// it fails, or nil when the handshake succeeds.
func (c *Client) preflight(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), preflightTimeout)
	defer cancel()
	cfg := c.tls.Clone()
	cfg.NextProtos = []string{"h2"} // as gRPC offers
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", c.hostPort())
	if err != nil {
		return explainDial(c.hostPort(), err)
	}
	defer conn.Close()
	// With TLS 1.3 the server checks the client certificate after the
	// client's side of the handshake is done; its refusal is the first
	// thing read. A gRPC server otherwise speaks first (HTTP/2 settings).
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		var remote *net.OpError
		if errors.As(err, &remote) && remote.Op == "remote error" {
			return fmt.Errorf("tls: the broker at %s refused the handshake: %w "+
				"(check --client-cert-file and --client-key-file)", c.hostPort(), remote.Err)
		}
	}
	return nil
}

// explainDial names the kind of TLS or connection failure.
func explainDial(addr string, err error) error {
	var unknown x509.UnknownAuthorityError
	var name x509.HostnameError
	var invalid x509.CertificateInvalidError
	var dns *net.DNSError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("tls: unknown authority: the certificate of %s is not signed by a CA "+
			"in --broker-ca-file: %w", addr, err)
	case errors.As(err, &name):
		return fmt.Errorf("tls: name mismatch: the certificate of %s is not valid for %q "+
			"(set --broker-addr to a name it holds, or --server-name): %w", addr, name.Host, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("tls: invalid certificate at %s: %w", addr, err)
	case errors.As(err, &dns):
		return fmt.Errorf("cannot resolve broker host: %w", err)
	default:
		return fmt.Errorf("cannot connect to %s: %w", addr, err)
	}
}
