package validation

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The values Skiff takes for volumes, in the order an error lists them.
var (
	hostPathTypes = []corev1.HostPathType{corev1.HostPathUnset, corev1.HostPathBlockDev, corev1.HostPathCharDev,
		corev1.HostPathDirectory, corev1.HostPathDirectoryOrCreate, corev1.HostPathFile, corev1.HostPathFileOrCreate,
		corev1.HostPathSocket}
	storageMedia = []corev1.StorageMedium{corev1.StorageMediumDefault, corev1.StorageMediumMemory}
	// Kubernetes' downward API paths: what a volume file may hold, and what an env var
	// may (labels and annotations only one at a time, by key).
	volumeFieldPaths = []string{"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}
	envFieldPaths    = []string{"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
		"spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"}
	volumeResources = []string{"limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory"}
)

// maxFileMode is the largest file mode a volume item may ask for (0777).
const maxFileMode = 0o777

const fileModeMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// validateVolumes checks a pod's volumes and returns them by name, for the mounts.
func validateVolumes(volumes []corev1.Volume, p *field.Path) (map[string]*corev1.Volume, field.ErrorList) {
	var errs field.ErrorList
	byName := map[string]*corev1.Volume{}
	for i := range volumes {
		v := &volumes[i]
		vp := p.Index(i)
		if v.Name == "" {
			errs = append(errs, field.Required(vp.Child("name"), ""))
		} else {
			errs = append(errs, invalidEach(vp.Child("name"), v.Name, utilvalidation.IsDNS1123Label(v.Name))...)
			if byName[v.Name] != nil {
				errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
			} else {
				byName[v.Name] = v
			}
		}
		errs = append(errs, validateVolumeSource(&v.VolumeSource, vp)...)
	}
	return byName, errs
}

// validateVolumeSource checks that exactly one source is set, and that one. Sources
// Skiff does not support are refused by checkSupported; they still count here, so a
// volume naming two sources hears about it.
func validateVolumeSource(s *corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	one := func(set bool, name string, check func() field.ErrorList) {
		if !set {
			return
		}
		n++
		if n > 1 {
			errs = append(errs, field.Forbidden(p.Child(name), "may not specify more than 1 volume type"))
			return
		}
		errs = append(errs, check()...)
	}
	none := func() field.ErrorList { return nil }
	one(s.HostPath != nil, "hostPath", func() field.ErrorList { return validateHostPath(s.HostPath, p.Child("hostPath")) })
	one(s.EmptyDir != nil, "emptyDir", func() field.ErrorList { return validateEmptyDir(s.EmptyDir, p.Child("emptyDir")) })
	one(s.Secret != nil, "secret", func() field.ErrorList { return validateSecretVolume(s.Secret, p.Child("secret")) })
	one(s.ConfigMap != nil, "configMap", func() field.ErrorList { return validateConfigMapVolume(s.ConfigMap, p.Child("configMap")) })
	one(s.DownwardAPI != nil, "downwardAPI", func() field.ErrorList {
		return validateDownwardAPIVolume(s.DownwardAPI, p.Child("downwardAPI"))
	})
	one(s.Projected != nil, "projected", func() field.ErrorList { return validateProjected(s.Projected, p.Child("projected")) })
	one(s.PersistentVolumeClaim != nil, "persistentVolumeClaim", func() field.ErrorList {
		if s.PersistentVolumeClaim.ClaimName == "" {
			return field.ErrorList{field.Required(p.Child("persistentVolumeClaim", "claimName"), "")}
		}
		return nil
	})
	one(s.Image != nil, "image", func() field.ErrorList {
		ip := p.Child("image")
		var errs field.ErrorList
		if s.Image.Reference == "" {
			errs = append(errs, field.Required(ip.Child("reference"), ""))
		}
		if s.Image.PullPolicy == "" {
			return append(errs, field.Required(ip.Child("pullPolicy"), ""))
		}
		return append(errs, oneOfChild(ip, "pullPolicy", s.Image.PullPolicy, pullPolicies...)...)
	})
	for _, other := range []struct {
		set  bool
		name string
	}{
		{s.GCEPersistentDisk != nil, "gcePersistentDisk"}, {s.AWSElasticBlockStore != nil, "awsElasticBlockStore"},
		{s.GitRepo != nil, "gitRepo"}, {s.NFS != nil, "nfs"}, {s.ISCSI != nil, "iscsi"}, {s.Glusterfs != nil, "glusterfs"},
		{s.RBD != nil, "rbd"}, {s.FlexVolume != nil, "flexVolume"}, {s.Cinder != nil, "cinder"}, {s.CephFS != nil, "cephfs"},
		{s.Flocker != nil, "flocker"}, {s.FC != nil, "fc"}, {s.AzureFile != nil, "azureFile"},
		{s.VsphereVolume != nil, "vsphereVolume"}, {s.Quobyte != nil, "quobyte"}, {s.AzureDisk != nil, "azureDisk"},
		{s.PhotonPersistentDisk != nil, "photonPersistentDisk"}, {s.PortworxVolume != nil, "portworxVolume"},
		{s.ScaleIO != nil, "scaleIO"}, {s.StorageOS != nil, "storageos"}, {s.CSI != nil, "csi"},
		{s.Ephemeral != nil, "ephemeral"},
	} {
		one(other.set, other.name, none)
	}
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a volume type"))
	}
	return errs
}

