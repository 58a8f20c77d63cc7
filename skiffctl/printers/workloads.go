package printers

import (
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/kinds"
)

// The tables of DaemonSets, StatefulSets, ControllerRevisions and storage, as kubectl
// prints them.
func init() {
	count := func(n int32) string { return strconv.Itoa(int(n)) }
	columns[kinds.DaemonSet] = []column{nameColumn,
		{header: "DESIRED", cell: func(o kinds.Object, _ time.Time) string {
			return count(o.(*appsv1.DaemonSet).Status.DesiredNumberScheduled)
		}},
		{header: "CURRENT", cell: func(o kinds.Object, _ time.Time) string {
			return count(o.(*appsv1.DaemonSet).Status.CurrentNumberScheduled)
		}},
		{header: "READY", cell: func(o kinds.Object, _ time.Time) string { return count(o.(*appsv1.DaemonSet).Status.NumberReady) }},
		{header: "UP-TO-DATE", cell: func(o kinds.Object, _ time.Time) string {
			return count(o.(*appsv1.DaemonSet).Status.UpdatedNumberScheduled)
		}},
		{header: "AVAILABLE", cell: func(o kinds.Object, _ time.Time) string { return count(o.(*appsv1.DaemonSet).Status.NumberAvailable) }},
		{header: "NODE SELECTOR", cell: func(o kinds.Object, _ time.Time) string {
			return labels.FormatLabels(o.(*appsv1.DaemonSet).Spec.Template.Spec.NodeSelector) // "<none>" when empty
		}},
		ageColumn,
		{header: "CONTAINERS", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerNames(&o.(*appsv1.DaemonSet).Spec.Template.Spec)
		}},
		{header: "IMAGES", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerImages(&o.(*appsv1.DaemonSet).Spec.Template.Spec)
		}},
		{header: "SELECTOR", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return metav1.FormatLabelSelector(o.(*appsv1.DaemonSet).Spec.Selector)
		}},
	}
	columns[kinds.StatefulSet] = []column{nameColumn,
		{header: "READY", cell: func(o kinds.Object, _ time.Time) string {
			s := o.(*appsv1.StatefulSet)
			return count(s.Status.ReadyReplicas) + "/" + count(replicas(s.Spec.Replicas))
		}},
		ageColumn,
		{header: "CONTAINERS", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerNames(&o.(*appsv1.StatefulSet).Spec.Template.Spec)
		}},
		{header: "IMAGES", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerImages(&o.(*appsv1.StatefulSet).Spec.Template.Spec)
		}},
	}
	columns[kinds.ControllerRevision] = []column{nameColumn,
		{header: "CONTROLLER", cell: func(o kinds.Object, _ time.Time) string {
			ref := metav1.GetControllerOfNoCopy(o)
			if ref == nil {
				return "<none>"
			}
			kind := strings.ToLower(ref.Kind)
			if gv, err := schema.ParseGroupVersion(ref.APIVersion); err == nil && gv.Group != "" {
				kind += "." + gv.Group
			}
			return kind + "/" + ref.Name
		}},
		{header: "REVISION", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.FormatInt(o.(*appsv1.ControllerRevision).Revision, 10)
		}},
		ageColumn,
	}
	columns[kinds.PersistentVolume] = []column{nameColumn,
		{header: "CAPACITY", cell: func(o kinds.Object, _ time.Time) string { return storage(o.(*corev1.PersistentVolume).Spec.Capacity) }},
		{header: "ACCESS MODES", cell: func(o kinds.Object, _ time.Time) string {
			return accessModes(o.(*corev1.PersistentVolume).Spec.AccessModes)
		}},
		{header: "RECLAIM POLICY", cell: func(o kinds.Object, _ time.Time) string {
			return string(o.(*corev1.PersistentVolume).Spec.PersistentVolumeReclaimPolicy)
		}},
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string { return string(o.(*corev1.PersistentVolume).Status.Phase) }},
		{header: "CLAIM", cell: func(o kinds.Object, _ time.Time) string {
			if ref := o.(*corev1.PersistentVolume).Spec.ClaimRef; ref != nil {
				return ref.Namespace + "/" + ref.Name
			}
			return ""
		}},
		{header: "STORAGECLASS", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.PersistentVolume).Spec.StorageClassName }},
		{header: "VOLUMEATTRIBUTESCLASS", cell: func(o kinds.Object, _ time.Time) string { return "<unset>" }},
		{header: "REASON", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.PersistentVolume).Status.Reason }},
		ageColumn,
		{header: "VOLUMEMODE", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			if m := o.(*corev1.PersistentVolume).Spec.VolumeMode; m != nil {
				return string(*m)
			}
			return "Filesystem"
		}},
	}
	columns[kinds.PersistentVolumeClaim] = []column{nameColumn,
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string {
			return string(o.(*corev1.PersistentVolumeClaim).Status.Phase)
		}},
		{header: "VOLUME", cell: func(o kinds.Object, _ time.Time) string { return o.(*corev1.PersistentVolumeClaim).Spec.VolumeName }},
		{header: "CAPACITY", cell: func(o kinds.Object, _ time.Time) string {
			return storage(o.(*corev1.PersistentVolumeClaim).Status.Capacity)
		}},
		{header: "ACCESS MODES", cell: func(o kinds.Object, _ time.Time) string {
			return accessModes(o.(*corev1.PersistentVolumeClaim).Status.AccessModes)
		}},
		{header: "STORAGECLASS", cell: func(o kinds.Object, _ time.Time) string {
			if c := o.(*corev1.PersistentVolumeClaim).Spec.StorageClassName; c != nil {
				return *c
			}
			return ""
		}},
		{header: "VOLUMEATTRIBUTESCLASS", cell: func(o kinds.Object, _ time.Time) string { return "<unset>" }},
		ageColumn,
	}
	columns[kinds.StorageClass] = []column{
		{header: "NAME", cell: func(o kinds.Object, _ time.Time) string {
			if o.GetAnnotations()["storageclass.kubernetes.io/is-default-class"] == "true" {
				return o.GetName() + " (default)"
			}
			return o.GetName()
		}},
		{header: "PROVISIONER", cell: func(o kinds.Object, _ time.Time) string { return o.(*storagev1.StorageClass).Provisioner }},
		{header: "RECLAIMPOLICY", cell: func(o kinds.Object, _ time.Time) string {
			if p := o.(*storagev1.StorageClass).ReclaimPolicy; p != nil {
				return string(*p)
			}
			return string(corev1.PersistentVolumeReclaimDelete)
		}},
		{header: "VOLUMEBINDINGMODE", cell: func(o kinds.Object, _ time.Time) string {
			if m := o.(*storagev1.StorageClass).VolumeBindingMode; m != nil {
				return string(*m)
			}
			return string(storagev1.VolumeBindingImmediate)
		}},
		{header: "ALLOWVOLUMEEXPANSION", cell: func(o kinds.Object, _ time.Time) string {
			if e := o.(*storagev1.StorageClass).AllowVolumeExpansion; e != nil {
				return strconv.FormatBool(*e)
			}
			return "false"
		}},
		ageColumn,
	}
}

// storage is a capacity's storage quantity, or "" when it has none.
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
