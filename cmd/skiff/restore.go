package main

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/s3backup"
	"github.com/skiffhq/skiff/store"
)

func restoreCmd(logger func(string) hclog.Logger) *cobra.Command {
	var snapshot, from, clusterID, dataDir, name, initial string
	var bump int64
	var s3 s3Flags
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Seed a new member's data directory from a snapshot",
		Long: `Seed an empty data directory from a file written by 'skiffctl cluster snapshot save' or by
the scheduled snapshots (--snapshot-interval), for a member of a new cluster. The file is
checked first (a whole, uncorrupted state file; a scheduled snapshot's checksum, length and
format must match what it says of itself). The new cluster gets an ID of its own.

--from takes a local file or a scheduled snapshot uploaded to S3-compatible storage
(skiff apiserver --snapshot-s3-bucket): s3://BUCKET/PREFIX/NAME, or s3://BUCKET/PREFIX/
for the newest there (of --cluster-id's cluster, when given), reached with the --s3-*
flags. The object is downloaded and checked: its trailer's checksum, length and format,
and that its name and metadata say the same cluster, member, revision and checksum as its
content (and the cluster --cluster-id names).

Restore every member of the new cluster from the same file with the same --initial-cluster,
then start each with 'skiff apiserver' and the same --name, --data-dir and --initial-cluster.
Or restore one member with a one-member --initial-cluster, start it, and start the others
with --join and empty data directories.

The new cluster holds exactly the snapshot's objects, with their resourceVersions. Its
revisions continue from the snapshot's revision plus --bump-revision, and a watch from any
earlier revision is refused as compacted: make the bump larger than the number of writes
the old cluster took after the snapshot, so that no revision of the old cluster is reused.`,
		Example: `  skiff restore --snapshot backup.db --data-dir /var/lib/skiff --name n1 \
      --initial-cluster n1=10.0.0.1:7444,n2=10.0.0.2:7444,n3=10.0.0.3:7444
  skiff restore --from s3://backups/skiff/ --s3-endpoint s3.example.com \
      --s3-credentials-file /etc/skiff/s3-credentials --data-dir /var/lib/skiff --name n1 \
      --initial-cluster n1=10.1.0.1:7444,n2=10.1.0.2:7444,n3=10.1.0.3:7444`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			members, err := apiserver.ParseInitialCluster(initial)
			if err != nil {
				return err
			}
			switch {
			case snapshot != "" && from != "":
				return fmt.Errorf("--snapshot and --from: give one")
			case snapshot == "" && from == "":
				return fmt.Errorf("--snapshot or --from is required")
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
			if snapshot == "" && !strings.HasPrefix(from, "s3://") {
				snapshot = from
			}
			if snapshot == "" {
				path, err := downloadSnapshot(cmd, &s3, from, clusterID)
				if err != nil {
					return err
				}
				defer os.Remove(path)
				snapshot = path
			} else if clusterID != "" {
				meta, err := store.ReadSnapshotMeta(snapshot)
				if err != nil {
					return err
				}
				if meta == nil || meta.Cluster != clusterID {
					return fmt.Errorf("snapshot %s: identity does not match: it is not a snapshot of cluster %s (--cluster-id)", snapshot, clusterID)
				}
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
				firstNonEmpty(from, snapshot), dataDir, total, strings.Join(kinds, ", "), res.Revision, res.StartRevision)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&snapshot, "snapshot", "", "snapshot file written by 'skiffctl cluster snapshot save' or the schedule (or --from)")
	f.StringVar(&from, "from", "", "snapshot to restore: a file, s3://BUCKET/PREFIX/NAME, or s3://BUCKET/PREFIX/ for the newest there")
	f.StringVar(&clusterID, "cluster-id", "", "refuse a snapshot of any other cluster; with --from s3://BUCKET/PREFIX/, the newest of this cluster's")
	s3.register(f, "s3-", false)
	f.StringVar(&dataDir, "data-dir", "", "the new member's data directory; must be absent or empty (required)")
	f.StringVar(&name, "name", "", "the member's name, as 'skiff apiserver --name' (required)")
	f.StringVar(&initial, "initial-cluster", "", "the new cluster's members: name=raft-address,... (required)")
	f.Int64Var(&bump, "bump-revision", store.DefaultRevisionBump, "added to the snapshot's revision to give the new cluster's (0: none)")
	return cmd
}

// downloadSnapshot downloads the snapshot u names (or the newest under it) into a
// temporary file and checks it (s3backup.Remote.Download).
func downloadSnapshot(cmd *cobra.Command, s3 *s3Flags, u, clusterID string) (string, error) {
	bucket, rest, err := s3backup.ParseURL(u)
	if err != nil {
		return "", fmt.Errorf("--from: %w", err)
	}
	prefix, name := rest, ""
	if base := path.Base(rest); store.IsSnapshotName(base) {
		prefix, name = path.Dir(rest), base
		if prefix == "." {
			prefix = ""
		}
	} else if rest != "" && !strings.HasSuffix(rest, "/") {
		return "", fmt.Errorf("--from %s: %q is not a snapshot's name (skiff-snapshot-CLUSTER-TIME-rREVISION.db); end the URL in / for the newest snapshot under it", u, base)
	}
	r, err := s3.remote("s3-", bucket, prefix)
	if err != nil {
		return "", err
	}
	ctx, cancel := signalContext()
	defer cancel()
	if name == "" {
		latest, err := r.Latest(ctx, clusterID)
		if err != nil {
			return "", fmt.Errorf("--from %s: %w", u, err)
		}
		name = path.Base(latest.Path)
		fmt.Fprintf(cmd.OutOrStdout(), "Newest snapshot in %s: %s\n", r, name)
	}
	f, err := os.CreateTemp("", "skiff-restore-*.db")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp) // Download makes it anew
	meta, err := r.Download(ctx, name, tmp)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	if clusterID != "" && meta.Cluster != clusterID {
		os.Remove(tmp)
		return "", fmt.Errorf("restore: %s: identity does not match: a snapshot of cluster %s, not of %s (--cluster-id)", r.URL(name), meta.Cluster, clusterID)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Downloaded %s: its content matches its name and metadata (cluster %s, revision %d)\n", r.URL(name), meta.Cluster, meta.Revision)
	return tmp, nil
}
