package skiffctl

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
)

// cp is kubectl cp: tar through exec. Copying from a pod runs `tar cf - PATH` in the
// container and unpacks its output here; copying to one packs here and runs
// `tar -xmf - -C DIR` there. The container's image needs tar (busybox has it).

// fileSpec is a cp argument: a local path, or [NAMESPACE/]POD:PATH.
type fileSpec struct {
	namespace, pod string // pod "": local
	path           string
}

var errFileSpec = errors.New("filespec must match the canonical format: [[namespace/]pod:]file/path")

// parseFileSpec reads a cp argument as kubectl does: a colon after something makes it
// remote.
func parseFileSpec(arg string) (fileSpec, error) {
	i := strings.Index(arg, ":")
	switch {
	case i == 0:
		return fileSpec{}, errFileSpec
	case i < 0:
		return fileSpec{path: arg}, nil
	}
	pod, file := arg[:i], arg[i+1:]
	pieces := strings.Split(pod, "/")
	switch len(pieces) {
	case 1:
		return fileSpec{pod: pieces[0], path: file}, nil
	case 2:
		if pieces[0] == "" || pieces[1] == "" {
			return fileSpec{}, errFileSpec
		}
		return fileSpec{namespace: pieces[0], pod: pieces[1], path: file}, nil
	}
	return fileSpec{}, errFileSpec
}

func cpCmd(g *globals) *cobra.Command {
	var container string
	var noPreserve bool
	cmd := &cobra.Command{
		Use:   "cp SRC DEST [-c CONTAINER]",
		Short: "Copy files and directories to and from containers",
		Long: `Copy a file or a directory between this machine and a container, as kubectl cp does: one
of SRC and DEST is local, the other [NAMESPACE/]POD:PATH. It runs tar in the container
through exec (skiffctl exec), so the container's image must have tar, and the caller
needs exec's permission (create pods/exec).

Copying into a directory that exists in the container puts SRC inside it; otherwise
DEST is SRC's new name. Files unpacked here that would land outside DEST are skipped
with a warning, and so are symbolic links.`,
		Example: `  skiffctl cp web-7d4b9c-x2x9k:/etc/hostname ./hostname
  skiffctl cp ./site web-7d4b9c-x2x9k:/var/www -c nginx
  skiffctl cp prod/web-7d4b9c-x2x9k:/var/log/app.log app.log`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("source and destination are required")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseFileSpec(args[0])
			if err != nil {
				return err
			}
			dest, err := parseFileSpec(args[1])
			if err != nil {
				return err
			}
			if src.path == "" || dest.path == "" {
				return errors.New("filepath can not be empty")
			}
			remote := src
			switch {
			case src.pod != "" && dest.pod == "":
			case src.pod == "" && dest.pod != "":
				remote = dest
			default:
				return errors.New("one of src or dest must be a local file specification")
			}
			if remote.namespace != "" {
				g.namespace = remote.namespace
			}
			f := streamFlags{container: container}
			_, c, err := g.streamPod(cmd, "copy files with", remote.pod, &f)
			if err != nil {
				return err
			}
			conn, ctx, cancel, err := g.connect(cmd, noTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			x := &podExec{conn: conn, ns: g.ns(), pod: remote.pod, container: c.Name}
			if src.pod != "" {
				return x.copyFrom(ctx, src.path, dest.path, g.streams.Err)
			}
			return x.copyTo(ctx, src.path, dest.path, noPreserve)
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "the container (default: the pod's kubectl.kubernetes.io/default-container annotation, else its first)")
	cmd.Flags().BoolVar(&noPreserve, "no-preserve", false, "do not keep the files' owner and permissions in the container")
	return cmd
}

// podExec runs commands in one container for cp.
type podExec struct {
	conn               *client.Conn
	ns, pod, container string
}

// run runs command with stdin and stdout; a failure says what the command printed on
// stderr.
func (x *podExec) run(ctx context.Context, command []string, stdin io.Reader, stdout io.Writer) error {
	var stderr bytes.Buffer
	err := x.conn.Exec(ctx, x.ns, x.pod, client.ExecOptions{Container: x.container, Command: command, Stdin: stdin, Stdout: stdout, Stderr: &stderr})
	var exit *client.ExitError
	if errors.As(err, &exit) {
		// Not wrapped: cp's own failure, not a remote command's code to exit with.
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return &cpError{fmt.Sprintf("%s in pod %s: %s (%v)", command[0], x.pod, msg, exit)}
		}
		return &cpError{fmt.Sprintf("%s in pod %s: %v", command[0], x.pod, exit)}
	}
	return err
}

