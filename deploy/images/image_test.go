package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
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
	tag, _ := name.NewTag("example.com/lanyard/lanyard-agent:v9")
	img, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("read back %s: %v", path, err)
	}
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
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("layer holds more than the binary: %v", err)
	}
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
