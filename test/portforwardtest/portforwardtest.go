// Package portforwardtest runs a port-forward command for a test — skiffctl's or
// kubectl's, which both print "Forwarding from 127.0.0.1:LOCAL -> PORT" once they
// listen — and reaches the pod's port through it. The command is stopped at the test's
// cleanup if the test has not interrupted it.
package portforwardtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a port-forward command that listens.
type Process struct {
	// Local is the address it listens on (127.0.0.1:LOCAL).
	Local  string
	cmd    *exec.Cmd
	stderr lockedBuffer
	exited chan error // the command's end, once
	done   bool       // exited was read
}

// Start starts cmd, a port-forward to the pod's port remote, and waits (a minute at
// most) until it says where it listens.
func Start(t testing.TB, cmd *exec.Cmd, remote int) *Process {
	t.Helper()
	p := &Process{cmd: cmd, exited: make(chan error, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if !p.done {
			cmd.Process.Kill()
			p.wait()
		}
	})
	forwarding := regexp.MustCompile(`^Forwarding from (127\.0\.0\.1:\d+) -> ` + fmt.Sprint(remote) + `$`)
	timeout := time.After(time.Minute)
	for p.Local == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s ended: %s", cmd, p.Stderr())
			}
			if m := forwarding.FindStringSubmatch(l); m != nil {
				p.Local = m[1]
			}
		case <-timeout:
			t.Fatalf("%s says nothing: %s", cmd, p.Stderr())
		}
	}
	go func() { // the rest of its output, so that it never blocks writing it
		for range lines {
		}
	}()
	return p
}

// Stderr is what the command wrote on its standard error so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// GET sends an HTTP/1.0 GET of path through the forward and returns the whole response
// (the server closes the connection after it).
func (p *Process) GET(t testing.TB, path string) string {
	t.Helper()
	c, err := net.Dial("tcp", p.Local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\n\r\n", path)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("GET %s through %s: %v (%q so far; stderr %s)", path, p.cmd, err, got, p.Stderr())
	}
	return string(got)
}

// Interrupt sends the command SIGINT, as Ctrl-C does, and returns how it exited; it
// fails t when it has not exited within 30 seconds.
func (p *Process) Interrupt(t testing.TB) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.exited:
		p.done = true
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop on SIGINT: %s", p.cmd, p.Stderr())
		return nil
	}
}

func (p *Process) wait() {
	if !p.done {
		<-p.exited
		p.done = true
	}
}

// lockedBuffer is a buffer the command writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
