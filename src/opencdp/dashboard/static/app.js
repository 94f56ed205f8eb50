"use strict";
/* The dashboard: polls api/state once a second (the sampler's memory, not the engine), redraws
   the destination cards, and drives the dead-letter table and the migration panel. */
(() => {
  const {el, num, age, clock, badge, chart, request} = UI;
  const $ = (id) => document.getElementById(id);
  const WINDOW = 900;
  const series = {};
  const transitions = [];
  let csrf = "", paused = false, lastT = null, deadTotal = null, busy = false;

  const post = (path, value) => request(path, {method: "POST",
    headers: {"content-type": "application/json", "x-csrf-token": csrf, accept: "application/json"},
    body: JSON.stringify(value)});

  function metric(list, name, value) { list.append(el("dt", {text: name}), el("dd", {text: value})); }

  function card(name, d, now) {
    const values = series[name] || [];
    const box = el("article", {class: "card", "aria-labelledby": "card-" + name, "data-destination": name});
    box.append(el("h3", {id: "card-" + name}, el("span", {text: name}), badge(d.state)));
    box.append(el("p", {class: "reason", text: d.reason}));
    const dl = el("dl", {class: "metrics"});
    metric(dl, "Delivered/s", num(d.delivered_rate));
    metric(dl, "Dead-lettered/s", num(d.dead_rate));
    metric(dl, "Queue depth", num(d.pending, 0));
    metric(dl, "In flight", num(d.in_flight, 0));
    metric(dl, "Oldest pending", age(d.oldest_pending_age));
    metric(dl, "Retries", num(d.retried, 0));
    metric(dl, "Breaker", d.breaker === null ? "—" : d.breaker + (d.failure_count ? ` (${d.failure_count} failures)` : ""));
    metric(dl, "Rate-limit waits", d.throttled === null ? "—" : num(d.throttled, 0) + (d.paused_for ? `, paused ${num(d.paused_for)} s` : ""));
    metric(dl, "Spilled", num(d.spilled, 0));
    metric(dl, "Held", num(d.held, 0));
    metric(dl, "Dead letters", num(d.dead_letters, 0));
    metric(dl, "Delivered", num(d.delivered, 0));
    box.append(dl);
    const peak = values.reduce((m, p) => Math.max(m, p[1]), 0);
    const label = `${name}, last 15 minutes: delivered ${num(d.delivered_rate)} per second now (peak ${num(peak)}), ` +
      `dead-lettered ${num(d.dead_rate)} per second now`;
    box.append(chart([{values: values.map((p) => [p[0], p[1]]), cls: "l1"},
                      {values: values.map((p) => [p[0], p[2]]), cls: "l2"}], now, WINDOW, label));
    box.append(el("div", {class: "legend", "aria-hidden": "true"},
      el("span", {class: "k1", text: "delivered/s"}), el("span", {class: "k2", text: "dead-lettered/s"})));
    const mine = transitions.filter((t) => t.destination === name);
    const h = el("h4", {class: "sr", text: name + " breaker changes"});
    const list = el("ol", {class: "transitions", "aria-label": name + " breaker changes"});
    for (const t of mine.slice(-20).reverse()) list.append(el("li", {text: `${clock(t.t)}: ${t.from} → ${t.to}`}));
    box.append(h, mine.length ? list : el("p", {class: "muted", text: "Breaker: no changes in this window."}));
    return box;
  }

  function render(view) {
    const now = view.taken_at || Date.now() / 1000;
    $("label").textContent = view.label ? "· " + view.label : "";
    const overall = $("overall");
    overall.replaceChildren(badge(view.status), " ", view.status === "queue"
      ? "the queue's own counts" : (view.status === "ok" ? "every destination is making progress" : "see the reasons below"));
    $("updated").textContent = view.taken_at ? "updated " + clock(view.taken_at) : "";
    const err = $("error");
    err.hidden = !(view.error || view.queue_error);
    err.textContent = view.error || (view.queue_error ? "queue: " + view.queue_error : "");
    const cards = Object.entries(view.destinations || {}).map(([name, d]) => card(name, d, now));
    $("destinations").replaceChildren(...cards);
    const total = Object.values(view.destinations || {}).reduce((s, d) => s + (d.dead_letters || 0), 0);
    if (deadTotal !== null && total !== deadTotal) loadDead();
    deadTotal = total;
  }

  async function poll() {
    if (paused || busy) return;
    busy = true;
    try {
      const view = await request("api/state" + (lastT ? "?after=" + lastT : ""));
      for (const s of view.samples) {
        lastT = s.t;
        for (const [name, v] of Object.entries(s)) {
          if (name === "t") continue;
          (series[name] = series[name] || []).push([s.t, v[0], v[1], v[2]]);
        }
      }
      for (const name of Object.keys(series)) {
        const keep = series[name].filter((p) => p[0] >= (view.taken_at || 0) - WINDOW);
        series[name] = keep;
      }
      transitions.length = 0;
      transitions.push(...(view.transitions || []));
      render(view);
    } catch (e) {
      const err = $("error"); err.hidden = false; err.textContent = "Cannot reach the dashboard: " + e.message;
    } finally { busy = false; }
  }

  function filters() {
    return {destination: $("f-destination").value, reason: $("f-reason").value, since: $("f-since").value};
  }

  async function loadDead() {
    const f = filters();
    const q = new URLSearchParams({destination: f.destination, since: f.since, limit: "200"});
    if (f.reason) q.set("reason", f.reason);
    try {
      const body = await request("api/dead?" + q);
      const select = $("f-reason");
      const chosen = select.value;
      const groups = Object.entries(body.groups).sort((a, b) => b[1] - a[1]);
      select.replaceChildren(el("option", {value: "", text: "any reason"}),
        ...groups.map(([g, n]) => el("option", {value: g, text: `${g} (${n})`})));
      if (chosen && !body.groups[chosen]) select.append(el("option", {value: chosen, text: chosen + " (0)"}));
      select.value = chosen;
      const rows = body.letters.map((d) => el("tr", {"data-id": d.id},
        el("td", {text: d.dead_at_iso}), el("td", {text: d.destination}), el("td", {text: d.person}),
        el("td", {text: d.kind + (d.name ? ": " + d.name : "")}), el("td", {class: "num", text: d.status === null ? "—" : d.status}),
        el("td", {class: "num", text: d.attempts}), el("td", {text: d.reason}),
        el("td", {}, el("button", {type: "button", "aria-label": "View payload of " + d.id, text: "View",
          onclick: () => showPayload(d.id)}))));
      $("dead-table").tBodies[0].replaceChildren(...rows);
      $("dead-summary").textContent = rows.length
        ? `${rows.length} dead letter(s) shown${rows.length >= 200 ? " (the newest 200)" : ""}.`
        : "No dead letters match.";
      const byReason = Boolean(f.reason);
      for (const id of ["replay", "purge"]) $(id).disabled = byReason || !rows.length;
      $("action-note").textContent = byReason
        ? "Replay and purge act on a destination and a time window: choose “any reason” to use them." : "";
    } catch (e) { $("dead-summary").textContent = "Cannot load dead letters: " + e.message; }
  }

  async function showPayload(id) {
    const panel = $("payload");
    try {
      const letters = await request("api/dead/" + encodeURIComponent(id));
      $("payload-id").textContent = id;
      $("payload-body").textContent = JSON.stringify(letters, null, 2);
      panel.hidden = false;
      $("payload-h").focus();
    } catch (e) { $("dead-summary").textContent = "Cannot load the payload: " + e.message; }
  }

  function confirmDialog(text) {
    return new Promise((resolve) => {
      const dialog = $("confirm");
      $("confirm-text").textContent = text;
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), {once: true});
      dialog.showModal();
      $("confirm-cancel").focus();
    });
  }

  async function act(kind) {
    const f = filters();
    const windowText = {"15m": "in the last 15 minutes", "1h": "in the last hour", "24h": "in the last 24 hours",
      "7d": "in the last 7 days", all: "at any time"}[f.since];
    const dest = f.destination === "all" ? "any destination" : f.destination;
    try {
      const {count} = await request("api/dead-count?" + new URLSearchParams({destination: f.destination, since: f.since}));
      if (!count) { $("action-status").textContent = "Nothing to " + kind + " in this selection."; return; }
      const what = kind === "replay"
        ? `Replay ${count} dead letter(s) for ${dest} that died ${windowText}? They go back on the normal path, through the breakers and rate limits.`
        : `Purge ${count} dead letter(s) for ${dest} that died ${windowText}? They are deleted for good.`;
      if (!(await confirmDialog(what))) { $("action-status").textContent = "Cancelled."; return; }
      const body = await post("api/" + kind, {destination: f.destination, since: f.since});
      $("action-status").textContent = kind === "replay" ? `Replayed ${body.replayed} dead letter(s).` : `Purged ${body.purged} dead letter(s).`;
      await loadDead();
    } catch (e) { $("action-status").textContent = `Cannot ${kind}: ${e.message}`; }
  }

  async function loadMigration(refresh) {
    const box = $("migration");
    try {
      const m = await request("api/migration" + (refresh ? "?refresh=1" : ""));
      const p = m.parity || {};
      const reasons = el("ul", {}, ...(m.reasons.length ? m.reasons.map((r) => el("li", {text: r}))
        : [el("li", {text: "no reason against it"})]));
      box.replaceChildren(
        el("p", {}, el("strong", {text: `Phase ${m.phase}: `}), m.phase_label),
        el("p", {}, el("strong", {text: "Ready for phase 3: "}), badge(m.ready_for_phase_3 ? "yes" : "no")),
        el("h3", {text: "Reasons"}), reasons,
        el("p", {}, el("strong", {text: "Parity: "}), p.percent === null || p.percent === undefined
          ? `no people compared (${p.source})` : `${num(p.percent)} % of ${p.compared} people (${p.source})`,
          `, ${p.unmatched || 0} message(s) reached one platform only`),
        ...(m.hold ? [el("p", {text: `Customer.io copy: ${m.hold.state}, ${m.hold.held} held`})] : []),
        ...(m.notes || []).map((n) => el("p", {class: "muted", text: n})));
    } catch (e) { box.replaceChildren(el("p", {class: "error", text: "Cannot read the migration status: " + e.message})); }
  }

  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").setAttribute("aria-pressed", String(paused));
    $("pause").textContent = paused ? "Resume updates" : "Pause updates";
  });
  $("dead-filter").addEventListener("submit", (e) => { e.preventDefault(); loadDead(); });
  $("f-reason").addEventListener("change", loadDead);
  $("replay").addEventListener("click", () => act("replay"));
  $("purge").addEventListener("click", () => act("purge"));
  $("payload-close").addEventListener("click", () => { $("payload").hidden = true; $("dead-h").focus(); });
  $("mig-refresh").addEventListener("click", () => loadMigration(true));
  $("dead-h").setAttribute("tabindex", "-1");

  request("api/session").then((s) => {
    csrf = s.csrf;
    if (!s.login_required) $("logout-form").hidden = true;
    poll(); loadDead(); loadMigration(false);
    setInterval(poll, 1000);
    setInterval(() => loadMigration(false), 30000);
  }).catch((e) => { $("overall").textContent = "Cannot start: " + e.message; });
})();
