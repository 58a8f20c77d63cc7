// Package manifest reads and writes Kubernetes manifests: YAML or JSON documents, several
// to a file separated by "---", each with apiVersion and kind. Each document decodes
// strictly into its Kubernetes type (kinds.DecodeManifest), so an unknown or mistyped
// field is an error that names its path (spec.template.spec.containers[0].foo), as
// kubectl's strict decoding reports it; this package adds the file, the document number
// and the object to the message. Encoding writes Kubernetes' JSON, as kubectl -o json and
// -o yaml print it.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/skiffhq/skiff/kinds"
)

// Document is one decoded manifest document.
type Document struct {
	Object kinds.Object
	// Index is the document's position in its source, from 1.
	Index int
}

// Error is a decoding error in one document.
type Error struct {
	Source string // file name, or "-" for stdin
	Index  int    // document number, from 1
	What   string // `Deployment "web"` when known
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Index > 0 {
		fmt.Fprintf(&b, ": document %d", e.Index)
	}
	if e.What != "" {
		fmt.Fprintf(&b, " (%s)", e.What)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Decode reads every document of r. source names r in errors.
func Decode(r io.Reader, source string) ([]Document, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	return DecodeBytes(data, source)
}

// DecodeBytes reads every document of data. Empty documents (only comments or blank
// lines) are skipped; any error stops decoding.
func DecodeBytes(data []byte, source string) ([]Document, error) {
	var out []Document
	for i, doc := range splitDocuments(data) {
		if isBlank(doc) {
			continue
		}
		obj, err := kinds.DecodeManifest(doc)
		if err != nil {
			e := &Error{Source: source, Index: i + 1, Err: err}
			var me *kinds.ManifestError
			if errors.As(err, &me) {
				e.What = me.What
			}
			return nil, e
		}
		out = append(out, Document{Object: obj, Index: i + 1})
	}
	return out, nil
}

// splitDocuments splits YAML at lines that start with "---".
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("---")) {
			rest := strings.TrimSpace(string(line[3:]))
			if rest == "" || strings.HasPrefix(rest, "#") {
				docs = append(docs, append([]byte(nil), cur.Bytes()...))
				cur.Reset()
				continue
			}
		}
		cur.Write(line)
		cur.WriteByte('\n')
	}
	return append(docs, cur.Bytes())
}

func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}
