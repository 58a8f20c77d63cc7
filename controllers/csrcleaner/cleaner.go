// Package csrcleaner is Kubernetes' CSR cleaner (kube-controller-manager's csrcleaner):
// it deletes CertificateSigningRequests once they are of no more use — issued ones an
// hour after their approval or once their certificate expired, denied and failed ones
// an hour after that condition, pending ones a day after they were made — so that
// requests do not pile up. Each request is looked at again when it is due, not by
// polling them all.
package csrcleaner

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
)

// Kubernetes' expirations.
const (
	PendingExpiration  = 24 * time.Hour
	ApprovedExpiration = time.Hour
	DeniedExpiration   = time.Hour
	FailedExpiration   = time.Hour
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Logger receives the controller's logs, named "csrcleaner". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{Logger: hclog.NewNullLogger(), Now: time.Now} }

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("csr cleaner config: %w", err)
	}
	return nil
}

// Controller is the cleaner.
type Controller struct {
	cfg   Config
	cs    *client.Clientset
	inf   *cache.Informer[*certificatesv1.CertificateSigningRequest]
	csrs  *cache.Lister[*certificatesv1.CertificateSigningRequest]
	queue *workqueue.Queue
	log   hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	inf := cache.InformerFor[*certificatesv1.CertificateSigningRequest](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, inf: inf, csrs: inf.Lister(), queue: workqueue.New(workqueue.Config{}),
		log: cfg.Logger.Named("csrcleaner")}
	add := func(csr *certificatesv1.CertificateSigningRequest) { c.queue.Add(cache.Key(csr)) }
	inf.AddHandler(cache.Handler[*certificatesv1.CertificateSigningRequest]{OnAdd: add,
		OnUpdate: func(_, csr *certificatesv1.CertificateSigningRequest) { add(csr) }})
	return c, nil
}

// Run deletes requests as they expire until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.inf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, 1, c.log, c.Reconcile)
	return nil
}

// Reconcile deletes one request by key if it expired, or says when to look again.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	_, name := cache.SplitKey(key)
	csr, ok := c.csrs.Get("", name)
	if !ok || csr.DeletionTimestamp != nil {
		return 0, nil
	}
	in, why := ExpiresIn(csr, c.cfg.Now())
	if why == "" {
		return 0, nil // approved, not yet issued: the signer's
	}
	if in > 0 {
		return in, nil
	}
	_, err := c.cs.CertificateSigningRequests.Delete(ctx, "", name, client.DeleteOptions{UID: string(csr.UID)})
	if err != nil && !client.IsNotFound(err) {
		return 0, fmt.Errorf("delete csr %s: %w", name, err)
	}
	c.log.Info("deleted an expired certificate signing request", "csr", name, "uid", types.UID(csr.UID), "why", why)
	return 0, nil
}

// ExpiresIn is how long until csr is due for deletion at now (<= 0: due), and why it
// is or will be: Kubernetes' isIssuedPastDeadline, isDeniedPastDeadline,
// isFailedPastDeadline, isPendingPastDeadline and isIssuedExpired, the soonest; why
// is "" for a request none of them will delete as it is.
func ExpiresIn(csr *certificatesv1.CertificateSigningRequest, now time.Time) (time.Duration, string) {
	in, why := time.Duration(1<<63-1), ""
	due := func(at time.Time, reason string) {
		if d := at.Sub(now); d < in {
			in, why = d, reason
		}
	}
	for _, cond := range csr.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case certificatesv1.CertificateApproved:
			if len(csr.Status.Certificate) > 0 {
				due(cond.LastUpdateTime.Add(ApprovedExpiration), "issued an hour ago")
			}
		case certificatesv1.CertificateDenied:
			due(cond.LastUpdateTime.Add(DeniedExpiration), "denied an hour ago")
		case certificatesv1.CertificateFailed:
			due(cond.LastUpdateTime.Add(FailedExpiration), "failed an hour ago")
		}
	}
	if len(csr.Status.Conditions) == 0 {
		due(csr.CreationTimestamp.Add(PendingExpiration), "pending for a day")
	}
	if block, _ := pem.Decode(csr.Status.Certificate); block != nil {
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			due(cert.NotAfter, "its certificate expired")
		}
	}
	return in, why
}
