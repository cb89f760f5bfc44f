package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// WriteArchive writes img as one tar file that is both an OCI image layout (oci-layout,
// index.json, blobs/) and a `docker save` archive (manifest.json naming the same blobs),
// the combined format Docker 25 writes: docker load, podman load, skopeo's oci-archive:
// and kind load image-archive all read it.
func WriteArchive(path string, tag name.Tag, img v1.Image) error {
	dir, err := os.MkdirTemp("", "lanyard-image-")
	if err != nil {
		return fmt.Errorf("temporary layout: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	ref := map[string]string{
		"org.opencontainers.image.ref.name": tag.TagStr(),
		"io.containerd.image.name":          tag.String(),
	}
	if err := p.AppendImage(img, layout.WithAnnotations(ref)); err != nil {
		return fmt.Errorf("add image to layout: %w", err)
	}
	if err := writeDockerManifest(dir, tag, img); err != nil {
		return err
	}
	return tarDir(dir, path)
}

// dockerManifest is one entry of manifest.json in a `docker save` archive.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func writeDockerManifest(dir string, tag name.Tag, img v1.Image) error {
	cfg, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("config digest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	m := dockerManifest{Config: blobPath(cfg), RepoTags: []string{tag.String()}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer digest: %w", err)
		}
		m.Layers = append(m.Layers, blobPath(d))
	}
	data, err := json.Marshal([]dockerManifest{m})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o600)
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// tarDir writes the files below dir into a tar at path, sorted and with fixed times and
// owners, so equal content gives an equal archive.
func tarDir(dir, path string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("list layout: %w", err)
	}
	sort.Strings(files)
	out, err := os.Create(filepath.Clean(path))
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	tw := tar.NewWriter(out)
	for _, f := range files {
		if err := addFile(tw, dir, f); err != nil {
			_ = out.Close() // the write error is the one worth reporting
			return err
		}
	}
	if err := tw.Close(); err != nil {
		_ = out.Close() // the write error is the one worth reporting
		return fmt.Errorf("finish %s: %w", path, err)
	}
	return out.Close()
}

func addFile(tw *tar.Writer, dir, file string) error {
	rel, err := filepath.Rel(dir, file)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Clean(file))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: fi.Size(),
		ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar header of %s: %w", rel, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("tar %s: %w", rel, err)
	}
	return nil
}
