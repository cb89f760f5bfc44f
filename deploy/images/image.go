package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NonRootUser is the numeric user and group the images run as: no name lookup
// happens in a scratch image, so the number is all there is.
const NonRootUser = "65532:65532"

// epoch stamps every file and the image itself, so that the same binary always
// yields the same image digest.
var epoch = time.Unix(0, 0).UTC()

// Spec is one image to build.
type Spec struct {
	// Binary is the static executable placed at /<base name> and run as entrypoint.
	Binary string
	// Arch is the GOARCH the binary was built for.
	Arch string
	// Labels become OCI image config labels.
	Labels map[string]string
}

// Build returns a scratch image holding only the binary, run as a non-root user.
func Build(spec Spec) (v1.Image, error) {
	data, err := os.ReadFile(filepath.Clean(spec.Binary))
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	name := filepath.Base(spec.Binary)
	layerTar, err := singleFileTar(name, data)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", name, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", name, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", spec.Arch, v1.Time{Time: epoch}
	cf.Config = v1.Config{
		User:       NonRootUser,
		Entrypoint: []string{"/" + name},
		WorkingDir: "/",
		Labels:     spec.Labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config of %s: %w", name, err)
	}
	return img, nil
}

// singleFileTar is a layer with one executable at the root, owned by root so the
// non-root process cannot change it.
func singleFileTar(name string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Name: name, Mode: 0o555, Size: int64(len(data)), ModTime: epoch,
		Typeflag: tar.TypeReg, Format: tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("tar header of %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("tar %s: %w", name, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close tar of %s: %w", name, err)
	}
	return buf.Bytes(), nil
}
