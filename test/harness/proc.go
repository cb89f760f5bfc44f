package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// process is one server the harness started. Its output goes to a log file in
// the stack directory so that a failure can show the tail of it.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// live holds every process started by this test binary, so that a signal
// handler can stop them even when no Stack is reachable.
var live struct {
	sync.Mutex
	procs map[*process]struct{}
	dirs  map[string]struct{} // stack directories not yet removed
}

// liveDir records (or, with keep false, forgets) a stack directory that an
// interrupt must remove.
func liveDir(dir string, keep bool) {
	live.Lock()
	defer live.Unlock()
	if live.dirs == nil {
		live.dirs = make(map[string]struct{})
	}
	if keep {
		live.dirs[dir] = struct{}{}
	} else {
		delete(live.dirs, dir)
	}
}

// startProcess starts bin with args in its own process group. The child is
// killed by the kernel if this test binary dies without cleaning up
// (Pdeathsig), and stop ends the whole group.
func startProcess(dir, name, bin string, args []string, env []string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	defer logFile.Close()

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	live.Lock()
	if live.procs == nil {
		live.procs = make(map[*process]struct{})
	}
	live.procs[p] = struct{}{}
	live.Unlock()
	return p, nil
}

// PID is the process ID of the server itself (not of a wrapper).
func (p *process) PID() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop asks the process group to end with SIGTERM and kills it after grace.
func (p *process) stop(grace time.Duration) {
	defer func() {
		live.Lock()
		delete(live.procs, p)
		live.Unlock()
	}()
	if done, _ := p.exited(); done {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last lines of the process log, for error messages.
func (p *process) tail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	data = bytes.TrimRight(data, "\n")
	parts := bytes.Split(data, []byte("\n"))
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	for i, line := range parts {
		if secretLine(line) {
			parts[i] = []byte("(line withheld: it holds a secret)")
		}
	}
	return string(bytes.Join(parts, []byte("\n")))
}

// secretLine tells the log lines that print a secret, such as the root token and
// unseal key of Vault's dev-mode banner, so that an error never quotes them.
func secretLine(line []byte) bool {
	return bytes.Contains(line, []byte("Root Token:")) || bytes.Contains(line, []byte("Unseal Key:"))
}

// failure wraps err with the tail of the process log and how it exited.
func (p *process) failure(err error) error {
	state := "still running"
	if done, werr := p.exited(); done {
		state = fmt.Sprintf("exited: %v", werr)
	}
	return fmt.Errorf("%s (%s): %w\n--- last lines of %s ---\n%s",
		p.name, state, err, p.logPath, p.tail(30))
}

// stopAll stops every live process and removes the stack directories, used
// when the test binary is interrupted.
func stopAll() {
	live.Lock()
	procs := make([]*process, 0, len(live.procs))
	for p := range live.procs {
		procs = append(procs, p)
	}
	dirs := make([]string, 0, len(live.dirs))
	for d := range live.dirs {
		dirs = append(dirs, d)
	}
	live.Unlock()
	for _, p := range procs {
		p.stop(5 * time.Second)
	}
	if os.Getenv(keepDirEnv) != "" {
		return
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}

// checkTimeout bounds one readiness check, so that a connection that hangs
// cannot hold waitFor past its own timeout.
const checkTimeout = 5 * time.Second

// waitFor polls check until it succeeds, the process dies, timeout passes or
// ctx ends.
func waitFor(
	ctx context.Context,
	p *process,
	timeout time.Duration,
	check func(ctx context.Context) error,
) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return p.failure(fmt.Errorf("not ready when the start was cancelled: %w", ctx.Err()))
		}
		if done, werr := p.exited(); done {
			return p.failure(fmt.Errorf("exited before it was ready: %w", werr))
		}
		cctx, cancel := context.WithTimeout(ctx, min(checkTimeout, time.Until(deadline)))
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last == nil {
		last = errors.New("no check ran")
	}
	return p.failure(fmt.Errorf("not ready after %s: %w", timeout, last))
}
