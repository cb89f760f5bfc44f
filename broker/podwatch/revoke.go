package podwatch

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/lanyard-dev/lanyard/broker/audit"
)

// Values of the result label of lanyard_broker_pod_revocations_total.
const (
	resultRevoked = "revoked"
	resultFailed  = "failed"
)

// Field names of the watch's log lines.
const (
	keyPods      = "pods"
	keyNamespace = "namespace"
	keyPod       = "pod"
	keyPodUID    = "pod_uid"
	keyCause     = "cause"
	keyLeases    = "leases"
	keyFailed    = "failed"
	keyError     = "error"
)

// revokePending revokes the leases of every pod queued as gone, at most
// Concurrency at a time, writes one audit line per lease and logs one line
// per pod.
func (w *Watcher) revokePending(ctx context.Context) {
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	errs := make([][]error, len(batch))
	var g errgroup.Group
	g.SetLimit(w.cfg.Concurrency)
	for i, p := range batch {
		errs[i] = make([]error, len(p.leases))
		for j, l := range p.leases {
			g.Go(func() error {
				errs[i][j] = w.revoke(ctx, p, l)
				return nil
			})
		}
	}
	_ = g.Wait()
	for i, p := range batch {
		w.report(ctx, p, errs[i])
	}
}

// revoke revokes one lease of p within the per-call timeout, counts it and
// audits it.
func (w *Watcher) revoke(ctx context.Context, p gone, l Lease) error {
	start := w.cfg.Now()
	rctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	err := w.cfg.Revoker.Revoke(rctx, l.ID)
	result := resultRevoked
	if err != nil {
		result = resultFailed
	}
	w.revocations.WithLabelValues(result).Inc()
	w.audit(ctx, p, l, w.cfg.Now().Sub(start).Milliseconds(), err)
	return err
}

// audit writes the line of one lease revoked because its pod is gone. The
// caller is the pod, as the broker knew it when it issued the lease; no
// request carries the decision, so request_id is empty. A failed revocation
// is written as credential.denied with the error, as a failed
// RevokeCredential is: the credential lives until expires_at.
func (w *Watcher) audit(ctx context.Context, p gone, l Lease, durationMS int64, err error) {
	expires := l.ExpiresAt
	ev := audit.Event{
		Event: audit.CredentialRevoked,
		Caller: audit.Caller{Namespace: p.pod.Namespace, ServiceAccount: p.pod.ServiceAccount,
			Pod: p.pod.Name, PodUID: p.pod.UID, TokenID: l.TokenID},
		Role: l.Role, TargetNamespace: l.Namespace, CredentialID: l.CredentialID,
		ExpiresAt: &expires, Reason: p.cause, DurationMS: durationMS,
	}
	if err != nil {
		ev.Event = audit.CredentialDenied
		ev.Reason = p.cause + ": revocation failed: " + err.Error()
	}
	if werr := w.cfg.Audit.Write(ev); werr != nil {
		w.log.LogAttrs(ctx, slog.LevelError, "Audit write failed", slog.String(keyError, werr.Error()))
	}
}

// report logs what became of one pod's leases. A lease that could not be
// revoked is not retried: it lives until it expires.
func (w *Watcher) report(ctx context.Context, p gone, errs []error) {
	var failed int
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmpOr(first, err)
		}
	}
	attrs := podAttrs(p.pod, slog.String(keyCause, p.cause), slog.Int(keyLeases, len(p.leases)),
		slog.Int(keyFailed, failed))
	if failed == 0 {
		w.log.LogAttrs(ctx, slog.LevelInfo, "Credentials of a deleted pod revoked", attrs...)
		return
	}
	attrs = append(attrs, slog.String(keyError, first.Error()))
	w.log.LogAttrs(ctx, slog.LevelWarn, "Credentials of a deleted pod not all revoked", attrs...)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func podAttrs(p Pod, more ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{slog.String(keyNamespace, p.Namespace), slog.String(keyPod, p.Name),
		slog.String(keyPodUID, p.UID)}, more...)
}
