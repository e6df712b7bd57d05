package policy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// watchSettle lets an editor or a deploy finish writing (several files,
// rename over the old one) before the sources are read again.
const watchSettle = 200 * time.Millisecond

// Watch reloads the policy whenever a file under its sources changes, until
// ctx is done. It watches directories, not files, so that files replaced by
// rename (how editors and deploy tools save) are seen.
func (a *Authorizer) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	for _, p := range a.watchedPaths() {
		if err := addTree(w, p); err != nil {
			w.Close()
			return err
		}
	}
	a.watcher = w
	go a.watchLoop(ctx, w)
	return nil
}

func (a *Authorizer) watchedPaths() []string {
	paths := append([]string{}, a.opts.Sources.Paths...)
	if a.opts.Sources.Bundle != "" {
		paths = append(paths, a.opts.Sources.Bundle)
	}
	return paths
}

// addTree watches a directory and its subdirectories, or a file's directory.
func addTree(w *fsnotify.Watcher, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return w.Add(filepath.Dir(path))
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return w.Add(p)
	})
}

func (a *Authorizer) watchLoop(ctx context.Context, w *fsnotify.Watcher) {
	defer func() {
		a.reloadMu.Lock()
		a.watcher = nil
		a.reloadMu.Unlock()
		w.Close()
	}()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.Events:
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					_ = addTree(w, ev.Name)
				}
			}
			settle.Reset(watchSettle)
		case err := <-w.Errors:
			a.log.Warn("policy file watch", zap.Error(err))
		case <-settle.C:
			_, _ = a.Reload(ctx) // it logs a refusal; the old policy stays
		}
	}
}
