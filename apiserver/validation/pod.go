package validation

import (
	"fmt"
	"net"
	"regexp"
	"strings"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/labels"
	"github.com/skiffhq/skiff/proto/quantity"
)

const (
	envVarNameFmt = `[-._a-zA-Z][-._a-zA-Z0-9]*`
	envVarNameMsg = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', " +
		"and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', " +
		"regex used for validation is '" + envVarNameFmt + "')"

	portNameMaxLen = 15
)

var (
	envVarNameRE       = regexp.MustCompile(`^` + envVarNameFmt + `$`)
	portNameCharsRE    = regexp.MustCompile(`^[-a-z0-9]+$`)
	portNameOneLetterR = regexp.MustCompile(`[a-z]`)
)

var (
	restartPolicies   = []string{"Always", "OnFailure", "Never"}
	pullPolicies      = []string{"Always", "IfNotPresent", "Never"}
	protocols         = []string{"TCP", "UDP", "SCTP"}
	tolerationOps     = []string{"Equal", "Exists"}
	tolerationEffects = []string{"", "NoSchedule", "PreferNoSchedule", "NoExecute"}
	taintEffects      = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}
)

// podSpec checks a pod's spec, standalone or inside a template. Fields Default fills may
// be empty: Validate accepts an object before or after Default.
func (e *errs) podSpec(p path, spec *corev1.PodSpec) {
	if spec == nil {
		spec = &corev1.PodSpec{}
	}
	if len(spec.GetContainers()) == 0 {
		e.required(p.child("containers"), "")
	}
	names := map[string]bool{}
	for i, c := range spec.GetContainers() {
		cp := p.child("containers").index(i)
		e.container(cp, c)
		if c.GetName() != "" {
			if names[c.GetName()] {
				e.duplicate(cp.child("name"), c.GetName())
			}
			names[c.GetName()] = true
		}
	}
	if rp := spec.GetRestartPolicy(); rp != "" {
		e.oneOf(p.child("restartPolicy"), rp, restartPolicies...)
	}
	if n := spec.GetNodeName(); n != "" {
		e.name(p.child("nodeName"), n, dns1123Subdomain)
	}
	e.labels(p.child("nodeSelector"), spec.GetNodeSelector())
	for i, t := range spec.GetTolerations() {
		e.toleration(p.child("tolerations").index(i), t)
	}
	if spec.TerminationGracePeriodSeconds != nil {
		e.nonNegative(p.child("terminationGracePeriodSeconds"), spec.GetTerminationGracePeriodSeconds())
	}
}

func (e *errs) container(p path, c *corev1.Container) {
	if c.GetName() == "" {
		e.required(p.child("name"), "")
	} else {
		e.name(p.child("name"), c.GetName(), dns1123Label)
	}
	switch img := c.GetImage(); {
	case img == "":
		e.required(p.child("image"), "")
	case strings.TrimSpace(img) != img:
		e.invalid(p.child("image"), img, "must not have leading or trailing whitespace")
	}
	if pp := c.GetImagePullPolicy(); pp != "" {
		e.oneOf(p.child("imagePullPolicy"), pp, pullPolicies...)
	}
	portNames := map[string]bool{}
	for i, port := range c.GetPorts() {
		pp := p.child("ports").index(i)
		e.containerPort(pp, port)
		if n := port.GetName(); n != "" {
			if portNames[n] {
				e.duplicate(pp.child("name"), n)
			}
			portNames[n] = true
		}
	}
	for i, env := range c.GetEnv() {
		np := p.child("env").index(i).child("name")
		switch {
		case env.GetName() == "":
			e.required(np, "")
		case !envVarNameRE.MatchString(env.GetName()):
			e.invalid(np, env.GetName(), envVarNameMsg)
		}
	}
	e.resources(p.child("resources"), c.GetResources())
}

func (e *errs) containerPort(p path, port *corev1.ContainerPort) {
	if n := port.GetName(); n != "" {
		for _, msg := range ianaSvcName(n) {
			e.invalid(p.child("name"), n, msg)
		}
	}
	if port.GetContainerPort() == 0 {
		e.required(p.child("containerPort"), "")
	} else {
		e.portNumber(p.child("containerPort"), port.GetContainerPort())
	}
	if port.GetHostPort() != 0 {
		e.portNumber(p.child("hostPort"), port.GetHostPort())
	}
	if proto := port.GetProtocol(); proto != "" {
		e.oneOf(p.child("protocol"), proto, protocols...)
	}
	if ip := port.GetHostIp(); ip != "" && net.ParseIP(ip) == nil {
		e.invalid(p.child("hostIP"), ip, "must be a valid IP address")
	}
}

