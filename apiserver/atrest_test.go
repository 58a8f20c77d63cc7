package apiserver_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/encryption"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// keyFile writes a new key file (key1, then identity) and returns it and its path.
func keyFile(t *testing.T) (*encryption.Config, string) {
	t.Helper()
	c := encryption.New()
	path := filepath.Join(t.TempDir(), "encryption.yaml")
	if err := c.Write(path); err != nil {
		t.Fatal(err)
	}
	return c, path
}

// grepDir lists the files under dir that hold needle.
func grepDir(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a snapshot being written, renamed meanwhile
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func secretWith(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// TestSecretsEncryptedAtRest: a Secret's plaintext is nowhere in what the store writes
// (its bbolt state, its Raft log, its snapshots, a backup), on any member, while a
// ConfigMap's is (the search finds what is there); every read (get, list, watch, the
// reply to a write) returns the plaintext.
func TestSecretsEncryptedAtRest(t *testing.T) {
	_, path := keyFile(t)
	c := apicluster.Start(t, 3, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.EncryptionKeyFile = path
		// Snapshot soon, so that the members' snapshot files are searched too.
		cfg.Store.SnapshotThreshold, cfg.Store.SnapshotInterval, cfg.Store.TrailingLogs = 4, 50*time.Millisecond, 4
	}})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)

	secretCanary := fmt.Sprintf("hunter2-%d", time.Now().UnixNano())
	stringCanary := "from-stringData-" + secretCanary
	cmCanary := fmt.Sprintf("configmap-value-%d", time.Now().UnixNano())
	w, err := cs.Secrets.Watch(ctx, "default", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	in := secretWith("db", map[string]string{"password": secretCanary})
	in.StringData = map[string]string{"token": stringCanary}
	created, err := cs.Secrets.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"password": secretCanary, "token": stringCanary}
	check := func(how string, s *corev1.Secret) {
		t.Helper()
		if len(s.Data) != 2 || string(s.Data["password"]) != want["password"] || string(s.Data["token"]) != want["token"] || s.StringData != nil {
			t.Errorf("%s: data %q, stringData %q; want data %q", how, s.Data, s.StringData, want)
		}
	}
	check("create's reply", created)
	got, err := cs.Secrets.Get(ctx, "default", "db")
	if err != nil {
		t.Fatal(err)
	}
	check("get", got)
	list, err := cs.Secrets.List(ctx, "default", client.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	check("list", list.Items[0])
	evs, err := w.Next()
	if err != nil || len(evs) != 1 || evs[0].Type != client.Added {
		t.Fatalf("watch: %v %v", evs, err)
	}
	check("watch", evs[0].Object)
	// The same over REST: get (JSON and protobuf), list, a watch from before the create
	// (the event read back from the history), a merge patch's reply.
	rc := newREST(t, c.Addr(0), true)
	const secrets = "/api/v1/namespaces/default/secrets"
	check("REST get", addrOf(decodeJSON[corev1.Secret](t, rc.want(rc.do("GET", secrets+"/db", "", "", nil), 200, "REST get").body)))
	pb := rc.want(rc.do("GET", secrets+"/db", "", kinds.ContentType, nil), 200, "REST get in protobuf")
	env, err := kinds.Parse(pb.body)
	if err != nil {
		t.Fatal(err)
	}
	var fromPB corev1.Secret // client-go's default
	if err := fromPB.Unmarshal(env.Raw); err != nil {
		t.Fatal(err)
	}
	check("REST get in protobuf", &fromPB)
	if l := decodeJSON[corev1.SecretList](t, rc.want(rc.do("GET", secrets, "", "", nil), 200, "REST list").body); len(l.Items) != 1 {
		t.Fatalf("REST list: %+v", l)
	} else {
		check("REST list", &l.Items[0])
	}
	rv, _ := strconv.ParseInt(created.ResourceVersion, 10, 64)
	wb := rc.want(rc.do("GET", fmt.Sprintf("%s?watch=1&timeoutSeconds=1&resourceVersion=%d", secrets, rv-1), "", "", nil), 200, "REST watch").body
	var ev struct {
		Type   string        `json:"type"`
		Object corev1.Secret `json:"object"`
	}
	if err := json.Unmarshal(bytes.SplitN(wb, []byte("\n"), 2)[0], &ev); err != nil || ev.Type != "ADDED" {
		t.Fatalf("REST watch: %s %v", wb, err)
	}
	check("REST watch", &ev.Object)
	pb = rc.want(rc.do("PATCH", secrets+"/db", "application/merge-patch+json", kinds.ContentType, `{"metadata":{"labels":{"via":"rest"}}}`), 200, "REST patch")
	if env, err = kinds.Parse(pb.body); err != nil {
		t.Fatal(err)
	}
	var patched corev1.Secret
	if err := patched.Unmarshal(env.Raw); err != nil {
		t.Fatal(err)
	}
	check("REST patch's reply in protobuf", &patched)
	got.Labels = map[string]string{"via": "rest"}
	got.ResourceVersion = ""
	got.Labels = map[string]string{"rotated": "no"}
	updated, err := cs.Secrets.Update(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	check("update's reply", updated)
	// An update that changes nothing writes nothing, encrypted or not (the nonce differs
	// each time, so only the plaintext tells).
	again, err := cs.Secrets.Update(ctx, updated)
	if err != nil || again.ResourceVersion != updated.ResourceVersion {
		t.Errorf("a no-op update wrote a new revision: %v -> %v (%v)", updated.ResourceVersion, again.ResourceVersion, err)
	}
	if _, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cm"},
		Data: map[string]string{"k": cmCanary}}); err != nil {
		t.Fatal(err)
	}
	// Enough writes for every member to snapshot.
	for i := range 10 {
		if _, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("filler-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}

	for i := range 3 {
		st := c.Server(i).Store()
		waitfor.ConditionErr(t, 30*time.Second, fmt.Sprintf("member %d applies every write and snapshots", i), func() (bool, error) {
			s, err := st.Status()
			if err != nil {
				return false, err
			}
			snaps, _ := filepath.Glob(filepath.Join(c.DataDir(i), "snapshots", "*", "state.bin"))
			return s.SnapshotIndex > 0 && len(snaps) > 0 && s.Revision >= int64(s.CommitIndex), nil
		})
		o, _, err := st.GetLocal(store.Key{Kind: kinds.Secret, Namespace: "default", Name: "db"})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(o.Value, []byte("k8s:enc:aesgcm:v1:key1:")) {
			t.Errorf("member %d stores %.40q", i, o.Value)
		}
		for _, canary := range []string{secretCanary, stringCanary} {
			if files := grepDir(t, c.DataDir(i), []byte(canary)); len(files) > 0 {
				t.Errorf("member %d: a Secret's plaintext is in %v", i, files)
			}
		}
		if files := grepDir(t, c.DataDir(i), []byte(cmCanary)); len(files) == 0 {
			t.Errorf("member %d: the search does not find a ConfigMap's value in the store's files", i)
		}
	}
	var backup bytes.Buffer
	if _, err := conn.Snapshot(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(backup.Bytes(), []byte(secretCanary)) || !bytes.Contains(backup.Bytes(), []byte(cmCanary)) {
		t.Errorf("backup: holds the Secret's plaintext %v, the ConfigMap's %v",
			bytes.Contains(backup.Bytes(), []byte(secretCanary)), bytes.Contains(backup.Bytes(), []byte(cmCanary)))
	}
}

// TestKeyRotation: Secrets written before there was a key, and with the old key, are
// re-encrypted with a new primary key in the background once the key file says so; a
// member whose key file lacks the key that wrote a value says so when asked for it.
func TestKeyRotation(t *testing.T) {
	kc, path := keyFile(t)
	// Start decrypted: identity first, so that writes are plaintext (as before there
	// was a key file).
	ps := kc.Resources[0].Providers
	kc.Resources[0].Providers = []encryption.Provider{ps[1], ps[0]}
	if err := kc.Write(path); err != nil {
		t.Fatal(err)
	}
	// Member 3 keeps its own copy, which will not learn the new key.
	lagging := filepath.Join(t.TempDir(), "encryption.yaml")
	c := apicluster.Start(t, 3, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.EncryptionKeyFile, cfg.EncryptionKeyReload = path, 20*time.Millisecond
		if cfg.Name == "n3" {
			cfg.EncryptionKeyFile = lagging
			if err := kc.Write(lagging); err != nil {
				t.Fatal(err)
			}
		}
	}})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs()[:2], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	const n = 20
	for i := range n {
		if _, err := cs.Secrets.Create(ctx, secretWith(fmt.Sprintf("s%d", i), map[string]string{"v": fmt.Sprint(i)})); err != nil {
			t.Fatal(err)
		}
	}
	// storedWith waits until every Secret is stored as prefix says, on every member.
	storedWith := func(what, prefix string) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "every secret stored "+what, func() (bool, string) {
			for m := range 3 {
				st := c.Server(m).Store()
				// A new leader may not serve reads yet: not yet, rather than failed.
				if err := st.Sync(ctx); err != nil {
					return false, err.Error()
				}
				objs, _, err := st.List(ctx, kinds.Secret, store.ListOptions{Stale: true})
				if err != nil {
					return false, err.Error()
				}
				if len(objs) != n {
					return false, fmt.Sprintf("member %d has %d secrets", m, len(objs))
				}
				for _, o := range objs {
					if !bytes.HasPrefix(o.Value, []byte(prefix)) {
						return false, fmt.Sprintf("member %d stores %s as %.30q", m, o.Key, o.Value)
					}
				}
			}
			return true, ""
		})
	}
	storedWith("unencrypted", "k8s\x00")

	// Make key1 primary: everything written before is encrypted in the background.
	if err := kc.Promote("key1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, lagging} {
		if err := kc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	storedWith("with key1", "k8s:enc:aesgcm:v1:key1:")

	// Rotate: a new key, first as a secondary everywhere, then the primary (but member
	// 3 never hears of it).
	kc.AddKey(false)
	if err := kc.Write(path); err != nil {
		t.Fatal(err)
	}
	if err := kc.Promote("key2"); err != nil {
		t.Fatal(err)
	}
	if err := kc.Write(path); err != nil {
		t.Fatal(err)
	}
	// The leader might be member 3, which cannot: make it lead elsewhere.
	if c.Leader() == 2 {
		if err := c.Server(2).Store().TransferLeadership(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
	}
	storedWith("with key2", "k8s:enc:aesgcm:v1:key2:")
	for i := range n {
		s, err := cs.Secrets.Get(ctx, "default", fmt.Sprintf("s%d", i))
		if err != nil || string(s.Data["v"]) != fmt.Sprint(i) {
			t.Fatalf("s%d after rotation: %v %v", i, s, err)
		}
	}
	// Member 3 stores what the others write but cannot read it, and says why.
	m3, err := client.Dial(c.Addrs()[2:], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	_, err = client.For[*corev1.Secret](m3).Get(ctx, "default", "s0", client.GetOptions{Stale: true})
	if err == nil || !strings.Contains(err.Error(), `Internal error occurred: unable to transform stored value "/registry/secrets/default/s0": encrypted with key aesgcm:key2, which this API server's encryption key file does not have`) {
		t.Errorf("a member without key2: %v", err)
	}
	if _, err := client.For[*corev1.Secret](m3).List(ctx, "default", client.ListOptions{Stale: true}); err == nil || !strings.Contains(err.Error(), "aesgcm:key2") {
		t.Errorf("list on a member without key2: %v", err)
	}
}

func addrOf[T any](v T) *T { return &v }
