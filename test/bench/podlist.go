package bench

import (
	"encoding/json"
	"io"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/kinds"
)

// DecodePodList reads a page of a pod list from a REST answer's body: Kubernetes'
// protobuf envelope when protobuf (the answer's content type said so), JSON otherwise.
// The list benchmarks decode their pages as a client would, so the client's share of a
// list is in their figures.
func DecodePodList(body io.Reader, protobuf bool) (corev1.PodList, error) {
	var l corev1.PodList
	if !protobuf {
		err := json.NewDecoder(body).Decode(&l)
		return l, err
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return l, err
	}
	env, err := kinds.Parse(raw)
	if err != nil {
		return l, err
	}
	err = l.Unmarshal(env.Raw)
	return l, err
}
