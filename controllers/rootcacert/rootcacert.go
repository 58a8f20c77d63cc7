// Package rootcacert is Kubernetes' root CA certificate publisher: every namespace has a
// ConfigMap named "kube-root-ca.crt" whose "ca.crt" is the cluster CA bundle (PEM), so
// that a pod can verify the API servers it reaches from inside the cluster. The
// ConfigMap is made when the namespace appears, made again when deleted and put back
// when its data is changed, as Kubernetes' root-ca-cert-publisher does; a namespace being
// deleted gets none. Unlike Kubernetes' (which reads --root-ca-file once), it reads the
// CA file again when it changes, as every component reads its certificate files, and
// publishes the new bundle in every namespace: a CA rotation (skiff certs rotate-ca)
// reaches the pods without a restart.
package rootcacert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/controllers/internal/pernamespace"
	"github.com/skiffhq/skiff/pki"
)

// Kubernetes' names: the ConfigMap, its key, and the annotation that says what it is for.
const (
	ConfigMapName         = "kube-root-ca.crt"
	DataKey               = "ca.crt"
	DescriptionAnnotation = "kubernetes.io/description"
	Description           = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. " +
		"No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// RootCAFile is the CA bundle file published (PEM), read again when it changes
	// (another inode, size or modification time). Required.
	RootCAFile string
	// CheckInterval is how often the file is looked at. Default 10 s.
	CheckInterval time.Duration
	// Workers, and the logger, which receives the controller's logs named "rootcacert".
	pernamespace.Config
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{CheckInterval: 10 * time.Second, Config: pernamespace.DefaultConfig()}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.RootCAFile == "" {
		errs = append(errs, errors.New("rootCAFile: must be set"))
	}
	if c.CheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("checkInterval: %v must be positive", c.CheckInterval))
	}
	if err := errors.Join(append(errs, c.Config.Validate())...); err != nil {
		return fmt.Errorf("root CA publisher config: %w", err)
	}
	return nil
}

// Controller is the publisher.
type Controller struct {
	cfg  Config
	file *pki.Reloader
	ctrl *pernamespace.Controller[*corev1.ConfigMap]
	log  hclog.Logger

	mu     sync.Mutex
	rootCA []byte // what is published: the file's last bundle that loaded
}

// New makes the controller on the factory's informers; it fails if the CA file does
// not load. Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	file, err := pki.NewReloader("", "", cfg.RootCAFile)
	if err != nil {
		return nil, fmt.Errorf("root CA publisher: %w", err)
	}
	rootCA, err := file.CAPEM()
	if err != nil {
		return nil, fmt.Errorf("root CA publisher: %w", err)
	}
	c := &Controller{cfg: cfg, file: file, rootCA: rootCA, log: cfg.Logger.Named("rootcacert")}
	c.ctrl = pernamespace.New(cs.ConfigMaps, f, pernamespace.Spec[*corev1.ConfigMap]{
		Name: ConfigMapName,
		New: func(ns string) *corev1.ConfigMap {
			return &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ConfigMapName, Annotations: map[string]string{DescriptionAnnotation: Description}},
				Data:       c.data(),
			}
		},
		Fix: c.fix,
	}, pernamespace.Config{Workers: cfg.Workers, Logger: c.log})
	return c, nil
}

func (c *Controller) data() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]string{DataKey: string(c.rootCA)}
}

// fix puts the published bundle and the annotation back into cm.
func (c *Controller) fix(cm *corev1.ConfigMap) (*corev1.ConfigMap, bool) {
	data := c.data()
	if maps.Equal(cm.Data, data) && len(cm.BinaryData) == 0 && cm.Annotations[DescriptionAnnotation] == Description {
		return nil, false
	}
	cm = cm.DeepCopy()
	cm.Data, cm.BinaryData = data, nil
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[DescriptionAnnotation] = Description
	return cm, true
}

// Run publishes until ctx ends, and publishes the CA file's bundle anew in every
// namespace when the file changes. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		t := time.NewTicker(c.cfg.CheckInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.checkFile()
			}
		}
	})
	return c.ctrl.Run(ctx)
}

// checkFile takes the CA file's bundle, if it changed, and has every namespace's
// ConfigMap updated. A file that does not load keeps the last bundle (pki.Reloader).
func (c *Controller) checkFile() {
	b, err := c.file.CAPEM()
	if err != nil {
		return
	}
	c.mu.Lock()
	same := bytes.Equal(b, c.rootCA)
	c.rootCA = b
	c.mu.Unlock()
	if !same {
		c.log.Info("the root CA file changed: publishing it in every namespace", "file", c.cfg.RootCAFile)
		c.ctrl.Resync()
	}
}
