package skiffctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiffhq/skiff/client"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

func clusterCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "cluster", Short: "The API servers' Raft cluster: members, leader, snapshots, disk"}
	c.AddCommand(clusterStatusCmd(g), clusterAddCmd(g), clusterRemoveCmd(g), clusterTransferLeaderCmd(g), clusterSnapshotCmd(g),
		clusterSnapshotsCmd(g), clusterDefragCmd(g), clusterAlarmCmd(g), clusterCertsCmd(g))
	return c
}

func clusterStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the members, their roles, the leader and each member's database size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := conn.ClusterStatusSizes(ctx)
			if err != nil {
				return err
			}
			return g.printCluster(st)
		},
	}
}

func clusterAddCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "add NAME RAFTADDR [APIADDR]",
		Short: "Add a member (start it with --join first, or give its addresses here)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			api := ""
			if len(args) == 3 {
				api = args[2]
			}
			return g.changeMembers(cmd, "add", "added", args[0], func(ctx context.Context, conn *client.Conn) (*apiv1.ClusterStatus, error) {
				return conn.AddMember(ctx, args[0], args[1], api)
			})
		},
	}
}

func clusterRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a member",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.changeMembers(cmd, "remove", "removed", args[0], func(ctx context.Context, conn *client.Conn) (*apiv1.ClusterStatus, error) {
				return conn.RemoveMember(ctx, args[0])
			})
		},
	}
}

// changeMembers makes one membership change and prints the members it leaves: "member
// NAME added", or "add member NAME: ..." when it fails.
func (g *globals) changeMembers(cmd *cobra.Command, verb, done, name string, change func(context.Context, *client.Conn) (*apiv1.ClusterStatus, error)) error {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := change(ctx, conn)
	if err != nil {
		return fmt.Errorf("%s member %s: %w", verb, name, err)
	}
	fmt.Fprintf(g.streams.Out, "member %s %s\n", name, done)
	return g.printCluster(st)
}

func clusterTransferLeaderCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader [NAME]",
		Short: "Hand leadership to a member (or any up-to-date one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to := ""
			if len(args) == 1 {
				to = args[0]
			}
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := conn.TransferLeader(ctx, to)
			if err != nil {
				return fmt.Errorf("transfer leadership: %w", err)
			}
			fmt.Fprintf(g.streams.Out, "leader is now %s\n", st.GetLeader())
			return nil
		},
	}
}

func clusterSnapshotCmd(g *globals) *cobra.Command {
	snap := &cobra.Command{Use: "snapshot", Short: "Save a consistent copy of the cluster's state"}
	snap.AddCommand(clusterSnapshotSaveCmd(g))
	return snap
}

func clusterSnapshotSaveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "save FILE",
		Short: "Write a snapshot of the state machine to FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// A snapshot takes as long as the state is large: no --request-timeout.
			conn, ctx, cancel, err := g.connect(cmd, noTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			path := args[0]
			tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".part-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			rev, err := conn.Snapshot(ctx, tmp)
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Rename(tmp.Name(), path)
			}
			if err != nil {
				return fmt.Errorf("snapshot save %s: %w", path, err)
			}
			info, _ := os.Stat(path)
			fmt.Fprintf(g.streams.Out, "Snapshot saved at %s (revision %d, %d bytes)\n", path, rev, info.Size())
			return nil
		},
	}
}

func clusterSnapshotsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots",
		Short: "List the scheduled snapshots (--snapshot-interval) every member keeps, and those uploaded to S3 (--snapshot-s3-bucket)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			l, err := conn.ListSnapshots(ctx)
			if err != nil {
				return fmt.Errorf("list snapshots: %w", err)
			}
			for _, e := range l.GetErrors() {
				fmt.Fprintf(g.streams.Err, "warning: member %s\n", e)
			}
			if len(l.GetSnapshots()) == 0 {
				fmt.Fprintln(g.streams.Err, "No snapshots found.")
				return nil
			}
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "MEMBER\tCREATED\tREVISION\tSIZE\tVERSION\tPATH")
			for _, s := range l.GetSnapshots() {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", s.GetMember(), time.Unix(s.GetCreatedUnix(), 0).UTC().Format(time.RFC3339),
					s.GetRevision(), byteSize(s.GetSize()), s.GetVersion(), s.GetPath())
			}
			return tw.Flush()
		},
	}
}

func clusterCertsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "certs",
		Short: "List every member's certificates: subject, expiry, and when the member renews them",
		Long: `List each API server's own certificates (--tls-cert-file, --peer-cert-file), asking every
member at its API address: what each is for, the user it names, when it expires, and when
the member renews it (two thirds of its life) if it has the cluster CA
(--cluster-signing-cert-file); "never" when it does not, and the certificate must be
renewed by hand (skiff certs rotate) before it expires.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := conn.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "MEMBER\tCERTIFICATE\tSUBJECT\tEXPIRES\tRENEWS\tRENEWALS\tFILE")
			for _, m := range st.GetMembers() {
				if m.GetApiAddress() == "" {
					fmt.Fprintf(g.streams.Err, "warning: member %s: its API address is not known\n", m.GetName())
					continue
				}
				l, err := conn.MemberCertificates(ctx, m.GetApiAddress())
				if err != nil {
					fmt.Fprintf(g.streams.Err, "warning: member %s (%s): %v\n", m.GetName(), m.GetApiAddress(), err)
					continue
				}
				if len(l.GetCertificates()) == 0 {
					fmt.Fprintf(g.streams.Err, "warning: member %s checks no certificate files\n", m.GetName())
				}
				for _, c := range l.GetCertificates() {
					if c.GetError() != "" {
						fmt.Fprintf(g.streams.Err, "warning: member %s, certificate %s: %s\n", m.GetName(), c.GetName(), c.GetError())
					}
					expires, renews := "?", "never"
					if c.GetNotAfterUnix() != 0 {
						at := time.Unix(c.GetNotAfterUnix(), 0)
						expires = at.UTC().Format(time.RFC3339) + " (" + untilString(at.Sub(now)) + ")"
						if c.GetRenews() {
							renews = time.Unix(c.GetRenewAtUnix(), 0).UTC().Format(time.RFC3339)
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.GetName(), c.GetName(), orDash(c.GetSubject()), expires, renews, c.GetRenewals(), c.GetFile())
				}
			}
			return tw.Flush()
		},
	}
}

// untilString says how long until a time, as kubectl's ages read ("in 364d", "in 5h",
// "expired").
func untilString(d time.Duration) string {
	if d <= 0 {
		return "expired"
	}
	return "in " + duration.HumanDuration(d)
}

func clusterDefragCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "defrag [NAME...]",
		Short: "Compact members' databases into new files, one member at a time (all members by default)",
		Long: `Compact members' databases into new files, giving the space that deletes freed back
to the disk, as etcd's defrag does. Members are compacted one after the other, online: a
member being compacted applies no writes meanwhile (the others keep the quorum).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			// A defragmentation takes as long as the databases are large: no --request-timeout.
			conn, ctx, cancel, err := g.connect(cmd, noTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := conn.Defragment(ctx, args)
			if err != nil {
				return fmt.Errorf("defrag: %w", err)
			}
			fmt.Fprintln(g.streams.Out, "defragmented")
			return g.printCluster(st)
		},
	}
}

func clusterAlarmCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "alarm", Short: "The cluster's alarms (NOSPACE: a database reached --quota-backend-bytes)"}
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the raised alarms",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := conn.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			for _, a := range st.GetAlarms() {
				fmt.Fprintf(g.streams.Out, "alarm:%s\n", a)
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "disarm",
		Short: "Clear the NOSPACE alarm (after freeing space: delete objects, then cluster defrag)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			if _, err := conn.DisarmAlarm(ctx); err != nil {
				return fmt.Errorf("disarm alarm: %w", err)
			}
			fmt.Fprintln(g.streams.Out, "alarm disarmed")
			return nil
		},
	})
	return c
}

func (g *globals) printCluster(st *apiv1.ClusterStatus) error {
	fmt.Fprintf(g.streams.Out, "cluster: %s  leader: %s  term: %d  revision: %d\n", orDash(st.GetClusterId()), orDash(st.GetLeader()), st.GetTerm(), st.GetRevision())
	for _, a := range st.GetAlarms() {
		fmt.Fprintf(g.streams.Out, "alarm: %s (writes other than deletes are refused)\n", a)
	}
	sizes := false
	for _, m := range st.GetMembers() {
		sizes = sizes || m.GetDbSize() != 0 || m.GetError() != ""
	}
	tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 3, ' ', 0)
	if sizes {
		fmt.Fprintln(tw, "NAME\tROLE\tSUFFRAGE\tRAFT\tAPI\tVERSION\tDB SIZE\tIN USE")
	} else {
		fmt.Fprintln(tw, "NAME\tROLE\tSUFFRAGE\tRAFT\tAPI\tVERSION")
	}
	for _, m := range st.GetMembers() {
		role := "follower"
		if m.GetLeader() {
			role = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s", m.GetName(), role, m.GetSuffrage(), m.GetRaftAddress(), orDash(m.GetApiAddress()), orDash(m.GetVersion()))
		if sizes {
			size, inUse := "?", "?"
			if m.GetError() == "" {
				size, inUse = byteSize(m.GetDbSize()), byteSize(m.GetDbSizeInUse())
			}
			fmt.Fprintf(tw, "\t%s\t%s", size, inUse)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// byteSize writes a size in binary units with one decimal (23.4 MiB).
func byteSize(n int64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(1<<10), 0
	for m := n >> 10; m >= 1<<10; m >>= 10 {
		div <<= 10
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
