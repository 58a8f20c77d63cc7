package apiserver_test

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// shortLived gives the member of cfg its own serving and peer certificate in a directory
// of its own, valid for life from now, issued by base's CA, and renews it from that CA.
func shortLived(t *testing.T, base string, life time.Duration, cfg *apiserver.Config) {
	t.Helper()
	ca, err := pki.LoadCA(base)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := pki.ReadCerts(filepath.Join(base, "apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	req := pki.RequestFor(tmpl[0])
	req.NotBefore, req.Validity = time.Now(), life
	p, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, cfg.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	crt, key, err := p.Write(dir, "apiserver")
	if err != nil {
		t.Fatal(err)
	}
	r, err := pki.NewReloader(crt, key, filepath.Join(base, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS, cfg.ClientRoots, cfg.JoinTLS, cfg.Store.PeerTLS, cfg.KubeletTLS = r.ServerTLS(), r.Pool, r.ClientTLS(), r.PeerTLS(), r.KubeletClientTLS
	cfg.Certificates = []apiserver.CertFile{{Name: "serving", CertFile: crt, KeyFile: key}}
	cfg.SigningCertFile, cfg.SigningKeyFile = filepath.Join(base, pki.CACertFile), filepath.Join(base, pki.CAKeyFile)
	cfg.CertCheckInterval = 200 * time.Millisecond
}

// TestCertificatesRenewThemselves: members whose certificates live 24 s renew them from
// the cluster CA at two thirds of their life; clients connecting anew to every member
// throughout three lifetimes are never refused, no expiry warning is needed, and a member
// restarted after that rejoins its peers with the renewed certificate.
func TestCertificatesRenewThemselves(t *testing.T) {
	t.Parallel() // its own cluster, waiting out three certificate lifetimes beside the other long waits
	const life = 24 * time.Second
	base := apicluster.Certs(t)
	c := apicluster.Start(t, 3, apicluster.Options{Certs: base, Configure: func(cfg *apiserver.Config) {
		shortLived(t, base, life, cfg)
		cfg.CertExpiryWarning = 4 * time.Second // renewed 8 s before expiry, so never reached
	}})
	// The writes go on over three lifetimes (at least 48 s): longer than testCtx's minute
	// leaves to spare on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := apicluster.ClientTLS(t, base, "admin")
	writes := 0
	// Each write has a minute: one that hung (make test's package run once waited on
	// this test for minutes with no message) fails the test, saying which member.
	write := func(i int) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		conn, err := client.Dial([]string{c.Addr(i)}, client.Options{TLS: admin.Clone()})
		if err != nil {
			return err
		}
		defer conn.Close()
		writes++
		_, err = client.For[*corev1.ConfigMap](conn).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprint("w", writes)}})
		return err
	}
	waitfor.Condition(t, 4*time.Minute, "every member renewed its certificate three times", func() (bool, string) {
		var got []string
		done := true
		for i := range 3 {
			if err := write(i); err != nil {
				t.Fatalf("a new client of member %d after %d writes: %v", i, writes, err)
			}
			for _, st := range c.Server(i).Certificates() {
				if st.Error != "" {
					t.Fatalf("member %d's certificate check: %s", i, st.Error)
				}
				done = done && st.Renewals >= 3
				got = append(got, fmt.Sprintf("%s: %d renewals, expires %v", c.Server(i).Store().ID(), st.Renewals, st.NotAfter))
			}
		}
		return done, strings.Join(got, "; ")
	})

	// Peers: a restarted member handshakes with the others anew.
	c.Stop(1)
	c.Restart(1)
	c.WaitReady()
	if err := write(1); err != nil {
		t.Fatalf("write through the restarted member: %v", err)
	}
	conn := c.Dial(t, "admin", client.Options{})
	evs, err := client.For[*corev1.Event](conn).List(ctx, "kube-system", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs.Items {
		if ev.Reason == apiserver.ReasonCertificateExpiring {
			t.Fatalf("an expiry warning for a certificate that renews itself: %s", ev.Message)
		}
	}
}

// TestCertificateExpiringWarned: a certificate within the warning window of its expiry
// that the member cannot renew (no cluster CA given) is a Warning event naming it, the
// member and what to do, and its expiry is known.
func TestCertificateExpiringWarned(t *testing.T) {
	base := apicluster.Certs(t)
	crt := filepath.Join(base, "apiserver.crt")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: base, Configure: func(cfg *apiserver.Config) {
		cfg.Certificates = []apiserver.CertFile{{Name: "serving", CertFile: crt, KeyFile: filepath.Join(base, "apiserver.key")}}
		cfg.CertCheckInterval = 100 * time.Millisecond
		cfg.CertExpiryWarning = 400 * 24 * time.Hour // the year-long certificate is within it
	}})
	ctx := testCtx(t)
	conn := c.Dial(t, "admin", client.Options{})
	certs, _ := pki.ReadCerts(crt)
	var msg string
	waitfor.Condition(t, time.Minute, "a CertificateExpiring warning", func() (bool, string) {
		evs, err := client.For[*corev1.Event](conn).List(ctx, "kube-system", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, ev := range evs.Items {
			if ev.Reason == apiserver.ReasonCertificateExpiring && ev.Type == corev1.EventTypeWarning {
				msg = ev.Message
				n++
			}
		}
		return n > 0, fmt.Sprint(len(evs.Items), " events")
	})
	for _, want := range []string{"serving", crt, "n1", certs[0].NotAfter.UTC().Format(time.RFC3339), "skiff certs rotate", "--cluster-signing-cert-file"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("warning %q does not name %s", msg, want)
		}
	}
	st := c.Server(0).Certificates()
	if len(st) != 1 || !st[0].NotAfter.Equal(certs[0].NotAfter) || st[0].Renewals != 0 {
		t.Fatalf("certificates known: %+v", st)
	}
}