func validateHostPath(h *corev1.HostPathVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), ""))
	} else {
		errs = append(errs, validatePathNoBacksteps(h.Path, p.Child("path"))...)
	}
	if h.Type != nil {
		errs = append(errs, oneOfChild(p, "type", *h.Type, hostPathTypes...)...)
	}
	return errs
}

func validateEmptyDir(e *corev1.EmptyDirVolumeSource, p *field.Path) field.ErrorList {
	errs := oneOfChild(p, "medium", e.Medium, storageMedia...)
	if e.SizeLimit != nil && e.SizeLimit.Cmp(resource.Quantity{}) < 0 {
		errs = append(errs, field.Forbidden(p.Child("sizeLimit"), "SizeLimit field must be a valid resource quantity"))
	}
	return errs
}

func validateSecretVolume(s *corev1.SecretVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.SecretName == "" {
		errs = append(errs, field.Required(p.Child("secretName"), ""))
	}
	errs = append(errs, validateMode(s.DefaultMode, p.Child("defaultMode"))...)
	return append(errs, validateKeyToPaths(s.Items, p.Child("items"))...)
}

func validateConfigMapVolume(c *corev1.ConfigMapVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	errs = append(errs, validateMode(c.DefaultMode, p.Child("defaultMode"))...)
	return append(errs, validateKeyToPaths(c.Items, p.Child("items"))...)
}

func validateKeyToPaths(items []corev1.KeyToPath, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, it := range items {
		ip := p.Index(i)
		if it.Key == "" {
			errs = append(errs, field.Required(ip.Child("key"), ""))
		} else {
			errs = append(errs, invalidEach(ip.Child("key"), it.Key, utilvalidation.IsConfigMapKey(it.Key))...)
		}
		if it.Path == "" {
			errs = append(errs, field.Required(ip.Child("path"), ""))
		} else {
			errs = append(errs, validateLocalNonReservedPath(it.Path, ip.Child("path"))...)
		}
		errs = append(errs, validateMode(it.Mode, ip.Child("mode"))...)
	}
	return errs
}

func validateMode(mode *int32, p *field.Path) field.ErrorList {
	if mode != nil && (*mode > maxFileMode || *mode < 0) {
		return field.ErrorList{field.Invalid(p, *mode, fileModeMsg)}
	}
	return nil
}

func validateDownwardAPIVolume(d *corev1.DownwardAPIVolumeSource, p *field.Path) field.ErrorList {
	errs := validateMode(d.DefaultMode, p.Child("defaultMode"))
	for i := range d.Items {
		errs = append(errs, validateDownwardAPIFile(&d.Items[i], p.Child("items").Index(i))...)
	}
	return errs
}

