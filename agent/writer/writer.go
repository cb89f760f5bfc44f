// Package writer publishes a credential into a directory with the layout of a
// mounted service account token (token, ca.crt, namespace) plus a kubeconfig,
// so that readers never see a partial or mixed set.
//
// It swaps a "..data" link the way the kubelet does for projected volumes:
// every set goes into a fresh "..<timestamp>" directory, a "..data_tmp" link
// to it is renamed over "..data" (rename is atomic), and the top-level names
// are links through "..data". A reader that opens a top-level name gets one
// complete file; a reader that needs several files consistent with each
// other resolves "..data" once and reads below it.
package writer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lanyard-dev/lanyard/agent/credential"
)

// Names of the published files and links.
const (
	TokenFile      = "token"
	CAFile         = "ca.crt"
	NamespaceFile  = "namespace"
	KubeconfigFile = "kubeconfig"

	dataLink    = "..data"
	dataTmpLink = "..data_tmp"
	setPrefix   = "..2" // every timestamped set directory starts with ".." and a year
)

// Modes of the published files and directories.
const (
	FileMode os.FileMode = 0o440
	DirMode  os.FileMode = 0o755
)

// Files lists the names Publish writes, in the order it writes them.
var Files = []string{TokenFile, CAFile, NamespaceFile, KubeconfigFile}

// Writer publishes credentials into Dir. It is not safe for concurrent use:
// one agent owns one directory.
type Writer struct {
	// Dir is the output directory; it is created when missing.
	Dir string

	removeAll func(string) error // os.RemoveAll; replaced by tests
}

// CleanupError reports that a set was published but older sets could not be
// removed. The new set is current and must be kept; the next Publish tries the
// cleanup again.
type CleanupError struct {
	Err error
}

func (e *CleanupError) Error() string { return e.Err.Error() }

func (e *CleanupError) Unwrap() error { return e.Err }

// Published reports that the new set is current despite the error, for callers
// that know publishers only by interface.
func (e *CleanupError) Published() bool { return true }

// Publish makes c the current set. Any error other than a *CleanupError means
// that c was not published and the previous set, if any, is still current.
func (w *Writer) Publish(c credential.Credential) error {
	if err := os.MkdirAll(w.Dir, DirMode); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	// The top-level links go through ..data, so they can be put in place
	// before the swap: until then they show the previous set, or nothing.
	if err := w.linkNames(); err != nil {
		return err
	}
	set, err := w.writeSet(c)
	if err != nil {
		return err
	}
	if err := w.swap(set); err != nil {
		_ = os.RemoveAll(filepath.Join(w.Dir, set))
		return err
	}
	if err := w.removeOldSets(set); err != nil {
		return &CleanupError{Err: err}
	}
	return nil
}

// writeSet writes the files of c into a new set directory and returns its
// name.
func (w *Writer) writeSet(c credential.Credential) (string, error) {
	prefix := ".." + time.Now().UTC().Format("2006_01_02_15_04_05") + "."
	dir, err := os.MkdirTemp(w.Dir, prefix)
	if err != nil {
		return "", fmt.Errorf("create set directory: %w", err)
	}
	contents := map[string][]byte{
		TokenFile:      []byte(c.Token.Reveal()),
		CAFile:         c.CACert,
		NamespaceFile:  []byte(c.Namespace),
		KubeconfigFile: Kubeconfig(c),
	}
	for _, name := range Files {
		if err := writeFile(filepath.Join(dir, name), contents[name]); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	// MkdirTemp creates 0700; readers in other containers need to traverse.
	if err := os.Chmod(dir, DirMode); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("set directory mode: %w", err)
	}
	return filepath.Base(dir), nil
}

func writeFile(path string, data []byte) error {
	//nolint:gosec // G304: path is a new file in the set directory this writer created
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Chmod, not the open mode, so that the umask cannot change it.
		err = os.Chmod(path, FileMode)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// swap points ..data at set in one rename.
func (w *Writer) swap(set string) error {
	tmp := filepath.Join(w.Dir, dataTmpLink)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", dataTmpLink, err)
	}
	if err := os.Symlink(set, tmp); err != nil {
		return fmt.Errorf("link %s: %w", dataTmpLink, err)
	}
	if err := os.Rename(tmp, filepath.Join(w.Dir, dataLink)); err != nil {
		return fmt.Errorf("swap %s: %w", dataLink, err)
	}
	return nil
}

// linkNames makes every top-level name a link through ..data. A name that is
// anything else (a file left by another program, a link elsewhere) is
// replaced in one rename, so that it cannot shadow the published set.
func (w *Writer) linkNames() error {
	for _, name := range Files {
		target := filepath.Join(dataLink, name)
		path := filepath.Join(w.Dir, name)
		if cur, err := os.Readlink(path); err == nil && cur == target {
			continue
		}
		// A rename cannot replace a directory, and removing one that some other
		// program put here is not the writer's call.
		if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
			return fmt.Errorf("the output directory holds a directory named %s where the "+
				"credential's file must go: remove it", name)
		}
		tmp := path + ".tmp"
		if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale %s: %w", filepath.Base(tmp), err)
		}
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	return nil
}

// removeOldSets removes every set directory except current, including those
// left behind by a previous process.
func (w *Writer) removeOldSets(current string) error {
	entries, err := os.ReadDir(w.Dir)
	if err != nil {
		return fmt.Errorf("list output directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || e.Name() == current || !strings.HasPrefix(e.Name(), setPrefix) {
			continue
		}
		remove := w.removeAll
		if remove == nil {
			remove = os.RemoveAll
		}
		if err := remove(filepath.Join(w.Dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove old sets: %w", errors.Join(errs...))
	}
	return nil
}

// Clear removes every name Publish created, leaving Dir itself, which may be
// a mount point. Entries of Dir that Publish did not create are kept.
func (w *Writer) Clear() error {
	var errs []error
	names := []string{dataLink, dataTmpLink}
	for _, name := range Files {
		names = append(names, name, name+".tmp")
	}
	for _, name := range names {
		err := os.Remove(filepath.Join(w.Dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := w.removeOldSets(""); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("clear output directory: %w", errors.Join(errs...))
	}
	return nil
}