// TestCertificateSigningRequestOwnIdentityOnly: a component renews its own certificate
// through CreateCertificateSigningRequest (same identity, names and usages, new key),
// and nothing else: a kubelet asking for another node's or an administrator's
// certificate, or a token user, is refused; a member without the cluster CA says so.
func TestCertificateSigningRequestOwnIdentityOnly(t *testing.T) {
	base := apicluster.Certs(t, "w1", "w2")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: base, Configure: func(cfg *apiserver.Config) {
		cfg.SigningCertFile, cfg.SigningKeyFile = filepath.Join(base, pki.CACertFile), filepath.Join(base, pki.CAKeyFile)
	}})
	ctx := testCtx(t)
	conn := c.Dial(t, "kubelet-w1", client.Options{})
	own, err := pki.ReadCerts(filepath.Join(base, "kubelet-w1.crt"))
	if err != nil {
		t.Fatal(err)
	}
	csr, key, err := pki.NewRequest(own[0])
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := conn.CreateCertificateSigningRequest(ctx, csr, nil, time.Hour)
	if err != nil {
		t.Fatalf("renewing its own certificate: %v", err)
	}
	p, err := os.CreateTemp(t.TempDir(), "crt")
	if err != nil {
		t.Fatal(err)
	}
	p.Write(certPEM)
	p.Close()
	got, err := pki.ReadCerts(p.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := pki.RequestFor(own[0])
	if g := pki.RequestFor(got[0]); g.CommonName != want.CommonName || fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("renewed certificate %+v, want %+v", g, want)
	}
	if !got[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Fatal("the renewed certificate is not for the request's key")
	}
	if life := got[0].NotAfter.Sub(got[0].NotBefore); life > time.Hour {
		t.Fatalf("asked for an hour, got %v", life)
	}

	other := func(cn string, groups ...string) []byte {
		tmpl := *own[0]
		tmpl.Subject.CommonName, tmpl.Subject.Organization = cn, groups
		csr, _, err := pki.NewRequest(&tmpl)
		if err != nil {
			t.Fatal(err)
		}
		return csr
	}
	for name, csr := range map[string][]byte{
		"another node":        other(pki.NodeUserPrefix+"w2", pki.GroupNodes),
		"an administrator":    other(pki.UserAdmin, pki.GroupAdmin),
		"its name, admin too": other(pki.NodeUserPrefix+"w1", pki.GroupNodes, pki.GroupAdmin),
	} {
		_, err := conn.CreateCertificateSigningRequest(ctx, csr, nil, 0)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "only for its own identity") {
			t.Errorf("%s: %v, want PermissionDenied", name, err)
		}
	}

	noCA := apicluster.Start(t, 1, apicluster.Options{Certs: base})
	nconn := noCA.Dial(t, "kubelet-w1", client.Options{})
	if _, err := nconn.CreateCertificateSigningRequest(ctx, csr, nil, 0); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "--cluster-signing-cert-file") {
		t.Fatalf("a member without the CA: %v, want FailedPrecondition naming the flag", err)
	}
}
