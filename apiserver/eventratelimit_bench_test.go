package apiserver_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiffhq/skiff/apiserver"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

// BenchmarkRefusedEventBatch: a CreateBatch of 100 Events into a namespace whose Event
// budget is spent, each refused (what a thousand recorders coming back for tokens cost
// the member), on one insecure member.
func BenchmarkRefusedEventBatch(b *testing.B) {
	c := apicluster.Start(b, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.EventRateLimit = apiserver.EventRateLimit{NamespaceQPS: 1.0 / 3600, NamespaceBurst: 1}
	}})
	cc, err := grpc.NewClient("passthrough:///"+c.Addr(0), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	rc := apiv1.NewResourcesClient(cc)
	ctx := testCtx(b)
	if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(b, event("default", "spends-the-budget"))}); err != nil {
		b.Fatal(err)
	}
	req := &apiv1.CreateBatchRequest{}
	for i := range 100 {
		req.Objects = append(req.Objects, wrap(b, event("default", fmt.Sprintf("refused-%d", i))))
	}
	for b.Loop() {
		res, err := rc.CreateBatch(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if res.GetResults()[99].GetError() == nil {
			b.Fatal("an event written into a spent budget")
		}
	}
}
