// Package skiffctl is the skiffctl command line: the kubectl-like commands, built on the
// client package. The skiffctl binary only runs NewCommand; tests run the same commands in
// process. Its sub-packages read manifests (manifest), print objects (printers) and
// rebuild a deployment's chain of events (trace).
package skiffctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/printers"
)

// Streams are the command's input and outputs.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

// StdStreams are the process's own.
func StdStreams() Streams { return Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// globals are the flags every command shares.
type globals struct {
	streams   Streams
	settings  client.Settings
	namespace string
	timeout   time.Duration
	conn      *client.Conn
	now       func() time.Time
}

// NewCommand builds the skiffctl command tree.
func NewCommand(streams Streams) *cobra.Command {
	g := &globals{streams: streams, now: time.Now}
	root := &cobra.Command{
		Use:           "skiffctl",
		Short:         "skiffctl controls a Skiff cluster, the way kubectl controls Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&g.settings.Server, "server", "", "API servers, comma-separated (default $SKIFF_SERVER, the client config's, or 127.0.0.1:7443)")
	pf.StringVar(&g.settings.Config, "config", "", "client config file (default $SKIFF_CONFIG or ~/.skiff/config, which skiff up writes)")
	pf.StringVar(&g.settings.CAFile, "ca-file", "", "the cluster CA (turns TLS on)")
	pf.StringVar(&g.settings.CertFile, "cert-file", "", "client certificate")
	pf.StringVar(&g.settings.KeyFile, "key-file", "", "the client certificate's key")
	pf.StringVar(&g.settings.Token, "token", "", "bearer token (with --ca-file)")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "namespace (default \"default\")")
	pf.DurationVar(&g.timeout, "request-timeout", 30*time.Second, "how long to wait for an answer; 0 waits forever")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		var once sync.Once
		learned := false
		learn := func() bool {
			once.Do(func() { learned = g.learnCustomKinds(cmd) })
			return learned
		}
		learnCustomKinds.Store(&learn)
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if g.conn != nil {
			g.conn.Close()
		}
	}
	root.AddCommand(
		applyCmd(g), createCmd(g), replaceCmd(g), diffCmd(g), getCmd(g), describeCmd(g), deleteCmd(g),
		editCmd(g), patchCmd(g), metaCmd(g, true), metaCmd(g, false), runCmd(g),
		scaleCmd(g), setCmd(g), rolloutCmd(g), waitCmd(g), logsCmd(g),
		cordonCmd(g, true), cordonCmd(g, false), taintCmd(g), drainCmd(g),
		versionCmd(g), apiResourcesCmd(g), explainCmd(g), traceCmd(g), clusterCmd(g),
		execCmd(g), attachCmd(g), portForwardCmd(g), cpCmd(g), uiCmd(g), configCmd(g), exposeCmd(g),
	)
	return root
}

// Execute runs skiffctl with args and returns the process exit code, printing an error
// as "Error: ..." on stderr.
func Execute(ctx context.Context, streams Streams, args []string) int {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if exit := (*client.ExitError)(nil); errors.As(err, &exit) {
		fmt.Fprintln(streams.Err, exit.Error()) // a remote command's code, as kubectl exits with it
		return exit.Code
	}
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		err = ee.Err
	}
	// Several failures (one per object of a manifest) are several lines.
	for _, e := range flatten(err) {
		fmt.Fprintln(streams.Err, "Error:", Message(e))
	}
	return code
}

// flatten lists the errors errors.Join joined, however nested.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// ExitError ends skiffctl with Code, printing Err (when set) as other errors are: for
// commands whose exit code says more than failure, as diff's does.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Message is what a user sees of err: a gRPC error's message without its code.
func Message(err error) string {
	var s interface{ GRPCStatus() *status.Status }
	if errors.As(err, &s) {
		if msg := s.GRPCStatus().Message(); msg != "" {
			prefix := strings.TrimSuffix(err.Error(), s.GRPCStatus().Err().Error())
			return prefix + msg
		}
	}
	return err.Error()
}

// noTimeout, as connect's timeout, lets a call run until the command ends or is
// interrupted: for streams, which last as long as the user wants them to.
const noTimeout time.Duration = 0

