// Package validation owns what the API server accepts: Default fills the fields a user
// may leave out, and Validate, ValidateUpdate and ValidateStatus check an object against
// Kubernetes' rules for its kind before it is stored.
//
// The rules and their messages follow Kubernetes (apimachinery's field errors and the
// core and apps validation), so that a manifest Kubernetes accepts is accepted here and a
// rejected one is rejected with the message a Kubernetes user expects:
//
//	spec.template.spec.containers[0].image: Required value
//	spec.replicas: Invalid value: -1: must be greater than or equal to 0
//
// Every check runs and every problem is reported, as an ErrorList of *Error; each names
// its field by path, so the API server can return them as one InvalidArgument status and
// clients can tell which field was wrong.
//
// The functions are pure: they read the objects they are given and nothing else. They do
// not know about namespaces that exist, nodes, or other objects; that is the API
// server's business. Validate accepts the zero value of every field Default fills, so it
// may run before or after Default (the API server runs Default first, so that what is
// stored is complete), and ValidateUpdate does not count a filled-in default as a change.
//
// What is not checked: server-owned metadata (uid, resourceVersion, timestamps,
// generation), which the API server sets itself, and the consistency of status counters
// with each other, which the controllers that write them own.
package validation
