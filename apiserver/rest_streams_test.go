package apiserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

// simPod runs an insecure one-member cluster with a simulated node w1 and a running
// pod web, and returns the API's address and a client of it.
func simPod(t *testing.T) (string, *client.Conn) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	logsNode(t, cs, "w1", nil)
	createPod(t, ctx, cs, "web", "w1")
	waitRunning(t, ctx, conn, "web")
	return c.Addr(0), conn
}

// wsExec opens pod web's exec (or attach, or log) over a WebSocket of protocol.
func wsExec(t *testing.T, addr, sub, protocol string, q url.Values) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig(fmt.Sprintf("ws://%s/api/v1/namespaces/default/pods/web/%s?%s", addr, sub, q.Encode()), "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = []string{protocol}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("websocket %s %v: %v", sub, q, err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// channelsUntilStatus reads channel messages until the error channel's, and returns
// what each channel carried and the status.
func channelsUntilStatus(t *testing.T, ws *websocket.Conn) (map[byte]string, []byte) {
	t.Helper()
	got := map[byte]string{}
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		var m []byte
		if err := websocket.Message.Receive(ws, &m); err != nil {
			t.Fatalf("read channels (so far %q): %v", got, err)
		}
		if len(m) == 0 {
			t.Fatal("a message without a channel")
		}
		if m[0] == 3 && len(m) > 1 {
			return got, m[1:]
		}
		got[m[0]] += string(m[1:])
	}
}

func execQuery(command ...string) url.Values {
	q := url.Values{"stdin": {"true"}, "stdout": {"true"}, "stderr": {"true"}}
	q["command"] = command
	return q
}

// TestRESTLogsWebSocket reads pods/log over a WebSocket, as Kubernetes' "should support
// retrieving logs from the container over websockets" does: binary messages (or base64
// text ones) until the server closes, the same output as without the upgrade; an error
// before the upgrade is a Status.
func TestRESTLogsWebSocket(t *testing.T) {
	addr, _ := simPod(t)
	rc := newREST(t, addr, false)
	want := string(rc.want(rc.do("GET", "/api/v1/namespaces/default/pods/web/log?container=app", "", "", nil), 200, "pods/log").body)
	if want == "" {
		t.Fatal("pod web has no output")
	}
	for _, protocol := range []string{"binary.k8s.io", "base64.binary.k8s.io", ""} {
		t.Run("protocol "+protocol, func(t *testing.T) {
			ws := wsExec(t, addr, "log", protocol, url.Values{"container": {"app"}})
			var got strings.Builder
			for {
				var m []byte
				err := websocket.Message.Receive(ws, &m)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %q: %v", got.String(), err)
				}
				if protocol == "base64.binary.k8s.io" {
					if m, err = base64.StdEncoding.DecodeString(string(m)); err != nil {
						t.Fatal(err)
					}
				}
				got.Write(m)
			}
			if got.String() != want {
				t.Errorf("got %q, want %q", got.String(), want)
			}
		})
	}

	for _, tc := range []struct {
		what, path, protocol string
		code                 int
		msg                  string
	}{
		{"no such pod", "/api/v1/namespaces/default/pods/nope/log", "binary.k8s.io", http.StatusNotFound, `pods "nope" not found`},
		{"no such container", "/api/v1/namespaces/default/pods/web/log?container=nope", "binary.k8s.io", http.StatusBadRequest, `container nope is not valid for pod web`},
		{"unknown protocol", "/api/v1/namespaces/default/pods/web/log", "channel.k8s.io", http.StatusBadRequest, "requested protocol(s) are not supported: [channel.k8s.io]"},
	} {
		upgradeRefused(t, rc, tc.what, tc.path, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Protocol": {tc.protocol}}, tc.code, tc.msg)
	}
}

