package encryption

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/pki"
)

// The key file's type, as Kubernetes names it.
const (
	APIVersion = "apiserver.config.k8s.io/v1"
	Kind       = "EncryptionConfiguration"
	// Resource is what Skiff encrypts: Secrets.
	Resource = "secrets"
)

// KeySize is the size of the keys Skiff makes (AES-256); a key file may also hold
// 16- and 24-byte keys, as Kubernetes' may.
const KeySize = 32

// Config is a key file: Kubernetes' EncryptionConfiguration.
type Config struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Resources  []ResourceConfig `json:"resources"`
}

// ResourceConfig is how a list of resources is stored: by the first provider, read by
// any.
type ResourceConfig struct {
	Resources []string   `json:"resources"`
	Providers []Provider `json:"providers"`
}

// Provider is one way of storing values. Exactly one field is set. Skiff reads aesgcm
// and identity; the others are Kubernetes' and refused by name.
type Provider struct {
	AESGCM    *Keys          `json:"aesgcm,omitempty"`
	Identity  *struct{}      `json:"identity,omitempty"`
	AESCBC    *Keys          `json:"aescbc,omitempty"`
	Secretbox *Keys          `json:"secretbox,omitempty"`
	KMS       map[string]any `json:"kms,omitempty"`
}

// Keys are a provider's keys, the first the one it writes with.
type Keys struct {
	Keys []Key `json:"keys"`
}

// Key is a named key; Secret is its bytes in base64.
type Key struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// Parse reads a key file and checks it (Validate).
func Parse(data []byte) (*Config, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	var c Config
	strict, err := kjson.UnmarshalStrict(js, &c)
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads the key file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	return c, nil
}

// Validate reports every problem of the file, by field path, in Kubernetes' words where
// Kubernetes has them.
func (c *Config) Validate() error {
	var errs field.ErrorList
	if c.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{APIVersion}))
	}
	if c.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{Kind}))
	}
	rp := field.NewPath("resources")
	if len(c.Resources) != 1 {
		errs = append(errs, field.Invalid(rp, len(c.Resources), "must hold exactly one entry, for "+Resource))
	}
	names := map[string]bool{}
	for i, r := range c.Resources {
		p := rp.Index(i)
		if !slices.Equal(r.Resources, []string{Resource}) {
			errs = append(errs, field.Invalid(p.Child("resources"), r.Resources, "Skiff encrypts "+Resource+" only: must be ["+Resource+"]"))
		}
		if len(r.Providers) == 0 {
			errs = append(errs, field.Required(p.Child("providers"), ""))
		}
		for j, pr := range r.Providers {
			errs = append(errs, pr.validate(p.Child("providers").Index(j), names)...)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs.ToAggregate()
}

func (pr *Provider) validate(p *field.Path, names map[string]bool) field.ErrorList {
	var errs field.ErrorList
	set := 0
	for _, s := range []bool{pr.AESGCM != nil, pr.Identity != nil, pr.AESCBC != nil, pr.Secretbox != nil, pr.KMS != nil} {
		if s {
			set++
		}
	}
	if set != 1 {
		return field.ErrorList{field.Invalid(p, "", "exactly one provider must be set")}
	}
	for name, set := range map[string]bool{"aescbc": pr.AESCBC != nil, "secretbox": pr.Secretbox != nil, "kms": pr.KMS != nil} {
		if set {
			errs = append(errs, field.Forbidden(p.Child(name), "not supported by Skiff (it reads aesgcm and identity)"))
		}
	}
	if pr.AESGCM == nil {
		return errs
	}
	kp := p.Child("aesgcm", "keys")
	if len(pr.AESGCM.Keys) == 0 {
		errs = append(errs, field.Required(kp, ""))
	}
	for i, k := range pr.AESGCM.Keys {
		ip := kp.Index(i)
		switch {
		case k.Name == "":
			errs = append(errs, field.Required(ip.Child("name"), ""))
		case strings.Contains(k.Name, ":"):
			errs = append(errs, field.Invalid(ip.Child("name"), k.Name, "should not contain ':'"))
		case names[k.Name]:
			errs = append(errs, field.Duplicate(ip.Child("name"), k.Name))
		}
		names[k.Name] = true
		if _, err := decodeKey(k.Secret); err != nil {
			errs = append(errs, field.Invalid(ip.Child("secret"), "REDACTED", err.Error()))
		}
	}
	return errs
}

// decodeKey reads a key's base64 secret, of an AES key's size.
func decodeKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, fmt.Errorf("secret is required")
	}
	b, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return nil, fmt.Errorf("secret is not valid base64: %v", err)
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("secret is not of the expected length, got %d, expected one of [16 24 32]", len(b))
}

