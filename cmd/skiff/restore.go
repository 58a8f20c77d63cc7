package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/store"
)

func restoreCmd(logger func(string) hclog.Logger) *cobra.Command {
	var snapshot, dataDir, name, initial string
	var bump int64
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Seed a new member's data directory from a snapshot",
		Long: `Seed an empty data directory from a file written by 'skiffctl cluster snapshot save' or by
the scheduled snapshots (--snapshot-interval), for a member of a new cluster. The file is
checked first (a whole, uncorrupted state file; a scheduled snapshot's checksum, length and
format must match what it says of itself). The new cluster gets an ID of its own.

Restore every member of the new cluster from the same file with the same --initial-cluster,
then start each with 'skiff apiserver' and the same --name, --data-dir and --initial-cluster.
Or restore one member with a one-member --initial-cluster, start it, and start the others
with --join and empty data directories.

The new cluster holds exactly the snapshot's objects, with their resourceVersions. Its
revisions continue from the snapshot's revision plus --bump-revision, and a watch from any
earlier revision is refused as compacted: make the bump larger than the number of writes
the old cluster took after the snapshot, so that no revision of the old cluster is reused.`,
		Example: `  skiff restore --snapshot backup.db --data-dir /var/lib/skiff --name n1 \
      --initial-cluster n1=10.0.0.1:7444,n2=10.0.0.2:7444,n3=10.0.0.3:7444`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			members, err := apiserver.ParseInitialCluster(initial)
			if err != nil {
				return err
			}
			switch {
			case snapshot == "":
				return fmt.Errorf("--snapshot is required")
			case dataDir == "":
				return fmt.Errorf("--data-dir is required")
			case name == "":
				return fmt.Errorf("--name is required")
			case len(members) == 0:
				return fmt.Errorf("--initial-cluster is required (name=raft-address,...; one member for a cluster others join)")
			case bump < 0:
				return fmt.Errorf("--bump-revision must not be negative")
			}
			if bump == 0 {
				bump = -1 // store: negative means no bump
			}
			res, err := store.RestoreDir(store.RestoreConfig{
				Snapshot: snapshot, Dir: dataDir, ID: name, InitialCluster: members, RevisionBump: bump,
				Logger: logger("skiff"),
			})
			if err != nil {
				return err
			}
			var kinds []string
			total := 0
			for k, n := range res.Objects {
				kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
				total += n
			}
			sort.Strings(kinds)
			if m := res.Meta; m != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "Snapshot of cluster %s taken by %s at %s (Skiff %s), checksum sha256 %s verified\n",
					m.Cluster, m.Member, m.Created.Format(time.RFC3339), m.Version, m.SHA256)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %s into %s: %d objects (%s) at revision %d; new revisions start after %d\n",
				snapshot, dataDir, total, strings.Join(kinds, ", "), res.Revision, res.StartRevision)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&snapshot, "snapshot", "", "snapshot file written by 'skiffctl cluster snapshot save' (required)")
	f.StringVar(&dataDir, "data-dir", "", "the new member's data directory; must be absent or empty (required)")
	f.StringVar(&name, "name", "", "the member's name, as 'skiff apiserver --name' (required)")
	f.StringVar(&initial, "initial-cluster", "", "the new cluster's members: name=raft-address,... (required)")
	f.Int64Var(&bump, "bump-revision", store.DefaultRevisionBump, "added to the snapshot's revision to give the new cluster's (0: none)")
	return cmd
}