func (e *errs) portNumber(p path, n int32) {
	if n < 1 || n > 65535 {
		e.invalid(p, n, "must be between 1 and 65535, inclusive")
	}
}

// ianaSvcName is Kubernetes' rule for port names: they may be looked up as SRV services.
func ianaSvcName(n string) []string {
	var msgs []string
	if len(n) > portNameMaxLen {
		msgs = append(msgs, maxLenMsg(portNameMaxLen))
	}
	if !portNameCharsRE.MatchString(n) {
		msgs = append(msgs, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
	}
	if strings.Contains(n, "--") {
		msgs = append(msgs, "must not contain consecutive hyphens")
	}
	if !portNameOneLetterR.MatchString(n) {
		msgs = append(msgs, "must contain at least one letter (a-z)")
	}
	if strings.HasPrefix(n, "-") || strings.HasSuffix(n, "-") {
		msgs = append(msgs, "must not begin or end with a hyphen")
	}
	return msgs
}

func (e *errs) resources(p path, r *corev1.ResourceRequirements) {
	limits := e.quantities(p.child("limits"), r.GetLimits())
	requests := e.quantities(p.child("requests"), r.GetRequests())
	for _, name := range sortedKeys(requests) {
		req := requests[name]
		if lim, ok := limits[name]; ok && req.Cmp(lim) > 0 {
			e.invalid(p.child("requests").key(name), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String()))
		}
	}
}

// quantities checks a resource list and returns the quantities that parsed.
func (e *errs) quantities(p path, m map[string]string) map[string]quantity.Quantity {
	out := map[string]quantity.Quantity{}
	for _, name := range sortedKeys(m) {
		kp := p.key(name)
		if err := labels.ValidateKey(name); err != nil {
			e.invalid(kp, name, "resource name: "+stripSubject(err))
			continue
		}
		q, err := quantity.Parse(m[name])
		if err != nil {
			e.invalid(kp, m[name], "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
			continue
		}
		if q.Sign() < 0 {
			e.invalid(kp, m[name], "must be greater than or equal to 0")
			continue
		}
		out[name] = q
	}
	return out
}

func (e *errs) toleration(p path, t *corev1.Toleration) {
	op := t.GetOperator()
	if op == "" {
		op = "Equal"
	}
	if t.GetKey() != "" {
		if err := labels.ValidateKey(t.GetKey()); err != nil {
			e.invalid(p.child("key"), t.GetKey(), stripSubject(err))
		}
	} else if op != "Exists" {
		e.invalid(p.child("operator"), op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\"")
	}
	switch op {
	case "Equal":
		if err := labels.ValidateValue(t.GetValue()); err != nil {
			e.invalid(p.child("value"), t.GetValue(), stripSubject(err))
		}
	case "Exists":
		if t.GetValue() != "" {
			e.invalid(p.child("operator"), t.GetValue(), "value must be empty when `operator` is 'Exists'")
		}
	default:
		e.oneOf(p.child("operator"), op, tolerationOps...)
	}
	e.oneOf(p.child("effect"), t.GetEffect(), tolerationEffects...)
	if t.TolerationSeconds != nil && t.GetEffect() != "NoExecute" {
		e.invalid(p.child("effect"), t.GetEffect(), "effect must be 'NoExecute' when `tolerationSeconds` is set")
	}
}

// podTemplate checks a Deployment's or ReplicaSet's template: its pods are restarted by
// the controller, never left finished, so only restartPolicy Always makes sense.
func (e *errs) podTemplate(p path, t *corev1.PodTemplateSpec) {
	if t == nil {
		e.required(p, "")
		return
	}
	e.templateMeta(p.child("metadata"), t.GetMetadata())
	sp := p.child("spec")
	e.podSpec(sp, t.GetSpec())
	if rp := t.GetSpec().GetRestartPolicy(); rp == "OnFailure" || rp == "Never" {
		e.oneOf(sp.child("restartPolicy"), rp, "Always")
	}
}