// New is a new key file: one new AES-GCM key, key1, and identity after it, so values
// stored before the file existed stay readable until they are re-encrypted.
func New() *Config {
	c := &Config{APIVersion: APIVersion, Kind: Kind, Resources: []ResourceConfig{{
		Resources: []string{Resource},
		Providers: []Provider{{AESGCM: &Keys{}}, {Identity: &struct{}{}}},
	}}}
	c.AddKey(true)
	return c
}

// aesgcm is the file's AES-GCM provider, made first when it has none.
func (c *Config) aesgcm() *Keys {
	r := &c.Resources[0]
	for i := range r.Providers {
		if r.Providers[i].AESGCM != nil {
			return r.Providers[i].AESGCM
		}
	}
	r.Providers = append([]Provider{{AESGCM: &Keys{}}}, r.Providers...)
	return r.Providers[0].AESGCM
}

// AddKey adds a new random key and returns its name (key1, key2, ...: one more than the
// highest). As primary it is first, and the AES-GCM provider first of the providers;
// otherwise it is last, only to read with, until it is promoted.
func (c *Config) AddKey(primary bool) string {
	keys := c.aesgcm()
	n := 0
	for _, k := range keys.Keys {
		if v, err := strconv.Atoi(strings.TrimPrefix(k.Name, "key")); err == nil && strings.HasPrefix(k.Name, "key") {
			n = max(n, v)
		}
	}
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail
	}
	k := Key{Name: "key" + strconv.Itoa(n+1), Secret: base64.StdEncoding.EncodeToString(b)}
	if !primary {
		keys.Keys = append(keys.Keys, k)
		return k.Name
	}
	keys.Keys = append([]Key{k}, keys.Keys...)
	c.promoteProvider()
	return k.Name
}

// Promote makes key name the primary.
func (c *Config) Promote(name string) error {
	keys := c.aesgcm()
	i := slices.IndexFunc(keys.Keys, func(k Key) bool { return k.Name == name })
	if i < 0 {
		return fmt.Errorf("no key named %q", name)
	}
	k := keys.Keys[i]
	keys.Keys = append([]Key{k}, slices.Delete(keys.Keys, i, i+1)...)
	c.promoteProvider()
	return nil
}

// Remove deletes key name, which must not be the primary: values it encrypted become
// unreadable, so remove a key only once every value is re-encrypted with the primary.
func (c *Config) Remove(name string) error {
	keys := c.aesgcm()
	i := slices.IndexFunc(keys.Keys, func(k Key) bool { return k.Name == name })
	switch {
	case i < 0:
		return fmt.Errorf("no key named %q", name)
	case i == 0 && c.Resources[0].Providers[0].AESGCM == keys:
		return fmt.Errorf("key %q is the primary: promote another first", name)
	case len(keys.Keys) == 1:
		return fmt.Errorf("key %q is the last key", name)
	}
	keys.Keys = slices.Delete(keys.Keys, i, i+1)
	return nil
}

// promoteProvider puts the AES-GCM provider first.
func (c *Config) promoteProvider() {
	ps := c.Resources[0].Providers
	i := slices.IndexFunc(ps, func(p Provider) bool { return p.AESGCM != nil })
	p := ps[i]
	c.Resources[0].Providers = append([]Provider{p}, slices.Delete(ps, i, i+1)...)
}

// Marshal is the file's YAML.
func (c *Config) Marshal() ([]byte, error) { return yaml.Marshal(c) }

// Write replaces the key file at path (mode 0600), atomically.
func (c *Config) Write(path string) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("encryption key file %s: %w", path, err)
	}
	b, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("encryption key file %s: %w", path, err)
	}
	return pki.WriteFile(path, b, 0o600)
}

// FileName is the key file's name where Skiff makes one: in skiff up's data directory,
// and beside the certificates skiff certs init makes.
const FileName = "encryption.yaml"

// EnsureFile makes a new key file at path (New) unless one is there, and reports
// whether it did.
func EnsureFile(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("encryption key file: %w", err)
	}
	if err := New().Write(path); err != nil {
		return false, err
	}
	return true, nil
}
