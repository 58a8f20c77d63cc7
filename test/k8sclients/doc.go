// Package k8sclients tests Skiff's REST API with Kubernetes' own clients: client-go and
// kubectl (built from k8s.io/kubectl), at the release Skiff's k8s.io modules pin. It is
// a module of its own so that Skiff does not depend on them.
package k8sclients
