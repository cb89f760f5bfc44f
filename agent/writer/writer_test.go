package writer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanyard-dev/lanyard/agent/credential"
)

// generation returns the n-th test credential; each field carries n so that a
// reader can tell which set a file came from.
func generation(n int) credential.Credential {
	return credential.Credential{
		ID:        fmt.Sprintf("id-%d", n),
		Token:     credential.Token(fmt.Sprintf("token-%d", n)),
		Namespace: fmt.Sprintf("ns-%d", n),
		APIServer: fmt.Sprintf("https://api-%d.example:6443", n),
		CACert:    fmt.Appendf(nil, "ca-%d", n),
		ExpiresAt: time.Now().Add(time.Hour),
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPublishWritesTheLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	w := &Writer{Dir: dir}
	for n := 1; n <= 3; n++ {
		if err := w.Publish(generation(n)); err != nil {
			t.Fatalf("Publish(%d): %v", n, err)
		}
	}

	want := map[string]string{TokenFile: "token-3", CAFile: "ca-3", NamespaceFile: "ns-3"}
	for name, content := range want {
		if got := readString(t, filepath.Join(dir, name)); got != content {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
		link, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || link != filepath.Join(dataLink, name) {
			t.Errorf("%s links to %q (%v), want %s/%s", name, link, err, dataLink, name)
		}
	}
	kc := readString(t, filepath.Join(dir, KubeconfigFile))
	for _, s := range []string{`server: "https://api-3.example:6443"`, `tokenFile: "token"`,
		`namespace: "ns-3"`, `certificate-authority: "ca.crt"`} {
		if !strings.Contains(kc, s) {
			t.Errorf("kubeconfig lacks %s:\n%s", s, kc)
		}
	}
	assertOneSet(t, dir)
}

// assertOneSet checks that exactly one set directory is left, with the
// published modes.
func assertOneSet(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sets []string
	for _, e := range entries {
		if e.IsDir() {
			sets = append(sets, e.Name())
		}
	}
	if len(sets) != 1 {
		t.Fatalf("set directories = %v, want one", sets)
	}
	info, err := os.Stat(filepath.Join(dir, sets[0]))
	if err != nil || info.Mode().Perm() != DirMode {
		t.Errorf("set directory mode = %v (%v), want %v", info.Mode().Perm(), err, DirMode)
	}
	for _, name := range Files {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil || info.Mode().Perm() != FileMode {
			t.Errorf("%s mode = %v (%v), want %v", name, info.Mode().Perm(), err, FileMode)
		}
	}
}

func TestPublishRemovesSetsLeftByAnEarlierProcess(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "..2020_01_01_00_00_00.123")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := (&Writer{Dir: dir}).Publish(generation(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale set still there: %v", err)
	}
}

func TestPublishReplacesAFileThatShadowsALink(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TokenFile), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("elsewhere", filepath.Join(dir, CAFile)); err != nil {
		t.Fatal(err)
	}
	if err := (&Writer{Dir: dir}).Publish(generation(1)); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(dir, TokenFile)); got != "token-1" {
		t.Errorf("token = %q, want the published token-1", got)
	}
	if got := readString(t, filepath.Join(dir, CAFile)); got != "ca-1" {
		t.Errorf("ca.crt = %q, want the published ca-1", got)
	}
}

func TestPublishRefusesADirectoryWhereAFileMustGo(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, TokenFile), 0o755); err != nil {
		t.Fatal(err)
	}
	err := (&Writer{Dir: dir}).Publish(generation(1))
	if err == nil || !strings.Contains(err.Error(), "directory named token") {
		t.Fatalf("Publish = %v, want an error naming the directory in the way", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, dataLink)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a set was published although its token cannot be reached (%v)", err)
	}
}

func TestAFailedCleanupStillPublishes(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "..2020_01_01_00_00_00.123")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &Writer{Dir: dir, removeAll: func(string) error { return os.ErrPermission }}

	err := w.Publish(generation(1))

	var cleanup *CleanupError
	if !errors.As(err, &cleanup) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("Publish error = %v, want a CleanupError wrapping the removal's", err)
	}
	if got := readString(t, filepath.Join(dir, TokenFile)); got != "token-1" {
		t.Errorf("token = %q, want token-1 published despite the cleanup failure", got)
	}
}

