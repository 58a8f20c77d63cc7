package table

import (
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of DaemonSets, StatefulSets, ReplicationControllers, ControllerRevisions
// and storage, as Kubernetes' printers define them.
func init() {
	dsStatus := appsv1.DaemonSetStatus{}.SwaggerDoc()
	daemonSet := typed[*appsv1.DaemonSet]
	columns[kinds.DaemonSet] = append([]Column{nameCol,
		col("Desired", "integer", 0, dsStatus["desiredNumberScheduled"], daemonSet(func(d *appsv1.DaemonSet) any { return int64(d.Status.DesiredNumberScheduled) })),
		col("Current", "integer", 0, dsStatus["currentNumberScheduled"], daemonSet(func(d *appsv1.DaemonSet) any { return int64(d.Status.CurrentNumberScheduled) })),
		col("Ready", "integer", 0, dsStatus["numberReady"], daemonSet(func(d *appsv1.DaemonSet) any { return int64(d.Status.NumberReady) })),
		col("Up-to-date", "integer", 0, dsStatus["updatedNumberScheduled"], daemonSet(func(d *appsv1.DaemonSet) any { return int64(d.Status.UpdatedNumberScheduled) })),
		col("Available", "integer", 0, dsStatus["numberAvailable"], daemonSet(func(d *appsv1.DaemonSet) any { return int64(d.Status.NumberAvailable) })),
		col("Node Selector", "string", 0, podSpecDoc["nodeSelector"], daemonSet(func(d *appsv1.DaemonSet) any {
			return labels.FormatLabels(d.Spec.Template.Spec.NodeSelector) // "<none>" when empty
		})),
		ageCol},
		templateCols(func(o kinds.Object) *corev1.PodSpec { return &o.(*appsv1.DaemonSet).Spec.Template.Spec },
			func(o kinds.Object) *metav1.LabelSelector { return o.(*appsv1.DaemonSet).Spec.Selector })...)
	columns[kinds.StatefulSet] = append([]Column{nameCol,
		col("Ready", "string", 0, "Number of the pod with ready state", func(o kinds.Object, _ time.Time) any {
			s := o.(*appsv1.StatefulSet)
			return strconv.Itoa(int(s.Status.ReadyReplicas)) + "/" + strconv.Itoa(int(replicas(s.Spec.Replicas)))
		}),
		ageCol},
		templateCols(func(o kinds.Object) *corev1.PodSpec { return &o.(*appsv1.StatefulSet).Spec.Template.Spec }, nil)[:2]...)
	rcSpec, rcStatus := corev1.ReplicationControllerSpec{}.SwaggerDoc(), corev1.ReplicationControllerStatus{}.SwaggerDoc()
	rc := typed[*corev1.ReplicationController]
	columns[kinds.ReplicationController] = append(append([]Column{nameCol,
		col("Desired", "integer", 0, rcSpec["replicas"], rc(func(r *corev1.ReplicationController) any { return int64(replicas(r.Spec.Replicas)) })),
		col("Current", "integer", 0, rcStatus["replicas"], rc(func(r *corev1.ReplicationController) any { return int64(r.Status.Replicas) })),
		col("Ready", "integer", 0, rcStatus["readyReplicas"], rc(func(r *corev1.ReplicationController) any { return int64(r.Status.ReadyReplicas) })),
		ageCol},
		templateCols(func(o kinds.Object) *corev1.PodSpec {
			if t := o.(*corev1.ReplicationController).Spec.Template; t != nil {
				return &t.Spec
			}
			return &corev1.PodSpec{}
		}, nil)[:2]...),
		col("Selector", "string", 1, rcSpec["selector"], rc(func(r *corev1.ReplicationController) any { return labels.FormatLabels(r.Spec.Selector) })))
	columns[kinds.ControllerRevision] = []Column{nameCol,
		col("Controller", "string", 0, "Controller of the object", func(o kinds.Object, _ time.Time) any {
			ref := metav1.GetControllerOfNoCopy(o)
			if ref == nil {
				return "<none>"
			}
			kind := strings.ToLower(ref.Kind)
			if gv, err := schema.ParseGroupVersion(ref.APIVersion); err == nil && gv.Group != "" {
				kind += "." + gv.Group
			}
			return kind + "/" + ref.Name
		}),
		col("Revision", "integer", 0, appsv1.ControllerRevision{}.SwaggerDoc()["revision"], func(o kinds.Object, _ time.Time) any {
			return o.(*appsv1.ControllerRevision).Revision
		}),
		ageCol}
	pvSpec, pvStatus := corev1.PersistentVolumeSpec{}.SwaggerDoc(), corev1.PersistentVolumeStatus{}.SwaggerDoc()
	pv := typed[*corev1.PersistentVolume]
	columns[kinds.PersistentVolume] = []Column{nameCol,
		col("Capacity", "string", 0, pvSpec["capacity"], pv(func(v *corev1.PersistentVolume) any { return storage(v.Spec.Capacity) })),
		col("Access Modes", "string", 0, pvSpec["accessModes"], pv(func(v *corev1.PersistentVolume) any { return accessModes(v.Spec.AccessModes) })),
		col("Reclaim Policy", "string", 0, pvSpec["persistentVolumeReclaimPolicy"], pv(func(v *corev1.PersistentVolume) any {
			return string(v.Spec.PersistentVolumeReclaimPolicy)
		})),
		col("Status", "string", 0, pvStatus["phase"], pv(func(v *corev1.PersistentVolume) any { return string(v.Status.Phase) })),
		col("Claim", "string", 0, pvSpec["claimRef"], pv(func(v *corev1.PersistentVolume) any {
			if ref := v.Spec.ClaimRef; ref != nil {
				return ref.Namespace + "/" + ref.Name
			}
			return ""
		})),
		col("StorageClass", "string", 0, "StorageClass of the pv", pv(func(v *corev1.PersistentVolume) any { return v.Spec.StorageClassName })),
		col("VolumeAttributesClass", "string", 0, "VolumeAttributesClass of the pv", pv(func(v *corev1.PersistentVolume) any {
			return unset(v.Spec.VolumeAttributesClassName)
		})),
		col("Reason", "string", 0, pvStatus["reason"], pv(func(v *corev1.PersistentVolume) any { return v.Status.Reason })),
		ageCol,
		col("VolumeMode", "string", 1, pvSpec["volumeMode"], pv(func(v *corev1.PersistentVolume) any { return volumeMode(v.Spec.VolumeMode) })),
	}
	pvcSpec, pvcStatus := corev1.PersistentVolumeClaimSpec{}.SwaggerDoc(), corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()
	pvc := typed[*corev1.PersistentVolumeClaim]
	columns[kinds.PersistentVolumeClaim] = []Column{nameCol,
		col("Status", "string", 0, pvcStatus["phase"], pvc(func(c *corev1.PersistentVolumeClaim) any { return string(c.Status.Phase) })),
		col("Volume", "string", 0, pvcSpec["volumeName"], pvc(func(c *corev1.PersistentVolumeClaim) any { return c.Spec.VolumeName })),
		col("Capacity", "string", 0, pvcStatus["capacity"], pvc(func(c *corev1.PersistentVolumeClaim) any { return storage(c.Status.Capacity) })),
		col("Access Modes", "string", 0, pvcStatus["accessModes"], pvc(func(c *corev1.PersistentVolumeClaim) any { return accessModes(c.Status.AccessModes) })),
		col("StorageClass", "string", 0, "StorageClass of the pvc", pvc(func(c *corev1.PersistentVolumeClaim) any {
			if s := c.Spec.StorageClassName; s != nil {
				return *s
			}
			return ""
		})),
		col("VolumeAttributesClass", "string", 0, "VolumeAttributesClass of the pvc", pvc(func(c *corev1.PersistentVolumeClaim) any {
			return unset(c.Spec.VolumeAttributesClassName)
		})),
		ageCol,
	}
	sc := typed[*storagev1.StorageClass]
	scDoc := storagev1.StorageClass{}.SwaggerDoc()
	columns[kinds.StorageClass] = []Column{
		{metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: metaDoc["name"]},
			sc(func(c *storagev1.StorageClass) any {
				if c.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
					return c.Name + " (default)"
				}
				return c.Name
			})},
		col("Provisioner", "string", 0, scDoc["provisioner"], sc(func(c *storagev1.StorageClass) any { return c.Provisioner })),
		col("ReclaimPolicy", "string", 0, scDoc["reclaimPolicy"], sc(func(c *storagev1.StorageClass) any {
			if p := c.ReclaimPolicy; p != nil {
				return string(*p)
			}
			return string(corev1.PersistentVolumeReclaimDelete)
		})),
		col("VolumeBindingMode", "string", 0, scDoc["volumeBindingMode"], sc(func(c *storagev1.StorageClass) any {
			if m := c.VolumeBindingMode; m != nil {
				return string(*m)
			}
			return string(storagev1.VolumeBindingImmediate)
		})),
		col("AllowVolumeExpansion", "string", 0, scDoc["allowVolumeExpansion"], sc(func(c *storagev1.StorageClass) any {
			if e := c.AllowVolumeExpansion; e != nil {
				return strconv.FormatBool(*e)
			}
			return "false"
		})),
		ageCol,
	}
}

