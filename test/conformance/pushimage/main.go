// Command pushimage pushes a directory as a one-layer OCI image to a registry over plain
// HTTP: the images Kubernetes' conformance tests run (agnhost, busybox, pause, nginx),
// built on this machine from source and Debian's packages by conformance.sh, served
// from a loopback registry.
//
//	pushimage -registry 127.0.0.1:5000 -image e2e-test-images/busybox:1.37.0-2 \
//	    -rootfs DIR [-entrypoint /agnhost] [-cmd pause] [-env K=V] [-workdir /] [-tag T]...
//
// The layer holds the directory's tree as it is (files, directories, symlinks, modes),
// owned by root. Nothing is fetched from anywhere.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var (
		registry, image, rootfs, workdir string
		entrypoint, cmd, env, tags       stringList
	)
	flag.StringVar(&registry, "registry", "", "registry address, HOST:PORT (plain HTTP)")
	flag.StringVar(&image, "image", "", "repository:tag to push, without the registry")
	flag.StringVar(&rootfs, "rootfs", "", "directory whose tree is the image's one layer")
	flag.StringVar(&workdir, "workdir", "", "the image's working directory")
	flag.Var(&entrypoint, "entrypoint", "the image's entrypoint, one argument per flag")
	flag.Var(&cmd, "cmd", "the image's command, one argument per flag")
	flag.Var(&env, "env", "an environment variable, NAME=VALUE; repeatable (default PATH)")
	flag.Var(&tags, "tag", "another tag of the same repository; repeatable")
	flag.Parse()
	if registry == "" || image == "" || rootfs == "" {
		fmt.Fprintln(os.Stderr, "pushimage: -registry, -image and -rootfs are required")
		os.Exit(2)
	}
	if len(env) == 0 {
		env = stringList{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	img, err := build(rootfs, imageConfig{Entrypoint: entrypoint, Cmd: cmd, Env: env, WorkingDir: workdir})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pushimage: %v\n", err)
		os.Exit(1)
	}
	repo, tag, ok := strings.Cut(image, ":")
	if !ok {
		tag = "latest"
	}
	if err := push(http.DefaultClient, registry, repo, append([]string{tag}, tags...), img); err != nil {
		fmt.Fprintf(os.Stderr, "pushimage: %s: %v\n", image, err)
		os.Exit(1)
	}
	fmt.Printf("pushed %s/%s (%d bytes)\n", registry, image, len(img.blobs[img.layer]))
}

// imageConfig is the part of an OCI image config's "config" that pushimage sets.
type imageConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// ociImage is a built image: its blobs by digest, the layer's and config's digests and
// the manifest.
type ociImage struct {
	blobs         map[string][]byte
	layer, config string
	manifest      []byte
}

const manifestType = "application/vnd.oci.image.manifest.v1+json"

// build makes a one-layer image of the tree at rootfs.
func build(rootfs string, cfg imageConfig) (*ociImage, error) {
	layer, err := layerOf(rootfs)
	if err != nil {
		return nil, err
	}
	img := &ociImage{blobs: map[string][]byte{}}
	add := func(b []byte) string {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		img.blobs[d] = b
		return d
	}
	img.layer = add(layer)
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "config": cfg,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{img.layer}},
	})
	if err != nil {
		return nil, err
	}
	img.config = add(config)
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	img.manifest, err = json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": manifestType,
		"config": desc{"application/vnd.oci.image.config.v1+json", img.config, len(config)},
		"layers": []desc{{"application/vnd.oci.image.layer.v1.tar", img.layer, len(layer)}},
	})
	return img, err
}

// layerOf writes the tree at root as an uncompressed tar, in lexical order, owned by
// root: regular files, directories and symlinks (anything else is an error).
func layerOf(root string) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(info.Mode().Perm()), ModTime: info.ModTime(), Format: tar.FormatPAX}
		switch {
		case info.Mode().IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case info.Mode()&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, info.Size()
		default:
			return fmt.Errorf("%s: not a file, directory or symlink (%s)", p, info.Mode().Type())
		}
		for bit, mode := range map[fs.FileMode]int64{fs.ModeSetuid: 0o4000, fs.ModeSetgid: 0o2000, fs.ModeSticky: 0o1000} {
			if info.Mode()&bit != 0 {
				h.Mode |= mode
			}
		}
		if err := w.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(w, f); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", root, err)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// push uploads img's blobs (those the registry lacks) and puts its manifest under each
// tag: the registry API's monolithic uploads, nothing else.
func push(c *http.Client, registry, repo string, tags []string, img *ociImage) error {
	base := "http://" + registry + "/v2/" + repo
	do := func(method, url, contentType string, body []byte) (*http.Response, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode >= 300 && !(method == http.MethodHead && resp.StatusCode == http.StatusNotFound) {
			return nil, fmt.Errorf("%s %s: %s %s", method, url, resp.Status, bytes.TrimSpace(msg))
		}
		return resp, nil
	}
	for _, d := range []string{img.layer, img.config} {
		resp, err := do(http.MethodHead, base+"/blobs/"+d, "", nil)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			continue
		}
		resp, err = do(http.MethodPost, base+"/blobs/uploads/", "", nil)
		if err != nil {
			return err
		}
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = "http://" + registry + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		if _, err := do(http.MethodPut, loc+sep+"digest="+d, "application/octet-stream", img.blobs[d]); err != nil {
			return err
		}
	}
	for _, tag := range tags {
		if _, err := do(http.MethodPut, base+"/manifests/"+tag, manifestType, img.manifest); err != nil {
			return err
		}
	}
	return nil
}
