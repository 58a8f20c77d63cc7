package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
)

// newContainerdRuntime connects the kubelet to containerd and imports --preload's archives.
func newContainerdRuntime(ctx context.Context, opts kubeletOptions, log hclog.Logger) (kubelet.Runtime, error) {
	rt, err := containerd.New(ctx, containerd.Config{Socket: opts.containerdAddress, Namespace: opts.containerdNamespace, LogDir: opts.logDir,
		InsecureRegistries: opts.insecureRegistries})
	if err != nil {
		return nil, err
	}
	if opts.preload != "" {
		archives, err := filepath.Glob(filepath.Join(opts.preload, "*.tar"))
		if err != nil {
			return nil, err
		}
		for _, a := range archives {
			f, err := os.Open(a)
			if err != nil {
				return nil, err
			}
			names, err := rt.Import(ctx, f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("--preload %s: %w", a, err)
			}
			log.Info("imported images", "archive", a, "images", names)
		}
	}
	if opts.busybox != "" {
		if err := ensureBusybox(ctx, rt, opts.busybox, log); err != nil {
			log.Warn("cannot provide the busybox image from the host", "error", err)
		}
	}
	return rt, nil
}

// ensureBusybox imports an image built from the host's static busybox as ref, unless the
// image is there: the examples then run on machines without a registry.
func ensureBusybox(ctx context.Context, rt *containerd.Runtime, ref string, log hclog.Logger) error {
	if _, _, err := rt.EnsureImage(ctx, ref, kubelet.PullNever); err == nil {
		return nil
	}
	data, err := containerd.BusyboxArchive("/bin/busybox", ref)
	if err != nil {
		return err
	}
	names, err := rt.Import(ctx, bytes.NewReader(data))
	if err != nil {
		return err
	}
	log.Info("imported the host's busybox", "images", names)
	return nil
}
