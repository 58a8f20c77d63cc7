// Package s3test runs a real S3-compatible server for tests: SeaweedFS (`weed server
// -s3`), on free loopback ports, with its data in a temporary directory and an access
// key from a config file. It is built once by test/tools/build-seaweedfs.sh (`make test`
// runs it) into a cache every checkout shares; without it the test is skipped, saying
// how to build it.
//
// Proxy sits between a client and a server and can cut the client's uploads off
// mid-way or refuse connections (the faults the upload code must survive), or move to
// another server (a load balancer moved to new machines).
package s3test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/skiffhq/skiff/internal/deathsig"
	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
)

// Version is the SeaweedFS build the tests use; test/tools/build-seaweedfs.sh builds the
// same (keep the two in step).
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// Binary is the path of the weed binary: $SKIFF_WEED when set, else the cache
// build-seaweedfs.sh builds into.
func Binary() string {
	if p := os.Getenv("SKIFF_WEED"); p != "" {
		return p
	}
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "skiff", "seaweedfs", Version, "weed")
}

// Server is a running SeaweedFS with its S3 gateway.
type Server struct {
	// Endpoint is the S3 gateway's host:port (plain http).
	Endpoint string
	// AccessKey and SecretKey are the admin identity's; CredentialsFile holds them in the
	// AWS shared credentials format.
	AccessKey, SecretKey, CredentialsFile string

	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// awaitBuild waits while test/tools/build-seaweedfs.sh builds bin: `make test` runs the
// build beside the tests on a machine that has none yet, and the script holds an
// exclusive lock on the cache's .lock while it builds (on a quiet machine a few minutes;
// the deadline is for a loaded one).
func awaitBuild(t testing.TB, bin string) {
	t.Helper()
	f, err := os.Open(filepath.Join(filepath.Dir(bin), ".lock"))
	if err != nil {
		return // no build was started here
	}
	defer f.Close()
	waitfor.Condition(t, 45*time.Minute, "SeaweedFS's build (test/tools/build-seaweedfs.sh) to end", func() (bool, string) {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
			return false, "still building: " + err.Error()
		}
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return true, ""
	})
}

// Start starts SeaweedFS for t; it stops, and its directory goes, at t's cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	awaitBuild(t, bin)
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("S3 tests: SeaweedFS is not built (%v): run test/tools/build-seaweedfs.sh (make test does)", err)
	}
	dir := t.TempDir()
	s := &Server{AccessKey: "skiff-test", SecretKey: "skiff-test-secret-" + strconv.Itoa(os.Getpid()), log: &bytes.Buffer{}, done: make(chan struct{})}
	conf, _ := json.Marshal(map[string]any{"identities": []any{map[string]any{
		"name":        "skiff",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}})
	confFile := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(confFile, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	s.CredentialsFile = filepath.Join(dir, "credentials")
	if err := os.WriteFile(s.CredentialsFile, fmt.Appendf(nil, "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", s.AccessKey, s.SecretKey), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	p := freeport.Loopback(t, 8)
	s.Endpoint = "127.0.0.1:" + strconv.Itoa(p[6])
	s.cmd = exec.Command(bin, "server",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir="+data,
		"-master.port="+strconv.Itoa(p[0]), "-master.port.grpc="+strconv.Itoa(p[1]), "-master.telemetry=false",
		"-master.volumeSizeLimitMB=64", "-volume.max=8",
		"-volume.port="+strconv.Itoa(p[2]), "-volume.port.grpc="+strconv.Itoa(p[3]),
		"-filer", "-filer.port="+strconv.Itoa(p[4]), "-filer.port.grpc="+strconv.Itoa(p[5]),
		"-filer.localSocket="+filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port="+strconv.Itoa(p[6]), "-s3.port.grpc="+strconv.Itoa(p[7]), "-s3.config="+confFile,
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.localSocket="+filepath.Join(dir, "s3.sock"),
	)
	// Its own HOME and working directory: weed reads security.toml and the like from
	// both, and the machine's must not change the test.
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "HOME="+dir)
	s.cmd.Stdout, s.cmd.Stderr = &lockedWriter{w: s.log}, &lockedWriter{w: s.log}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done, err := deathsig.Start(s.cmd)
	if err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { <-done; close(s.done) }()
	t.Cleanup(func() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		if t.Failed() {
			t.Logf("SeaweedFS's log:\n%s", s.Log())
		}
	})
	// Ready once the gateway answers and can make a bucket (the filer and a volume
	// server are up behind it).
	c := s.Client(t)
	// Refused connections and errors while it starts are reasons to wait, not failures.
	waitfor.Condition(t, 90*time.Second, "SeaweedFS's S3 gateway to serve", func() (bool, string) {
		select {
		case <-s.done:
			t.Fatalf("SeaweedFS exited: %v\n%s", s.cmd.ProcessState, s.Log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := c.MakeBucket(ctx, "ready", minio.MakeBucketOptions{})
		if err == nil || minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			return true, ""
		}
		return false, err.Error()
	})
	return s
}

// Log is what SeaweedFS printed so far.
func (s *Server) Log() string {
	lw := s.cmd.Stdout.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return s.log.String()
}

// Client is a minio-go client with the admin's key.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MakeBucket makes bucket name.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
}

// Objects lists the keys under prefix in bucket, recursively.
func (s *Server) Objects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	for o := range s.Client(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, o.Err)
		}
		out = append(out, o.Key)
	}
	return out
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Proxy forwards loopback connections to a target and injects faults.
type Proxy struct {
	// Addr is where clients connect.
	Addr   string
	target atomic.Value // string
	ln     net.Listener
	// cutAfter > 0 cuts each connection once the client has sent that many bytes;
	// refuse closes every new connection at once.
	cutAfter atomic.Int64
	refuse   atomic.Bool
	mu       sync.Mutex
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

// NewProxy forwards a new loopback address to target until t's cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	p.target.Store(target)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// CutAfter makes every connection from now on end after the client sent n bytes (0:
// never): an upload cut off mid-way. The connections open now are ended, so that a
// client's next request takes a new one.
func (p *Proxy) CutAfter(n int64) {
	p.cutAfter.Store(n)
	p.closeAll()
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Refuse makes the proxy close connections as they come (an unreachable storage), or
// forward them again.
func (p *Proxy) Refuse(on bool) {
	p.refuse.Store(on)
	if on {
		p.closeAll()
	}
}

// Retarget forwards new connections to target and ends the ones open now (as a load
// balancer moved to other machines).
func (p *Proxy) Retarget(target string) {
	p.target.Store(target)
	p.closeAll()
}

// Close stops the proxy and ends its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Refuse(true)
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target.Load().(string))
	if err != nil {
		return
	}
	defer up.Close()
	p.track(c, true)
	p.track(up, true)
	defer p.track(c, false)
	defer p.track(up, false)
	var in io.Reader = c
	if n := p.cutAfter.Load(); n > 0 {
		in = io.LimitReader(c, n)
	}
	done := make(chan struct{})
	go func() {
		io.Copy(c, up)
		c.Close()
		close(done)
	}()
	_, err = io.Copy(up, in)
	if err == nil || errors.Is(err, net.ErrClosed) {
		// The client's side ended (or was cut): end both, as a connection that broke.
		up.Close()
		c.Close()
	}
	<-done
}
