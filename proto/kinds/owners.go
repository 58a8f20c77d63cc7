package kinds

import (
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// ControllerOf returns obj's controller owner reference, or nil.
func ControllerOf(obj Object) *corev1.OwnerReference {
	for _, r := range obj.GetMetadata().GetOwnerReferences() {
		if r.GetController() {
			return r
		}
	}
	return nil
}

// NewControllerRef makes the owner reference a controller puts on what it creates.
func NewControllerRef(owner Object) *corev1.OwnerReference {
	in := Of(owner)
	t := true
	return &corev1.OwnerReference{
		ApiVersion: in.APIVersion, Kind: in.Kind, Name: owner.GetMetadata().GetName(), Uid: owner.GetMetadata().GetUid(),
		Controller: &t, BlockOwnerDeletion: &t,
	}
}
