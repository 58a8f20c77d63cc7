package kinds

import "strings"

// safeSysctls are the sysctls a pod may set without the node allowing more: Kubernetes'
// kubelet's safe set, each namespaced to the pod (what Kubernetes allows without
// --allowed-unsafe-sysctls).
var safeSysctls = map[string]bool{
	"kernel.shm_rmid_forced": true, "net.ipv4.ip_local_port_range": true, "net.ipv4.tcp_syncookies": true,
	"net.ipv4.ping_group_range": true, "net.ipv4.ip_unprivileged_port_start": true, "net.ipv4.ip_local_reserved_ports": true,
	"net.ipv4.tcp_keepalive_time": true, "net.ipv4.tcp_fin_timeout": true, "net.ipv4.tcp_keepalive_intvl": true,
	"net.ipv4.tcp_keepalive_probes": true,
}

// SafeSysctl says whether the sysctl name (with dots or slashes) is in the safe set.
func SafeSysctl(name string) bool { return safeSysctls[strings.ReplaceAll(name, "/", ".")] }
