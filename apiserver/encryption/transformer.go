package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Prefix starts every encrypted value, whatever encrypted it: a value without it is
// stored unencrypted.
const Prefix = "k8s:enc:"

// aesgcmPrefix starts a value AES-GCM encrypted; the key's name and a ':' follow.
const aesgcmPrefix = Prefix + "aesgcm:v1:"

// Identity is KeyOf's name for an unencrypted value.
const Identity = "identity"

// ErrTransform is what every failure to read a stored value wraps.
var ErrTransform = errors.New("unable to transform stored value")

// Transformer encrypts values as a key file says and decrypts what any of its keys
// encrypted. A nil *Transformer is a server without a key file: it writes values
// unencrypted and reads only those. It is safe for concurrent use.
type Transformer struct {
	primary    string // the primary key's name; "" when identity is first
	primaryPfx []byte // its values' prefix
	keys       map[string]cipher.AEAD
	identity   bool // identity is listed: unencrypted values are read
}

// NewTransformer makes the transformer of a checked key file.
func NewTransformer(c *Config) (*Transformer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	t := &Transformer{keys: map[string]cipher.AEAD{}}
	for i, p := range c.Resources[0].Providers {
		if p.Identity != nil {
			t.identity = true
			continue
		}
		for j, k := range p.AESGCM.Keys {
			raw, err := decodeKey(k.Secret)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k.Name, err)
			}
			block, err := aes.NewCipher(raw)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k.Name, err)
			}
			aead, err := cipher.NewGCM(block)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k.Name, err)
			}
			t.keys[k.Name] = aead
			if i == 0 && j == 0 {
				t.primary, t.primaryPfx = k.Name, []byte(aesgcmPrefix+k.Name+":")
			}
		}
	}
	return t, nil
}

// Primary names what writes use: "aesgcm:NAME", or "identity".
func (t *Transformer) Primary() string {
	if t == nil || t.primary == "" {
		return Identity
	}
	return "aesgcm:" + t.primary
}

// Path is the place of an object that its value is bound to, as Kubernetes names it
// in etcd: "/registry/secrets/NAMESPACE/NAME".
func Path(resource, namespace, name string) string {
	if namespace == "" {
		return "/registry/" + resource + "/" + name
	}
	return "/registry/" + resource + "/" + namespace + "/" + name
}

// Seal returns what to store for plain, the value of the object at path.
func (t *Transformer) Seal(path string, plain []byte) ([]byte, error) {
	if t == nil || t.primary == "" {
		return plain, nil
	}
	aead := t.keys[t.primary]
	out := make([]byte, len(t.primaryPfx)+aead.NonceSize(), len(t.primaryPfx)+aead.NonceSize()+len(plain)+aead.Overhead())
	copy(out, t.primaryPfx)
	nonce := out[len(t.primaryPfx):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("encrypt %s: %w", path, err)
	}
	return aead.Seal(out, nonce, plain, []byte(path)), nil
}

// Open returns the plaintext of stored, the value of the object at path. It fails,
// wrapping ErrTransform and naming the key, when the value was encrypted with a key this
// transformer lacks or does not authenticate, and when it is unencrypted but identity
// is not listed.
func (t *Transformer) Open(path string, stored []byte) ([]byte, error) {
	fail := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrTransform, path, fmt.Sprintf(format, args...))
	}
	if !IsEncrypted(stored) {
		if t != nil && !t.identity {
			return fail("the value is stored unencrypted and the encryption key file lists no identity provider to read it")
		}
		return stored, nil
	}
	key := KeyOf(stored)
	name, ok := bytes.CutPrefix(stored, []byte(aesgcmPrefix))
	if !ok {
		return fail("encrypted by %s, which Skiff does not read", key)
	}
	i := bytes.IndexByte(name, ':')
	if i < 0 {
		return fail("the value's envelope has no key name")
	}
	if t == nil {
		return fail("encrypted with key %s and this API server has no encryption key file (--encryption-key-file)", key)
	}
	aead, ok := t.keys[string(name[:i])]
	if !ok {
		return fail("encrypted with key %s, which this API server's encryption key file does not have", key)
	}
	sealed := name[i+1:]
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return fail("encrypted with key %s: the value is truncated", key)
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(path))
	if err != nil {
		return fail("decrypt with key %s: %v (a different key of that name, or a damaged value)", key, err)
	}
	return plain, nil
}

// Current reports whether stored is as Seal writes now: encrypted with the primary key
// (unencrypted, when identity is first). A value that is not needs re-encrypting.
func (t *Transformer) Current(stored []byte) bool {
	if t == nil || t.primary == "" {
		return !IsEncrypted(stored)
	}
	return bytes.HasPrefix(stored, t.primaryPfx)
}

// IsEncrypted reports whether a stored value is encrypted (by any provider).
func IsEncrypted(stored []byte) bool { return bytes.HasPrefix(stored, []byte(Prefix)) }

// KeyOf names what wrote stored: "aesgcm:NAME" for a value AES-GCM encrypted, the
// provider of another encrypted value ("aescbc", "kms", ...), "identity" for an
// unencrypted one.
func KeyOf(stored []byte) string {
	rest, ok := bytes.CutPrefix(stored, []byte(Prefix))
	if !ok {
		return Identity
	}
	if name, ok := bytes.CutPrefix(rest, []byte("aesgcm:v1:")); ok {
		if i := bytes.IndexByte(name, ':'); i >= 0 {
			return "aesgcm:" + string(name[:i])
		}
		return "aesgcm"
	}
	if i := bytes.IndexByte(rest, ':'); i >= 0 && i < 32 {
		return string(rest[:i])
	}
	return "an unknown provider"
}
