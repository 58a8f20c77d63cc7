package validation

import (
	"fmt"
	"strings"

	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// APIServices (apiregistration.k8s.io/v1): kube-aggregator's defaults and validation
// (pkg/apis/apiregistration). And StorageVersionMigrations (storagemigration.k8s.io/v1):
// Kubernetes' validation (pkg/apis/storagemigration/validation). Both are stored; the
// API server keeps the local APIServices of the groups it serves (apiserver/builtins.go).

// apiServiceName: an APIService is named version.group.
func apiServiceName(name string, _ bool) []string {
	return content.IsPathSegmentName(name) // the name's match with the spec: validateAPIService
}

func defaultAPIService(s *apiregistrationv1.APIService) {
	if s.Spec.Service != nil && s.Spec.Service.Port == nil {
		s.Spec.Service.Port = new(int32(443))
	}
}

// validateAPIService is kube-aggregator's ValidateAPIService.
func validateAPIService(s *apiregistrationv1.APIService) field.ErrorList {
	var errs field.ErrorList
	spec, p := &s.Spec, field.NewPath("spec")
	if want := spec.Version + "." + spec.Group; s.Name != "" && s.Name != want {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), s.Name, fmt.Sprintf("must be `spec.version+\".\"+spec.group`: %q", want)))
	}
	if spec.Group == "" && spec.Version != "v1" {
		errs = append(errs, field.Required(p.Child("group"), "only v1 may have an empty group and it better be legacy kube"))
	}
	if spec.Group != "" {
		for _, msg := range utilvalidation.IsDNS1123Subdomain(spec.Group) {
			errs = append(errs, field.Invalid(p.Child("group"), spec.Group, msg))
		}
	}
	for _, msg := range utilvalidation.IsDNS1035Label(spec.Version) {
		errs = append(errs, field.Invalid(p.Child("version"), spec.Version, msg))
	}
	if spec.GroupPriorityMinimum <= 0 || spec.GroupPriorityMinimum > 20000 {
		errs = append(errs, field.Invalid(p.Child("groupPriorityMinimum"), spec.GroupPriorityMinimum, "must be positive and less than 20000"))
	}
	if spec.VersionPriority <= 0 || spec.VersionPriority > 1000 {
		errs = append(errs, field.Invalid(p.Child("versionPriority"), spec.VersionPriority, "must be positive and less than 1000"))
	}
	if spec.Service == nil {
		if len(spec.CABundle) != 0 {
			errs = append(errs, field.Invalid(p.Child("caBundle"), fmt.Sprintf("%d bytes", len(spec.CABundle)), "local APIServices may not have a caBundle"))
		}
		if spec.InsecureSkipTLSVerify {
			errs = append(errs, field.Invalid(p.Child("insecureSkipTLSVerify"), spec.InsecureSkipTLSVerify, "local APIServices may not have insecureSkipTLSVerify"))
		}
		return append(errs, validateAPIServiceStatus(&s.Status)...)
	}
	sp := p.Child("service")
	if spec.Service.Namespace == "" {
		errs = append(errs, field.Required(sp.Child("namespace"), ""))
	}
	if spec.Service.Name == "" {
		errs = append(errs, field.Required(sp.Child("name"), ""))
	}
	if spec.Service.Port != nil {
		if msgs := utilvalidation.IsValidPortNum(int(*spec.Service.Port)); msgs != nil {
			errs = append(errs, field.Invalid(sp.Child("port"), *spec.Service.Port, "port is not valid: "+strings.Join(msgs, ", ")))
		}
	}
	if spec.InsecureSkipTLSVerify && len(spec.CABundle) > 0 {
		errs = append(errs, field.Invalid(p.Child("insecureSkipTLSVerify"), spec.InsecureSkipTLSVerify, "may not be true if caBundle is present"))
	}
	return append(errs, validateAPIServiceStatus(&s.Status)...)
}

func validateAPIServiceStatus(st *apiregistrationv1.APIServiceStatus) field.ErrorList {
	var errs field.ErrorList
	statuses := []apiregistrationv1.ConditionStatus{apiregistrationv1.ConditionTrue, apiregistrationv1.ConditionFalse, apiregistrationv1.ConditionUnknown}
	for i, c := range st.Conditions {
		errs = append(errs, oneOfChild(field.NewPath("status", "conditions").Index(i), "status", c.Status, statuses...)...)
	}
	return errs
}

// validateStorageVersionMigration is Kubernetes' ValidateStorageVersionMigration.
func validateStorageVersionMigration(m *storagemigrationv1.StorageVersionMigration) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "resource")
	if r := m.Spec.Resource.Resource; r == "" {
		errs = append(errs, field.Required(p.Child("resource"), "resource is required to be set"))
	} else if msgs := utilvalidation.IsDNS1035Label(r); len(msgs) > 0 {
		errs = append(errs, field.Invalid(p.Child("resource"), r, strings.Join(msgs, ",")))
	}
	if g := m.Spec.Resource.Group; g != "" {
		if msgs := utilvalidation.IsDNS1123Subdomain(g); len(msgs) > 0 {
			errs = append(errs, field.Invalid(p.Child("group"), g, strings.Join(msgs, ",")))
		}
	}
	return errs
}

// validateStorageVersionMigrationStatus is the part of Kubernetes'
// ValidateStorageVersionMigrationStatusUpdate that looks at the new status alone: the
// conditions, and not both Succeeded and Failed.
func validateStorageVersionMigrationStatus(m *storagemigrationv1.StorageVersionMigration) field.ErrorList {
	p := field.NewPath("status")
	errs := metav1validation.ValidateConditions(m.Status.Conditions, p.Child("conditions"))
	if migrationIs(m, storagemigrationv1.MigrationSucceeded) && migrationIs(m, storagemigrationv1.MigrationFailed) {
		errs = append(errs, field.Invalid(p.Child("conditions"), m.Status.Conditions, "Both success and failed conditions cannot be true at the same time"))
	}
	return errs
}

// validateStorageVersionMigrationStatusUpdate is the rest: a migration that succeeded
// or failed stays so, and its resourceVersion, once set, is fixed.
func validateStorageVersionMigrationStatusUpdate(old, m *storagemigrationv1.StorageVersionMigration) field.ErrorList {
	p := field.NewPath("status")
	var errs field.ErrorList
	if rv := old.Status.ResourceVersion; rv != "" && rv != m.Status.ResourceVersion {
		errs = append(errs, field.Invalid(p.Child("resourceVersion"), m.Status.ResourceVersion, "field is immutable"))
	}
	if migrationIs(old, storagemigrationv1.MigrationSucceeded) && !migrationIs(m, storagemigrationv1.MigrationSucceeded) {
		errs = append(errs, field.Invalid(p.Child("conditions"), m.Status.Conditions, "Success condition cannot be set to false once it is true"))
	}
	if migrationIs(old, storagemigrationv1.MigrationFailed) && !migrationIs(m, storagemigrationv1.MigrationFailed) {
		errs = append(errs, field.Invalid(p.Child("conditions"), m.Status.Conditions, "Failed condition cannot be set to false once it is true"))
	}
	return errs
}

func migrationIs(m *storagemigrationv1.StorageVersionMigration, t storagemigrationv1.MigrationConditionType) bool {
	c := apimeta.FindStatusCondition(m.Status.Conditions, string(t))
	return c != nil && c.Status == metav1.ConditionTrue
}
