package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	key16 = "MTIzNDU2Nzg5MDEyMzQ1Ng==" // 16 bytes
	key32 = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
)

func fileWith(providers string) string {
	return "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n" + providers
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string // substrings of the error; nil for success
	}{
		{"kubernetes' example", fileWith("  - aesgcm:\n      keys:\n      - name: key1\n        secret: " + key32 + "\n      - name: key2\n        secret: " + key16 + "\n  - identity: {}\n"), nil},
		{"identity alone", fileWith("  - identity: {}\n"), nil},
		{"wrong kind", strings.Replace(fileWith("  - identity: {}\n"), "kind: EncryptionConfiguration", "kind: Config", 1),
			[]string{`kind: Unsupported value: "Config": supported values: "EncryptionConfiguration"`}},
		{"misspelled field", fileWith("  - aesgcm:\n      kyes: []\n"), []string{`unknown field "resources[0].providers[0].aesgcm.kyes"`}},
		{"configmaps", strings.Replace(fileWith("  - identity: {}\n"), "[secrets]", "[secrets, configmaps]", 1),
			[]string{"resources[0].resources: Invalid value", "Skiff encrypts secrets only"}},
		{"no providers", fileWith("    []\n"), []string{"resources[0].providers: Required value"}},
		{"aescbc", fileWith("  - aescbc:\n      keys:\n      - name: k\n        secret: " + key32 + "\n"),
			[]string{"resources[0].providers[0].aescbc: Forbidden: not supported by Skiff"}},
		{"kms", fileWith("  - kms:\n      apiVersion: v2\n      name: vault\n"), []string{"resources[0].providers[0].kms: Forbidden: not supported by Skiff"}},
		{"two at once", fileWith("  - aesgcm:\n      keys: []\n    identity: {}\n"), []string{"resources[0].providers[0]: Invalid value", "exactly one provider"}},
		{"bad keys", fileWith("  - aesgcm:\n      keys:\n      - name: a:b\n        secret: " + key32 + "\n      - name: k\n        secret: c2hvcnQ=\n      - name: k\n        secret: '!!'\n      - secret: " + key32 + "\n"),
			[]string{`resources[0].providers[0].aesgcm.keys[0].name: Invalid value: "a:b": should not contain ':'`,
				"keys[1].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 5, expected one of [16 24 32]",
				`keys[2].name: Duplicate value: "k"`, "keys[2].secret: Invalid value: \"REDACTED\": secret is not valid base64",
				"keys[3].name: Required value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), key32) {
				t.Errorf("the error shows a key: %v", err)
			}
		})
	}
}

