package skiffctl

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFileSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want fileSpec
		err  bool
	}{
		{in: "./local/file", want: fileSpec{path: "./local/file"}},
		{in: "web:/etc/hostname", want: fileSpec{pod: "web", path: "/etc/hostname"}},
		{in: "prod/web:/tmp", want: fileSpec{namespace: "prod", pod: "web", path: "/tmp"}},
		{in: "web:", want: fileSpec{pod: "web"}},
		{in: ":/tmp", err: true},
		{in: "a/b/c:/tmp", err: true},
		{in: "/web:/tmp", err: true},
	} {
		got, err := parseFileSpec(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseFileSpec(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestStripPathShortcuts(t *testing.T) {
	for in, want := range map[string]string{"tmp/x": "tmp/x", "../../tmp/x": "tmp/x", "./tmp": "tmp", "..": "", ".": "", "../..": ""} {
		if got := stripPathShortcuts(in); got != want {
			t.Errorf("stripPathShortcuts(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTarRoundTrip: what copyTo packs, copyFrom's unpacking restores (a directory, its
// files, an empty directory); links and members escaping the destination are skipped.
func TestTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "site", "css"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "site", "empty"), 0o755))
	must(os.WriteFile(filepath.Join(src, "site", "index.html"), []byte("<h1>hi</h1>"), 0o644))
	must(os.WriteFile(filepath.Join(src, "site", "css", "a.css"), []byte("h1{}"), 0o600))
	must(os.Symlink("index.html", filepath.Join(src, "site", "home.html")))

	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	must(addTar(tw, filepath.Join(src, "site"), "tmp/www"))
	must(tw.Close())
	dest := filepath.Join(t.TempDir(), "copy")
	var warnings bytes.Buffer
	must(untar(tar.NewReader(&b), "tmp/www", dest, &warnings))
	for name, want := range map[string]string{"index.html": "<h1>hi</h1>", "css/a.css": "h1{}"} {
		if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dest, "empty")); err != nil || !st.IsDir() {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "home.html")); err == nil || !strings.Contains(warnings.String(), "skipping symlink") {
		t.Errorf("a symbolic link was unpacked (warnings %q)", warnings.String())
	}

	// A tampered archive: a member outside the copied path, one climbing out of it.
	for _, name := range []string{"etc/passwd", "tmp/www/../../../evil"} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		must(tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 4}))
		_, err := tw.Write([]byte("evil"))
		must(err)
		must(tw.Close())
		root := t.TempDir()
		err = untar(tar.NewReader(&b), "tmp/www", filepath.Join(root, "out"), &warnings)
		if name == "etc/passwd" && (err == nil || !strings.Contains(err.Error(), "tar contents corrupted")) {
			t.Errorf("member %s: %v", name, err)
		}
		if _, serr := os.Stat(filepath.Join(root, "evil")); serr == nil {
			t.Errorf("member %s was written outside the destination", name)
		}
	}
}
