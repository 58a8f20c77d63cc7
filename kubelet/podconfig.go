package kubelet

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kubelet/crilog"
)

// containerConfig is what the runtime needs to run a container of pod: its environment
// resolved, its volumes and files mounted, its securityContext and resources.
func (k *Kubelet) containerConfig(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, attempt int, paths map[string]string) (ContainerConfig, error) {
	env, err := containerEnv(ctx, pod, spec, k.objects, k.cfg.NodeIP, k.podAddr(pod), k.capacity, k.serviceEnv(pod))
	if err != nil {
		return ContainerConfig{}, err
	}
	for _, msg := range env.skipped {
		k.rec.Eventf(pod, record.Warning, "InvalidEnvironmentVariableNames", "%s", msg)
	}
	cfg := ContainerConfig{
		PodUID: string(pod.UID), PodName: pod.Name, Namespace: pod.Namespace, Name: spec.Name,
		Image: spec.Image, Command: expandAll(spec.Command, env.env), Args: expandAll(spec.Args, env.env), Env: env.env,
		WorkingDir: spec.WorkingDir, Attempt: attempt, Pod: podResources(&pod.Spec), TTY: spec.TTY, Stdin: spec.Stdin, StdinOnce: spec.StdinOnce,
		HostPID: pod.Spec.HostPID, HostIPC: pod.Spec.HostIPC,
		Security: security(&pod.Spec, spec),
	}
	if q, ok := spec.Resources.Limits[corev1.ResourceCPU]; ok {
		cfg.CPUMillis = q.MilliValue()
	}
	if q, ok := spec.Resources.Limits[corev1.ResourceMemory]; ok {
		cfg.MemoryBytes = q.Value()
	}
	if q, ok := spec.Resources.Requests[corev1.ResourceCPU]; ok {
		cfg.CPURequestMillis = q.MilliValue()
	}
	for _, p := range spec.Ports {
		cfg.Ports = append(cfg.Ports, p.ContainerPort)
	}
	if !pod.Spec.HostNetwork {
		cfg.Hostname = podHostname(pod)
	}
	cfg.NetNSPath = k.netnsPath(pod)
	mounts, err := k.mounts(pod, spec, paths, env.env)
	if err != nil {
		return ContainerConfig{}, err
	}
	cfg.Mounts = mounts
	if k.cfg.ContainerFiles {
		files, err := k.podFiles(pod, spec, attempt)
		if err != nil {
			return ContainerConfig{}, err
		}
		cfg.Mounts = append(cfg.Mounts, files...)
	}
	return cfg, nil
}

