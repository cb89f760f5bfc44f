//go:build integration

package harness_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/test/harness"
)

const (
	childEnv   = "LANYARD_HARNESS_CHILD"
	pidsPrefix = "STACK-PIDS "
	childFail  = "fail"
	childPanic = "panic"
	childHold  = "hold"
)

// TestChildHoldsAStack is the body of the child processes of
// TestNoServerOutlivesItsTestBinary; it does nothing in a normal run.
func TestChildHoldsAStack(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("runs only as a child of TestNoServerOutlivesItsTestBinary")
	}
	s := harness.New(t, harness.Options{})
	pids, err := json.Marshal(s.PIDs())
	must(t, err)
	fmt.Printf("%s%s\n", pidsPrefix, pids)
	switch mode {
	case childFail:
		t.Fatal("failing on purpose with a running stack")
	case childPanic:
		panic("panicking on purpose with a running stack")
	default:
		time.Sleep(10 * time.Minute)
	}
}

func TestNoServerOutlivesItsTestBinary(t *testing.T) {
	tests := []struct {
		name   string
		mode   string
		signal syscall.Signal // sent once the stack runs; 0 for none
	}{
		{name: "interrupted with SIGINT as by Ctrl-C", mode: childHold, signal: syscall.SIGINT},
		{name: "terminated with SIGTERM", mode: childHold, signal: syscall.SIGTERM},
		{name: "killed with SIGKILL, no cleanup runs", mode: childHold, signal: syscall.SIGKILL},
		{name: "a failing test", mode: childFail},
		{name: "a panicking test", mode: childPanic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildHoldsAStack$", "-test.v")
			// The child's stack directory goes under tmp, where the test can look
			// for it afterwards (and which its cleanup removes in any case).
			tmp := t.TempDir()
			cmd.Env = append(os.Environ(), childEnv+"="+tt.mode, "TMPDIR="+tmp)
			out, err := cmd.StdoutPipe()
			must(t, err)
			cmd.Stderr = cmd.Stdout
			must(t, cmd.Start())
			pids := readPIDs(t, out)
			if tt.signal != 0 {
				must(t, cmd.Process.Signal(tt.signal))
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case exit := <-done:
				t.Logf("child test binary exited: %v", exit)
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				t.Fatal("child test binary did not exit")
			}
			for name, pid := range pids {
				waitUntil(t, 30*time.Second, func() bool { return gone(pid) },
					fmt.Sprintf("%s (pid %d) is gone", name, pid))
			}
			// A SIGKILL leaves no chance to clean up; anything else must remove the
			// stack directory too.
			if left, _ := filepath.Glob(filepath.Join(tmp, "lanyard-stack-*")); len(left) > 0 &&
				tt.signal != syscall.SIGKILL {
				t.Errorf("the child left its stack directory behind: %v", left)
			}
		})
	}
}

func readPIDs(t *testing.T, out interface{ Read([]byte) (int, error) }) map[string]int {
	t.Helper()
	sc := bufio.NewScanner(out)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, pidsPrefix); ok {
			var pids map[string]int
			must(t, json.Unmarshal([]byte(rest), &pids))
			if len(pids) < 4 {
				t.Fatalf("child reported %d servers, want etcd, apiserver, controller-manager, vault", len(pids))
			}
			go func() { // keep draining so the child never blocks on output
				for sc.Scan() {
				}
			}()
			return pids
		}
		lines = append(lines, line)
	}
	t.Fatalf("child exited without reporting its stack:\n%s", strings.Join(lines, "\n"))
	return nil
}

// gone reports whether pid no longer runs; a zombie awaiting its reaper counts.
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}
