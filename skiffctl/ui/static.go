package ui

import (
	"embed"
	"io/fs"
)

// The page, built from web/ by `make ui` (TestStaticIsFresh fails when it is stale).
//
//go:embed static
var static embed.FS

func staticFS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	return sub
}
