package skiffctl

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// createObject creates an object a command built from its options, in -n's namespace.
func (g *globals) createObject(cmd *cobra.Command, obj kinds.Object, dry dryRun, o output) error {
	if err := o.validate(); err != nil {
		return err
	}
	info := kinds.Of(obj)
	obj.SetNamespace(g.namespaceOf(info))
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return err
	}
	defer cancel()
	return g.create(ctx, client.ForKind(conn, info), obj, dry, o)
}

// oneName is the arguments of a command that creates one object: its name.
func oneName(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("exactly one NAME is required, got %d (the %s's name)", len(args), what)
		}
		return nil
	}
}

func createNamespaceCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	return &cobra.Command{
		Use:     "namespace NAME",
		Aliases: []string{"ns"},
		Short:   "Create a namespace",
		Args:    oneName("namespace"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.createObject(cmd, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: args[0]}}, *dry, *o)
		},
	}
}

func createDeploymentCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	var images []string
	var replicas, port int32
	cmd := &cobra.Command{
		Use:     "deployment NAME --image=IMAGE [--replicas=N] [--port=PORT] [-- COMMAND [args...]]",
		Aliases: []string{"deploy"},
		Short:   "Create a deployment running the images given",
		Long: `Create a deployment as kubectl create deployment does: labels and selector app=NAME,
one container per --image, named after the image (busybox for docker.io/library/busybox:1.36),
running COMMAND when given.`,
		Example: `  skiffctl create deployment web --image=busybox:1.36 --replicas=3 -- sleep 3600`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() > 1 || (cmd.ArgsLenAtDash() < 0 && len(args) != 1) || len(args) == 0 {
				return fmt.Errorf("exactly one NAME is required (the deployment's name), then -- COMMAND")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(images) == 0 {
				return fmt.Errorf("--image: Required value")
			}
			name := args[0]
			var command []string
			if at := cmd.ArgsLenAtDash(); at >= 0 {
				command = args[at:]
			}
			lbls := map[string]string{"app": name}
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To(replicas),
					Selector: &metav1.LabelSelector{MatchLabels: lbls},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}},
				},
			}
			seen := map[string]int{}
			for _, img := range images {
				c := corev1.Container{Name: containerName(img, seen), Image: img, Command: command}
				d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, c)
			}
			if port >= 0 {
				d.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: port}}
			}
			return g.createObject(cmd, d, *dry, *o)
		},
	}
	cmd.Flags().StringSliceVar(&images, "image", nil, "the image of a container; repeatable")
	cmd.Flags().Int32Var(&replicas, "replicas", 1, "number of replicas")
	cmd.Flags().Int32Var(&port, "port", -1, "the port the (first) container exposes")
	return cmd
}

// containerName names a container after its image, as kubectl create deployment does:
// the last path element without tag or digest, "_" made "-", made unique.
func containerName(image string, seen map[string]int) string {
	name := image[strings.LastIndex(image, "/")+1:]
	name, _, _ = strings.Cut(name, "@")
	name, _, _ = strings.Cut(name, ":")
	name = strings.ReplaceAll(name, "_", "-")
	seen[name]++
	if n := seen[name]; n > 1 {
		return name + "-" + strconv.Itoa(n)
	}
	return name
}

func createConfigMapCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	var literals, fromFiles, envFiles []string
	cmd := &cobra.Command{
		Use:     "configmap NAME [--from-literal=KEY=VALUE] [--from-file=[KEY=]PATH] [--from-env-file=PATH]",
		Aliases: []string{"cm"},
		Short:   "Create a config map from literal values, files or env files",
		Long: `Create a config map as kubectl create configmap does: --from-literal adds KEY=VALUE,
--from-file a file under its base name (or KEY), or each regular file of a directory,
--from-env-file the KEY=VALUE lines of a file. Values that are not UTF-8 go to binaryData.`,
		Example: `  skiffctl create configmap settings --from-literal=mode=fast --from-file=app.conf`,
		Args:    oneName("config map"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: args[0]}}
			add := func(key string, value []byte, source string) error {
				_, inData := cm.Data[key]
				_, inBinary := cm.BinaryData[key]
				if err := checkDataKey("ConfigMap", source, key, inData || inBinary); err != nil {
					return err
				}
				if utf8.Valid(value) {
					if cm.Data == nil {
						cm.Data = map[string]string{}
					}
					cm.Data[key] = string(value)
				} else {
					if cm.BinaryData == nil {
						cm.BinaryData = map[string][]byte{}
					}
					cm.BinaryData[key] = value
				}
				return nil
			}
			if err := readSources(literals, fromFiles, envFiles, add); err != nil {
				return err
			}
			return g.createObject(cmd, cm, *dry, *o)
		},
	}
	addSourceFlags(cmd.Flags(), &literals, &fromFiles, &envFiles)
	return cmd
}

