// Package ui holds the console's templ components. It knows nothing of echo
// or pgx, nor of domain types: components take plain Props structs (strings,
// time.Time, slices) and render HTML.
//
// # Pages
//
// A signed-in page is its content inside Console:
//
//	@ui.Console(shell) {
//		@ui.PageHeader(ui.PageHeaderProps{Title: "Agents"}) { <a class="btn" href="…">Export</a> }
//		<div class="table-wrap"><table class="table">…</table></div>
//		@ui.Pager(next)
//	}
//
// Login and ErrorDocument are whole pages outside the console frame; Layout
// frames the public front page. Every page links only /console/static/ assets
// (AssetPath) and carries no inline style or script, as the console's
// Content-Security-Policy (style-src 'self'; script-src 'self') demands:
// never write a style attribute or a <style>/<script> block in a page.
//
// # CSS classes for pages (static/console.css)
//
// Layout: page-head (via PageHeader), section (a titled block: <section
// class="section"><h2>…</h2>…), panel (a framed box), panel-head, grid-2 and
// grid-main-side (two columns), stack (vertical rhythm), cards (a grid of
// StatCard).
//
// Tables: wrap in <div class="table-wrap">, then <table class="table"> with
// <thead>/<tbody>; the header row sticks below the top bar, rows are zebra
// striped and highlight on hover. Add table-scroll to the wrapper for tables
// wider than the page (they scroll on their own). Cells: num (right-aligned
// tabular figures), actions (right, shrink to fit), col-narrow (shrink to
// fit); rows: is-selected. table-foot is a footer strip inside the wrapper.
// Put an EmptyState inside the wrapper, instead of the table, when there
// are no rows.
//
// Text: muted, small, mono, nowrap, truncate (ellipsis at 28ch; put the full
// text in title), visually-hidden (for screen readers only).
//
// Forms: form (a vertical form), inline-form (a select and its button in a
// table cell), field (label + input + <p class="hint"> or
// <p class="field-error">), check (checkbox with label), form-actions (the
// button row), filters (an inline GET form of filters above a table; its
// fields are .field too). Inputs, selects and textareas are styled bare;
// mark a bad one aria-invalid="true".
//
// Buttons: btn, plus btn-primary, btn-danger, btn-ghost, btn-sm, btn-block;
// a destructive action goes through ConfirmPanel first. link-danger is a red
// text link.
//
// htmx: the htmx-indicator class shows an element only while its request
// runs; spinner is a small spinning indicator. Every htmx request also lights
// the progress bar at the top of the console and carries the CSRF token in
// the X-CSRF-Token header. htmx is configured (meta htmx-config) without
// eval, inline scripts or its localStorage history cache.
//
// # Test ids
//
// Components put a data-testid on their root element, documented on each;
// tests select by it rather than by classes or text.
package ui
