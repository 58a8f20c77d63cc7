package validation

import (
	"net"
	"regexp"
	"strings"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/labels"
)

const (
	configKeyFmt = `[-._a-zA-Z0-9]+`
	configKeyMsg = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' " +
		"(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '" + configKeyFmt + "')"
	configKeyMaxLen = 253

	// configMapMaxSize is Kubernetes' limit on a ConfigMap's data and binaryData together.
	configMapMaxSize = 1024 * 1024
)

var configKeyRE = regexp.MustCompile(`^` + configKeyFmt + `$`)

var (
	eventTypes     = []string{"Normal", "Warning"}
	namespacePhase = []string{"Active", "Terminating"}
)

func (e *errs) nodeSpec(p path, spec *corev1.NodeSpec) {
	seen := map[[2]string]bool{}
	for i, t := range spec.GetTaints() {
		tp := p.child("taints").index(i)
		if t.GetKey() == "" {
			e.required(tp.child("key"), "")
		} else if err := labels.ValidateKey(t.GetKey()); err != nil {
			e.invalid(tp.child("key"), t.GetKey(), stripSubject(err))
		}
		if err := labels.ValidateValue(t.GetValue()); err != nil {
			e.invalid(tp.child("value"), t.GetValue(), stripSubject(err))
		}
		if t.GetEffect() == "" {
			e.required(tp.child("effect"), "")
		} else {
			e.oneOf(tp.child("effect"), t.GetEffect(), taintEffects...)
		}
		k := [2]string{t.GetKey(), t.GetEffect()}
		if seen[k] {
			e.add(Duplicate, tp, t.GetKey()+":"+t.GetEffect(), "taints must be unique by key and effect pair")
		}
		seen[k] = true
	}
	if c := spec.GetPodCidr(); c != "" {
		if _, _, err := net.ParseCIDR(c); err != nil {
			e.invalid(p.child("podCIDR"), c, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
		}
	}
}

func (e *errs) configMap(cm *corev1.ConfigMap) {
	size := 0
	for _, k := range sortedKeys(cm.GetData()) {
		e.configKey(path("data").key(k), k)
		size += len(cm.GetData()[k])
	}
	for _, k := range sortedKeys(cm.GetBinaryData()) {
		kp := path("binaryData").key(k)
		e.configKey(kp, k)
		if _, dup := cm.GetData()[k]; dup {
			e.invalid(kp, k, "duplicate of key present in data")
		}
		size += len(cm.GetBinaryData()[k])
	}
	if size > configMapMaxSize {
		e.tooLong(path("data"), configMapMaxSize)
	}
}

func (e *errs) configKey(p path, k string) {
	if len(k) > configKeyMaxLen {
		e.invalid(p, k, maxLenMsg(configKeyMaxLen))
	}
	if !configKeyRE.MatchString(k) {
		e.invalid(p, k, configKeyMsg)
	}
	switch {
	case k == ".":
		e.invalid(p, k, "must not be '.'")
	case k == "..":
		e.invalid(p, k, "must not be '..'")
	case strings.HasPrefix(k, ".."):
		e.invalid(p, k, "must not start with '..'")
	}
}

func (e *errs) event(ev *corev1.Event) {
	io := path("involvedObject")
	if ev.GetInvolvedObject().GetKind() == "" {
		e.required(io.child("kind"), "")
	}
	if ev.GetInvolvedObject().GetName() == "" {
		e.required(io.child("name"), "")
	}
	if ns := ev.GetInvolvedObject().GetNamespace(); ns != "" {
		e.name(io.child("namespace"), ns, dns1123Label)
	}
	if t := ev.GetType(); t != "" {
		e.oneOf(path("type"), t, eventTypes...)
	}
	e.nonNegative(path("count"), int64(ev.GetCount()))
}

func (e *errs) leaseSpec(p path, spec *corev1.LeaseSpec) {
	if spec == nil {
		return
	}
	if spec.LeaseDurationSeconds != nil && spec.GetLeaseDurationSeconds() <= 0 {
		e.invalid(p.child("leaseDurationSeconds"), spec.GetLeaseDurationSeconds(), "must be greater than 0")
	}
	if spec.LeaseTransitions != nil {
		e.nonNegative(p.child("leaseTransitions"), int64(spec.GetLeaseTransitions()))
	}
}

func (e *errs) namespaceSpec(p path, spec *corev1.NamespaceSpec) {
	for i, f := range spec.GetFinalizers() {
		if err := labels.ValidateKey(f); err != nil {
			e.invalid(p.child("finalizers").index(i), f, stripSubject(err))
		}
	}
}
