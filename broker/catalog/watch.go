package catalog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Log field names of the watcher.
const (
	logKeySource = "source"
	logKeyRoles  = "roles"
	logKeyError  = "error"
)

// kubeletDataLink is the symlink the kubelet swaps to update a mounted
// ConfigMap atomically: the file is a link to ..data/<key>, and ..data a link
// to a timestamped directory that is replaced as a whole.
const kubeletDataLink = "..data"

// Defaults of the watcher's timing.
const (
	// defaultDebounce lets a burst of events (a write in several chunks, or
	// the kubelet's create-link-rename-remove sequence) settle into one reload.
	defaultDebounce = 200 * time.Millisecond
	// defaultResync re-reads the file even without events, because inotify
	// can drop events (queue overflow) and cannot see a change behind a
	// symlink that points outside the watched directory.
	defaultResync = time.Minute
)

// Watcher reloads the file when it changes, including the ConfigMap symlink swap
// (..data -> timestamped dir); keeps the last good catalog on a bad reload.
//
// It watches the file's directory, not the file: the kubelet replaces the
// ..data link rather than writing the file, and editors often replace a file
// by renaming another over it; both leave a watch on the file itself dangling.
type Watcher struct {
	path     string
	logger   *slog.Logger
	onLoad   func(*Catalog)
	onReject func(error)
	current  atomic.Pointer[Catalog]
	debounce time.Duration
	resync   time.Duration

	// lastSum is the hash of the content last parsed, accepted or not, so
	// that unchanged content is neither reloaded nor rejected twice. Only
	// NewWatcher and the Run goroutine touch it.
	lastSum [sha256.Size]byte
}

// NewWatcher loads once synchronously and returns an error when that first load fails.
// onLoad and onReject are called from Run only, one at a time, for later
// loads; the first catalog is available from Current. Either may be nil.
// onLoad follows every change of content that parses, and also the first
// good read after a rejection, so that it can be taken to end a failure.
// onReject gets an *Error for an invalid catalog, another error for a file
// that cannot be read; the same invalid content is rejected only once.
func NewWatcher(
	path string,
	logger *slog.Logger,
	onLoad func(*Catalog),
	onReject func(error),
) (*Watcher, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		path:     path,
		logger:   logger,
		onLoad:   onLoad,
		onReject: onReject,
		debounce: defaultDebounce,
		resync:   defaultResync,
	}
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	w.lastSum = sha256.Sum256(data)
	w.current.Store(c)
	return w, nil
}

// Current is the last good catalog; safe for concurrent use; never nil after
// NewWatcher succeeds.
func (w *Watcher) Current() *Catalog {
	return w.current.Load()
}

// Run watches until ctx ends, then returns nil. It returns an error when the
// watch cannot be set up or breaks down. Run must not be called twice at once.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch catalog %s: %w", w.path, err)
	}
	defer func() { _ = fw.Close() }()
	dir := filepath.Dir(w.path)
	if err := fw.Add(dir); err != nil {
		return fmt.Errorf("watch catalog directory %s: %w", dir, err)
	}

	// A change made between NewWatcher and the watch would otherwise wait
	// for the resync.
	w.reload()
	return w.loop(ctx, fw)
}

// loop reloads after each burst of events that affect the file, and on
// every resync tick.
func (w *Watcher) loop(ctx context.Context, fw *fsnotify.Watcher) error {
	resync := time.NewTicker(w.resync)
	defer resync.Stop()
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("catalog watch closed")
			}
			if w.affects(ev) {
				settle = time.After(w.debounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("catalog watch closed")
			}
			w.logger.Warn("Catalog watch error", logKeySource, w.path, logKeyError, err.Error())
			settle = time.After(w.debounce)
		case <-settle:
			settle = nil
			w.reload()
		case <-resync.C:
			w.reload()
		}
	}
}

// affects tells whether an event in the directory may change what reading
// the file returns.
func (w *Watcher) affects(ev fsnotify.Event) bool {
	name := filepath.Base(ev.Name)
	return name == filepath.Base(w.path) || name == kubeletDataLink
}

// reload reads the file and installs it when it changed and is valid.
func (w *Watcher) reload() {
	data, err := readLimited(w.path)
	if err != nil {
		// Forget the content, so that the file coming back, even unchanged,
		// is reported as a load and ends the failure.
		w.lastSum = [sha256.Size]byte{}
		w.reject(err)
		return
	}
	sum := sha256.Sum256(data)
	if sum == w.lastSum {
		return
	}
	w.lastSum = sum
	c, err := Parse(w.path, data)
	if err != nil {
		w.reject(err)
		return
	}
	w.current.Store(c)
	w.logger.Info("Catalog loaded", logKeySource, w.path, logKeyRoles, len(c.Roles))
	if w.onLoad != nil {
		w.onLoad(c)
	}
}

func (w *Watcher) reject(err error) {
	w.logger.Warn("Catalog rejected, keeping the last good one",
		logKeySource, w.path, logKeyError, err.Error())
	if w.onReject != nil {
		w.onReject(err)
	}
}
