package apiserver

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/store"
)

// A node's podCIDR is recorded as a Service's cluster IP is: a record per range in use,
// created in the transaction that sets it on the Node and deleted in the one that
// deletes the Node. However many node IPAM controllers run at once (a leader that does
// not know yet it was replaced), two nodes never get one range: the second write fails.
const podCIDRKind = "skiff.podcidr"

// allocateNodeCIDR is the record operations of writing next over cur (nil: a create;
// deleting: the write deletes it).
func (r *resources) allocateNodeCIDR(ctx context.Context, cur, next *corev1.Node, deleting bool) (*allocation, error) {
	out := &allocation{}
	curCIDR, nextCIDR := "", next.Spec.PodCIDR
	if cur != nil {
		curCIDR = cur.Spec.PodCIDR
	}
	if deleting {
		nextCIDR = ""
	}
	if curCIDR == nextCIDR {
		return out, nil
	}
	if nextCIDR != "" {
		out.ops = append(out.ops, store.Op{Type: store.Create, Key: store.Key{Kind: podCIDRKind, Name: nextCIDR}, Value: []byte(next.Name), UID: string(next.UID)})
	}
	if curCIDR != "" {
		op, ok, err := r.release(ctx, podCIDRKind, curCIDR, cur)
		if err != nil {
			return nil, err
		}
		if ok {
			out.ops = append(out.ops, op)
		}
	}
	return out, nil
}
