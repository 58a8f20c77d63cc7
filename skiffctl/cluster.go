package skiffctl

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

func clusterCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "cluster", Short: "The API servers' Raft cluster: members, leader, snapshots"}
	c.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show the members, their roles and the leader",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			st, err := conn.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			return g.printCluster(st)
		},
	}, &cobra.Command{
		Use:   "add NAME RAFTADDR [APIADDR]",
		Short: "Add a member (start it with --join first, or give its addresses here)",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.client()
			if err != nil {
				return err
			}
			api := ""
			if len(args) == 3 {
				api = args[2]
			}
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			st, err := conn.AddMember(ctx, args[0], args[1], api)
			if err != nil {
				return fmt.Errorf("add member %s: %w", args[0], err)
			}
			fmt.Fprintf(g.streams.Out, "member %s added\n", args[0])
			return g.printCluster(st)
		},
	}, &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a member",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			st, err := conn.RemoveMember(ctx, args[0])
			if err != nil {
				return fmt.Errorf("remove member %s: %w", args[0], err)
			}
			fmt.Fprintf(g.streams.Out, "member %s removed\n", args[0])
			return g.printCluster(st)
		},
	}, &cobra.Command{
		Use:   "transfer-leader [NAME]",
		Short: "Hand leadership to a member (or any up-to-date one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.client()
			if err != nil {
				return err
			}
			to := ""
			if len(args) == 1 {
				to = args[0]
			}
			ctx, cancel := g.ctx(cmd)
			defer cancel()
			st, err := conn.TransferLeader(ctx, to)
			if err != nil {
				return fmt.Errorf("transfer leadership: %w", err)
			}
			fmt.Fprintf(g.streams.Out, "leader is now %s\n", st.GetLeader())
			return nil
		},
	})
	snap := &cobra.Command{Use: "snapshot", Short: "Save a consistent copy of the cluster's state"}
	snap.AddCommand(&cobra.Command{
		Use:   "save FILE",
		Short: "Write a snapshot of the state machine to FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.client()
			if err != nil {
				return err
			}
			path := args[0]
			tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".part-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			rev, err := conn.Snapshot(cmd.Context(), tmp)
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
	})
	c.AddCommand(snap)
	return c
}

func (g *globals) printCluster(st *apiv1.ClusterStatus) error {
	fmt.Fprintf(g.streams.Out, "leader: %s  term: %d  revision: %d\n", orDash(st.GetLeader()), st.GetTerm(), st.GetRevision())
	tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSUFFRAGE\tRAFT\tAPI")
	for _, m := range st.GetMembers() {
		role := "follower"
		if m.GetLeader() {
			role = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.GetName(), role, m.GetSuffrage(), m.GetRaftAddress(), orDash(m.GetApiAddress()))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
