package apiserver

import (
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// TestAggregatedRequest: a path of an aggregated group/version is read as Kubernetes'
// RequestInfo reads it, into what the authorizer is asked.
func TestAggregatedRequest(t *testing.T) {
	svc := &apiregistrationv1.APIService{}
	for _, tc := range []struct {
		method, path, query                       string
		verb, resource, namespace, name, sub, err string
	}{
		{"GET", "flunders", "", verbList, "flunders", "", "", "", ""},
		{"GET", "namespaces/ns/flunders", "", verbList, "flunders", "ns", "", "", ""},
		{"GET", "namespaces/ns/flunders", "watch=true", verbWatch, "flunders", "ns", "", "", ""},
		{"GET", "watch/namespaces/ns/flunders", "", verbWatch, "flunders", "ns", "", "", ""},
		{"GET", "namespaces/ns/flunders/one", "", verbGet, "flunders", "ns", "one", "", ""},
		{"PUT", "namespaces/ns/flunders/one/status", "", verbUpdate, "flunders", "ns", "one", "status", ""},
		{"PATCH", "fischers/f", "", verbPatch, "fischers", "", "f", "", ""},
		{"POST", "namespaces/ns/flunders", "", verbCreate, "flunders", "ns", "", "", ""},
		{"DELETE", "namespaces/ns/flunders", "", verbDeleteCollection, "flunders", "ns", "", "", ""},
		{"DELETE", "namespaces/ns/flunders/one", "", verbDelete, "flunders", "ns", "one", "", ""},
		{"GET", "namespaces/ns", "", verbGet, "namespaces", "ns", "ns", "", ""},
		{"OPTIONS", "flunders", "", "", "", "", "", "", "the server does not allow this method"},
	} {
		q, _ := url.ParseQuery(tc.query)
		req, err := aggregatedRequest(tc.method, q, strings.Split(tc.path, "/"), svc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: error %v, want %q", tc.method, tc.path, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.path, err)
			continue
		}
		got := []string{req.verb, req.resource, req.namespace, req.name, req.subresource}
		want := []string{tc.verb, tc.resource, tc.namespace, tc.name, tc.sub}
		if strings.Join(got, "|") != strings.Join(want, "|") || req.apiService != svc || req.info != nil {
			t.Errorf("%s %s?%s = %q, want %q", tc.method, tc.path, tc.query, got, want)
		}
	}
}

// TestSetAvailable: the condition changes only when its status, reason or message does,
// and its transition time only when its status does.
func TestSetAvailable(t *testing.T) {
	t0, t1 := time.Unix(1000, 0), time.Unix(2000, 0)
	passed := apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionTrue, Reason: "Passed", Message: "all checks passed"}
	noEndpoints := apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionFalse, Reason: "EndpointsNotFound", Message: "none"}
	failed := apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionFalse, Reason: "FailedDiscoveryCheck", Message: "gone"}
	s := &apiregistrationv1.APIService{}
	for i, step := range []struct {
		want    apiregistrationv1.APIServiceCondition
		now     time.Time
		changed bool
		since   time.Time
	}{
		{noEndpoints, t0, true, t0},
		{noEndpoints, t1, false, t0},
		{failed, t1, true, t0}, // still False: the transition was at t0
		{passed, t1, true, t1},
	} {
		if got := setAvailable(s, step.want, step.now); got != step.changed {
			t.Errorf("step %d: changed %v, want %v", i, got, step.changed)
		}
		c := s.Status.Conditions
		if len(c) != 1 || c[0].Reason != step.want.Reason || !c[0].LastTransitionTime.Equal(&metav1.Time{Time: step.since}) {
			t.Errorf("step %d: conditions %+v", i, c)
		}
	}
}