func validateDownwardAPIFile(f *corev1.DownwardAPIVolumeFile, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if f.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), ""))
	} else {
		errs = append(errs, validateLocalNonReservedPath(f.Path, p.Child("path"))...)
	}
	switch {
	case f.FieldRef != nil && f.ResourceFieldRef != nil:
		errs = append(errs, field.Invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
	case f.FieldRef != nil:
		errs = append(errs, validateObjectFieldSelector(f.FieldRef, volumeFieldPaths, p.Child("fieldRef"))...)
	case f.ResourceFieldRef != nil:
		if f.ResourceFieldRef.ContainerName == "" {
			errs = append(errs, field.Required(p.Child("resourceFieldRef", "containerName"), ""))
		}
		errs = append(errs, validateResourceFieldSelector(f.ResourceFieldRef, p.Child("resourceFieldRef"))...)
	default:
		errs = append(errs, field.Required(p, "one of fieldRef and resourceFieldRef is required"))
	}
	return append(errs, validateMode(f.Mode, p.Child("mode"))...)
}

func validateProjected(pr *corev1.ProjectedVolumeSource, p *field.Path) field.ErrorList {
	errs := validateMode(pr.DefaultMode, p.Child("defaultMode"))
	paths := map[string]bool{}
	addPath := func(path string, at *field.Path) {
		if paths[path] {
			errs = append(errs, field.Invalid(at, path, "conflicting duplicate paths"))
		}
		paths[path] = true
	}
	for i := range pr.Sources {
		s := &pr.Sources[i]
		sp := p.Child("sources").Index(i)
		n := 0
		if s.Secret != nil {
			n++
			if s.Secret.Name == "" {
				errs = append(errs, field.Required(sp.Child("secret", "name"), ""))
			}
			ip := sp.Child("secret", "items")
			errs = append(errs, validateKeyToPaths(s.Secret.Items, ip)...)
			for j, it := range s.Secret.Items {
				addPath(it.Path, ip.Index(j).Child("path"))
			}
		}
		if s.ConfigMap != nil {
			n++
			if s.ConfigMap.Name == "" {
				errs = append(errs, field.Required(sp.Child("configMap", "name"), ""))
			}
			ip := sp.Child("configMap", "items")
			errs = append(errs, validateKeyToPaths(s.ConfigMap.Items, ip)...)
			for j, it := range s.ConfigMap.Items {
				addPath(it.Path, ip.Index(j).Child("path"))
			}
		}
		if s.DownwardAPI != nil {
			n++
			ip := sp.Child("downwardAPI", "items")
			for j := range s.DownwardAPI.Items {
				errs = append(errs, validateDownwardAPIFile(&s.DownwardAPI.Items[j], ip.Index(j))...)
				addPath(s.DownwardAPI.Items[j].Path, ip.Index(j).Child("path"))
			}
		}
		if t := s.ServiceAccountToken; t != nil {
			n++
			tp := sp.Child("serviceAccountToken")
			if e := t.ExpirationSeconds; e != nil && *e < 10*60 {
				errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *e, "may not specify a duration less than 10 minutes"))
			} else if e != nil && *e > 1<<32 {
				errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *e, "may not specify a duration larger than 2^32 seconds"))
			}
			if t.Path == "" {
				errs = append(errs, field.Required(tp.Child("path"), ""))
			} else {
				errs = append(errs, validateLocalNonReservedPath(t.Path, tp.Child("path"))...)
				addPath(t.Path, tp.Child("path"))
			}
		}
		if b := s.ClusterTrustBundle; b != nil {
			n++
			bp := sp.Child("clusterTrustBundle")
			errs = append(errs, validateClusterTrustBundleProjection(b, bp)...)
			if b.Path != "" {
				addPath(b.Path, bp.Child("path"))
			}
		}
		if pc := s.PodCertificate; pc != nil {
			n++
			errs = append(errs, validatePodCertificateProjection(pc, sp.Child("podCertificate"), addPath)...)
		}
		if n > 1 {
			errs = append(errs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
		}
	}
	return errs
}

// validateLocalNonReservedPath is Kubernetes' rule for a file a volume writes: relative,
// inside the volume, and not starting with "..", which the atomic writer keeps for its
// own names (..data, ..2024_...).
func validateLocalNonReservedPath(p string, fp *field.Path) field.ErrorList {
	errs := validateLocalDescendingPath(p, fp)
	if strings.HasPrefix(p, "..") && !strings.HasPrefix(p, "../") {
		errs = append(errs, field.Invalid(fp, p, "must not start with '..'"))
	}
	return errs
}