// cpError is a command cp ran that failed.
type cpError struct{ msg string }

func (e *cpError) Error() string { return e.msg }

// copyFrom copies remote path src of the container to local dest.
func (x *podExec) copyFrom(ctx context.Context, src, dest string, warnings io.Writer) error {
	pr, pw := io.Pipe()
	ran := make(chan error, 1)
	go func() {
		err := x.run(ctx, []string{"tar", "cf", "-", src}, nil, pw)
		pw.CloseWithError(err) // nil: the reader sees the archive's end
		ran <- err
	}()
	// tar names members without the leading "/": strip the source's path from them.
	prefix := stripPathShortcuts(path.Clean(strings.TrimLeft(src, "/")))
	err := untar(tar.NewReader(pr), prefix, dest, warnings)
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // the padding after the archive's end
	}
	pr.CloseWithError(errors.New("unpacking stopped")) // a failed unpack stops the copy
	if rerr := <-ran; rerr != nil {
		return rerr
	}
	return err
}

// stripPathShortcuts drops leading "../" and "./" (and a lone ".." or "."): a path
// reaching above "/" in the container means "/".
func stripPathShortcuts(p string) string {
	for {
		switch {
		case strings.HasPrefix(p, "../"):
			p = p[3:]
		case strings.HasPrefix(p, "./"):
			p = p[2:]
		case p == ".." || p == ".":
			return ""
		default:
			return p
		}
	}
}

// untar unpacks the archive's members under prefix into dest, as kubectl cp does: a
// member outside dest, a symbolic link, or one not under prefix (a tampered archive)
// is not written.
func untar(tr *tar.Reader, prefix, dest string, warnings io.Writer) error {
	dest = filepath.Clean(dest)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the archive: %w", err)
		}
		if !strings.HasPrefix(h.Name, prefix) {
			return fmt.Errorf("tar contents corrupted: %q is not under %q", h.Name, prefix)
		}
		rel := path.Clean("/" + h.Name[len(prefix):]) // "/" + cleaned: never above dest
		target := filepath.Join(dest, filepath.FromSlash(rel))
		if !within(dest, target) {
			fmt.Fprintf(warnings, "warning: file %q is outside target destination, skipping\n", target)
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		case tar.TypeSymlink, tar.TypeLink:
			fmt.Fprintf(warnings, "warning: skipping symlink: %q -> %q\n", target, h.Linkname)
			continue
		case tar.TypeReg:
		default:
			fmt.Fprintf(warnings, "warning: skipping %q: not a regular file or a directory\n", target)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := writeFile(target, tr); err != nil {
			return err
		}
	}
}

// within reports whether target is dest or below it.
func within(dest, target string) bool {
	rel, err := filepath.Rel(dest, target)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func writeFile(name string, r io.Reader) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// copyTo copies local src into the container at dest: into dest when it is a directory
// there, else as dest.
func (x *podExec) copyTo(ctx context.Context, src, dest string, noPreserve bool) error {
	if _, err := os.Lstat(src); err != nil {
		return fmt.Errorf("%s doesn't exist in local filesystem", src)
	}
	var failed *cpError
	switch err := x.run(ctx, []string{"test", "-d", dest}, nil, io.Discard); {
	case err == nil:
		dest = path.Join(dest, filepath.Base(filepath.Clean(src)))
	case !errors.As(err, &failed):
		return err
	}
	dest = path.Clean(dest)
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := addTar(tw, filepath.Clean(src), path.Base(dest))
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	command := []string{"tar", "-xmf", "-"}
	if noPreserve {
		command = []string{"tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-"}
	}
	if dir := path.Dir(dest); dir != "" {
		command = append(command, "-C", dir)
	}
	err := x.run(ctx, command, pr, io.Discard)
	pr.CloseWithError(errors.New("the copy stopped")) // a failed copy stops the packing
	return err
}

// addTar adds local file or directory src to tw as name, recursively.
func addTar(tw *tar.Writer, src, name string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	link := ""
	if st.Mode()&os.ModeSymlink != 0 {
		if link, err = os.Readlink(src); err != nil {
			return err
		}
	}
	h, err := tar.FileInfoHeader(st, link)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	h.Name = name
	if st.IsDir() {
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		h.Name += "/"
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		for _, e := range entries {
			if err := addTar(tw, filepath.Join(src, e.Name()), path.Join(name, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}
