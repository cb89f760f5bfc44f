// Command images builds the lanyard container images as image tarballs without a
// container daemon: a scratch base, one static binary, a non-root user, nothing else.
//
//	go run ./deploy/images -out dist -version v1.2.3 bin/lanyard-broker bin/lanyard-agent
//
// writes dist/lanyard-broker.tar and dist/lanyard-agent.tar: each an OCI image layout
// that is also a `docker save` archive (see WriteArchive). Without -version the tag is the
// Helm chart's appVersion, the tag the chart's image defaults name.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	"sigs.k8s.io/yaml"
)

func main() {
	out := flag.String("out", "dist", "directory for the image tarballs")
	repo := flag.String("repo", "ghcr.io/lanyard-dev", "registry and path the image names start with")
	version := flag.String("version", "", "image tag; empty: the appVersion of -chart")
	chart := flag.String("chart", "deploy/helm/lanyard/Chart.yaml", "Chart.yaml whose appVersion is the default tag")
	arch := flag.String("arch", runtime.GOARCH, "architecture the binaries were built for")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: images [flags] BINARY...")
		os.Exit(2)
	}
	tag, err := imageTag(*version, *chart)
	if err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
	for _, bin := range flag.Args() {
		path, err := write(*out, *repo, tag, *arch, bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "images:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stdout, path)
	}
}

// imageTag is version, or when that is empty the appVersion of the chart at chartFile.
func imageTag(version, chartFile string) (string, error) {
	if version != "" {
		return version, nil
	}
	data, err := os.ReadFile(filepath.Clean(chartFile))
	if err != nil {
		return "", fmt.Errorf("read chart for the default tag: %w", err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		return "", fmt.Errorf("parse %s: %w", chartFile, err)
	}
	if chart.AppVersion == "" {
		return "", fmt.Errorf("%s has no appVersion; pass -version", chartFile)
	}
	return chart.AppVersion, nil
}

// write builds the image of bin and writes it to out/<name>.tar tagged repo/name:version.
func write(out, repo, version, arch, bin string) (string, error) {
	base := filepath.Base(bin)
	tag, err := name.NewTag(repo + "/" + base + ":" + version)
	if err != nil {
		return "", fmt.Errorf("image name for %s: %w", bin, err)
	}
	img, err := Build(Spec{Binary: bin, Arch: arch, Labels: map[string]string{
		"org.opencontainers.image.title":   base,
		"org.opencontainers.image.version": version,
		"org.opencontainers.image.source":  "https://github.com/lanyard-dev/lanyard",
	}})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o750); err != nil {
		return "", fmt.Errorf("create %s: %w", out, err)
	}
	path := filepath.Join(out, base+".tar")
	if err := WriteArchive(path, tag, img); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
