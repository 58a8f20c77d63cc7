package containerd

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
)

// busyboxApplets are the commands the busybox image links to busybox, as the busybox
// images of registries do (they link all of them): what users, skiffctl, manifests and
// probes name directly (a shell runs any applet by name).
var busyboxApplets = []string{
	"[", "cat", "cp", "df", "echo", "env", "false", "grep", "head", "hostname", "httpd", "id", "kill", "ls",
	"mkdir", "mount", "mv", "nc", "printenv", "printf", "ps", "pwd", "rm", "sh", "sleep", "stat", "stty", "tail",
	"tar", "test", "touch", "true", "tty", "wc", "wget",
}

// BusyboxArchive builds an OCI image archive named ref holding a static busybox (Debian's
// busybox-static installs one at /bin/busybox) as /bin/busybox, with the commands users
// and skiffctl reach for (busyboxApplets: sh, cat, tar for skiffctl cp, nc and httpd to
// listen on a port, ...) linked to it. Machines without a registry import it to run busybox images: `skiff up`
// does so when the image is missing, and the tests build their image with it.
func BusyboxArchive(busybox, ref string) ([]byte, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	var first error
	must := func(err error) {
		if first == nil {
			first = err
		}
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	for _, d := range []string{"bin/", "tmp/", "etc/"} {
		must(lw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}))
	}
	must(lw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))}))
	_, err = lw.Write(bin)
	must(err)
	for _, l := range busyboxApplets {
		must(lw.WriteHeader(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}))
	}
	must(lw.Close())

	blobs := map[string][]byte{}
	add := func(b []byte) (string, int) {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return d, len(b)
	}
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		must(err)
		return b
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	ld, ls := add(layer.Bytes())
	cd, cs := add(js(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/bin"}, "Cmd": []string{"sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{ld}},
	}))
	md, ms := add(js(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: cd, Size: cs},
		"layers": []desc{{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: ld, Size: ls}},
	}))
	index := js(map[string]any{"schemaVersion": 2, "manifests": []desc{{
		MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: md, Size: ms,
		Annotations: map[string]string{"io.containerd.image.name": ref},
	}}})

	var out bytes.Buffer
	w := tar.NewWriter(&out)
	file := func(name string, b []byte) {
		must(w.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}))
		_, err := w.Write(b)
		must(err)
	}
	file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	file("index.json", index)
	for d, b := range blobs {
		file(fmt.Sprintf("blobs/sha256/%s", d[len("sha256:"):]), b)
	}
	must(w.Close())
	if first != nil {
		return nil, fmt.Errorf("busybox image: %w", first)
	}
	return out.Bytes(), nil
}