func mustTransformer(t *testing.T, c *Config) *Transformer {
	t.Helper()
	tr, err := NewTransformer(c)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestSealOpen(t *testing.T) {
	c := New()
	tr := mustTransformer(t, c)
	path := Path("secrets", "default", "db")
	plain := []byte("k8s\x00 the password is hunter2")
	sealed, err := tr.Seal(path, plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sealed, []byte("k8s:enc:aesgcm:v1:key1:")) || bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatalf("sealed value %q", sealed)
	}
	if again, _ := tr.Seal(path, plain); bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
	got, err := tr.Open(path, sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if !tr.Current(sealed) || KeyOf(sealed) != "aesgcm:key1" || tr.Primary() != "aesgcm:key1" {
		t.Errorf("Current %v, KeyOf %s, Primary %s", tr.Current(sealed), KeyOf(sealed), tr.Primary())
	}

	// Bound to its place: the same bytes under another name do not decrypt.
	if _, err := tr.Open(Path("secrets", "default", "other"), sealed); !errors.Is(err, ErrTransform) || !strings.Contains(err.Error(), "message authentication failed") {
		t.Errorf("moved value: %v", err)
	}
	// Damaged.
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := tr.Open(path, bad); !errors.Is(err, ErrTransform) {
		t.Errorf("damaged value: %v", err)
	}
	if _, err := tr.Open(path, sealed[:30]); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated value: %v", err)
	}

	// Rotation: a new primary writes with key2 and still reads key1's values.
	name := c.AddKey(true)
	tr2 := mustTransformer(t, c)
	if name != "key2" || tr2.Primary() != "aesgcm:key2" || tr2.Current(sealed) {
		t.Fatalf("after AddKey: %s %s current=%v", name, tr2.Primary(), tr2.Current(sealed))
	}
	if got, err := tr2.Open(path, sealed); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("key1's value after rotation: %q %v", got, err)
	}
	sealed2, _ := tr2.Seal(path, plain)
	if KeyOf(sealed2) != "aesgcm:key2" {
		t.Errorf("written with %s", KeyOf(sealed2))
	}
	// A server that lacks key2 says so, and names it.
	if _, err := tr.Open(path, sealed2); !errors.Is(err, ErrTransform) ||
		!strings.Contains(err.Error(), `unable to transform stored value "/registry/secrets/default/db": encrypted with key aesgcm:key2, which this API server's encryption key file does not have`) {
		t.Errorf("unknown key: %v", err)
	}
	// So does one without a key file.
	var none *Transformer
	if _, err := none.Open(path, sealed2); err == nil || !strings.Contains(err.Error(), "no encryption key file (--encryption-key-file)") {
		t.Errorf("no key file: %v", err)
	}
	if v, err := none.Seal(path, plain); err != nil || !bytes.Equal(v, plain) || !none.Current(plain) || none.Current(sealed) {
		t.Error("without a key file, values are written and read unencrypted")
	}
	// Unencrypted values are read through identity, and are not current.
	if got, err := tr2.Open(path, plain); err != nil || !bytes.Equal(got, plain) || tr2.Current(plain) {
		t.Errorf("unencrypted value: %q %v", got, err)
	}
	// Without identity they are refused.
	noIdentity := mustTransformer(t, &Config{APIVersion: APIVersion, Kind: Kind, Resources: []ResourceConfig{{Resources: []string{"secrets"},
		Providers: []Provider{{AESGCM: &Keys{Keys: []Key{{Name: "k", Secret: key32}}}}}}}})
	if _, err := noIdentity.Open(path, plain); err == nil || !strings.Contains(err.Error(), "lists no identity provider") {
		t.Errorf("unencrypted value without identity: %v", err)
	}
	// Other providers' values are named.
	if _, err := tr2.Open(path, []byte("k8s:enc:kms:v2:vault:xyz")); err == nil || !strings.Contains(err.Error(), "encrypted by kms, which Skiff does not read") {
		t.Errorf("kms value: %v", err)
	}
}

// TestKubernetesEnvelope: a value written by Kubernetes' aesgcm provider (prefix, nonce,
// sealed bytes with the etcd key as additional data) is read, and Skiff's is the same.
func TestKubernetesEnvelope(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString(key32)
	block, _ := aes.NewCipher(raw)
	aead, _ := cipher.NewGCM(block)
	nonce := bytes.Repeat([]byte{7}, 12)
	k8s := append([]byte("k8s:enc:aesgcm:v1:key1:"), nonce...)
	k8s = aead.Seal(k8s, nonce, []byte("k8s\x00secret"), []byte("/registry/secrets/ns/s"))

	tr := mustTransformer(t, &Config{APIVersion: APIVersion, Kind: Kind, Resources: []ResourceConfig{{Resources: []string{"secrets"},
		Providers: []Provider{{AESGCM: &Keys{Keys: []Key{{Name: "key1", Secret: key32}}}}}}}})
	got, err := tr.Open(Path("secrets", "ns", "s"), k8s)
	if err != nil || string(got) != "k8s\x00secret" {
		t.Fatalf("Kubernetes' value: %q %v", got, err)
	}
	ours, _ := tr.Seal(Path("secrets", "ns", "s"), []byte("k8s\x00secret"))
	prefix := len("k8s:enc:aesgcm:v1:key1:")
	if back, err := aead.Open(nil, ours[prefix:prefix+12], ours[prefix+12:], []byte("/registry/secrets/ns/s")); err != nil || string(back) != "k8s\x00secret" {
		t.Fatalf("Skiff's value read as Kubernetes reads it: %q %v", back, err)
	}
}