// validateLocalDescendingPath: a relative path that stays below where it starts.
func validateLocalDescendingPath(p string, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(p) {
		errs = append(errs, field.Invalid(fp, p, "must be a relative path"))
	}
	return append(errs, validatePathNoBacksteps(p, fp)...)
}

func validatePathNoBacksteps(p string, fp *field.Path) field.ErrorList {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return field.ErrorList{field.Invalid(fp, p, "must not contain '..'")}
		}
	}
	return nil
}

// validateObjectFieldSelector checks a downward API reference to one of the pod's
// fields: the ones in supported, or one label or annotation by key.
func validateObjectFieldSelector(s *corev1.ObjectFieldSelector, supported []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.APIVersion != "" && s.APIVersion != "v1" {
		errs = append(errs, field.NotSupported(p.Child("apiVersion"), s.APIVersion, []string{"v1"}))
	}
	fp := p.Child("fieldPath")
	if s.FieldPath == "" {
		return append(errs, field.Required(fp, ""))
	}
	if field, key, ok := subscript(s.FieldPath); ok {
		switch field {
		case "metadata.annotations":
			errs = append(errs, invalidEach(fp, key, utilvalidation.IsQualifiedName(strings.ToLower(key)))...)
		case "metadata.labels":
			errs = append(errs, invalidEach(fp, key, utilvalidation.IsQualifiedName(key))...)
		default:
			errs = append(errs, invalidEach(fp, field, []string{"does not support subscript"})...)
		}
		return errs
	}
	return append(errs, oneOf(fp, s.FieldPath, supported...)...)
}

// subscript splits "metadata.labels['app']" into its field and key.
func subscript(fieldPath string) (field, key string, ok bool) {
	i := strings.Index(fieldPath, "[")
	if i < 0 || !strings.HasSuffix(fieldPath, "]") {
		return "", "", false
	}
	quoted := fieldPath[i+1 : len(fieldPath)-1]
	if len(quoted) < 2 || quoted[0] != '\'' || quoted[len(quoted)-1] != '\'' {
		return "", "", false
	}
	return fieldPath[:i], quoted[1 : len(quoted)-1], true
}

func validateResourceFieldSelector(s *corev1.ResourceFieldSelector, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Resource == "" {
		errs = append(errs, field.Required(p.Child("resource"), ""))
	} else {
		errs = append(errs, oneOfChild(p, "resource", s.Resource, volumeResources...)...)
	}
	if s.Divisor.IsZero() {
		return errs
	}
	// Kubernetes' divisors: 1m and 1 (and the binary units 1k..1E, 1Ki..1Ei) for cpu
	// and memory alike; any other amount is refused.
	d := s.Divisor.String()
	ok := false
	switch {
	case strings.HasSuffix(s.Resource, "cpu"):
		ok = d == "1m" || d == "1"
	default:
		for _, u := range []string{"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"} {
			ok = ok || d == u
		}
	}
	if !ok {
		errs = append(errs, field.Invalid(p.Child("divisor"), d, fmt.Sprintf("only divisor's values %s are supported with the %s resource",
			map[bool]string{true: "1m and 1", false: "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei"}[strings.HasSuffix(s.Resource, "cpu")],
			strings.TrimPrefix(strings.TrimPrefix(s.Resource, "limits."), "requests."))))
	}
	return errs
}

// validateVolumeMounts checks a container's mounts against the pod's volumes.
func validateVolumeMounts(mounts []corev1.VolumeMount, volumes map[string]*corev1.Volume, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := p.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		} else if volumes[m.Name] == nil {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		} else {
			if paths[m.MountPath] {
				errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
			}
			paths[m.MountPath] = true
			if !path.IsAbs(m.MountPath) {
				// Kubernetes lets the runtime refuse it; Skiff says so up front.
				errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
			}
		}
		if m.SubPath != "" {
			errs = append(errs, validateLocalDescendingPath(m.SubPath, mp.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				errs = append(errs, field.Invalid(mp.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, validateLocalDescendingPath(m.SubPathExpr, mp.Child("subPathExpr"))...)
		}
	}
	return errs
}

// nonNegative32 is ValidateNonnegativeField for the int32 fields of pod specs.
func nonNegative32(v int32, p *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(int64(v), p)
}
