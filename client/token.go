package client

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	authenticationv1 "k8s.io/api/authentication/v1"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// CreateToken asks for a token of service account namespace/name (Kubernetes'
// TokenRequest, create serviceaccounts/token): tr's spec says its audiences, life and
// the object it is bound to; the reply's status holds the token and its expiry. Nothing
// is written, so any API server answers, and a lost reply is asked again.
func (c *Conn) CreateToken(ctx context.Context, namespace, name string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	raw, err := tr.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode TokenRequest: %w", err)
	}
	var out *apiv1.Object
	err = c.invoke(ctx, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewResourcesClient(cc).CreateToken(ctx, &apiv1.CreateTokenRequest{Namespace: namespace, Name: name, Raw: raw})
		return err
	})
	if err != nil {
		return nil, err
	}
	var res authenticationv1.TokenRequest
	if err := res.Unmarshal(out.GetRaw()); err != nil {
		return nil, fmt.Errorf("decode TokenRequest: %w", err)
	}
	return &res, nil
}
