package skiffctl

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

// dataSources are kubectl's --from-file, --from-literal and --from-env-file: the keys
// and values of a Secret's (or a ConfigMap's) data.
type dataSources struct {
	files, literals, envFiles []string
}

// read collects the sources' keys and values, with kubectl's rules and messages; kind
// names the object they are for ("Secret").
func (s dataSources) read(kind, name string) (map[string][]byte, error) {
	if len(s.envFiles) > 0 && (len(s.files) > 0 || len(s.literals) > 0) {
		return nil, fmt.Errorf("from-env-file cannot be combined with from-file or from-literal")
	}
	data := map[string][]byte{}
	add := func(key string, value []byte) error {
		if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
			return fmt.Errorf("%q is not a valid key name for a %s: %s", key, kind, strings.Join(errs, ";"))
		}
		if _, dup := data[key]; dup {
			return fmt.Errorf("cannot add key %q, another key by that name already exists in Data for %s %q", key, kind, name)
		}
		data[key] = value
		return nil
	}
	for _, src := range s.literals {
		k, v, ok := strings.Cut(src, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid literal source %v, expected key=value", src)
		}
		if err := add(k, []byte(v)); err != nil {
			return nil, err
		}
	}
	for _, src := range s.files {
		key, path, err := fileSource(src)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("error reading %s: %w", path, err)
		}
		if !fi.IsDir() {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			if err := add(key, b); err != nil {
				return nil, err
			}
			continue
		}
		if key != filepath.Base(path) {
			return nil, fmt.Errorf("cannot give a key name for a directory path")
		}
		// A directory: each regular file in it, by its name; others are skipped.
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("error listing files in %s: %w", path, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(path, e.Name()))
			if err != nil {
				return nil, err
			}
			if err := add(e.Name(), b); err != nil {
				return nil, err
			}
		}
	}
	for _, path := range s.envFiles {
		if err := readEnvFile(path, func(k, v string) error { return add(k, []byte(v)) }); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// fileSource splits a --from-file source: "[key=]path", the key defaulting to the
// file's name.
func fileSource(src string) (key, path string, err error) {
	k, p, ok := strings.Cut(src, "=")
	switch {
	case !ok:
		return filepath.Base(src), src, nil
	case k == "":
		return "", "", fmt.Errorf("key name for file path %v missing", p)
	case p == "":
		return "", "", fmt.Errorf("file path for key name %v missing", k)
	case strings.Contains(p, "="):
		return "", "", fmt.Errorf("key names or file paths cannot contain '='")
	}
	return k, p, nil
}

// readEnvFile reads an env file as kubectl does: KEY=VALUE lines, blank lines and
// #-comments skipped, a line of a KEY alone taking its value from the environment.
func readEnvFile(path string, add func(key, value string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF")) // a UTF-8 byte order mark
		}
		if !utf8.Valid(line) {
			return fmt.Errorf("env file %s contains invalid utf8 bytes at line %d: %v", path, n, line)
		}
		text := strings.TrimLeft(string(line), " \t")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if errs := validation.IsEnvVarName(key); len(errs) > 0 {
			return fmt.Errorf("%q is not a valid key name: %s", key, strings.Join(errs, ";"))
		}
		if !ok {
			value = os.Getenv(key)
		}
		if err := add(key, value); err != nil {
			return err
		}
	}
	return sc.Err()
}
