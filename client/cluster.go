package client

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// ClusterStatus asks an API server for the Raft cluster's members and leader.
func (c *Conn) ClusterStatus(ctx context.Context) (*apiv1.ClusterStatus, error) {
	return c.clusterStatus(ctx, false)
}

// ClusterStatusSizes is ClusterStatus with each member's state file sizes.
func (c *Conn) ClusterStatusSizes(ctx context.Context) (*apiv1.ClusterStatus, error) {
	return c.clusterStatus(ctx, true)
}

func (c *Conn) clusterStatus(ctx context.Context, sizes bool) (*apiv1.ClusterStatus, error) {
	var out *apiv1.ClusterStatus
	err := c.invoke(ctx, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewClusterClient(cc).Status(ctx, &apiv1.ClusterStatusRequest{Sizes: sizes})
		return err
	})
	return out, err
}

// AddMember adds a voting member that is reachable for Raft at raftAddr.
func (c *Conn) AddMember(ctx context.Context, name, raftAddr, apiAddr string) (*apiv1.ClusterStatus, error) {
	var out *apiv1.ClusterStatus
	err := c.invoke(ctx, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewClusterClient(cc).AddMember(ctx, &apiv1.AddMemberRequest{Name: name, RaftAddress: raftAddr, ApiAddress: apiAddr})
		return err
	})
	return out, err
}

// RemoveMember removes a member from the Raft configuration.
func (c *Conn) RemoveMember(ctx context.Context, name string) (*apiv1.ClusterStatus, error) {
	var out *apiv1.ClusterStatus
	err := c.invoke(ctx, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewClusterClient(cc).RemoveMember(ctx, &apiv1.RemoveMemberRequest{Name: name})
		return err
	})
	return out, err
}

// TransferLeader hands leadership to name, or to any up-to-date member when name is "".
func (c *Conn) TransferLeader(ctx context.Context, name string) (*apiv1.ClusterStatus, error) {
	var out *apiv1.ClusterStatus
	err := c.invoke(ctx, once, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewClusterClient(cc).TransferLeader(ctx, &apiv1.TransferLeaderRequest{Name: name})
		return err
	})
	return out, err
}

// Defragment compacts the named members' state files, one at a time (every member's when
// names is empty).
func (c *Conn) Defragment(ctx context.Context, names []string) (*apiv1.ClusterStatus, error) {
	var out *apiv1.ClusterStatus
	err := c.invoke(ctx, idempotent, 0, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewClusterClient(cc).Defragment(ctx, &apiv1.DefragmentRequest{Names: names})
		return err
	})
	return out, err
}

// DisarmAlarm clears the cluster's NOSPACE alarm.
func (c *Conn) DisarmAlarm(ctx context.Context) (*apiv1.ClusterStatus, error) {
	var out *apiv1.ClusterStatus
	err := c.invoke(ctx, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewClusterClient(cc).DisarmAlarm(ctx, &apiv1.DisarmAlarmRequest{})
		return err
	})
	return out, err
}

// ListSnapshots lists the scheduled snapshots every member keeps.
func (c *Conn) ListSnapshots(ctx context.Context) (*apiv1.SnapshotList, error) {
	var out *apiv1.SnapshotList
	err := c.invoke(ctx, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewClusterClient(cc).ListSnapshots(ctx, &apiv1.ListSnapshotsRequest{})
		return err
	})
	return out, err
}

// Snapshot writes a consistent copy of a server's state to w and returns the revision it
// reflects. A stream broken midway is an error: w then holds a partial copy.
func (c *Conn) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	var rev int64
	err := c.invoke(ctx, once, 0, func(ctx context.Context, cc *grpc.ClientConn) error {
		stream, err := apiv1.NewClusterClient(cc).Snapshot(ctx, &apiv1.SnapshotRequest{})
		if err != nil {
			return err
		}
		for {
			chunk, err := stream.Recv()
			if err == io.EOF {
				if rev == 0 {
					return fmt.Errorf("snapshot: stream ended without its revision")
				}
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := w.Write(chunk.GetData()); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			if chunk.GetRevision() != 0 {
				rev = chunk.GetRevision()
			}
		}
	})
	return rev, err
}

// MemberCertificates asks the API server at addr (a member's API address, as
// ClusterStatus lists them) about its own certificates.
func (c *Conn) MemberCertificates(ctx context.Context, addr string) (*apiv1.CertificateList, error) {
	cc, err := c.conn(addr)
	if err != nil {
		return nil, err
	}
	if c.opts.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.AttemptTimeout)
		defer cancel()
	}
	return apiv1.NewClusterClient(cc).Certificates(ctx, &apiv1.CertificatesRequest{})
}
