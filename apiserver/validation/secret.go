package validation

import (
	"encoding/json"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// redacted stands for a Secret's value in an error message, as in Kubernetes': the
// value itself never reaches a message, a log or an Event.
const redacted = "<secret contents redacted>"

// defaultSecret gives a Secret Kubernetes' type, Opaque, and merges stringData into
// data, as Kubernetes' conversion does: stringData is write-only, a convenience for
// writing values as text, and is never stored (a key in both takes stringData's value).
func defaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 && s.Data == nil {
		s.Data = make(map[string][]byte, len(s.StringData))
	}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	s.StringData = nil
}

// dataKeys checks the keys of a ConfigMap's or a Secret's data at p and returns the size
// of the values.
func dataKeys[V ~string | ~[]byte](p *field.Path, data map[string]V) (field.ErrorList, int) {
	var errs field.ErrorList
	size := 0
	for _, k := range slices.Sorted(maps.Keys(data)) {
		errs = append(errs, invalidEach(p.Key(k), k, utilvalidation.IsConfigMapKey(k))...)
		size += len(data[k])
	}
	return errs, size
}

// validateSecret is Kubernetes' ValidateSecret: data keys and size, and the keys each
// well-known type requires.
func validateSecret(s *corev1.Secret) field.ErrorList {
	if len(s.StringData) > 0 {
		// Validate may run before Default: check stringData's keys and values as the
		// data they become.
		s = s.DeepCopy()
		defaultSecret(s)
	}
	data := field.NewPath("data")
	errs, size := dataKeys(data, s.Data)
	if size > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(data, "", corev1.MaxSecretSize))
	}
	has := func(key string) bool {
		_, ok := s.Data[key]
		return ok
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		// The token itself may come later (from a controller, in Kubernetes): only the
		// account it is for is required.
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg, corev1.SecretTypeDockerConfigJson:
		key := corev1.DockerConfigKey
		if s.Type == corev1.SecretTypeDockerConfigJson {
			key = corev1.DockerConfigJsonKey
		}
		if !has(key) {
			errs = append(errs, field.Required(data.Key(key), ""))
			break
		}
		if err := json.Unmarshal(s.Data[key], &map[string]any{}); err != nil {
			errs = append(errs, field.Invalid(data.Key(key), redacted, err.Error()))
		}
	case corev1.SecretTypeBasicAuth:
		// Either may be empty, but one must be there.
		if !has(corev1.BasicAuthUsernameKey) && !has(corev1.BasicAuthPasswordKey) {
			errs = append(errs, field.Required(data.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(data.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(data.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		for _, key := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
			if !has(key) {
				errs = append(errs, field.Required(data.Key(key), ""))
			}
		}
	}
	return errs
}

// validateSecretUpdate is Kubernetes' ValidateSecretUpdate: the type never changes, and
// an immutable Secret's data and immutability do not either.
func validateSecretUpdate(old, s *corev1.Secret) field.ErrorList {
	errs := apivalidation.ValidateImmutableField(s.Type, old.Type, field.NewPath("type"))
	if old.Immutable == nil || !*old.Immutable {
		return errs
	}
	const msg = "field is immutable when `immutable` is set"
	if s.Immutable == nil || !*s.Immutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
	}
	if !equality.Semantic.DeepEqual(old.Data, s.Data) {
		errs = append(errs, field.Forbidden(field.NewPath("data"), msg))
	}
	return errs
}
