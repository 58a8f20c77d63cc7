package validation

import (
	"fmt"
	"strings"

	"github.com/containerd/containerd/pkg/cap"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
)

// The values Skiff takes for containers, in the order an error lists them.
var (
	terminationMessagePolicies = []corev1.TerminationMessagePolicy{corev1.TerminationMessageFallbackToLogsOnError, corev1.TerminationMessageReadFile}
	uriSchemes                 = []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}
)

// validateEnv checks a container's env: names, and each valueFrom's one reference.
func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		ip := p.Index(i)
		np := ip.Child("name")
		if e.Name == "" {
			errs = append(errs, field.Required(np, ""))
		} else {
			// Kubernetes' relaxed rule (any printable ASCII but '='), its only one since
			// 1.34: a name may begin with a digit, hold a dash.
			errs = append(errs, invalidEach(np, e.Name, utilvalidation.IsRelaxedEnvVarName(e.Name))...)
		}
		if e.ValueFrom != nil {
			errs = append(errs, validateEnvVarSource(&e, ip.Child("valueFrom"))...)
		}
	}
	return errs
}

func validateEnvVarSource(e *corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	s := e.ValueFrom
	n := 0
	if s.FieldRef != nil {
		n++
		errs = append(errs, validateObjectFieldSelector(s.FieldRef, envFieldPaths, p.Child("fieldRef"))...)
	}
	if s.ResourceFieldRef != nil {
		n++
		errs = append(errs, validateResourceFieldSelector(s.ResourceFieldRef, p.Child("resourceFieldRef"))...)
	}
	if s.ConfigMapKeyRef != nil {
		n++
		errs = append(errs, validateKeySelector(s.ConfigMapKeyRef.Name, s.ConfigMapKeyRef.Key, p.Child("configMapKeyRef"))...)
	}
	if s.SecretKeyRef != nil {
		n++
		errs = append(errs, validateKeySelector(s.SecretKeyRef.Name, s.SecretKeyRef.Key, p.Child("secretKeyRef"))...)
	}
	if s.FileKeyRef != nil {
		n++
	}
	switch {
	case n == 0:
		errs = append(errs, field.Invalid(p, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
	case n > 1:
		errs = append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
	}
	if e.Value != "" {
		errs = append(errs, field.Invalid(p, "", "may not be specified when `value` is not empty"))
	}
	return errs
}

func validateKeySelector(name, key string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if key == "" {
		errs = append(errs, field.Required(p.Child("key"), ""))
	} else {
		errs = append(errs, invalidEach(p.Child("key"), key, utilvalidation.IsConfigMapKey(key))...)
	}
	return errs
}

func validateEnvFrom(from []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range from {
		ip := p.Index(i)
		if f.Prefix != "" {
			errs = append(errs, invalidEach(ip.Child("prefix"), f.Prefix, utilvalidation.IsRelaxedEnvVarName(f.Prefix))...)
		}
		n := 0
		if f.ConfigMapRef != nil {
			n++
			if f.ConfigMapRef.Name == "" {
				errs = append(errs, field.Required(ip.Child("configMapRef", "name"), ""))
			}
		}
		if f.SecretRef != nil {
			n++
			if f.SecretRef.Name == "" {
				errs = append(errs, field.Required(ip.Child("secretRef", "name"), ""))
			}
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(ip, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(ip, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

// validateProbe checks a probe; liveness and startup probes must count one success as
// success, and only liveness and startup probes may carry their own grace period.
func validateProbe(pr *corev1.Probe, p *field.Path, readiness, needOneSuccess bool) field.ErrorList {
	if pr == nil {
		return nil
	}
	errs := validateProbeHandler(&pr.ProbeHandler, p)
	errs = append(errs, nonNegative32(pr.InitialDelaySeconds, p.Child("initialDelaySeconds"))...)
	errs = append(errs, nonNegative32(pr.TimeoutSeconds, p.Child("timeoutSeconds"))...)
	errs = append(errs, nonNegative32(pr.PeriodSeconds, p.Child("periodSeconds"))...)
	errs = append(errs, nonNegative32(pr.SuccessThreshold, p.Child("successThreshold"))...)
	errs = append(errs, nonNegative32(pr.FailureThreshold, p.Child("failureThreshold"))...)
	if needOneSuccess && pr.SuccessThreshold != 0 && pr.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(p.Child("successThreshold"), pr.SuccessThreshold, "must be 1"))
	}
	if g := pr.TerminationGracePeriodSeconds; g != nil {
		if readiness {
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must not be set for readinessProbes"))
		} else if *g <= 0 {
			errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
		}
	}
	return errs
}

func validateProbeHandler(h *corev1.ProbeHandler, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	one := func(set bool, name string, check func(*field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n++; n > 1 {
			errs = append(errs, field.Forbidden(p.Child(name), "may not specify more than 1 handler type"))
			return
		}
		errs = append(errs, check(p.Child(name))...)
	}
	one(h.Exec != nil, "exec", func(p *field.Path) field.ErrorList { return validateExecAction(h.Exec, p) })
	one(h.HTTPGet != nil, "httpGet", func(p *field.Path) field.ErrorList { return validateHTTPGetAction(h.HTTPGet, p) })
	one(h.TCPSocket != nil, "tcpSocket", func(p *field.Path) field.ErrorList {
		return validatePortNumOrName(h.TCPSocket.Port.IntValue(), h.TCPSocket.Port.String(), h.TCPSocket.Port.Type == 0, p.Child("port"))
	})
	one(h.GRPC != nil, "grpc", func(p *field.Path) field.ErrorList {
		return invalidEach(p.Child("port"), h.GRPC.Port, utilvalidation.IsValidPortNum(int(h.GRPC.Port)))
	})
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a handler type"))
	}
	return errs
}

func validateExecAction(e *corev1.ExecAction, p *field.Path) field.ErrorList {
	if len(e.Command) == 0 {
		return field.ErrorList{field.Required(p.Child("command"), "")}
	}
	return nil
}

func validateHTTPGetAction(h *corev1.HTTPGetAction, p *field.Path) field.ErrorList {
	// path is not required: Default fills "/", and Validate accepts an object before Default.
	errs := validatePortNumOrName(h.Port.IntValue(), h.Port.String(), h.Port.Type == 0, p.Child("port"))
	if h.Scheme != "" {
		errs = append(errs, oneOfChild(p, "scheme", h.Scheme, uriSchemes...)...)
	}
	for i, hd := range h.HTTPHeaders {
		errs = append(errs, invalidEach(p.Child("httpHeaders").Index(i).Child("name"), hd.Name, utilvalidation.IsHTTPHeaderName(hd.Name))...)
	}
	return errs
}

// validatePortNumOrName: a port given as a number or as the name of a container port.
func validatePortNumOrName(num int, name string, isNum bool, p *field.Path) field.ErrorList {
	if isNum {
		return invalidEach(p, num, utilvalidation.IsValidPortNum(num))
	}
	return invalidEach(p, name, utilvalidation.IsValidPortName(name))
}

func validateLifecycle(l *corev1.Lifecycle, grace *int64, p *field.Path) field.ErrorList {
	if l == nil {
		return nil
	}
	var errs field.ErrorList
	for _, h := range []struct {
		name string
		h    *corev1.LifecycleHandler
	}{{"postStart", l.PostStart}, {"preStop", l.PreStop}} {
		if h.h == nil {
			continue
		}
		hp := p.Child(h.name)
		n := 0
		if h.h.Exec != nil {
			n++
			errs = append(errs, validateExecAction(h.h.Exec, hp.Child("exec"))...)
		}
		if h.h.HTTPGet != nil {
			n++
			errs = append(errs, validateHTTPGetAction(h.h.HTTPGet, hp.Child("httpGet"))...)
		}
		if h.h.TCPSocket != nil {
			n++
		}
		if h.h.Sleep != nil {
			n++
			g := int64(DefaultTerminationGracePeriodSeconds)
			if grace != nil {
				g = *grace
			}
			if s := h.h.Sleep.Seconds; s <= 0 || s > g {
				errs = append(errs, field.Invalid(hp.Child("sleep", "seconds"), s,
					fmt.Sprintf("must be greater than 0 and less than terminationGracePeriodSeconds (%d)", g)))
			}
		}
		switch {
		case n == 0:
			errs = append(errs, field.Required(hp, "must specify a handler type"))
		case n > 1:
			errs = append(errs, field.Forbidden(hp, "may not specify more than 1 handler type"))
		}
	}
	return errs
}

// validateRunAs checks a securityContext's runAsUser and runAsGroup (a pod's or a
// container's).
func validateRunAs(user, group *int64, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if user != nil {
		errs = append(errs, invalidEach(p.Child("runAsUser"), *user, utilvalidation.IsValidUserID(*user))...)
	}
	if group != nil {
		errs = append(errs, invalidEach(p.Child("runAsGroup"), *group, utilvalidation.IsValidGroupID(*group))...)
	}
	return errs
}

// validateSecurityContext checks a container's securityContext.
func validateSecurityContext(sc *corev1.SecurityContext, p *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	errs := validateRunAs(sc.RunAsUser, sc.RunAsGroup, p)
	errs = append(errs, validateSeccompProfile(sc.SeccompProfile, p.Child("seccompProfile"))...)
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		if sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, field.Invalid(p, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
		}
		if sc.Capabilities != nil {
			for _, c := range sc.Capabilities.Add {
				if c == "CAP_SYS_ADMIN" || c == "SYS_ADMIN" {
					errs = append(errs, field.Invalid(p, sc, "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))
				}
			}
		}
	}
	if sc.Capabilities != nil {
		for _, list := range []struct {
			name string
			caps []corev1.Capability
		}{{"add", sc.Capabilities.Add}, {"drop", sc.Capabilities.Drop}} {
			for i, c := range list.caps {
				if !validCapability(string(c)) {
					errs = append(errs, field.Invalid(p.Child("capabilities", list.name).Index(i), string(c), "not a Linux capability"))
				}
			}
		}
	}
	return errs
}

// validCapability: a Linux capability by its name, with or without CAP_, or ALL.
// Kubernetes leaves this to the runtime; Skiff's tells the user before the pod fails.
func validCapability(c string) bool {
	name := strings.TrimPrefix(strings.ToUpper(c), "CAP_")
	return name == "ALL" || capabilities[name]
}

// capabilities are the Linux capabilities by name without CAP_: those of the kernels
// containerd knows, which is what the kubelet can grant.
var capabilities = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range cap.Known() {
		m[strings.TrimPrefix(c, "CAP_")] = true
	}
	return m
}()

// validatePodSecurityContext checks the pod's securityContext.
func validatePodSecurityContext(sc *corev1.PodSecurityContext, p *field.Path) field.ErrorList {
	if sc == nil {
		return nil
	}
	errs := validateRunAs(sc.RunAsUser, sc.RunAsGroup, p)
	errs = append(errs, validateSeccompProfile(sc.SeccompProfile, p.Child("seccompProfile"))...)
	if sc.FSGroup != nil {
		errs = append(errs, invalidEach(p.Child("fsGroup"), *sc.FSGroup, utilvalidation.IsValidGroupID(*sc.FSGroup))...)
	}
	for i, g := range sc.SupplementalGroups {
		errs = append(errs, invalidEach(p.Child("supplementalGroups").Index(i), g, utilvalidation.IsValidGroupID(g))...)
	}
	names := map[string]bool{}
	for i, s := range sc.Sysctls {
		sp := p.Child("sysctls").Index(i)
		switch {
		case s.Name == "":
			errs = append(errs, field.Required(sp.Child("name"), ""))
			continue
		case !isSysctlName(s.Name):
			errs = append(errs, field.Invalid(sp.Child("name"), s.Name,
				fmt.Sprintf("must have at most %d characters and match regex %s", sysctlMaxLength, sysctlFmt)))
			continue
		case names[s.Name]:
			errs = append(errs, field.Duplicate(sp.Child("name"), s.Name))
		}
		names[s.Name] = true
		// A safe sysctl on the host's network would be set for the whole node. One outside
		// the safe set is the kubelet's to refuse (SysctlForbidden), as in Kubernetes,
		// where a node may allow more (--allowed-unsafe-sysctls).
		norm := strings.ReplaceAll(s.Name, "/", ".")
		if kinds.SafeSysctl(norm) && strings.HasPrefix(norm, "net.") {
			errs = append(errs, field.Forbidden(sp.Child("name"), fmt.Sprintf("sysctl %q not allowed with host net enabled: Skiff's pods use the node's network", s.Name)))
		}
	}
	return errs
}

const (
	sysctlMaxLength = 253
	sysctlFmt       = `^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`
)

func isSysctlName(name string) bool {
	if len(name) > sysctlMaxLength {
		return false
	}
	for _, seg := range strings.FieldsFunc(name, func(r rune) bool { return r == '.' || r == '/' }) {
		if seg == "" || seg[0] == '-' || seg[0] == '_' || seg[len(seg)-1] == '-' || seg[len(seg)-1] == '_' {
			return false
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return name != "" && !strings.HasSuffix(name, ".") && !strings.HasPrefix(name, ".") &&
		!strings.Contains(name, "..") && !strings.Contains(name, "//")
}

// validateDNS checks dnsPolicy and dnsConfig together, as Kubernetes does.
func validateDNS(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.DNSPolicy != "" {
		errs = append(errs, oneOfChild(p, "dnsPolicy", spec.DNSPolicy, dnsPolicies...)...)
	}
	c := spec.DNSConfig
	if spec.DNSPolicy == corev1.DNSNone {
		if c == nil {
			return append(errs, field.Required(p.Child("dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
		}
		if len(c.Nameservers) == 0 {
			errs = append(errs, field.Required(p.Child("dnsConfig", "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
		}
	}
	if c == nil {
		return errs
	}
	cp := p.Child("dnsConfig")
	const maxNameservers, maxSearches, maxSearchLength = 3, 32, 2048
	if len(c.Nameservers) > maxNameservers {
		errs = append(errs, field.Invalid(cp.Child("nameservers"), c.Nameservers, fmt.Sprintf("must not have more than %v nameservers", maxNameservers)))
	}
	for i, ns := range c.Nameservers {
		errs = append(errs, validateIP(ns, cp.Child("nameservers").Index(i))...)
	}
	if len(c.Searches) > maxSearches {
		errs = append(errs, field.Invalid(cp.Child("searches"), c.Searches, fmt.Sprintf("must not have more than %v search paths", maxSearches)))
	}
	if n := len(strings.Join(c.Searches, " ")); n > maxSearchLength {
		errs = append(errs, field.Invalid(cp.Child("searches"), c.Searches, fmt.Sprintf("must not have more than %v characters (including spaces) in the search list", maxSearchLength)))
	}
	for i, s := range c.Searches {
		errs = append(errs, invalidEach(cp.Child("searches").Index(i), s, utilvalidation.IsDNS1123Subdomain(strings.TrimSuffix(s, ".")))...)
	}
	for i, o := range c.Options {
		if o.Name == "" {
			errs = append(errs, field.Required(cp.Child("options").Index(i), "Option.Name must not be empty"))
		}
	}
	return errs
}

var dnsPolicies = []corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}

func validateTerminationMessage(c *corev1.Container, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.TerminationMessagePolicy != "" {
		errs = append(errs, oneOfChild(p, "terminationMessagePolicy", c.TerminationMessagePolicy, terminationMessagePolicies...)...)
	}
	if c.TerminationMessagePath != "" && !strings.HasPrefix(c.TerminationMessagePath, "/") {
		errs = append(errs, field.Invalid(p.Child("terminationMessagePath"), c.TerminationMessagePath, "must be an absolute path"))
	}
	return errs
}

func validateNonNegative64(v *int64, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return apivalidation.ValidateNonnegativeField(*v, p)
}

// validateSeccompProfile: the kubelet applies containerd's default profile
// (RuntimeDefault) or none (Unconfined); a profile of the node's (Localhost) is not
// supported.
func validateSeccompProfile(sp *corev1.SeccompProfile, p *field.Path) field.ErrorList {
	if sp == nil {
		return nil
	}
	if sp.Type == corev1.SeccompProfileTypeLocalhost {
		return field.ErrorList{field.Forbidden(p.Child("type"), notSupportedMsg)}
	}
	return oneOfChild(p, "type", sp.Type, corev1.SeccompProfileTypeRuntimeDefault, corev1.SeccompProfileTypeUnconfined, corev1.SeccompProfileTypeLocalhost)
}
