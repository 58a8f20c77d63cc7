// Package pki owns Skiff's certificates: a cluster CA, the leaf certificates it issues
// (apiservers, controller-manager, scheduler, kubelets, admin), their PEM files, and TLS
// configurations that read those files again when they change, so that rotating a
// certificate needs no restart.
//
// Identities live in the subject: the common name is the user (system:node:w1), the
// organizations are its groups (skiff:nodes). Keys are ECDSA P-256. The CA lives ten
// years, leaves one.
//
// The package does not decide who may do what (package apiserver/auth does), and it
// keeps no revocation list: a leaked leaf stays valid until it expires or the CA is
// replaced. It sits below every component: servers, clients and `skiff certs` use it.
package pki
