// Package legacytoken is Kubernetes' tokens controller, for the legacy service-account
// token Secrets: a Secret of type kubernetes.io/service-account-token annotated
// kubernetes.io/service-account.name with an existing ServiceAccount gets a token of that
// account that never expires (signed with the service-account key, as the API servers
// verify it), the cluster CA bundle (ca.crt), its namespace (namespace) and the
// account's uid (annotation kubernetes.io/service-account.uid); a Secret whose account
// is gone, or is another of the same name (another uid), is deleted. The API servers
// authenticate such a token while its Secret holds it and its account exists.
//
// Kubernetes mints these Secrets no more (TokenRequest's bound tokens replaced them),
// but users and charts still make them, for a token a program outside the cluster keeps.
package legacytoken

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/pki/serviceaccount"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// SigningKey signs the tokens (kube-controller-manager's
	// --service-account-private-key-file). Required.
	SigningKey crypto.Signer
	// RootCA is the CA bundle (PEM) put in each Secret as ca.crt; empty: none.
	RootCA []byte
	// Workers sync different Secrets concurrently. Default 2.
	Workers int
	// Logger receives the controller's logs, named "legacytoken". Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig has the defaults.
func DefaultConfig() Config { return Config{Workers: 2, Logger: hclog.NewNullLogger()} }

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.SigningKey == nil {
		errs = append(errs, errors.New("signingKey: must be set"))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("legacy token controller config: %w", err)
	}
	return nil
}

// Controller is the tokens controller.
type Controller struct {
	cfg     Config
	issuer  *serviceaccount.Issuer
	cs      *client.Clientset
	secrets *cache.Lister[*corev1.Secret]
	sas     *cache.Lister[*corev1.ServiceAccount]
	synced  []interface{ HasSynced() bool }
	queue   *workqueue.Queue
	log     hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The issuer's name is no matter: a legacy token's issuer is LegacyIssuer.
	is, err := serviceaccount.NewIssuer(serviceaccount.LegacyIssuer, cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("legacy token controller: %w", err)
	}
	// Only the token Secrets are cached, as Kubernetes' controller selects them.
	secretInf := cache.InformerFor[*corev1.Secret](f, "", client.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken)})
	saInf := cache.InformerFor[*corev1.ServiceAccount](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, issuer: is, cs: cs, secrets: secretInf.Lister(), sas: saInf.Lister(),
		synced: []interface{ HasSynced() bool }{secretInf, saInf}, queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("legacytoken")}
	enqueue := func(s *corev1.Secret) {
		if s.Type == corev1.SecretTypeServiceAccountToken {
			c.queue.Add(cache.Key(s))
		}
	}
	secretInf.AddHandler(cache.Handler[*corev1.Secret]{OnAdd: enqueue, OnUpdate: func(_, s *corev1.Secret) { enqueue(s) }})
	// An account made, replaced or deleted: the Secrets that name it.
	accountChanged := func(sa *corev1.ServiceAccount) {
		for _, s := range c.secrets.List(labels.Everything()) {
			if s.Namespace == sa.Namespace && s.Annotations[corev1.ServiceAccountNameKey] == sa.Name {
				enqueue(s)
			}
		}
	}
	saInf.AddHandler(cache.Handler[*corev1.ServiceAccount]{OnAdd: accountChanged, OnDelete: accountChanged,
		OnUpdate: func(old, sa *corev1.ServiceAccount) {
			if old.UID != sa.UID {
				accountChanged(sa)
			}
		}})
	return c, nil
}

// Run syncs the token Secrets until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile fills, or deletes, one token Secret, "namespace/name".
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	secret, ok := c.secrets.Get(ns, name)
	if !ok || secret.Type != corev1.SecretTypeServiceAccountToken || secret.DeletionTimestamp != nil {
		return 0, nil
	}
	account := secret.Annotations[corev1.ServiceAccountNameKey]
	sa, ok := c.sas.Get(ns, account)
	if !ok {
		// Not cached yet, or gone: the API server says, before a Secret is deleted for it.
		got, err := c.cs.ServiceAccounts.Get(ctx, ns, account)
		switch {
		case client.IsNotFound(err):
		case err != nil:
			return 0, fmt.Errorf("get service account %s/%s: %w", ns, account, err)
		default:
			sa, ok = got, true
		}
	}
	if uid := secret.Annotations[corev1.ServiceAccountUIDKey]; !ok || uid != "" && uid != string(sa.UID) {
		c.log.Info("deleting the token secret of a service account that is gone", "secret", key, "serviceaccount", account)
		_, err := c.cs.Secrets.Delete(ctx, ns, name, client.DeleteOptions{UID: string(secret.UID)})
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return 0, fmt.Errorf("delete secret %s: %w", key, err)
		}
		return 0, nil
	}
	next, changed, err := c.fill(secret, sa)
	if err != nil || !changed {
		return 0, err
	}
	if _, err := c.cs.Secrets.Update(ctx, next); err != nil && !client.IsNotFound(err) {
		return 0, fmt.Errorf("update secret %s: %w", key, err)
	}
	return 0, nil
}

// fill is secret with what it lacks: a token of sa, ca.crt, namespace and the account's
// uid; changed is false when it lacks nothing. A token already there is kept.
func (c *Controller) fill(secret *corev1.Secret, sa *corev1.ServiceAccount) (*corev1.Secret, bool, error) {
	needToken := len(secret.Data[corev1.ServiceAccountTokenKey]) == 0
	needCA := len(c.cfg.RootCA) > 0 && !bytes.Equal(secret.Data[corev1.ServiceAccountRootCAKey], c.cfg.RootCA)
	needNS := string(secret.Data[corev1.ServiceAccountNamespaceKey]) != secret.Namespace
	needUID := secret.Annotations[corev1.ServiceAccountUIDKey] != string(sa.UID)
	if !needToken && !needCA && !needNS && !needUID {
		return nil, false, nil
	}
	next := secret.DeepCopy()
	if next.Data == nil {
		next.Data = map[string][]byte{}
	}
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	if needToken {
		tok, err := c.issuer.IssueLegacy(sa.Namespace, sa.Name, string(sa.UID), secret.Name)
		if err != nil {
			return nil, false, fmt.Errorf("token for secret %s/%s: %w", secret.Namespace, secret.Name, err)
		}
		next.Data[corev1.ServiceAccountTokenKey] = []byte(tok)
	}
	if needCA {
		next.Data[corev1.ServiceAccountRootCAKey] = bytes.Clone(c.cfg.RootCA)
	}
	next.Data[corev1.ServiceAccountNamespaceKey] = []byte(secret.Namespace)
	next.Annotations[corev1.ServiceAccountUIDKey] = string(sa.UID)
	return next, true, nil
}
