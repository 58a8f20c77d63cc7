package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/test/registrytest"
)

// TestPushedImageHasTheTree pushes a tree with a directory, an executable, a setuid
// file and a symlink to a real registry and reads it back: the manifest under each tag,
// the config's entrypoint and command, and the layer's entries with their modes.
func TestPushedImageHasTheTree(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin", "tool"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin", "su"), []byte("x"), 0o755))
	must(os.Chmod(filepath.Join(root, "bin", "su"), 0o755|os.ModeSetuid))
	must(os.Symlink("tool", filepath.Join(root, "bin", "tool-2")))

	img, err := build(root, imageConfig{Entrypoint: []string{"/bin/tool"}, Cmd: []string{"pause"}, Env: []string{"PATH=/bin"}})
	must(err)
	addr := registrytest.Start(t)
	must(push(http.DefaultClient, addr, "e2e/tool", []string{"1.0", "1.0-prev"}, img))
	// A second push finds the blobs there and puts the manifest only.
	must(push(http.DefaultClient, addr, "e2e/tool", []string{"1.0"}, img))

	get := func(path, accept string) []byte {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/e2e/tool/"+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		must(err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return b
	}
	for _, tag := range []string{"1.0", "1.0-prev"} {
		if got := get("manifests/"+tag, manifestType); !bytes.Equal(got, img.manifest) {
			t.Errorf("manifest %s: got %s, want %s", tag, got, img.manifest)
		}
	}
	var config struct {
		Config imageConfig
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		}
	}
	must(json.Unmarshal(get("blobs/"+img.config, ""), &config))
	if e, c := config.Config.Entrypoint, config.Config.Cmd; len(e) != 1 || e[0] != "/bin/tool" || len(c) != 1 || c[0] != "pause" {
		t.Errorf("config: entrypoint %q, cmd %q", e, c)
	}
	if len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != img.layer {
		t.Errorf("config's diff_ids %q, want [%s]", config.RootFS.DiffIDs, img.layer)
	}

	type entry struct {
		typ  byte
		mode int64
		link string
		body string
	}
	want := map[string]entry{
		"bin/":       {tar.TypeDir, 0o755, "", ""},
		"bin/su":     {tar.TypeReg, 0o4755, "", "x"},
		"bin/tool":   {tar.TypeReg, 0o755, "", "#!/bin/sh\necho hi\n"},
		"bin/tool-2": {tar.TypeSymlink, 0o777, "tool", ""},
	}
	got := map[string]entry{}
	tr := tar.NewReader(bytes.NewReader(get("blobs/"+img.layer, "")))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		body, _ := io.ReadAll(tr)
		got[h.Name] = entry{h.Typeflag, h.Mode, h.Linkname, string(body)}
	}
	if len(got) != len(want) {
		t.Errorf("layer has %d entries, want %d: %v", len(got), len(want), got)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("layer entry %s: got %+v, want %+v", name, got[name], w)
		}
	}
}

// TestLayerRefusesSockets: a tree with a socket (or a device) is an error naming it, not
// an image missing it.
func TestLayerRefusesSockets(t *testing.T) {
	root := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(root, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := layerOf(root); err == nil || !strings.Contains(err.Error(), "sock") {
		t.Fatalf("layer of a tree with a socket: %v, want an error naming it", err)
	}
}