// connect is the prologue of every call to the API servers: the connection, dialled on
// first use from the flags and the client config and closed when the command ends, and
// a context for the call that ends after timeout (g.timeout, --request-timeout, for one
// request) or when the command is interrupted. The caller cancels it when the call is
// done.
func (g *globals) connect(cmd *cobra.Command, timeout time.Duration) (*client.Conn, context.Context, context.CancelFunc, error) {
	if g.conn == nil {
		s := g.settings
		s.UseDefaultConfig = true
		servers, opts, err := client.Resolve(s, client.Options{UserAgent: "skiffctl", Logger: hclog.NewNullLogger()})
		if err != nil {
			return nil, nil, nil, err
		}
		conn, err := client.Dial(servers, opts)
		if err != nil {
			return nil, nil, nil, err
		}
		g.conn = conn
		g.renewCertificate(cmd.Context(), s, conn)
	}
	if timeout <= 0 {
		ctx, cancel := context.WithCancel(cmd.Context())
		return g.conn, ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	return g.conn, ctx, cancel, nil
}

// renewCertificate renews the user's client certificate through the API servers when
// it is due, as components renew theirs (client.CertificateManager): at two thirds of
// its life, or when the CA file's first CA is a new one (a CA rotation). It writes the
// files it read, and only when they are this user's and writable (Writable): a
// certificate on a read-only mount or of another user is left alone. A renewal that
// fails is a warning; the command goes on with the current certificate.
func (g *globals) renewCertificate(ctx context.Context, s client.Settings, conn *client.Conn) {
	ca, cert, key, err := s.Files()
	if err != nil || ca == "" || cert == "" {
		return
	}
	m := &client.CertificateManager{Conn: conn, CertFile: cert, KeyFile: key, CAFile: ca, Logger: hclog.NewNullLogger(), Now: g.now}
	if m.Writable() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := m.RenewIfDue(ctx); err != nil {
		fmt.Fprintf(g.streams.Err, "Warning: %s; the current certificate is used\n", Message(err))
	}
}

func (g *globals) ns() string {
	if g.namespace == "" {
		return "default"
	}
	return g.namespace
}

// learnCustomKinds, set for each command run, asks the server once for its
// CustomResourceDefinitions, so that kind knows the custom kinds the server serves.
var learnCustomKinds atomic.Pointer[func() bool]

// learnCustomKinds makes this process's kinds registry serve the server's established
// CRDs (kinds.ServeCRDs, as the API server does); false when they cannot be read.
func (g *globals) learnCustomKinds(cmd *cobra.Command) bool {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return false
	}
	defer cancel()
	l, err := client.For[*apiextensionsv1.CustomResourceDefinition](conn).List(ctx, "", client.ListOptions{})
	if err != nil {
		return false
	}
	kinds.ServeCRDs(l.Items, nil)
	return true
}

// kind resolves a KIND argument ("deploy", "pods", "Deployment", "deployments.apps"),
// or a custom kind of the server's CRDs.
func kind(name string) (*kinds.Info, error) {
	info, ok := kinds.Lookup(name)
	if learn := learnCustomKinds.Load(); !ok && learn != nil && (*learn)() {
		info, ok = kinds.Lookup(name)
	}
	if !ok {
		return nil, fmt.Errorf("the server doesn't have a resource type %q (known: %s)", name, strings.Join(kinds.Names(), ", "))
	}
	return info, nil
}

// kindAndName splits "deployment/web" or ("deployment", "web").
func kindAndName(args []string) (*kinds.Info, string, error) {
	var k, name string
	switch {
	case len(args) == 1 && strings.Contains(args[0], "/"):
		k, name, _ = strings.Cut(args[0], "/")
	case len(args) == 2:
		k, name = args[0], args[1]
	default:
		return nil, "", fmt.Errorf("expected KIND NAME or KIND/NAME, got %q", strings.Join(args, " "))
	}
	info, err := kind(k)
	if err != nil {
		return nil, "", err
	}
	if name == "" {
		return nil, "", fmt.Errorf("a %s name is required", info.Singular)
	}
	return info, name, nil
}

// namespaceOf is where a named object of info lives.
func (g *globals) namespaceOf(info *kinds.Info) string {
	if !info.Namespaced {
		return ""
	}
	return g.ns()
}

// notFound rewrites the server's NotFound as kubectl-ish "deployment "web" not found".
func notFound(info *kinds.Info, name string, err error) error {
	if client.IsNotFound(err) {
		return fmt.Errorf("%s %q not found", info.Singular, name)
	}
	return err
}

// ref is how kubectl names an object in messages: "deployment.apps/web".
func ref(info *kinds.Info, name string) string { return printers.KindName(info, name) }