// addSourceFlags adds kubectl's --from-literal, --from-file and --from-env-file, the
// sources of a ConfigMap's or a Secret's data.
func addSourceFlags(fs *pflag.FlagSet, literals, files, envFiles *[]string) {
	fs.StringArrayVar(literals, "from-literal", nil, "KEY=VALUE; repeatable")
	fs.StringArrayVar(files, "from-file", nil, "[KEY=]PATH: a file, or each regular file of a directory; repeatable")
	fs.StringArrayVar(envFiles, "from-env-file", nil, "a file of KEY=VALUE lines; repeatable")
}

// checkDataKey is kubectl's check of a key from source for a ConfigMap's or a Secret's
// data: a valid key name, not taken already.
func checkDataKey(kind, source, key string, taken bool) error {
	if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
		return fmt.Errorf("%s: %q is not a valid key name for a %s: %s", source, key, kind, strings.Join(errs, "; "))
	}
	if taken {
		return fmt.Errorf("%s: cannot add key %q, another key by that name already exists", source, key)
	}
	return nil
}

// readSources reads kubectl's --from-literal, --from-file and --from-env-file (a
// ConfigMap's or a Secret's data), handing add each key, its value and where it came
// from.
func readSources(literals, files, envFiles []string, add func(key string, value []byte, source string) error) error {
	if len(envFiles) > 0 && (len(literals) > 0 || len(files) > 0) {
		return fmt.Errorf("from-env-file cannot be combined with from-file or from-literal")
	}
	for _, l := range literals {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("--from-literal: invalid literal source %q, expected key=value", l)
		}
		if err := add(k, []byte(v), "--from-literal"); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := addFiles(f, add); err != nil {
			return err
		}
	}
	for _, f := range envFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")) // a UTF-8 byte order mark, as kubectl drops it
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				v = os.Getenv(k) // a bare KEY takes the environment's value, as kubectl's does
			}
			if err := add(k, []byte(v), fmt.Sprintf("%s:%d", f, i+1)); err != nil {
				return err
			}
		}
	}
	return nil
}

// addFiles adds --from-file's [KEY=]PATH: a file under KEY or its base name, or every
// regular file of a directory under its base name.
func addFiles(spec string, add func(key string, value []byte, source string) error) error {
	key, path, ok := strings.Cut(spec, "=")
	if !ok {
		key, path = "", spec
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if key == "" {
			key = filepath.Base(path)
		}
		return add(key, data, path)
	}
	if key != "" {
		return fmt.Errorf("--from-file: cannot give a key (%q) for a directory (%s)", key, path)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(path, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := add(e.Name(), data, p); err != nil {
			return err
		}
	}
	return nil
}

func runCmd(g *globals) *cobra.Command {
	var image, restart, lbls string
	var env []string
	var port int32
	var command bool
	var dry dryRun
	var o output
	cmd := &cobra.Command{
		Use:   "run NAME --image=IMAGE [--env=KEY=VALUE] [--labels=KEY=VALUE,...] [--port=PORT] [--restart=Always|OnFailure|Never] [--command] [-- ARGS...]",
		Short: "Run an image in a new pod",
		Long: `Create a pod running one container of IMAGE, as kubectl run does: the pod and its
container are named NAME, the pod is labelled run=NAME (or --labels). Arguments after --
are the container's args, or with --command its command.`,
		Example: `  skiffctl run box --image=busybox:1.36 --restart=Never -- sleep 60`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || cmd.ArgsLenAtDash() == 0 || (cmd.ArgsLenAtDash() < 0 && len(args) != 1) {
				return fmt.Errorf("NAME is required for run")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if image == "" {
				return fmt.Errorf("--image: Required value")
			}
			name := args[0]
			podLabels := map[string]string{"run": name}
			if lbls != "" {
				set, err := labels.ConvertSelectorToLabelsMap(lbls)
				if err != nil {
					return fmt.Errorf("--labels: %w", err)
				}
				podLabels = set
			}
			c := corev1.Container{Name: name, Image: image}
			if len(args) > 1 {
				if command {
					c.Command = args[1:]
				} else {
					c.Args = args[1:]
				}
			}
			for _, e := range env {
				k, v, ok := strings.Cut(e, "=")
				if !ok {
					return fmt.Errorf("--env: invalid %q, expected KEY=VALUE", e)
				}
				c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: v})
			}
			if port >= 0 {
				c.Ports = []corev1.ContainerPort{{ContainerPort: port}}
			}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{c}, RestartPolicy: corev1.RestartPolicy(restart)}}
			return g.createObject(cmd, pod, dry, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "the container's image")
	f.StringVar(&restart, "restart", "Always", "the pod's restart policy: Always, OnFailure or Never")
	f.StringVarP(&lbls, "labels", "l", "", "the pod's labels, KEY=VALUE,... (default run=NAME)")
	f.StringArrayVar(&env, "env", nil, "an environment variable KEY=VALUE; repeatable")
	f.Int32Var(&port, "port", -1, "the port the container exposes")
	f.BoolVar(&command, "command", false, "the arguments after -- are the command, not the args")
	addDryRun(f, &dry)
	f.StringVarP(&o.format, "output", "o", "", "print the pod as yaml, json or name instead of a message")
	return cmd
}
