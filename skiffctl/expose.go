package skiffctl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// exposeOptions are kubectl expose's flags.
type exposeOptions struct {
	name, targetPort, protocol, svcType, selector, labels, clusterIP string
	port                                                             int32
	externalIPs                                                      []string
}

func exposeCmd(g *globals) *cobra.Command {
	var eo exposeOptions
	var dry dryRun
	var o output
	cmd := &cobra.Command{
		Use:   "expose (KIND NAME | KIND/NAME) [--port=PORT] [--target-port=PORT] [--type=TYPE] [--name=NAME]",
		Short: "Expose a deployment, replica set, pod or service as a new Service",
		Long: `Create a Service for a deployment, replica set, pod or service as kubectl expose does:
its selector is the object's (a deployment's or replica set's matchLabels, a pod's labels, a
service's selector), its ports --port (and --target-port, the same by default), or else the
object's own ports (its containers' ports, or the service's), one Service port each
(named port-1, port-2... when there are several). The Service is named after the object
unless --name says otherwise, and takes its labels.`,
		Example: `  skiffctl expose deployment web --port=80 --target-port=8080 --type=NodePort`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("you must provide one resource by KIND NAME or KIND/NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			reqs, _, err := getArgs(args)
			if err != nil {
				return err
			}
			if len(reqs) != 1 || len(reqs[0].names) != 1 {
				return fmt.Errorf("you must provide one resource by KIND NAME or KIND/NAME")
			}
			info, name := reqs[0].info, reqs[0].names[0]
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			obj, err := client.ForKind(conn, info).Get(ctx, g.namespaceOf(info), name)
			if err != nil {
				return notFound(info, name, err)
			}
			svc, err := eo.service(info, obj)
			if err != nil {
				return err
			}
			svc.Namespace = obj.GetNamespace()
			if dry == dryRunClient {
				return g.result(kinds.Of(svc), svc, "exposed", o, dry)
			}
			out, err := client.For[*corev1.Service](conn).CreateWithOptions(ctx, svc, client.CreateOptions{DryRun: dry == dryRunServer})
			if err != nil {
				return err
			}
			return g.result(kinds.Of(out), out, "exposed", o, dry)
		},
	}
	f := cmd.Flags()
	f.StringVar(&eo.name, "name", "", "the Service's name (default: the object's)")
	f.Int32Var(&eo.port, "port", -1, "the port the Service serves (default: the object's ports)")
	f.StringVar(&eo.targetPort, "target-port", "", "the pods' port (number or name) the Service sends to (default: --port)")
	f.StringVar(&eo.protocol, "protocol", "", "TCP, UDP or SCTP (default: the object's port's, or TCP)")
	f.StringVar(&eo.svcType, "type", "", "ClusterIP (default), NodePort, LoadBalancer or ExternalName")
	f.StringVar(&eo.selector, "selector", "", "the Service's selector (key=value,...) instead of the object's")
	f.StringVarP(&eo.labels, "labels", "l", "", "the Service's labels (key=value,...) instead of the object's")
	f.StringVar(&eo.clusterIP, "cluster-ip", "", "the Service's cluster IP; None for a headless Service")
	f.StringSliceVar(&eo.externalIPs, "external-ip", nil, "an external IP the Service also answers on")
	addDryRun(f, &dry)
	f.StringVarP(&o.format, "output", "o", "", "print the Service as yaml, json or name instead of a message")
	return cmd
}

// service builds the Service exposing obj, as kubectl expose does.
func (eo exposeOptions) service(info *kinds.Info, obj kinds.Object) (*corev1.Service, error) {
	var selector map[string]string
	var ports []corev1.ServicePort
	switch o := obj.(type) {
	case *appsv1.Deployment:
		s, err := matchLabelsOnly(info, o.Spec.Selector)
		if err != nil {
			return nil, err
		}
		selector, ports = s, containerPorts(&o.Spec.Template.Spec)
	case *appsv1.ReplicaSet:
		s, err := matchLabelsOnly(info, o.Spec.Selector)
		if err != nil {
			return nil, err
		}
		selector, ports = s, containerPorts(&o.Spec.Template.Spec)
	case *corev1.Pod:
		selector, ports = o.Labels, containerPorts(&o.Spec)
	case *corev1.Service:
		selector = o.Spec.Selector
		for _, p := range o.Spec.Ports {
			ports = append(ports, corev1.ServicePort{Port: p.Port, Protocol: p.Protocol})
		}
	default:
		return nil, fmt.Errorf("cannot expose a %s", info.Kind)
	}
	if eo.selector != "" {
		s, err := labels.ConvertSelectorToLabelsMap(eo.selector)
		if err != nil {
			return nil, fmt.Errorf("--selector: %w", err)
		}
		selector = s
	}
	if len(selector) == 0 {
		return nil, fmt.Errorf("couldn't retrieve selectors via --selector flag or introspection: the %s %q has none", strings.ToLower(info.Kind), obj.GetName())
	}
	if eo.port >= 0 {
		ports = []corev1.ServicePort{{Port: eo.port}}
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("couldn't find port via --port flag or introspection")
	}
	for i := range ports {
		p := &ports[i]
		if len(ports) > 1 {
			p.Name = "port-" + strconv.Itoa(i+1)
		}
		if eo.protocol != "" {
			p.Protocol = corev1.Protocol(eo.protocol)
		}
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		p.TargetPort = intstr.FromInt32(p.Port)
		if eo.targetPort != "" {
			p.TargetPort = intstr.Parse(eo.targetPort)
		}
	}
	name := eo.name
	if name == "" {
		name = obj.GetName()
	}
	lbls := obj.GetLabels()
	if eo.labels != "" {
		l, err := labels.ConvertSelectorToLabelsMap(eo.labels)
		if err != nil {
			return nil, fmt.Errorf("--labels: %w", err)
		}
		lbls = l
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec: corev1.ServiceSpec{Selector: selector, Ports: ports, Type: corev1.ServiceType(eo.svcType),
			ClusterIP: eo.clusterIP, ExternalIPs: eo.externalIPs},
	}
	return svc, nil
}

// matchLabelsOnly is a workload's selector as a Service's, which has no expressions.
func matchLabelsOnly(info *kinds.Info, sel *metav1.LabelSelector) (map[string]string, error) {
	if sel == nil {
		return nil, nil
	}
	if len(sel.MatchExpressions) > 0 {
		return nil, fmt.Errorf("couldn't convert expressions of the %s's selector to a Service's: a Service selects by labels only (use --selector)", strings.ToLower(info.Kind))
	}
	return sel.MatchLabels, nil
}

// containerPorts are a pod's containers' ports as a Service's, as kubectl introspects them.
func containerPorts(spec *corev1.PodSpec) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			out = append(out, corev1.ServicePort{Port: p.ContainerPort, Protocol: p.Protocol})
		}
	}
	return out
}
