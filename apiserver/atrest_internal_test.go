package apiserver

import (
	"testing"

	"github.com/skiffhq/skiff/apiserver/encryption"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// TestAtRestKeepsOtherKindsZeroCopy: only Secrets are transformed; every other kind's
// stored bytes come back as the same slice (lists and watches stream them uncopied), and
// its events are the store's own.
func TestAtRestKeepsOtherKindsZeroCopy(t *testing.T) {
	a := &atRest{}
	tr, err := encryption.NewTransformer(encryption.New())
	if err != nil {
		t.Fatal(err)
	}
	a.keys.Store(tr)
	for _, info := range kinds.All() {
		k := store.Key{Kind: info.Kind, Namespace: "default", Name: "x"}
		value := []byte("k8s\x00value")
		sealed, err := a.seal(info, k, value)
		if err != nil {
			t.Fatal(err)
		}
		opened, err := a.open(info, k, sealed)
		if err != nil || string(opened) != string(value) {
			t.Fatalf("%s: open(seal(v)) = %q, %v", info.Kind, opened, err)
		}
		evs := []store.Event{{Type: store.Added, Object: store.Object{Key: k, Value: sealed}}}
		out, err := a.openEvents(info, evs)
		if err != nil {
			t.Fatal(err)
		}
		if info.Kind == kinds.Secret {
			if string(sealed) == string(value) || &out[0] == &evs[0] || string(out[0].Object.Value) != string(value) ||
				string(evs[0].Object.Value) != string(sealed) {
				t.Errorf("Secret: sealed %q, events not copied or not opened", sealed)
			}
			continue
		}
		if &sealed[0] != &value[0] || &opened[0] != &value[0] || &out[0] != &evs[0] {
			t.Errorf("%s: its bytes were copied on the way to the store or back", info.Kind)
		}
	}
}
