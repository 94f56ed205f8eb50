"use strict";
/* Shared by both pages: DOM building without innerHTML (payloads never become markup),
   number and time formatting, and the hand-drawn SVG line chart. */
const UI = (() => {
  const NS = "http://www.w3.org/2000/svg";
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) node.append(kid);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }
  const num = (v, digits) => v === null || v === undefined ? "—"
    : Number(v).toLocaleString(undefined, {maximumFractionDigits: digits === undefined ? 1 : digits});
  function age(s) {
    if (s === null || s === undefined) return "—";
    if (s < 90) return num(s, 0) + " s";
    if (s < 5400) return num(s / 60, 0) + " min";
    return num(s / 3600, 1) + " h";
  }
  const clock = (t) => new Date(t * 1000).toLocaleTimeString();
  const STATES = {ok: ["✓ ok", "s-ok"], held: ["⏸ held", "s-warn"], disabled: ["– disabled", "s-warn"],
    failing: ["✕ failing", "s-bad"], stalled: ["⚠ stalled", "s-bad"], open: ["✕ breaker open", "s-bad"],
    half_open: ["◐ breaker half-open", "s-warn"], queue: ["• queue view", "s-ok"],
    degraded: ["⚠ degraded", "s-warn"], yes: ["✓ yes", "s-ok"], no: ["✕ no", "s-bad"], down: ["✕ down", "s-bad"], unknown: ["? unknown", "s-warn"]};
  function badge(state) {
    const [text, cls] = STATES[state] || ["? " + state, "s-warn"];
    return el("span", {class: "badge " + cls, text});
  }
  /* lines: [{values: [[t, v], ...], cls: "l1"}]; window: seconds shown, ending now. */
  function chart(lines, now, window, label) {
    const W = 600, H = 130, L = 38, B = 16;
    let max = 1;
    for (const line of lines) for (const p of line.values) if (p[1] > max) max = p[1];
    const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label});
    const title = svg("title", {}); title.textContent = label; root.append(title);
    for (const f of [0, 0.5, 1]) {
      const y = (H - B) - f * (H - B - 6);
      root.append(svg("line", {x1: L, x2: W, y1: y, y2: y, class: "grid"}));
      const t = svg("text", {x: 2, y: y + 4}); t.textContent = num(max * f, max < 10 ? 1 : 0); root.append(t);
    }
    for (const [x, text] of [[L, "-15 min"], [W - 30, "now"]]) {
      const t = svg("text", {x, y: H - 2}); t.textContent = text; root.append(t);
    }
    for (const line of lines) {
      const pts = line.values.filter((p) => p[0] >= now - window).map((p) => {
        const x = L + (W - L) * (1 - (now - p[0]) / window);
        const y = (H - B) - (p[1] / max) * (H - B - 6);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      if (pts.length > 1) root.append(svg("polyline", {points: pts.join(" "), class: line.cls}));
    }
    return root;
  }
  async function request(path, opts) {
    const r = await fetch(path, Object.assign({credentials: "same-origin", headers: {accept: "application/json"}}, opts || {}));
    if (r.status === 401) { location.reload(); throw new Error("log in first"); }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    return body;
  }
  return {el, svg, num, age, clock, badge, chart, request};
})();
