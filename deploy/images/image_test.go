package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestImageHoldsOnlyTheBinaryAndRunsAsNonRoot(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "lanyard-agent")
	if err := os.WriteFile(bin, []byte("#!not really a binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := write(filepath.Join(dir, "dist"), "example.com/lanyard", "v9", "arm64", bin)
	if err != nil {
		t.Fatal(err)
	}
	img := readBack(t, path)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/lanyard-agent" {
		t.Errorf("user %q entrypoint %q, want 65532:65532 and /lanyard-agent", c.User, c.Entrypoint)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || len(c.Env) != 0 {
		t.Errorf("platform %s/%s env %v", cf.OS, cf.Architecture, c.Env)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "lanyard-agent" || hdr.Mode != 0o555 || hdr.Uid != 0 {
		t.Fatalf("first entry %+v, %v", hdr, err)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("layer holds more than the binary: %v", err)
	}
}

// readBack reads the archive both ways: as a docker archive and as an OCI layout.
func readBack(t *testing.T, path string) v1.Image {
	t.Helper()
	tag, _ := name.NewTag("example.com/lanyard/lanyard-agent:v9")
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("read %s as a docker archive: %v", path, err)
	}
	dir := t.TempDir()
	if err := exec.Command("tar", "-xf", path, "-C", dir).Run(); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read %s as an OCI layout: %v", path, err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("index holds %d manifests, %v", len(m.Manifests), err)
	}
	if got := m.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "v9" {
		t.Errorf("ref name annotation = %q, want v9", got)
	}
	fromLayout, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := img.Digest()
	b, _ := fromLayout.Digest()
	if a != b {
		t.Errorf("docker view %s and OCI view %s differ", a, b)
	}
	return img
}

func TestSameBinaryYieldsTheSameDigest(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lanyard-broker")
	if err := os.WriteFile(bin, []byte("same"), 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := Build(Spec{Binary: bin, Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Build(Spec{Binary: bin, Arch: "amd64"})
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("digests differ: %s %s", da, db)
	}
}
