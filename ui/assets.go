package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/url"
)

// StaticPrefix is where the web layer serves Static. AssetPath builds URLs
// under it, so the two must agree.
const StaticPrefix = "/console/static/"

// staticFiles names its patterns so the README beside the assets is kept in
// the repository but never served.
//
//go:embed static/*.css static/*.js static/*.svg
var staticFiles embed.FS

// Static holds the console's static files at their bare names
// ("console.css", "htmx.min.js", "favicon.svg"). Every URL to them carries a
// content hash (AssetPath), so the web layer may serve them with a long,
// immutable cache lifetime.
var Static fs.FS = mustSub(staticFiles, "static")

var assets = newAssetIndex(Static)

// AssetPath is the URL of a static file, versioned by a short hash of its
// content: "/console/static/console.css?v=3f9c1a2b7d0e". A changed file gets
// a new URL, so no browser keeps a stale copy. An unknown name gets an
// unversioned URL (which the server answers 404) rather than failing a page.
func AssetPath(name string) string {
	return assets.path(name)
}

// assetIndex maps a static file's name to its content hash, computed once.
type assetIndex map[string]string

func newAssetIndex(fsys fs.FS) assetIndex {
	idx := assetIndex{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(content)
		// 12 hex digits (48 bits) tell apart every version a deployment will see.
		idx[name] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		// The files are embedded: failing to read them is a broken build.
		panic("ui: reading static assets: " + err.Error())
	}
	return idx
}

func (idx assetIndex) path(name string) string {
	base := StaticPrefix + (&url.URL{Path: name}).EscapedPath()
	if hash, ok := idx[name]; ok {
		return base + "?v=" + hash
	}
	return base
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("ui: " + err.Error())
	}
	return sub
}