func TestKeyFileEdits(t *testing.T) {
	c := New()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ps := c.Resources[0].Providers
	if len(ps) != 2 || ps[0].AESGCM == nil || len(ps[0].AESGCM.Keys) != 1 || ps[1].Identity == nil {
		t.Fatalf("new file: %+v", ps)
	}
	if n := c.AddKey(false); n != "key2" || c.Resources[0].Providers[0].AESGCM.Keys[1].Name != "key2" || mustTransformer(t, c).Primary() != "aesgcm:key1" {
		t.Fatalf("secondary key %s: %+v", n, c.Resources[0].Providers[0].AESGCM.Keys)
	}
	if err := c.Remove("key1"); err == nil || !strings.Contains(err.Error(), "is the primary") {
		t.Errorf("removed the primary: %v", err)
	}
	if err := c.Promote("key2"); err != nil || mustTransformer(t, c).Primary() != "aesgcm:key2" {
		t.Fatalf("promote: %v", err)
	}
	if err := c.Promote("key9"); err == nil {
		t.Error("promoted a missing key")
	}
	if err := c.Remove("key1"); err != nil || len(c.Resources[0].Providers[0].AESGCM.Keys) != 1 {
		t.Fatalf("remove: %v", err)
	}
	if err := c.Remove("key2"); err == nil {
		t.Error("removed the last key")
	}

	// From identity first (decrypting everything) back to a key: the key goes first.
	id := &Config{APIVersion: APIVersion, Kind: Kind, Resources: []ResourceConfig{{Resources: []string{"secrets"},
		Providers: []Provider{{Identity: &struct{}{}}}}}}
	if mustTransformer(t, id).Primary() != Identity {
		t.Fatal("identity first is not identity")
	}
	id.AddKey(true)
	if mustTransformer(t, id).Primary() != "aesgcm:key1" {
		t.Fatalf("after adding a primary key: %+v", id.Resources[0].Providers)
	}

	// Written (0600) and read back the same.
	path := filepath.Join(t.TempDir(), "encryption.yaml")
	if err := c.Write(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	back, err := Load(path)
	if err != nil || back.Resources[0].Providers[0].AESGCM.Keys[0] != c.Resources[0].Providers[0].AESGCM.Keys[0] {
		t.Fatalf("read back: %+v %v", back, err)
	}
}

func FuzzParse(f *testing.F) {
	b, _ := New().Marshal()
	f.Add(b)
	f.Add([]byte(fileWith("  - identity: {}\n")))
	f.Add([]byte("resources: [{providers: [{aesgcm: {keys: [{name: x, secret: y}]}}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if _, err := NewTransformer(c); err != nil {
			t.Fatalf("a valid file makes no transformer: %v", err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	tr, _ := NewTransformer(New())
	sealed, _ := tr.Seal("/registry/secrets/a/b", []byte("k8s\x00value"))
	f.Add(sealed)
	f.Add([]byte("k8s:enc:aesgcm:v1:"))
	f.Add([]byte("k8s:enc:aesgcm:v1:key1"))
	f.Add([]byte("k8s:enc:aesgcm:v1:key1:short"))
	f.Add([]byte("k8s:enc:kms:v2:x:y"))
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, err := tr.Open("/registry/secrets/a/b", data)
		if err == nil && IsEncrypted(data) && !bytes.Equal(data, sealed) && !bytes.HasPrefix(plain, []byte("k8s\x00")) {
			t.Fatalf("a forged value opened: %q", plain)
		}
		_ = KeyOf(data)
	})
}
