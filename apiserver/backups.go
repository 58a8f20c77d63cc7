package apiserver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// ReasonSnapshotFailed is the reason of the Warning event a member records when a
// scheduled snapshot fails (store.BackupConfig.OnFailure): about the kube-system
// namespace, where the control plane's own events go, as the cluster has no object of
// its own.
const ReasonSnapshotFailed = "SnapshotFailed"

// snapshotFailed records a failed scheduled snapshot as a Warning event. It runs on the
// store's snapshot loop, which it holds up for at most a few seconds.
func (s *Server) snapshotFailed(err error, consecutive int) {
	st := s.storeRef.Load()
	if st == nil {
		return
	}
	s.systemEvent(corev1.EventTypeWarning, ReasonSnapshotFailed,
		fmt.Sprintf("Scheduled snapshot by member %s failed (%d in a row; retrying): %v", st.ID(), consecutive, err))
}

// systemEvent records an event of this member about the cluster itself: in kube-system,
// about that namespace (the cluster has no object of its own), as the control plane's
// components record theirs.
func (s *Server) systemEvent(eventType, reason, msg string) error {
	st := s.storeRef.Load()
	if st == nil {
		return fmt.Errorf("no store yet")
	}
	at := s.cfg.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "skiff-" + strings.ToLower(reason) + "." + strconv.FormatInt(at.UnixNano(), 16),
			UID: uuid.NewUUID(), CreationTimestamp: metav1.NewTime(at)},
		InvolvedObject: corev1.ObjectReference{Kind: kinds.Namespace, APIVersion: "v1", Name: metav1.NamespaceSystem},
		Reason:         reason, Message: cut(strings.ToValidUTF8(msg, "\uFFFD"), record.MaxMessage), Type: eventType,
		Source:         corev1.EventSource{Component: "apiserver", Host: st.ID()},
		FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at), EventTime: metav1.NewMicroTime(at), Count: 1,
		ReportingController: "apiserver", ReportingInstance: st.ID(),
	}
	kinds.SetTypeMeta(ev)
	info := kinds.MustLookup(kinds.Event)
	value, lbls, fields, err := encode(ev)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = st.Txn(ctx, store.Op{Type: store.Create, Key: keyOf(info, ev), Value: value, UID: string(ev.UID), Labels: lbls, Fields: fields})
	}
	if err != nil {
		s.log.Warn("could not record an event", "reason", reason, "message", msg, "error", err)
	}
	return err
}

// cut shortens s to at most n bytes on a rune boundary, ending in "...".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("...")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
