package apiserver_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestNoSpaceRefusal: past --quota-backend-bytes a create is refused as
// ResourceExhausted naming the quota, the cluster status shows the NOSPACE alarm, a delete
// still goes through, and the alarm is disarmed through the Cluster service.
func TestNoSpaceRefusal(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.Store.QuotaBytes = 512 << 10
	}})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cms := client.For[*corev1.ConfigMap](conn)
	var refusal error
	created := 0
	for i := 0; i < 200 && refusal == nil; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprint("big-", i)},
			Data: map[string]string{"x": strings.Repeat("x", 16<<10)}}
		if _, refusal = cms.Create(ctx, cm); refusal == nil {
			created++
		}
	}
	if status.Code(refusal) != codes.ResourceExhausted || !strings.Contains(refusal.Error(), "database space exceeded") || !strings.Contains(refusal.Error(), "quota") {
		t.Fatalf("create past the quota (after %d): %v; want ResourceExhausted naming the quota", created, refusal)
	}
	st, err := conn.ClusterStatus(ctx)
	if err != nil || len(st.GetAlarms()) != 1 || st.GetAlarms()[0] != "NOSPACE" {
		t.Fatalf("cluster status alarms %v, %v", st.GetAlarms(), err)
	}
	if _, err := cms.Delete(ctx, "default", "big-0", client.DeleteOptions{}); err != nil {
		t.Fatalf("delete under the alarm: %v", err)
	}
	st, err = conn.DisarmAlarm(ctx)
	if err != nil || len(st.GetAlarms()) != 0 {
		t.Fatalf("disarm: alarms %v, %v", st.GetAlarms(), err)
	}
}
