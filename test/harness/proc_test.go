package harness

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitForSaysWhyAProcessWasNotReady(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		check   func(context.Context) error
		timeout time.Duration
		want    []string
		wantNot []string
	}{
		{
			name:    "a process that exits shows how and the tail of its log",
			script:  "echo starting; echo 'fatal: cannot bind 127.0.0.1:1' >&2; exit 3",
			check:   func(context.Context) error { return errors.New("not listening") },
			timeout: time.Minute,
			want:    []string{"exited before it was ready", "exit status 3", "fatal: cannot bind", "--- last lines of"},
		},
		{
			name: "the log tail never quotes a secret the process printed",
			script: "echo 'Root Token: hvs.dev-root-secret'; echo 'Unseal Key: c2VjcmV0'; " +
				"echo 'core: failed'; exit 1",
			check:   func(context.Context) error { return errors.New("not listening") },
			timeout: time.Minute,
			want:    []string{"core: failed", "(line withheld: it holds a secret)"},
			wantNot: []string{"hvs.dev-root-secret", "c2VjcmV0"},
		},
		{
			name:    "a process that never gets ready shows the last check's error",
			script:  "echo waiting for nothing; sleep 60",
			check:   func(context.Context) error { return errors.New("connection refused") },
			timeout: 300 * time.Millisecond,
			want:    []string{"not ready after 300ms", "connection refused", "still running", "waiting for nothing"},
		},
		{
			name:   "a check that hangs is cut short by its own timeout",
			script: "sleep 60",
			check: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			},
			timeout: 500 * time.Millisecond,
			want:    []string{"not ready after 500ms", "deadline exceeded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := startProcess(t.TempDir(), "fake", "/bin/sh", []string{"-c", tt.script}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop(time.Second)

			err = waitFor(context.Background(), p, tt.timeout, tt.check)

			if err == nil {
				t.Fatal("waitFor succeeded, want an error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			for _, secret := range tt.wantNot {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error quotes the secret %q", secret)
				}
			}
		})
	}
}

func TestWaitForStopsWhenTheStartIsCancelled(t *testing.T) {
	p, err := startProcess(t.TempDir(), "fake", "/bin/sh", []string{"-c", "sleep 60"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err = waitFor(ctx, p, time.Hour, func(context.Context) error { return errors.New("not yet") })

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("waitFor = %v, want it to end with the cancelled start", err)
	}
}