// security merges the pod's and the container's securityContexts (the container's
// wins), as Kubernetes' kubelet does; fsGroup joins the supplemental groups.
func security(pod *corev1.PodSpec, c *corev1.Container) Security {
	var s Security
	if ps := pod.SecurityContext; ps != nil {
		s.RunAsUser, s.RunAsGroup = ps.RunAsUser, ps.RunAsGroup
		s.RunAsNonRoot = ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
		s.SupplementalGroups = append(s.SupplementalGroups, ps.SupplementalGroups...)
		if ps.FSGroup != nil {
			s.SupplementalGroups = append(s.SupplementalGroups, *ps.FSGroup)
		}
		s.SELinuxLabel = ps.SELinuxOptions != nil
		if sp := ps.SeccompProfile; sp != nil {
			s.SeccompRuntimeDefault = sp.Type == corev1.SeccompProfileTypeRuntimeDefault
		}
		if len(ps.Sysctls) > 0 {
			s.Sysctls = map[string]string{}
			for _, sc := range ps.Sysctls {
				s.Sysctls[strings.ReplaceAll(sc.Name, "/", ".")] = sc.Value
			}
		}
	}
	if cs := c.SecurityContext; cs != nil {
		if cs.RunAsUser != nil {
			s.RunAsUser = cs.RunAsUser
		}
		if cs.RunAsGroup != nil {
			s.RunAsGroup = cs.RunAsGroup
		}
		if cs.RunAsNonRoot != nil {
			s.RunAsNonRoot = *cs.RunAsNonRoot
		}
		s.SELinuxLabel = s.SELinuxLabel || cs.SELinuxOptions != nil
		if sp := cs.SeccompProfile; sp != nil {
			s.SeccompRuntimeDefault = sp.Type == corev1.SeccompProfileTypeRuntimeDefault
		}
		s.Privileged = cs.Privileged != nil && *cs.Privileged
		s.ReadOnlyRootfs = cs.ReadOnlyRootFilesystem != nil && *cs.ReadOnlyRootFilesystem
		s.NoNewPrivileges = cs.AllowPrivilegeEscalation != nil && !*cs.AllowPrivilegeEscalation
		if caps := cs.Capabilities; caps != nil {
			for _, c := range caps.Add {
				s.CapAdd = append(s.CapAdd, strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_"))
			}
			for _, c := range caps.Drop {
				s.CapDrop = append(s.CapDrop, strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_"))
			}
		}
	}
	return s
}

// podHostname is the host name of a pod's containers: spec.hostname, else the pod's
// name, cut to a DNS label's 63 characters as Kubernetes cuts it.
func podHostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// mounts are a container's volumeMounts as host paths: a subPath (or a subPathExpr
// expanded with the container's environment env) inside its volume (made when missing,
// as Kubernetes does, and never leading out of the volume), and the volumes the kubelet
// writes (configMap, secret, downwardAPI, projected) read-only.
func (k *Kubelet) mounts(pod *corev1.Pod, spec *corev1.Container, paths map[string]string, env []string) ([]Mount, error) {
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	var vars map[string]string
	var out []Mount
	for _, m := range spec.VolumeMounts {
		v, host := vols[m.Name], paths[m.Name]
		if v == nil || host == "" {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", m.Name, spec.Name)
		}
		s := &v.VolumeSource
		projected := s.ConfigMap != nil || s.Secret != nil || s.DownwardAPI != nil || s.Projected != nil
		// An image volume is read-only, its subPaths the image's own (none is made).
		image := s.Image != nil
		subPath := m.SubPath
		if m.SubPathExpr != "" {
			if vars == nil {
				vars = envMap(env)
			}
			var err error
			if subPath, err = expandSubPath(m.SubPathExpr, vars); err != nil {
				return nil, err
			}
		}
		if subPath != "" {
			sub := filepath.Join(host, subPath)
			if _, err := os.Lstat(sub); os.IsNotExist(err) && !projected && !image {
				if err := os.MkdirAll(sub, 0o750); err != nil {
					return nil, fmt.Errorf("failed to create subPath directory for volumeMount %q of container %q: %v", m.Name, spec.Name, err)
				}
			}
			real, err := filepath.EvalSymlinks(sub)
			if err != nil {
				return nil, fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q: %v", m.Name, spec.Name, err)
			}
			base, err := filepath.EvalSymlinks(host)
			if err != nil {
				return nil, err
			}
			if real != base && !strings.HasPrefix(real, base+string(filepath.Separator)) {
				return nil, fmt.Errorf("subPath %q of volumeMount %q of container %q leads out of its volume", subPath, m.Name, spec.Name)
			}
			host = real
		}
		// A claim's readOnly forces its mounts' (Kubernetes').
		claimRO := s.PersistentVolumeClaim != nil && s.PersistentVolumeClaim.ReadOnly
		out = append(out, Mount{HostPath: host, ContainerPath: m.MountPath, ReadOnly: m.ReadOnly || projected || claimRO || image})
	}
	return out, nil
}

// managedHostsHeader starts the /etc/hosts the kubelet writes, as Kubernetes'.
const managedHostsHeader = "# Kubernetes-managed hosts file.\n"

// podFiles writes the files a real container reads besides its volumes — its
// termination log, its /etc/hosts and /etc/resolv.conf — and returns their mounts.
func (k *Kubelet) podFiles(pod *corev1.Pod, spec *corev1.Container, attempt int) ([]Mount, error) {
	var out []Mount
	if p := spec.TerminationMessagePath; p != "" {
		log, err := k.volumes.TerminationLog(pod.UID, spec.Name, attempt)
		if err != nil {
			return nil, fmt.Errorf("termination log: %w", err)
		}
		out = append(out, Mount{HostPath: log, ContainerPath: p})
	}
	if !pod.Spec.HostNetwork && !mountsAt(spec, "/etc/hosts") {
		hosts := hostsFile(podHostname(pod), podDomain(pod, k.cfg.ClusterDomain), k.podAddr(pod)) + hostAliases(pod.Spec.HostAliases)
		p, err := k.volumes.WriteFile(pod.UID, "etc-hosts", []byte(hosts))
		if err != nil {
			return nil, fmt.Errorf("write /etc/hosts: %w", err)
		}
		out = append(out, Mount{HostPath: p, ContainerPath: "/etc/hosts"})
	}
	if !mountsAt(spec, "/etc/resolv.conf") {
		conf, err := k.resolvConf(pod)
		if err != nil {
			return nil, err
		}
		p, err := k.volumes.WriteFile(pod.UID, "resolv.conf", conf)
		if err != nil {
			return nil, fmt.Errorf("write /etc/resolv.conf: %w", err)
		}
		out = append(out, Mount{HostPath: p, ContainerPath: "/etc/resolv.conf"})
	}
	return out, nil
}

// podDomain is the domain of a pod with a subdomain, SUBDOMAIN.NAMESPACE.svc.DOMAIN
// (Kubernetes' GeneratePodHostNameAndDomain); "" without one.
func podDomain(pod *corev1.Pod, clusterDomain string) string {
	if pod.Spec.Subdomain == "" {
		return ""
	}
	return pod.Spec.Subdomain + "." + pod.Namespace + ".svc." + clusterDomain
}

// hostAliases is what a pod's spec.hostAliases add to its /etc/hosts, as Kubernetes'
// kubelet writes them (hostsEntriesFromHostAliases); "" without any. A pod on the host's
// network keeps the image's /etc/hosts here, aliases or not.
func hostAliases(aliases []corev1.HostAlias) string {
	if len(aliases) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		b.WriteString(a.IP + "\t" + strings.Join(a.Hostnames, "\t") + "\n")
	}
	return b.String()
}

// hostsFile is the /etc/hosts of a pod's containers as Kubernetes' kubelet writes it
// (managedHostsFileContent): localhost's names, then the pod's IP with its host name,
// after its fully qualified name when it has a domain.
func hostsFile(hostname, domain, podIP string) string {
	names := hostname
	if domain != "" {
		names = hostname + "." + domain + "\t" + hostname
	}
	return managedHostsHeader + "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n" +
		"fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" + podIP + "\t" + names + "\n"
}

func mountsAt(spec *corev1.Container, path string) bool {
	for _, m := range spec.VolumeMounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

// pullCredentials reads the registry logins of the pod's imagePullSecrets
// (kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg). A secret that cannot be
// read is a warning, as in Kubernetes: the pull is tried without it.
func (k *Kubelet) pullCredentials(ctx context.Context, pod *corev1.Pod) Credentials {
	if len(pod.Spec.ImagePullSecrets) == 0 {
		return nil
	}
	creds := Credentials{}
	var missing []string
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := k.objects.secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			missing = append(missing, ref.Name)
			continue
		}
		var auths map[string]dockerAuth
		switch {
		case s.Type == corev1.SecretTypeDockerConfigJson:
			var cfg struct {
				Auths map[string]dockerAuth `json:"auths"`
			}
			err = json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg)
			auths = cfg.Auths
		case s.Type == corev1.SecretTypeDockercfg:
			err = json.Unmarshal(s.Data[corev1.DockerConfigKey], &auths)
		default:
			err = fmt.Errorf("type %s", s.Type)
		}
		if err != nil {
			missing = append(missing, ref.Name)
			continue
		}
		for server, a := range auths {
			if a.Username == "" && a.Auth != "" {
				if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
					a.Username, a.Password, _ = strings.Cut(string(raw), ":")
				}
			}
			if _, ok := creds[registryKey(server)]; !ok {
				creds[registryKey(server)] = RegistryAuth{Username: a.Username, Password: a.Password}
			}
		}
	}
	if len(missing) > 0 {
		k.rec.Eventf(pod, record.Warning, "FailedToRetrieveImagePullSecret",
			"Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed.", strings.Join(missing, ", "))
	}
	return creds
}