// storage is a capacity's storage quantity, or "" when it has none.
// The columns of PodTemplates and RuntimeClasses (a PodTemplate's have no age, as
// Kubernetes' printer has none; a RuntimeClass's Handler no description, as its has
// none).
func init() {
	columns[kinds.PodTemplate] = []Column{nameCol,
		col("Containers", "string", 0, "Names of each container in the template.", func(o kinds.Object, _ time.Time) any {
			return containerNames(&o.(*corev1.PodTemplate).Template.Spec)
		}),
		col("Images", "string", 0, "Images referenced by each container in the template.", func(o kinds.Object, _ time.Time) any {
			return containerImages(&o.(*corev1.PodTemplate).Template.Spec)
		}),
		col("Pod Labels", "string", 0, "The labels for the pod template.", func(o kinds.Object, _ time.Time) any {
			return labels.FormatLabels(o.(*corev1.PodTemplate).Template.Labels)
		}),
	}
	columns[kinds.RuntimeClass] = []Column{nameCol,
		col("Handler", "string", 0, "", func(o kinds.Object, _ time.Time) any {
			return o.(*nodev1.RuntimeClass).Handler
		}),
		ageCol,
	}
}

func storage(l corev1.ResourceList) string {
	if q, ok := l[corev1.ResourceStorage]; ok {
		return q.String()
	}
	return ""
}

// accessModes abbreviates as kubectl does: RWO, ROX, RWX, RWOP.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	short := map[corev1.PersistentVolumeAccessMode]string{corev1.ReadWriteOnce: "RWO", corev1.ReadOnlyMany: "ROX",
		corev1.ReadWriteMany: "RWX", corev1.ReadWriteOncePod: "RWOP"}
	var out []string
	for _, m := range modes {
		out = append(out, short[m])
	}
	return strings.Join(out, ",")
}

func unset(s *string) string {
	if s == nil || *s == "" {
		return "<unset>"
	}
	return *s
}

// volumeMode is a volume's mode, Filesystem unless it says otherwise.
func volumeMode(m *corev1.PersistentVolumeMode) string {
	if m != nil {
		return string(*m)
	}
	return string(corev1.PersistentVolumeFilesystem)
}
