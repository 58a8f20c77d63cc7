package skiffctl

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// instantiateAnnotation marks a Job made by hand from a CronJob (kubectl's).
const instantiateAnnotation = "cronjob.kubernetes.io/instantiate"

func createJobCmd(g *globals, dry *dryRun, o *output) *cobra.Command {
	var image, from string
	cmd := &cobra.Command{
		Use:   "job NAME (--image=IMAGE [-- COMMAND [args...]] | --from=cronjob/CRONJOB)",
		Short: "Create a job running an image, or now from a cron job's template",
		Long: `Create a job as kubectl create job does: with --image, one container named NAME
running COMMAND, never restarted; with --from=cronjob/CRONJOB, the cron job's job template,
owned by the cron job and annotated cronjob.kubernetes.io/instantiate=manual.`,
		Example: `  skiffctl create job once --image=busybox:1.36 -- echo hello
  skiffctl create job backup-now --from=cronjob/backup`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() > 1 || (cmd.ArgsLenAtDash() < 0 && len(args) != 1) || len(args) == 0 {
				return fmt.Errorf("exactly one NAME is required (the job's name), then -- COMMAND")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var command []string
			if at := cmd.ArgsLenAtDash(); at >= 0 {
				command = args[at:]
			}
			switch {
			case (image == "") == (from == ""):
				return fmt.Errorf("either --image or --from must be specified")
			case from != "" && len(command) > 0:
				return fmt.Errorf("cannot specify --from and command")
			case image != "":
				return g.createObject(cmd, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						Containers:    []corev1.Container{{Name: name, Image: image, Command: command}},
						RestartPolicy: corev1.RestartPolicyNever}}}}, *dry, *o)
			}
			kind, cjName, ok := strings.Cut(from, "/")
			if info, found := kinds.Lookup(kind); !ok || !found || info.Kind != kinds.CronJob || cjName == "" {
				return fmt.Errorf("--from=%s: from must be an existing cronjob: cronjob/NAME", from)
			}
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			info := kinds.MustLookup(kinds.CronJob)
			cj, err := client.For[*batchv1.CronJob](conn).Get(ctx, g.namespaceOf(info), cjName)
			if err != nil {
				return notFound(info, cjName, err)
			}
			job := JobFromCronJob(cj, name)
			job.Namespace = cj.Namespace
			if err := o.validate(); err != nil {
				return err
			}
			return g.create(ctx, client.ForKind(conn, kinds.MustLookup(kinds.Job)), job, *dry, *o)
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "the image of the job's container")
	cmd.Flags().StringVar(&from, "from", "", "the cron job to take the job template from: cronjob/NAME")
	return cmd
}

// JobFromCronJob is kubectl's job made by hand from a cron job: its job template,
// named name, controlled by the cron job and annotated as made by hand.
func JobFromCronJob(cj *batchv1.CronJob, name string) *batchv1.Job {
	t := cj.Spec.JobTemplate.DeepCopy()
	annotations := map[string]string{instantiateAnnotation: "manual"}
	for k, v := range t.Annotations {
		annotations[k] = v
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: t.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: kinds.CronJob, Name: cj.Name, UID: cj.UID, Controller: ptr.To(true)}}},
		Spec: t.Spec,
	}
}
