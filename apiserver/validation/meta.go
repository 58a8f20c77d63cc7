package validation

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
	"github.com/skiffhq/skiff/proto/labels"
)

// Name rules and messages, as apimachinery's validation package words them.
const (
	dns1123LabelFmt     = `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
	dns1123SubdomainFmt = dns1123LabelFmt + `(\.` + dns1123LabelFmt + `)*`

	dns1123LabelMsg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', " +
		"and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', " +
		"regex used for validation is '" + dns1123LabelFmt + "')"
	dns1123SubdomainMsg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
		"and must start and end with an alphanumeric character (e.g. 'example.com', " +
		"regex used for validation is '" + dns1123SubdomainFmt + "')"

	dns1123LabelMaxLen     = 63
	dns1123SubdomainMaxLen = 253

	// totalAnnotationSizeLimit is Kubernetes' limit on the keys and values of all annotations.
	totalAnnotationSizeLimit = 256 * 1024
)

var (
	dns1123LabelRE     = regexp.MustCompile(`^` + dns1123LabelFmt + `$`)
	dns1123SubdomainRE = regexp.MustCompile(`^` + dns1123SubdomainFmt + `$`)
)

// nameRule checks a name and returns every reason it is not valid.
type nameRule func(name string) []string

func dns1123Label(name string) []string {
	var msgs []string
	if len(name) > dns1123LabelMaxLen {
		msgs = append(msgs, maxLenMsg(dns1123LabelMaxLen))
	}
	if !dns1123LabelRE.MatchString(name) {
		msgs = append(msgs, dns1123LabelMsg)
	}
	return msgs
}

func dns1123Subdomain(name string) []string {
	var msgs []string
	if len(name) > dns1123SubdomainMaxLen {
		msgs = append(msgs, maxLenMsg(dns1123SubdomainMaxLen))
	}
	if !dns1123SubdomainRE.MatchString(name) {
		msgs = append(msgs, dns1123SubdomainMsg)
	}
	return msgs
}

func maxLenMsg(n int) string { return fmt.Sprintf("must be no more than %d characters", n) }

// nameRuleFor is the rule for metadata.name of a kind: Namespaces are DNS labels (they
// become parts of other names), everything else a DNS subdomain.
func nameRuleFor(info *kinds.Info) nameRule {
	if info.Kind == kinds.Namespace {
		return dns1123Label
	}
	return dns1123Subdomain
}

// name reports each problem with name at p.
func (e *errs) name(p path, name string, rule nameRule) {
	for _, msg := range rule(name) {
		e.invalid(p, name, msg)
	}
}

// objectMeta checks metadata as it is on create or update. An empty namespace is
// accepted for namespaced kinds, since the API server fills in "default".
func (e *errs) objectMeta(p path, md *corev1.ObjectMeta, info *kinds.Info) {
	rule := nameRuleFor(info)
	switch {
	case md.GetName() != "":
		e.name(p.child("name"), md.GetName(), rule)
	case md.GetGenerateName() != "":
		// A generated name is the prefix plus random characters, so a trailing '-' is fine.
		prefix := md.GetGenerateName()
		for _, msg := range rule(strings.TrimSuffix(prefix, "-")) {
			e.invalid(p.child("generateName"), prefix, msg)
		}
	default:
		e.required(p.child("name"), "name or generateName is required")
	}
	if ns := md.GetNamespace(); ns != "" {
		if info.Namespaced {
			e.name(p.child("namespace"), ns, dns1123Label)
		} else {
			e.forbidden(p.child("namespace"), "not allowed on this type")
		}
	}
	e.labels(p.child("labels"), md.GetLabels())
	e.annotations(p.child("annotations"), md.GetAnnotations())
	e.ownerReferences(p.child("ownerReferences"), md.GetOwnerReferences())
	for i, f := range md.GetFinalizers() {
		if err := labels.ValidateKey(f); err != nil {
			e.invalid(p.child("finalizers").index(i), f, stripSubject(err))
		}
	}
}

// templateMeta checks the metadata of a pod template: only labels and annotations matter.
func (e *errs) templateMeta(p path, md *corev1.ObjectMeta) {
	e.labels(p.child("labels"), md.GetLabels())
	e.annotations(p.child("annotations"), md.GetAnnotations())
}

// labels checks keys and values of a label map (also used for nodeSelector).
func (e *errs) labels(p path, m map[string]string) {
	for _, k := range sortedKeys(m) {
		if err := labels.ValidateKey(k); err != nil {
			e.invalid(p, k, stripSubject(err))
		}
		if err := labels.ValidateValue(m[k]); err != nil {
			e.invalid(p, m[k], stripSubject(err))
		}
	}
}

func (e *errs) annotations(p path, m map[string]string) {
	size := 0
	for _, k := range sortedKeys(m) {
		if err := labels.ValidateKey(k); err != nil {
			e.invalid(p, k, stripSubject(err))
		}
		size += len(k) + len(m[k])
	}
	if size > totalAnnotationSizeLimit {
		e.tooLong(p, totalAnnotationSizeLimit)
	}
}

func (e *errs) ownerReferences(p path, refs []*corev1.OwnerReference) {
	var controllers []string
	for i, r := range refs {
		rp := p.index(i)
		if r.GetApiVersion() == "" {
			e.required(rp.child("apiVersion"), "")
		}
		if r.GetKind() == "" {
			e.required(rp.child("kind"), "")
		}
		if r.GetName() == "" {
			e.required(rp.child("name"), "")
		}
		if r.GetUid() == "" {
			e.required(rp.child("uid"), "")
		}
		if r.GetController() {
			controllers = append(controllers, fmt.Sprintf("%s/%s", r.GetKind(), r.GetName()))
		}
	}
	if len(controllers) > 1 {
		e.invalid(p, nil, fmt.Sprintf("only one reference can have controller set to true, found in %s", strings.Join(controllers, ", ")))
	}
}

// stripSubject drops the `label key "x": ` prefix proto/labels puts on its errors: the
// field error already prints the value.
func stripSubject(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "label ") {
		if i := strings.Index(msg, `": `); i >= 0 {
			return msg[i+3:]
		}
	}
	return msg
}

// IsDNS1123Subdomain says whether name is a valid object name of most kinds (and a node
// name): lowercase alphanumerics, '-' and '.', at most 253 characters.
func IsDNS1123Subdomain(name string) bool { return len(dns1123Subdomain(name)) == 0 }