// dockerAuth is one entry of a docker config's "auths".
type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// registryKey is the registry host a docker config names ("https://index.docker.io/v1/"
// is docker.io; "http://127.0.0.1:5000/v2" is 127.0.0.1:5000).
func registryKey(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "index.docker.io", "registry-1.docker.io", "docker.io":
		return "docker.io"
	}
	return s
}

// terminationMessageLimit is the most of a termination message Kubernetes keeps; from
// the logs, the last 80 lines and at most 2 KiB.
const (
	terminationMessageLimit = 4096
	logMessageLines         = 80
	logMessageLimit         = 2048
)

// readMessages reads the termination message of each exited attempt not read yet: its
// terminationMessagePath file, or with FallbackToLogsOnError and an empty file after a
// failure, the end of its output.
func (k *Kubelet) readMessages(ctx context.Context, pod *corev1.Pod, hist map[string][]Container, mem *podMemory) {
	for name, h := range hist {
		spec := containerSpec(pod, name)
		if spec == nil {
			continue
		}
		for _, c := range h[:min(2, len(h))] {
			if c.State != StateExited {
				continue
			}
			if _, done := mem.messages[c.ID]; done {
				continue
			}
			msg := c.Message
			if k.cfg.ContainerFiles && spec.TerminationMessagePath != "" {
				if f, err := os.Open(k.volumes.TerminationLogPath(pod.UID, name, c.Attempt)); err == nil {
					b, _ := io.ReadAll(io.LimitReader(f, terminationMessageLimit))
					f.Close()
					msg = string(b)
				}
			}
			if msg == "" && c.ExitCode != 0 && spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
				if !k.logSettled(ctx, c) {
					return
				}
				var buf bytes.Buffer
				// The runtime keeps the CRI log format: the message is the content.
				if err := k.rt.Logs(ctx, c.ID, crilog.NewDecoder(crilog.NewPrinter(&buf, crilog.Options{})), false); err == nil {
					msg = logTail(buf.Bytes())
				}
			}
			// A program's bytes need not be UTF-8; the API refuses a status that is not.
			put(&mem.messages, c.ID, strings.ToValidUTF8(msg, "\uFFFD"))
		}
	}
	// Forget the messages of attempts gone.
	for id := range mem.messages {
		found := false
		for _, h := range hist {
			for _, c := range h {
				found = found || c.ID == id
			}
		}
		if !found {
			delete(mem.messages, id)
		}
	}
}

// logSettled waits, if the runtime asks for it (LogSettler), until c's log holds all of
// its output: at most LogSettle after its exit, so a moment only for a container that
// has just exited. It reports false if ctx ended first.
func (k *Kubelet) logSettled(ctx context.Context, c Container) bool {
	s, ok := k.rt.(LogSettler)
	if !ok || c.FinishedAt.IsZero() {
		return true
	}
	wait := time.Until(c.FinishedAt.Add(s.LogSettle()))
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(min(wait, s.LogSettle()))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// logTail is the end of a container's output as a termination message, as Kubernetes
// keeps it: the last logMessageLines lines, newlines and all, at most logMessageLimit
// bytes.
func logTail(b []byte) string {
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	s := strings.Join(lines[max(0, len(lines)-logMessageLines):], "")
	return s[max(0, len(s)-logMessageLimit):]
}

// containerResult is the prober's result for a container's probe (podState.probe).
func (p *prober) containerResult(c Container, typ probeType) result { return p.result(c.ID, typ) }
