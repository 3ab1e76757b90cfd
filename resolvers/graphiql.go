package resolvers

import (
	"bytes"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"path"
	"strings"
	"time"
)

// GraphiQL is served by Orchard itself: React, GraphiQL and its explorer plugin are embedded
// in the binary (graphiql/, unmodified files from npm at pinned versions, see
// graphiql/README.md), so the page works without internet access (air-gapped fleets,
// restricted egress) and loads no third-party script into a page whose storage may hold an
// ADMIN key. Every script and style carries its integrity hash, computed here from the
// embedded bytes; a strict Content-Security-Policy allows nothing but this origin (no inline
// script or style, no framing).

//go:embed graphiql/*.js graphiql/*.css
var graphiqlFiles embed.FS

// graphiqlAsset is one embedded file.
type graphiqlAsset struct {
	body      []byte
	mediaType string
	integrity string // sha384, base64, as in <script integrity>
}

// graphiqlAssets holds the files by name, and the page's order of them.
var (
	graphiqlAssets  = map[string]graphiqlAsset{}
	graphiqlScripts = []string{
		"react-18.2.0.production.min.js",
		"react-dom-18.2.0.production.min.js",
		"graphiql-4.1.2.min.js",
		"plugin-explorer-4.0.6.umd.js",
		"orchard.js",
	}
	graphiqlStyles = []string{"graphiql-4.1.2.min.css", "plugin-explorer-4.0.6.css", "orchard.css"}
)

func init() {
	entries, err := graphiqlFiles.ReadDir("graphiql")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := graphiqlFiles.ReadFile("graphiql/" + e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha512.Sum384(b)
		mt := "text/css; charset=utf-8"
		if strings.HasSuffix(e.Name(), ".js") {
			mt = "text/javascript; charset=utf-8"
		}
		graphiqlAssets[e.Name()] = graphiqlAsset{body: b, mediaType: mt, integrity: "sha384-" + base64.StdEncoding.EncodeToString(sum[:])}
	}
}

// GraphiQLAssetPrefix is where the page's files are served.
const GraphiQLAssetPrefix = "/graphiql/"

// graphiqlCSP is the page's Content-Security-Policy: scripts, styles and connections to this
// origin only (the WebSocket included: 'self' covers ws: and wss: of the same host), images
// and fonts also as data: URLs (GraphiQL's stylesheet embeds its fonts and icons), nothing
// else; no framing, no <base>, no form posts.
const graphiqlCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var graphiqlPage = template.Must(template.New("graphiql").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Orchard · GraphiQL</title>
<link rel="icon" href="data:,">
{{- range .Styles}}
<link rel="stylesheet" href="{{.URL}}" integrity="{{.Integrity}}">
{{- end}}
</head>
<body>
<div id="graphiql" data-endpoint="{{.Endpoint}}"><div class="orchard-loading">Loading…</div></div>
{{- range .Scripts}}
<script src="{{.URL}}" integrity="{{.Integrity}}"></script>
{{- end}}
</body>
</html>
`))

type pageRef struct{ URL, Integrity string }

// GraphiQL serves the in-browser IDE for endpoint (a path on this origin). Its files are
// served by GraphiQLAssets.
func GraphiQL(endpoint string) http.Handler {
	data := struct {
		Endpoint        string
		Styles, Scripts []pageRef
	}{Endpoint: endpoint}
	for _, n := range graphiqlStyles {
		data.Styles = append(data.Styles, pageRef{GraphiQLAssetPrefix + n, graphiqlAssets[n].integrity})
	}
	for _, n := range graphiqlScripts {
		data.Scripts = append(data.Scripts, pageRef{GraphiQLAssetPrefix + n, graphiqlAssets[n].integrity})
	}
	var buf bytes.Buffer
	if err := graphiqlPage.Execute(&buf, data); err != nil {
		panic(err)
	}
	page := buf.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	})
}

// GraphiQLAssets serves the page's embedded files under GraphiQLAssetPrefix. The versioned
// files never change under their name and are cached for a year; Orchard's own two are
// revalidated.
func GraphiQLAssets() http.Handler {
	started := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := path.Base(r.URL.Path)
		a, ok := graphiqlAssets[name]
		if !ok || r.URL.Path != GraphiQLAssetPrefix+name {
			http.NotFound(w, r)
			return
		}
		securityHeaders(w)
		w.Header().Set("Content-Type", a.mediaType)
		if strings.HasPrefix(name, "orchard.") {
			w.Header().Set("Cache-Control", "no-cache")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		http.ServeContent(w, r, name, started, bytes.NewReader(a.body))
	})
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", graphiqlCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}
