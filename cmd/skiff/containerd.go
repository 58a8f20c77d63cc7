package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/kubelet"
)

// newContainerdRuntime connects the kubelet to containerd.
func newContainerdRuntime(ctx context.Context, opts kubeletOptions, log hclog.Logger) (kubelet.Runtime, error) {
	return nil, fmt.Errorf("the containerd runtime is not available in this build: use --runtime sim")
}
