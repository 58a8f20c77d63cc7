// Package kinds is Skiff's object model: the Kubernetes kinds Skiff serves, as the Go
// types of k8s.io/api (one pinned release), and how they are encoded.
//
// The registry (All, Lookup, Of) lists each kind once with its Kubernetes names
// (kind, group/version, plural, singular, short names), whether it is namespaced and
// whether it has a spec and a status written through their own calls. Everything that
// needs "for each kind" asks it, so a new kind is one entry.
//
// Objects are stored and sent in Kubernetes' protobuf encoding, the bytes that
// application/vnd.kubernetes.protobuf carries: the magic "k8s\x00" followed by a
// runtime.Unknown holding the apiVersion, the kind and the object's own protobuf
// encoding (Encode, Decode). Stored bytes never hold metadata.resourceVersion, as in
// Kubernetes' etcd storage: it is the store's revision of the object's last change, set
// on the way out. PrepareResourceVersion adds it to stored bytes without decoding them
// (the object's bytes copied once, followed by a second metadata field holding only the
// resourceVersion, which protobuf decoders merge), so that the API server streams what
// it stores as it is.
//
// Manifests (YAML or JSON, as kubectl takes them) decode strictly with DecodeManifest: a
// misspelled field is an error that names its path.
//
// Patches are applied to objects as kube-apiserver applies them (Patch: JSON patch, JSON
// merge patch, strategic merge patch with the Go types as patch metadata), and apply's
// patch is computed as kubectl's client-side apply computes it (AppliedConfiguration,
// ApplyPatch: a three-way strategic merge patch against the configuration last applied,
// kept in the kubectl.kubernetes.io/last-applied-configuration annotation), so that
// skiffctl and the HTTP API patch the same way.
//
// What the package does not do: defaults and validation (the API server's registry owns
// them) and transport (proto/api/v1 carries these bytes with their group/version/kind).
package kinds
