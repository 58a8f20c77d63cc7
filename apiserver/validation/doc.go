// Package validation owns what the API server accepts: Default fills the fields a user
// may leave out, and Validate, ValidateUpdate and ValidateStatus check an object against
// Kubernetes' rules for its kind before it is stored. Objects are Kubernetes' own Go
// types (k8s.io/api, through package kinds).
//
// The rules and their messages are Kubernetes', so that a manifest Kubernetes accepts is
// accepted here (within what Skiff supports, below) and a rejected one is rejected with
// the message a Kubernetes user expects. Problems are apimachinery's field errors, and
// the checks are apimachinery's wherever it has them (object metadata, labels,
// selectors, names, ports, IP addresses, quantities); what is Skiff's own is written
// against k8s.io/api and words its messages the same way:
//
//	spec.template.spec.containers[0].image: Required value
//	spec.replicas: Invalid value: -1: must be greater than or equal to 0
//
// Every check runs and every problem is reported, as an ErrorList of *field.Error joined
// with "; "; each names its field by path, so the API server can return them as one
// InvalidArgument status and clients can tell which field was wrong.
//
// Not supported by Skiff: Kubernetes' types have every field Kubernetes has, and Skiff
// acts on some of them only, listed per kind in supportedFields. Any other field that is
// set is refused with its path, never silently ignored:
//
//	spec.template.spec.containers[0].resizePolicy: Forbidden: not supported by Skiff
//
// Validate and ValidateUpdate look for such fields in the whole object, ValidateStatus
// in its status only. Supporting a new field is a line in that table, with the code that
// acts on it. For the same reason Default fills Kubernetes' defaults of supported fields
// only.
//
// The functions are pure: they read the objects they are given and nothing else. They do
// not know about namespaces that exist, nodes, or other objects; that is the API
// server's business. Validate accepts the zero value of every field Default fills, so it
// may run before or after Default (the API server runs Default first, so that what is
// stored is complete), and ValidateUpdate does not count a filled-in default as a change.
// Validate accepts an object named by generateName alone: the API server names it after.
//
// What is not checked: server-owned metadata (uid, resourceVersion, timestamps,
// generation) beyond apimachinery's form checks, as the API server sets it itself; the
// consistency of status counters with each other, which the controllers that write them
// own; and the syntax of quantities and int-or-percent values, which Kubernetes' types
// parse when an object is decoded.
package validation
