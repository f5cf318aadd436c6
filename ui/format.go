package ui

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// TenantPath is the console URL of a tenant's page: TenantPath("acme", "")
// is the overview "/console/t/acme/", TenantPath("acme", "agents") the agents
// list. The slug is path-escaped; sub is used as given.
func TenantPath(slug, sub string) string {
	return "/console/t/" + url.PathEscape(slug) + "/" + sub
}

// ShortID shortens an identifier for display: its first 4 and last 8
// characters. chit's ids are UUIDv7, whose leading digits are a timestamp
// shared by everything created in the same minute, so the tail is what tells
// two ids apart. Ids of 16 characters or fewer are returned whole.
func ShortID(id string) string {
	const head, tail = 4, 8
	n := utf8.RuneCountInString(id)
	if n <= 16 {
		return id
	}
	r := []rune(id)
	return string(r[:head]) + "…" + string(r[n-tail:])
}

// FormatAge renders a duration the way an operator reads it: "4s",
// "3m 12s", "2h 5m", "3d 4h". Smaller units are truncated, not rounded;
// a zero lower unit is left out ("3m", not "3m 0s").
func FormatAge(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	pair := func(big int64, bigUnit string, small int64, smallUnit string) string {
		s := sign + strconv.FormatInt(big, 10) + bigUnit
		if small != 0 {
			s += " " + strconv.FormatInt(small, 10) + smallUnit
		}
		return s
	}
	switch {
	case d < time.Minute:
		return sign + strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		return pair(int64(d/time.Minute), "m", int64(d%time.Minute/time.Second), "s")
	case d < 24*time.Hour:
		return pair(int64(d/time.Hour), "h", int64(d%time.Hour/time.Minute), "m")
	default:
		return pair(int64(d/(24*time.Hour)), "d", int64(d%(24*time.Hour)/time.Hour), "h")
	}
}

// dateText and clockText are the visible form of a timestamp,
// "2025-11-23 06:37:12 UTC": UTC to the second, so times on one page and in
// exports line up whatever the viewer's zone. Two parts, so a narrow column
// wraps between date and clock, not inside either.
func dateText(t time.Time) string {
	return t.UTC().Format("2006-01-02")
}

func clockText(t time.Time) string {
	return t.UTC().Format("15:04:05") + " UTC"
}

func timeAttr(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// Status tones: the colour families of console.css. Every badge also shows
// its label as text, so colour is never the only signal.
const (
	toneGreen = "green"
	toneRed   = "red"
	toneAmber = "amber"
	toneBlue  = "blue"
	toneGrey  = "grey"
)

// statusTone maps a status kind to its colour. Unknown kinds are grey: a
// new state shows up neutral rather than falsely reassuring.
func statusTone(kind string) string {
	switch strings.ToLower(kind) {
	case "live", "active", "ok", "valid", "allowed", "healthy", "current", "success":
		return toneGreen
	case "revoked", "denied", "error", "failed", "invalid", "refused", "broken":
		return toneRed
	case "expired", "warning", "pending", "expiring", "stale":
		return toneAmber
	case "completed", "info", "running", "new":
		return toneBlue
	default: // silent, retired, inactive, unknown…
		return toneGrey
	}
}

func badgeLabel(kind, label string) string {
	switch {
	case strings.TrimSpace(label) != "":
		return label
	case strings.TrimSpace(kind) != "":
		return kind
	default:
		return "unknown"
	}
}

// htmxConfig turns off what would break the console's Content-Security-Policy
// or leak data: htmx's injected indicator <style>, eval, inline <script> in
// swapped content, and the localStorage page cache (it would keep tenant
// data on disk after sign-out; a history miss reloads the page instead).
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"refreshOnHistoryMiss":true}`

// csrfHeaders is the hx-headers value that sends the CSRF token with every
// htmx request, so hx-post buttons need no hidden field.
func csrfHeaders(token string) string {
	b, _ := json.Marshal(map[string]string{CSRFHeader: token})
	return string(b)
}

// CSRFField's input name and the header htmx requests carry the same token in.
const (
	CSRFFieldName = "csrf"
	CSRFHeader    = "X-CSRF-Token"
)

func initial(slug string) string {
	r, _ := utf8.DecodeRuneInString(slug)
	if r == utf8.RuneError {
		return "?"
	}
	return strings.ToUpper(string(r))
}

func flashKind(kind string) string {
	if kind == "" {
		return "ok"
	}
	return kind
}

func orDefault(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func statTone(kind string) string {
	if kind == "" {
		return ""
	}
	return "tone-" + statusTone(kind)
}
