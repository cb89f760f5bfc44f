package catalog

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// guard bounds every wait for a callback; it only turns a hang into a
// failure and never decides a passing test.
const guard = 20 * time.Second

func catalogNamed(role string) string {
	return string(withRoles(flowRole(role, teamA, viewGrant, "")))
}

const brokenCatalog = header + "roles: [{name: Broken}]\n"

// writeAtomically replaces path as editors and config tools do, so that the
// watcher never reads a half-written file.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// recorder collects the watcher's callbacks on channels.
type recorder struct {
	loads   chan *Catalog
	rejects chan error
}

func newRecorder() *recorder {
	return &recorder{loads: make(chan *Catalog, 16), rejects: make(chan error, 16)}
}

func (r *recorder) onLoad(c *Catalog)  { r.loads <- c }
func (r *recorder) onReject(err error) { r.rejects <- err }

func (r *recorder) nextLoad(t *testing.T) *Catalog {
	t.Helper()
	select {
	case c := <-r.loads:
		return c
	case err := <-r.rejects:
		t.Fatalf("rejected, want a load: %v", err)
	case <-time.After(guard):
		t.Fatal("no load")
	}
	return nil
}

func (r *recorder) nextReject(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.rejects:
		return err
	case c := <-r.loads:
		t.Fatalf("loaded %v, want a rejection", c.Roles[0].Name)
	case <-time.After(guard):
		t.Fatal("no rejection")
	}
	return nil
}

func newTestWatcher(t *testing.T, path string, rec *recorder) *Watcher {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	w, err := NewWatcher(path, logger, rec.onLoad, rec.onReject)
	if err != nil {
		t.Fatal(err)
	}
	w.debounce = 10 * time.Millisecond
	w.resync = time.Hour // events, not the resync, must drive these tests
	return w
}

// runWatcher runs w until the test ends and checks that Run then returns nil.
func runWatcher(t *testing.T, w *Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
}

func roleName(c *Catalog) string { return c.Roles[0].Name }

func TestWatcherKeepsLastGoodCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	writeAtomically(t, path, catalogNamed("first"))
	rec := newRecorder()
	w := newTestWatcher(t, path, rec)
	first := w.Current()
	runWatcher(t, w)

	writeAtomically(t, path, brokenCatalog)
	if _, ok := errors.AsType[*Error](rec.nextReject(t)); !ok {
		t.Error("rejection is not an *Error")
	}
	if w.Current() != first {
		t.Errorf("current catalog changed to %s after a broken reload", roleName(w.Current()))
	}

	writeAtomically(t, path, catalogNamed("second"))
	if got := roleName(rec.nextLoad(t)); got != "second" {
		t.Errorf("loaded role %s, want second", got)
	}
	if got := roleName(w.Current()); got != "second" {
		t.Errorf("current role %s, want second", got)
	}
}

// configMapDir lays out a directory as the kubelet mounts a ConfigMap:
// catalog.yaml -> ..data/catalog.yaml, ..data -> ..<timestamp>.
func configMapDir(t *testing.T, content string) (dir, path string) {
	dir = t.TempDir()
	swapConfigMap(t, dir, "..2026_01", content, "")
	path = filepath.Join(dir, "catalog.yaml")
	if err := os.Symlink(filepath.Join("..data", "catalog.yaml"), path); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// swapConfigMap performs the kubelet's update: a new timestamped directory, a
// ..data_tmp link to it renamed over ..data, then the old directory removed.
func swapConfigMap(t *testing.T, dir, version, content, old string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, version), 0o750); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, version, "catalog.yaml")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(version, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWatcherFollowsConfigMapSymlinkSwap(t *testing.T) {
	dir, path := configMapDir(t, catalogNamed("first"))
	rec := newRecorder()
	w := newTestWatcher(t, path, rec)
	runWatcher(t, w)

	swapConfigMap(t, dir, "..2026_02", catalogNamed("second"), "..2026_01")
	if got := roleName(rec.nextLoad(t)); got != "second" {
		t.Errorf("loaded role %s, want second", got)
	}

	swapConfigMap(t, dir, "..2026_03", brokenCatalog, "..2026_02")
	_ = rec.nextReject(t) // which error does not matter here, only that the swap was refused
	if got := roleName(w.Current()); got != "second" {
		t.Errorf("current role %s after a broken swap, want second", got)
	}

	swapConfigMap(t, dir, "..2026_04", catalogNamed("third"), "..2026_03")
	if got := roleName(rec.nextLoad(t)); got != "third" {
		t.Errorf("loaded role %s, want third", got)
	}
}

func TestWatcherReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	writeAtomically(t, path, catalogNamed("first"))
	rec := newRecorder()
	w := newTestWatcher(t, path, rec)

	t.Run("unchanged content is not reloaded", func(t *testing.T) {
		writeAtomically(t, path, catalogNamed("first"))
		w.reload()
		if len(rec.loads)+len(rec.rejects) != 0 {
			t.Errorf("%d loads and %d rejections for unchanged content", len(rec.loads), len(rec.rejects))
		}
	})
	t.Run("the same broken content is rejected once", func(t *testing.T) {
		writeAtomically(t, path, brokenCatalog)
		w.reload()
		w.reload()
		if len(rec.rejects) != 1 || len(rec.loads) != 0 {
			t.Errorf("%d rejections and %d loads, want one rejection", len(rec.rejects), len(rec.loads))
		}
		if err := <-rec.rejects; err == nil {
			t.Error("the rejection carried no error")
		}
	})
	t.Run("a missing file is rejected and the catalog kept", func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		w.reload()
		if err := <-rec.rejects; !errors.Is(err, os.ErrNotExist) {
			t.Errorf("rejection %v, want a not-exist error", err)
		}
		if got := roleName(w.Current()); got != "first" {
			t.Errorf("current role %s, want first", got)
		}
	})
	t.Run("the file coming back unchanged ends the failure with a load", func(t *testing.T) {
		writeAtomically(t, path, catalogNamed("first"))
		w.reload()
		if len(rec.loads) != 1 || len(rec.rejects) != 0 {
			t.Fatalf("%d loads and %d rejections, want one load", len(rec.loads), len(rec.rejects))
		}
		if got := roleName(<-rec.loads); got != "first" {
			t.Errorf("loaded role %s, want first", got)
		}
	})
}

func TestNewWatcherNeedsAGoodFirstLoad(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	writeAtomically(t, broken, brokenCatalog)
	for name, path := range map[string]string{
		"a broken catalog": broken, "a missing file": filepath.Join(dir, "absent.yaml"),
	} {
		t.Run(name, func(t *testing.T) {
			if w, err := NewWatcher(path, nil, nil, nil); err == nil || w != nil {
				t.Errorf("NewWatcher = %v, %v; want an error", w, err)
			}
		})
	}
}

func TestRunFailsOnAMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	writeAtomically(t, path, catalogNamed("first"))
	w, err := NewWatcher(path, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.path = filepath.Join(t.TempDir(), "gone", "catalog.yaml")
	if err := w.Run(context.Background()); err == nil {
		t.Error("Run watched a directory that does not exist")
	}
}
