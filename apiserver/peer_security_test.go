package apiserver_test

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/pki"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

// rogueStream is a Raft stream layer that dials the peer port with a TLS config of the
// test's choosing, as a store would.
type rogueStream struct {
	net.Listener
	tls *tls.Config
}

func (s *rogueStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), s.tls)
	if err != nil {
		return nil, err
	}
	// The protocol byte, then the store's hello (a length-prefixed JSON object): an
	// anonymous one, as a member that knows no cluster yet says; then the peer's reply.
	if _, err := conn.Write([]byte{'R', 0, 0, 0, 2, '{', '}'}); err != nil {
		conn.Close()
		return nil, err
	}
	var n [4]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := io.ReadFull(conn, make([]byte, binary.BigEndian.Uint32(n[:]))); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func peerTLS(t *testing.T, dir, name string) *tls.Config {
	t.Helper()
	r, err := pki.NewReloader(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return r.PeerTLS()
}

// TestForeignPeer: a peer whose certificate the cluster's CA did not sign, or that is not
// an API server's, can neither call for an election nor join.
func TestForeignPeer(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	foreign := apicluster.Certs(t)
	c := apicluster.Start(t, 3, apicluster.Options{Certs: dir})
	ctx := testCtx(t)
	leader := c.Leader()
	before, err := c.Server(leader).Store().Status()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		tls  *tls.Config
	}{
		// An API server certificate of another CA (the rogue checks nothing itself).
		{name: "foreign CA", tls: func() *tls.Config { c := peerTLS(t, foreign, "apiserver"); c.VerifyConnection = nil; return c }()},
		// The cluster's CA, but a kubelet's certificate.
		{name: "not an API server", tls: func() *tls.Config { c := peerTLS(t, dir, "kubelet-w1"); c.VerifyConnection = nil; return c }()},
		// No certificate at all.
		{name: "no certificate", tls: &tls.Config{InsecureSkipVerify: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			trans := raft.NewNetworkTransport(&rogueStream{Listener: ln, tls: tt.tls}, 1, 5*time.Second, io.Discard)
			defer trans.Close()
			for i := 0; i < 3; i++ {
				target := c.Server(i).Store().PeerAddress()
				var resp raft.RequestVoteResponse
				// A vote request far in the future would depose the leader if delivered.
				err := trans.RequestVote("n1", raft.ServerAddress(target), &raft.RequestVoteRequest{
					RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte(ln.Addr().String())},
					Term:      before.Term + 1000, LastLogIndex: 1 << 40, LastLogTerm: before.Term + 1000,
				}, &resp)
				if err == nil {
					t.Fatalf("member %d answered a rogue vote request: %+v", i, resp)
				}
				t.Logf("member %d: %v", i, err)
			}
		})
	}
	after, err := c.Server(leader).Store().Status()
	if err != nil {
		t.Fatal(err)
	}
	if after.Term != before.Term || after.LeaderID != before.LeaderID {
		t.Fatalf("the cluster was disrupted: term %d → %d, leader %s → %s", before.Term, after.Term, before.LeaderID, after.LeaderID)
	}

	// Joining: a foreign certificate is not authenticated; a kubelet's is not allowed.
	join := func(tc *tls.Config) error {
		cc, err := grpc.NewClient("passthrough:///"+c.Addr(0), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		_, err = apiv1.NewClusterClient(cc).AddMember(ctx, &apiv1.AddMemberRequest{Name: "rogue", RaftAddress: "127.0.0.1:1"})
		return err
	}
	foreignClient := apicluster.ClientTLS(t, dir, "")
	foreignClient.GetClientCertificate = peerTLS(t, foreign, "apiserver").GetClientCertificate
	wantDenied(t, "join with a foreign certificate", join(foreignClient), codes.Unauthenticated, "unknown authority")
	wantDenied(t, "join as a kubelet", join(apicluster.ClientTLS(t, dir, "kubelet-w1")), codes.PermissionDenied, `user "system:node:w1" cannot create cluster/members "rogue"`)
	st, err := c.Server(0).Store().Status()
	if err != nil || len(st.Members) != 3 {
		t.Fatalf("members after rogue joins: %+v %v", st.Members, err)
	}

	// Control: the same vote request with the cluster's own peer certificate is answered
	// (so the refusals above are the certificates', not the test's).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransport(&rogueStream{Listener: ln, tls: peerTLS(t, dir, "apiserver")}, 1, 5*time.Second, io.Discard)
	defer trans.Close()
	var resp raft.RequestVoteResponse
	err = trans.RequestVote("n1", raft.ServerAddress(c.Server(leader).Store().PeerAddress()), &raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n9"), Addr: []byte(ln.Addr().String())}, Term: 1,
	}, &resp)
	if err != nil {
		t.Fatalf("a vote request with the cluster's certificate: %v", err)
	}
}

// TestRotation: certificates rotated on disk are used by new connections at once; open
// connections and watches go on; a restarted member rejoins its peers with its new
// certificate.
func TestRotation(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 3, apicluster.Options{Certs: dir})
	ctx := testCtx(t)
	serverSerial := func(rc apiv1.ResourcesClient) string {
		t.Helper()
		var p peer.Peer
		if _, err := rc.List(ctx, &apiv1.ListRequest{Kind: "ConfigMap"}, grpc.Peer(&p)); err != nil {
			t.Fatal(err)
		}
		return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber.String()
	}
	old := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	oldSerial := serverSerial(old)
	w, err := old.Watch(ctx, &apiv1.WatchRequest{Kind: "ConfigMap"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}

	if _, err := pki.RotateDir(dir, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	fresh := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	if s := serverSerial(fresh); s == oldSerial {
		t.Fatal("a new connection got the old server certificate")
	}
	// The connection from before goes on, and its watch sees a write made after.
	if serverSerial(old) != oldSerial {
		t.Fatal("the old connection changed certificates")
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-rotation"}}
	if _, err := fresh.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, cm)}); err != nil {
		t.Fatal(err)
	}
	ev, err := w.Recv()
	if err != nil || len(ev.GetEvents()) == 0 || unwrap[*corev1.ConfigMap](t, ev.GetEvents()[0].GetObject()).Name != "after-rotation" {
		t.Fatalf("watch across rotation: %v %v", ev, err)
	}

	// Peers: a restarted member dials and is dialled with the new certificate.
	c.Stop(2)
	c.Restart(2)
	c.WaitReady()
	rc := dialSecure(t, c.Addr(2), apicluster.ClientTLS(t, dir, "admin"), "")
	if _, err := rc.Get(ctx, &apiv1.GetRequest{Kind: "ConfigMap", Namespace: "default", Name: "after-rotation"}); err != nil {
		t.Fatalf("restarted member after rotation: %v", err)
	}
	if code := status.Code(err); code != codes.OK {
		t.Fatal(code)
	}
}
