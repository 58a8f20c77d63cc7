// Package auth decides who a request comes from (Authenticator) and whether that
// identity may do what it asks (Authorizer). Both are pure: the API server extracts the
// credentials from the connection and the action from the request, and maps the errors
// to gRPC codes (Unauthenticated, PermissionDenied).
//
// Identities are a user and groups: from a client certificate, the common name and the
// organizations; from a bearer token, the token file's line. The authorizer knows Skiff's
// roles by group (see Authorizer); a kubelet (group skiff:nodes, user system:node:NAME)
// is confined to its own Node, its Lease and the pods bound to it, as Kubernetes'
// NodeRestriction confines it. Some of those checks need the stored object (which node
// is this pod bound to?): the authorizer returns them as a Guard the server applies to
// the object it reads, inside its compare-and-swap, so a check and its write see the
// same revision.
package auth