func TestClearRemovesOnlyWhatPublishCreated(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "keep-me")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w := &Writer{Dir: dir}
	if err := w.Publish(generation(1)); err != nil {
		t.Fatal(err)
	}
	// What a publish cut short by a crash leaves behind.
	if err := os.Symlink(filepath.Join(dataLink, TokenFile), filepath.Join(dir, TokenFile+".tmp")); err != nil {
		t.Fatal(err)
	}
	if err := w.Clear(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "keep-me" {
		t.Errorf("after Clear the directory holds %v, want only keep-me", entries)
	}
}

func TestPublishIntoAnUnwritableDirectoryFails(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes everywhere")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := (&Writer{Dir: dir}).Publish(generation(1)); err == nil {
		t.Fatal("Publish into a read-only directory succeeded")
	}
}

// TestReadersNeverSeeAPartialOrMixedSet publishes many sets while readers
// hammer the directory. Every file read through a top-level name must be one
// complete generation; the files of one read must come from one generation
// whenever ..data did not move during the read (a reader that needs several
// files consistent resolves ..data once, which the second reader does).
func TestReadersNeverSeeAPartialOrMixedSet(t *testing.T) {
	dir := t.TempDir()
	w := &Writer{Dir: dir}
	if err := w.Publish(generation(0)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, consistent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, read := range []func(string) (int, bool, error){readTopLevel, readResolved} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				_, same, err := read(dir)
				if err != nil {
					errs <- err
					return
				}
				reads.Add(1)
				if same {
					consistent.Add(1)
				}
			}
		}()
	}
	for n := 1; n <= 300; n++ {
		if err := w.Publish(generation(n)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d reads, %d checked for cross-file consistency", reads.Load(), consistent.Load())
	if consistent.Load() == 0 {
		t.Error("no read was checked for consistency")
	}
	assertOneSet(t, dir)
}

// readTopLevel reads the set through the top-level names. It reports whether
// ..data stayed put, in which case the set must be consistent.
func readTopLevel(dir string) (int, bool, error) {
	before, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil {
		return 0, false, err
	}
	gens := map[string]int{}
	for _, name := range []string{TokenFile, NamespaceFile, CAFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			// The set resolved a moment ago was removed after a swap; the
			// next read sees the new one. Only a moving ..data explains it.
			after, _ := os.Readlink(filepath.Join(dir, dataLink))
			if after == before {
				return 0, false, fmt.Errorf("%s vanished while ..data stayed at %s", name, before)
			}
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		if gens[name], err = parseGeneration(name, b); err != nil {
			return 0, false, err
		}
	}
	after, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil || after != before {
		return 0, false, err
	}
	return checkSame(gens)
}

// readResolved resolves ..data once and reads the set below it.
func readResolved(dir string) (int, bool, error) {
	set, err := os.Readlink(filepath.Join(dir, dataLink))
	if err != nil {
		return 0, false, err
	}
	gens := map[string]int{}
	for _, name := range []string{TokenFile, NamespaceFile, CAFile} {
		b, err := os.ReadFile(filepath.Join(dir, set, name))
		if errors.Is(err, os.ErrNotExist) {
			return 0, false, nil // removed after a newer swap; never partial
		}
		if err != nil {
			return 0, false, err
		}
		if gens[name], err = parseGeneration(name, b); err != nil {
			return 0, false, err
		}
	}
	return checkSame(gens)
}

func parseGeneration(name string, b []byte) (int, error) {
	prefix := map[string]string{TokenFile: "token-", NamespaceFile: "ns-", CAFile: "ca-"}[name]
	var n int
	if _, err := fmt.Sscanf(string(b), prefix+"%d", &n); err != nil ||
		string(b) != fmt.Sprintf("%s%d", prefix, n) {
		return 0, fmt.Errorf("%s holds %q: partial or foreign content", name, b)
	}
	return n, nil
}

func checkSame(gens map[string]int) (int, bool, error) {
	n := gens[TokenFile]
	for name, g := range gens {
		if g != n {
			return 0, false, fmt.Errorf("mixed set: %s from generation %d, token from %d", name, g, n)
		}
	}
	return n, true, nil
}