// upgradeRefused asks for an upgrade of path with header, and checks the answer is a
// Status of code whose message has msg.
func upgradeRefused(t *testing.T, rc *restClient, what, path string, header http.Header, code int, msg string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rc.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := rc.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != code || st.Code != int32(code) || !strings.Contains(st.Message, msg) {
		t.Errorf("%s: %d %s, want %d with %q", what, resp.StatusCode, body, code, msg)
	}
}

// TestRESTExecWebSocket drives exec and attach's WebSocket channel protocol, as
// kubectl 1.30 and later speak it, into a simulated container: v5's input ended by the
// close signal, v4's exit code, base64 channels, and the errors before the upgrade.
func TestRESTExecWebSocket(t *testing.T) {
	addr, _ := simPod(t)

	// v5: input, then its end by the close signal (255, channel 0): cat ends.
	ws := wsExec(t, addr, "exec", "v5.channel.k8s.io", execQuery("cat"))
	for _, m := range [][]byte{append([]byte{0}, "through "...), append([]byte{0}, "the channels\n"...), {255, 0}} {
		if err := websocket.Message.Send(ws, m); err != nil {
			t.Fatal(err)
		}
	}
	got, st := channelsUntilStatus(t, ws)
	if got[1] != "through the channels\n" || string(st) != `{"metadata":{},"status":"Success"}` {
		t.Errorf("v5 exec cat: channels %q, status %s", got, st)
	}

	// v4: stdout, stderr and the exit code as Kubernetes reports it.
	ws = wsExec(t, addr, "exec", "v4.channel.k8s.io", execQuery("sh", "-c", "echo failing; exit 3"))
	got, st = channelsUntilStatus(t, ws)
	var status metav1.Status
	if err := json.Unmarshal(st, &status); err != nil {
		t.Fatalf("status %s: %v", st, err)
	}
	if got[1] != "failing\n" || status.Status != metav1.StatusFailure || status.Reason != "NonZeroExitCode" || status.Details == nil ||
		len(status.Details.Causes) != 1 || status.Details.Causes[0].Type != "ExitCode" || status.Details.Causes[0].Message != "3" {
		t.Errorf("v4 exec exit 3: channels %q, status %s", got, st)
	}

	// v4 base64: channel numbers as digits, data in base64.
	ws = wsExec(t, addr, "exec", "v4.base64.channel.k8s.io", execQuery("echo", "hi"))
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	var text strings.Builder
	for !strings.HasPrefix(lastLine(text.String()), "3") {
		var m string
		if err := websocket.Message.Receive(ws, &m); err != nil {
			t.Fatalf("base64 channels %q: %v", text.String(), err)
		}
		text.WriteString(m + "\n")
	}
	if !strings.Contains(text.String(), "1aGkK\n") { // "hi\n"
		t.Errorf("v4.base64 exec echo hi: %q", text.String())
	}

	// An error after the upgrade: on the error channel.
	ws = wsExec(t, addr, "exec", "v4.channel.k8s.io", execQuery("ls", "/"))
	_, st = channelsUntilStatus(t, ws)
	if !strings.Contains(string(st), `"reason":"InternalError"`) || !strings.Contains(string(st), "error executing command in container") {
		t.Errorf("v4 exec of an unknown command: status %s", st)
	}

	// Errors before it: the response, a Status.
	rc := newREST(t, addr, false)
	for _, tc := range []struct {
		what, path string
		header     string
		code       int
		msg        string
	}{
		{"no such pod", "/api/v1/namespaces/default/pods/nope/exec?command=true&stdout=true", "websocket", http.StatusNotFound, `pods "nope" not found`},
		{"no stream", "/api/v1/namespaces/default/pods/web/exec?command=true", "websocket", http.StatusBadRequest, "you must specify at least 1 of stdin, stdout, stderr"},
		{"no command", "/api/v1/namespaces/default/pods/web/exec?stdout=true", "websocket", http.StatusBadRequest, "you must specify at least one command"},
		{"no upgrade", "/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true", "", http.StatusBadRequest, "Upgrade request required"},
		{"port 0", "/api/v1/namespaces/default/pods/web/portforward?ports=0", "SPDY/3.1", http.StatusBadRequest, "must be between 1 and 65535"},
	} {
		header := http.Header{}
		if tc.header != "" {
			header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {tc.header}}
		}
		upgradeRefused(t, rc, tc.what, tc.path, header, tc.code, tc.msg)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// spdyDial upgrades a request for pod web's subresource to SPDY with protocol.
func spdyDial(t *testing.T, addr, path, protocol string) httpstream.Connection {
	t.Helper()
	rt, err := spdy.NewRoundTripper(nil)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(httpstream.HeaderProtocolVersion, protocol)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rt.NewConnection(resp)
	if err != nil {
		t.Fatalf("upgrade %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestRESTExecSPDY drives exec over SPDY/3.1 (client-go's fallback): one stream per
// channel, named by its streamType header, and the v4 status on the error stream. (The
// simulated runtime writes nothing on stderr; TestKubectlExec in test/k8sclients does.)
func TestRESTExecSPDY(t *testing.T) {
	addr, _ := simPod(t)
	conn := spdyDial(t, addr, "/api/v1/namespaces/default/pods/web/exec?"+execQuery("sh", "-c", "cat; exit 4").Encode(), "v4.channel.k8s.io")
	stream := func(typ string) httpstream.Stream {
		s, err := conn.CreateStream(http.Header{"Streamtype": {typ}})
		if err != nil {
			t.Fatalf("stream %s: %v", typ, err)
		}
		return s
	}
	errs := stream("error")
	errs.Close() // the client writes nothing on it
	stdin, stdout, stderr := stream("stdin"), stream("stdout"), stream("stderr")
	if _, err := stdin.Write([]byte("typed in\n")); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	var out, errOut []byte
	done := make(chan struct{})
	go func() {
		errOut, _ = io.ReadAll(stderr)
		close(done)
	}()
	out, _ = io.ReadAll(stdout)
	<-done
	st, _ := io.ReadAll(errs)
	if string(out) != "typed in\n" || string(errOut) != "" || !strings.Contains(string(st), `"reason":"NonZeroExitCode"`) ||
		!strings.Contains(string(st), `{"reason":"ExitCode","message":"4"}`) {
		t.Errorf("exec over SPDY: stdout %q, stderr %q, status %s", out, errOut, st)
	}
}

// echoUpper listens on the loopback (a simulated pod's network is the host's): each
// connection gets back what it sent, in upper case, once it half-closed.
func echoUpper(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(bytes.ToUpper(b))
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// forwardOnce sends msg through a port-forward connection's stream pair and returns the
// answer and what the error stream said.
func forwardOnce(t *testing.T, conn httpstream.Connection, port int, id, msg string) (string, string) {
	t.Helper()
	got, e, err := tryForwardOnce(conn, port, id, msg)
	if err != nil {
		t.Fatal(err)
	}
	return got, e
}

// tryForwardOnce is forwardOnce, the data stream's creation's error returned: the
// server (cri-streaming's, as Kubernetes' kubelet) resets a pair whose forward failed,
// which may reach the client before its data stream's reply.
func tryForwardOnce(conn httpstream.Connection, port int, id, msg string) (string, string, error) {
	h := http.Header{"Streamtype": {"error"}, "Port": {strconv.Itoa(port)}, "Requestid": {id}}
	errs, err := conn.CreateStream(h)
	if err != nil {
		return "", "", err
	}
	errs.Close()
	h.Set("Streamtype", "data")
	data, err := conn.CreateStream(h)
	if err != nil {
		return "", "", fmt.Errorf("the data stream: %w", err)
	}
	data.Write([]byte(msg)) // a refused connection may have reset the stream already
	data.Close()            // half-closes the pod's connection
	got, _ := io.ReadAll(data)
	e, _ := io.ReadAll(errs)
	return string(got), string(e), nil
}

// TestRESTPortForward connects to a simulated pod's port over SPDY (portforward.k8s.io)
// and over SPDY tunnelled in a WebSocket (kubectl 1.31's default), several connections
// on one upgraded one, and a port nobody listens on; and over WebSocket channels.
func TestRESTPortForward(t *testing.T) {
	addr, _ := simPod(t)
	port := echoUpper(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	path := "/api/v1/namespaces/default/pods/web/portforward"

	check := func(how string, conn httpstream.Connection) {
		msg := strings.Repeat("ping ", 10_000)
		for i := range 2 {
			if got, e := forwardOnce(t, conn, port, strconv.Itoa(i), msg); got != strings.ToUpper(msg) || e != "" {
				t.Errorf("%s, connection %d: %d bytes back of %d, error stream %q", how, i, len(got), len(msg), e)
			}
		}
		// A port nobody listens on: the error stream says so, or (the server resets the
		// failed pair) the data stream's creation is reset before its reply.
		got, e, err := tryForwardOnce(conn, dead, "9", "x")
		if err != nil && !(strings.Contains(err.Error(), "the data stream: ") && strings.Contains(strings.ToLower(err.Error()), "reset")) {
			t.Fatalf("%s to a port nobody listens on: %v", how, err)
		}
		if err == nil && (got != "" || !strings.Contains(e, "connection refused")) {
			t.Errorf("%s to a port nobody listens on: %q, error stream %q", how, got, e)
		}
	}
	check("SPDY", spdyDial(t, addr, path, "portforward.k8s.io"))

	cfg, err := websocket.NewConfig("ws://"+addr+path, "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = []string{"SPDY/3.1+portforward.k8s.io"}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws.PayloadType = websocket.BinaryFrame
	tunnel, err := spdy.NewClientConnection(ws)
	if err != nil {
		t.Fatal(err)
	}
	defer tunnel.Close()
	check("SPDY in a WebSocket", tunnel)

	// The older WebSocket channels (?ports=): a data and an error channel per port, each
	// starting with the port (little-endian), then the data; here, from a server that
	// greets and closes, since this protocol cannot half-close.
	greeter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer greeter.Close()
	go func() {
		for {
			c, err := greeter.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello from the pod\n"))
			c.Close()
		}
	}()
	gport := greeter.Addr().(*net.TCPAddr).Port
	ws = wsExec(t, addr, "portforward", "v4.channel.k8s.io", url.Values{"ports": {strconv.Itoa(gport)}})
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	got := map[byte]string{}
	for got[0] != string([]byte{byte(gport), byte(gport >> 8)})+"hello from the pod\n" {
		var m []byte
		if err := websocket.Message.Receive(ws, &m); err != nil {
			t.Fatalf("port-forward over WebSocket channels: %q so far: %v", got, err)
		}
		got[m[0]] += string(m[1:])
	}
	if got[1] != string([]byte{byte(gport), byte(gport >> 8)}) {
		t.Errorf("port-forward over WebSocket channels: error channel %q", got[1])
	}
}

// TestRESTStreamsForbidden: exec, attach and portforward are an administrator's over
// REST as over gRPC, GET (a WebSocket's upgrade) as POST: 403 with Kubernetes' Status.
func TestRESTStreamsForbidden(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	toks, err := auth.ParseTokens(auth.HashToken("dev-token") + ",dev,developers\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	rc := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "dev-token")
	for _, sub := range []string{"exec?command=true&stdout=true", "attach?stdout=true", "portforward?ports=80"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := rc.do(method, "/api/v1/namespaces/default/pods/web/"+sub, "", "", nil)
			st := r.status()
			name := strings.Split(sub, "?")[0]
			if r.code != http.StatusForbidden || st.Reason != metav1.StatusReasonForbidden || !strings.Contains(st.Message, `cannot create pods/`+name) {
				t.Errorf("%s %s as dev: %d %s", method, sub, r.code, r.body)
			}
		}
	}
}
