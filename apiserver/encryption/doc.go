// Package encryption encrypts objects at rest: what the API server writes to the store
// for the kinds the key file names (Secrets), so that the store's files, its Raft log,
// its snapshots and backups never hold their plaintext.
//
// The key file is Kubernetes' EncryptionConfiguration (apiserver.config.k8s.io/v1), of
// which Skiff reads the aesgcm and identity providers for the resource "secrets":
//
//	apiVersion: apiserver.config.k8s.io/v1
//	kind: EncryptionConfiguration
//	resources:
//	  - resources: [secrets]
//	    providers:
//	      - aesgcm:
//	          keys:
//	            - name: key2
//	              secret: <32 random bytes, base64>
//	            - name: key1
//	              secret: <...>
//	      - identity: {}
//
// The first key of the first provider is the primary: every write is encrypted with it.
// The others only read what was written before: a value says which key encrypted it.
// identity, when listed, reads values stored unencrypted (written before the key file
// existed), and when first makes writes unencrypted (to decrypt everything, as in
// Kubernetes).
//
// A value encrypted with AES-GCM is Kubernetes' envelope, byte for byte:
//
//	k8s:enc:aesgcm:v1:KEYNAME:<12-byte nonce><ciphertext and 16-byte tag>
//
// with a random nonce per write and, as additional authenticated data, the object's
// place ("/registry/secrets/NAMESPACE/NAME"), so a value copied under another name does
// not decrypt. Reading a value whose key the file lacks, or that fails authentication,
// is an error that names the key; it never yields garbage.
//
// The package is pure: it parses key files and transforms bytes. The API server owns
// the file's reloading, and the loop that re-encrypts stored values when the primary key
// changes (reencryptor, apiserver/atrest.go).
package encryption
