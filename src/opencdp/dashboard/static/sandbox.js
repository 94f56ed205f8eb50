"use strict";
/* The sandbox's page: the admin API (one directory up) plus the page's own people search and
   request log. Admin POSTs are JSON from this origin, which the admin guard asks for. */
(() => {
  const {el, num, clock, request} = UI;
  const $ = (id) => document.getElementById(id);
  const ADMIN = "../";
  const PLATFORMS = [["opencdp", "OpenCDP"], ["customerio", "Customer.io"]];
  const ROWS = [["requests", "Requests"], ["accepted", "Accepted"], ["people", "People"], ["events", "Events"],
    ["devices", "Devices"], ["sends", "Transactional sends"], ["2xx", "Answered 2xx"], ["4xx", "Answered 4xx"],
    ["5xx", "Answered 5xx"], ["faults_total", "Faults injected"], ["rejected_total", "Refused"], ["duplicates", "Duplicates"]];
  let paused = false, lastSeq = 0, peopleKey = "";
  const send = (method, path, value) => request(ADMIN + path, {method,
    headers: {"content-type": "application/json", accept: "application/json"},
    body: value === undefined ? undefined : JSON.stringify(value)});
  const problem = (e) => { const p = $("error"); p.hidden = false; p.textContent = e.message; };

  async function stats() {
    const s = await request(ADMIN + "stats");
    $("stats-table").tBodies[0].replaceChildren(...ROWS.map(([k, label]) => el("tr", {},
      el("th", {scope: "row", text: label}), el("td", {class: "num", text: num(s.opencdp[k], 0)}),
      el("td", {class: "num", text: num(s.customerio[k], 0)}))));
    const key = `${s.opencdp.people}/${s.customerio.people}/${s.opencdp.events}/${s.customerio.events}`;
    if (key !== peopleKey && !$("people-h").parentElement.contains(document.activeElement)) {
      peopleKey = key; people();
    }
  }

  function faultText(f) {
    return `error rate ${num(f.error_rate * 100, 0)} %, latency ${num(f.latency_ms, 0)} ms, ` +
      `outage: ${f.down ? "yes (answers " + f.down_status + ")" : "no"}`;
  }

  function faultForm(name, label, f) {
    const id = (k) => `fault-${name}-${k}`;
    const rate = el("select", {id: id("error_rate")},
      ...[0, 0.1, 0.25, 0.5, 0.9, 1].map((r) => el("option", {value: r, text: num(r * 100, 0) + " %"})));
    rate.value = String([0, 0.1, 0.25, 0.5, 0.9, 1].reduce((a, b) => Math.abs(b - f.error_rate) < Math.abs(a - f.error_rate) ? b : a));
    const form = el("form", {"data-service": name},
      el("fieldset", {},
        el("legend", {text: label}),
        el("p", {class: "current", id: id("current"), text: "Now: " + faultText(f)}),
        el("label", {for: id("error_rate")}, "Error rate (5xx) ", rate),
        el("label", {for: id("latency_ms")}, "Latency (ms) ",
          el("input", {id: id("latency_ms"), type: "number", min: 0, max: 60000, step: 50, value: f.latency_ms})),
        el("label", {for: id("down")}, el("input", {id: id("down"), type: "checkbox", checked: f.down}), " Outage (every request fails)"),
        el("button", {type: "submit", text: "Apply to " + label})));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {[name]: {error_rate: Number($(id("error_rate")).value),
        latency_ms: Number($(id("latency_ms")).value || 0), down: $(id("down")).checked}};
      try {
        const now = await send("POST", "faults", body);
        $("faults-status").textContent = `${label}: ${faultText(now[name])}.`;
        showFaults(now, false);
      } catch (err) { $("faults-status").textContent = "Cannot change the faults: " + err.message; }
    });
    return form;
  }

  function showFaults(all, rebuild) {
    if (rebuild) $("faults").replaceChildren(...PLATFORMS.map(([n, l]) => faultForm(n, l, all[n])));
    for (const [n] of PLATFORMS) { const p = $(`fault-${n}-current`); if (p) p.textContent = "Now: " + faultText(all[n]); }
  }

  function personCell(p) {
    return p.id || p.email || p.phone || "cio_" + p.cio_id;
  }

  async function people() {
    const q = $("q").value.trim();
    const found = await request("api/people?" + new URLSearchParams({q, limit: "50"}));
    for (const [name] of PLATFORMS) {
      $("people-" + name).tBodies[0].replaceChildren(...(found[name].length ? found[name].map((p) => el("tr", {},
        el("td", {text: personCell(p) + (p.email && p.id ? ` (${p.email})` : "") + (p.suppressed ? " [suppressed]" : "")}),
        el("td", {class: "num", text: p.attributes}), el("td", {class: "num", text: p.events}),
        el("td", {class: "num", text: p.devices}),
        el("td", {}, el("button", {type: "button", text: "Compare", "aria-label": "Compare " + personCell(p) + " on both platforms",
          onclick: () => diff(p.key)}))))
        : [el("tr", {}, el("td", {colspan: 5, class: "muted", text: q ? "nobody matches" : "nobody yet"}))]));
    }
  }

  function list(title, items) {
    return el("div", {}, el("h4", {text: title}),
      items.length ? el("ul", {}, ...items.map((t) => el("li", {text: t}))) : el("p", {class: "muted", text: "none"}));
  }

  async function diff(key) {
    try {
      const d = await request(ADMIN + "diff/" + encodeURIComponent(key));
      const a = d.attributes;
      const rows = Object.entries(a.different).map(([k, v]) => el("tr", {}, el("th", {scope: "row", text: k}),
        el("td", {text: JSON.stringify(v.opencdp)}), el("td", {text: JSON.stringify(v.customerio)})));
      $("diff-id").textContent = key;
      $("diff-body").replaceChildren(
        el("p", {}, el("strong", {text: d.in_sync ? "✓ In sync" : "≠ Not in sync"}),
          d.opencdp ? "" : " — not stored by OpenCDP", d.customerio ? "" : " — not stored by Customer.io"),
        el("div", {class: "side"},
          list("Attributes only in OpenCDP", Object.entries(a.only_opencdp).map(([k, v]) => `${k} = ${JSON.stringify(v)}`)),
          list("Attributes only in Customer.io", Object.entries(a.only_customerio).map(([k, v]) => `${k} = ${JSON.stringify(v)}`))),
        el("h4", {text: "Attributes with different values"}),
        rows.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {scope: "col", text: "Attribute"}),
          el("th", {scope: "col", text: "OpenCDP"}), el("th", {scope: "col", text: "Customer.io"}))), el("tbody", {}, ...rows))
          : el("p", {class: "muted", text: "none"}),
        el("div", {class: "side"},
          list("Events only in OpenCDP", d.events.only_opencdp.map((e) => `${e.name} (${e.id})`)),
          list("Events only in Customer.io", d.events.only_customerio.map((e) => `${e.name} (${e.id})`))),
        el("p", {text: `${d.events.common} event(s) on both.`}),
        el("div", {class: "side"},
          list("Devices only in OpenCDP", d.devices.only_opencdp), list("Devices only in Customer.io", d.devices.only_customerio)));
      $("diff").hidden = false;
      $("diff-h").focus();
    } catch (e) { problem(e); }
  }

  async function log() {
    const body = await request("api/requests?after=" + lastSeq);
    if (!body.entries.length) return;
    lastSeq = body.entries[body.entries.length - 1].seq;
    const tbody = $("log").tBodies[0];
    for (const r of body.entries) {
      tbody.prepend(el("tr", {},
        el("td", {text: clock(r.t)}), el("td", {text: r.service === "opencdp" ? "OpenCDP" : "Customer.io"}),
        el("td", {text: r.method}), el("td", {text: r.path}),
        el("td", {class: "num", text: r.status === null ? "no answer" : r.status}),
        el("td", {class: "num", text: r.ms === null ? "—" : num(r.ms)})));
    }
    while (tbody.rows.length > 200) tbody.deleteRow(-1);
  }

  async function tick() {
    if (paused) return;
    try {
      await Promise.all([stats(), log(), request(ADMIN + "faults").then((f) => showFaults(f, false))]);
      $("error").hidden = true;
      $("updated").textContent = "updated " + clock(Date.now() / 1000);
    } catch (e) { problem(e); }
  }

  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").setAttribute("aria-pressed", String(paused));
    $("pause").textContent = paused ? "Resume updates" : "Pause updates";
  });
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); people().catch(problem); });
  $("diff-close").addEventListener("click", () => { $("diff").hidden = true; $("people-h").focus(); });
  $("people-h").setAttribute("tabindex", "-1");
  $("faults-clear").addEventListener("click", async () => {
    try { showFaults(await send("DELETE", "faults"), true); $("faults-status").textContent = "Every fault cleared."; }
    catch (e) { problem(e); }
  });
  $("reset").addEventListener("click", () => {
    const dialog = $("confirm");
    $("confirm-text").textContent = "Reset the sandbox? Every stored person, event and counter is deleted, and the start-up faults come back.";
    dialog.addEventListener("close", async () => {
      if (dialog.returnValue !== "ok") return;
      try { await send("POST", "reset"); lastSeq = 0; $("log").tBodies[0].replaceChildren(); peopleKey = ""; tick(); }
      catch (e) { problem(e); }
    }, {once: true});
    dialog.showModal();
    $("confirm-cancel").focus();
  });
  request(ADMIN + "faults").then((f) => showFaults(f, true)).catch(problem);
  tick();
  setInterval(tick, 1000);
})();
