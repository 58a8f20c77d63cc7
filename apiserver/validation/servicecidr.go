package validation

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// ServiceCIDRs and IPAddresses (networking.k8s.io/v1): Kubernetes' validation
// (pkg/apis/networking/validation). The API server keeps the ServiceCIDR "kubernetes"
// for the range it allocates cluster IPs from; other ServiceCIDRs and IPAddresses are
// stored, and Skiff's allocator does not read them.

// ipAddressName is Kubernetes' ValidateIPAddressName: an IPAddress is named by its
// address, in canonical form.
func ipAddressName(name string, _ bool) []string {
	var msgs []string
	for _, e := range utilvalidation.IsValidIP(&field.Path{}, name) {
		msgs = append(msgs, e.Detail)
	}
	return msgs
}

func validateServiceCIDR(sc *networkingv1.ServiceCIDR) field.ErrorList {
	return validateServiceCIDRs(sc.Spec.CIDRs, field.NewPath("spec", "cidrs"))
}

func validateServiceCIDRs(cidrs []string, p *field.Path) field.ErrorList {
	switch {
	case len(cidrs) == 0:
		return field.ErrorList{field.Required(p, "at least one CIDR required")}
	case len(cidrs) > 2:
		return field.ErrorList{field.Invalid(p, cidrs, "may only hold up to 2 values")}
	}
	var errs field.ErrorList
	for i, c := range cidrs {
		errs = append(errs, utilvalidation.IsValidCIDR(p.Index(i), c)...)
	}
	if len(cidrs) == 2 {
		a, b := netutils.IPFamilyOfCIDRString(cidrs[0]), netutils.IPFamilyOfCIDRString(cidrs[1])
		if a == b && a != netutils.IPFamilyUnknown {
			errs = append(errs, field.Invalid(p, cidrs, "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64"))
		}
	}
	return errs
}

// validateServiceCIDRUpdate is Kubernetes' ValidateServiceCIDRUpdate: the ranges are
// fixed, but a single-stack range may gain one of the other family.
func validateServiceCIDRUpdate(old, sc *networkingv1.ServiceCIDR) field.ErrorList {
	p := field.NewPath("spec", "cidrs")
	was, is := old.Spec.CIDRs, sc.Spec.CIDRs
	var errs field.ErrorList
	switch {
	case len(was) == len(is):
		for i := range was {
			if was[i] != is[i] {
				errs = append(errs, field.Invalid(p.Index(i), is[i], apivalidation.FieldImmutableErrorMsg))
			}
		}
	case len(was) == 1 && len(is) == 2:
		if is[0] != was[0] {
			errs = append(errs, field.Invalid(p.Index(0), is[0], apivalidation.FieldImmutableErrorMsg))
		}
	default:
		errs = append(errs, field.Invalid(p, is, apivalidation.FieldImmutableErrorMsg))
	}
	return errs
}

// validateIPAddress is Kubernetes' ValidateIPAddress: the parent reference is required.
func validateIPAddress(ip *networkingv1.IPAddress) field.ErrorList {
	p := field.NewPath("spec", "parentRef")
	ref := ip.Spec.ParentRef
	if ref == nil {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	// The core group, of Services, is "": a group is not required.
	if ref.Group != "" {
		for _, msg := range utilvalidation.IsDNS1123Subdomain(ref.Group) {
			errs = append(errs, field.Invalid(p.Child("group"), ref.Group, msg))
		}
	}
	for _, f := range []struct {
		name, value string
		required    bool
	}{{"resource", ref.Resource, true}, {"name", ref.Name, true}, {"namespace", ref.Namespace, false}} {
		if f.value == "" {
			if f.required {
				errs = append(errs, field.Required(p.Child(f.name), ""))
			}
			continue
		}
		for _, msg := range content.IsPathSegmentName(f.value) {
			errs = append(errs, field.Invalid(p.Child(f.name), f.value, msg))
		}
	}
	return errs
}

// validateIPAddressUpdate: an address's parent does not change.
func validateIPAddressUpdate(old, ip *networkingv1.IPAddress) field.ErrorList {
	return apivalidation.ValidateImmutableField(ip.Spec.ParentRef, old.Spec.ParentRef, field.NewPath("spec", "parentRef"))
}
