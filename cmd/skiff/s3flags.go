package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/s3backup"
)

// s3Flags reach S3-compatible object storage: skiff apiserver's --snapshot-s3-* (where
// scheduled snapshots are uploaded) and skiff restore's --s3-* (where --from s3://...
// downloads from).
type s3Flags struct {
	endpoint, bucket, prefix, credentials, caFile, region string
	insecure                                              bool
}

// register adds the flags, named pre+"endpoint" and so on; withBucket adds the bucket
// and prefix (restore reads them from its s3:// URL).
func (s *s3Flags) register(f *pflag.FlagSet, pre string, withBucket bool) {
	f.StringVar(&s.endpoint, pre+"endpoint", "", "S3-compatible object storage: host:port (https, or http with --"+pre+"insecure) or http(s)://host:port")
	if withBucket {
		f.StringVar(&s.bucket, pre+"bucket", "", "bucket the scheduled snapshots are uploaded to (it must exist); setting it turns the uploads on")
		f.StringVar(&s.prefix, pre+"prefix", "", "folder (key prefix) in the bucket for the snapshots")
	}
	f.StringVar(&s.credentials, pre+"credentials-file", "", "access key in the AWS shared credentials format ([default] aws_access_key_id = ..., aws_secret_access_key = ...)")
	f.StringVar(&s.caFile, pre+"ca-file", "", "CA bundle (PEM) that verifies the storage's https certificate (default: the system's)")
	f.BoolVar(&s.insecure, pre+"insecure", false, "talk plain http to an endpoint given as host:port")
	f.StringVar(&s.region, pre+"region", "", "the storage's region, when it needs one")
}

// remote makes the client of bucket and prefix; pre names the flags in errors.
func (s *s3Flags) remote(pre, bucket, prefix string) (*s3backup.Remote, error) {
	if s.endpoint == "" {
		return nil, fmt.Errorf("--%sendpoint is required", pre)
	}
	r, err := s3backup.New(s3backup.Config{Endpoint: s.endpoint, Bucket: bucket, Prefix: prefix,
		CredentialsFile: s.credentials, CAFile: s.caFile, Insecure: s.insecure, Region: s.region})
	if err != nil {
		return nil, fmt.Errorf("--%s*: %w", pre, err)
	}
	return r, nil
}
