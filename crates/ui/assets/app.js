// The Palisade policy editor. Everything it shows about policy comes from the engine's JSON API.
"use strict";

const $ = (s, root = document) => root.querySelector(s);
const $$ = (s, root = document) => [...root.querySelectorAll(s)];
const yaml = $("#yaml");
let active = "graph";
let lastErrors = [];

async function api(path, body) {
  const res = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "line", "rect", "text", "title"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function explain(text) {
  $("#explanation").textContent = text;
}

// ---- YAML pane: gutter with error markers, validation ---------------------------------------------------

function renderGutter() {
  const n = yaml.value.split("\n").length;
  const bad = new Set(lastErrors.map((e) => e.line).filter(Boolean));
  const g = $("#gutter");
  g.textContent = "";
  for (let i = 1; i <= n; i++) {
    g.append(bad.has(i) ? el("span", { class: "bad", title: "error on this line" }, String(i)) : String(i), "\n");
  }
  g.scrollTop = yaml.scrollTop;
}

function goToLine(line) {
  const lines = yaml.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((a, l) => a + l.length + 1, 0);
  yaml.focus();
  yaml.setSelectionRange(start, start + (lines[line - 1] || "").length);
}

function renderErrors(errors) {
  lastErrors = errors;
  const ul = $("#errors");
  ul.textContent = "";
  if (!errors.length) ul.append(el("li", { class: "ok" }, yaml.value.trim() ? "Valid." : ""));
  for (const e of errors) {
    const li = el("li");
    if (e.line) li.append(el("button", { type: "button", on: { click: () => goToLine(e.line) } }, `line ${e.line}`));
    li.append(e.message);
    ul.append(li);
  }
  renderGutter();
}

let timer;
function scheduleRefresh() {
  clearTimeout(timer);
  timer = setTimeout(refresh, 250);
}

async function refresh() {
  const v = await api("/api/validate", { yaml: yaml.value });
  renderErrors(v.errors);
  const sel = $("#policy");
  const keep = sel.value;
  sel.textContent = "";
  for (const p of v.policies) sel.append(el("option", { value: p }, p));
  if (v.policies.includes(keep)) sel.value = keep;
  await refreshView();
}

async function refreshView() {
  try {
    if (active === "graph") await drawGraph();
    if (active === "matrix") await drawMatrix();
    if (active === "explain") await drawExplain();
    if (active === "list") $("#list").textContent = (await api("/api/list", { yaml: yaml.value })).text;
    if (active === "tiers") await drawTiers();
  } catch (e) {
    explain(String(e.message || e));
  }
}

// ---- Graph -----------------------------------------------------------------------------------------------

async function drawGraph() {
  const box = $("#graph");
  const port = $("#port").value;
  let g;
  try {
    g = await api("/api/graph", {
      yaml: yaml.value, policy: $("#policy").value || null,
      port: port ? Number(port) : null, protocol: $("#protocol").value,
    });
  } catch (e) {
    box.textContent = "";
    $("#graph-summary").textContent = String(e.message || e);
    return;
  }
  $("#graph-summary").textContent = g.summary;
  const W = 780, colW = 200, rowH = 44, top = 60;
  const x = { left: 10, mid: (W - colW) / 2, right: W - colW - 10 };
  const sources = new Map(), sinks = new Map();
  for (const f of g.ingress.flows) if (!sources.has(f.from)) sources.set(f.from, sources.size);
  for (const f of g.egress.flows) if (!sinks.has(f.to)) sinks.set(f.to, sinks.size);
  const mids = new Map(g.selected.map((p, i) => [p, i]));
  const rows = Math.max(sources.size, sinks.size, mids.size, 1);
  const H = top + rows * rowH + 50;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Graph of ${g.policy}` });
  const midY = (i) => top + i * rowH + (rows - mids.size) * rowH / 2;
  const sideY = (i, n) => top + i * rowH + (rows - n) * rowH / 2;
  const title = (tx, t) => svg.append(el("text", { x: tx, y: 20, class: "col-title" }, t));
  title(x.left, "Ingress (who connects)");
  title(x.mid, "Pods the policy selects");
  title(x.right, "Egress (where to)");
  svg.append(el("text", { x: x.mid, y: 38, class: "col-title" }, `${g.selector} · ${g.protocol}/${g.port}`));
  const badge = (tx, side) => {
    svg.append(el("text", { x: tx, y: H - 14, class: side.isolated ? "badge" : "badge open" }, side.badge));
  };
  badge(x.left, g.ingress);
  badge(x.right, g.egress);
  // With tier policies, each flow takes the colour of the stage that decided it (the API names it).
  $("#colour-by").hidden = !g.tiered;
  const byStage = g.tiered && $("#colour").value === "stage";
  svg.classList.toggle("by-stage", byStage);
  $("#panel-graph").classList.toggle("by-stage", byStage);
  const flows = el("g"), nodes = el("g");
  svg.append(flows, nodes);
  const node = (tx, ty, label, cls) => {
    nodes.append(el("g", { class: `node ${cls}` },
      el("rect", { x: tx, y: ty - 14, width: colW, height: 28 }),
      el("text", { x: tx + 8, y: ty + 4 }, label)));
  };
  const isIp = (s) => !s.includes("/") || /^[0-9a-f:.]+$/i.test(s);
  for (const [p, i] of sources) node(x.left, sideY(i, sources.size), p, isIp(p) ? "block" : "");
  for (const [p, i] of sinks) node(x.right, sideY(i, sinks.size), p, isIp(p) ? "block" : "");
  for (const [p, i] of mids) node(x.mid, midY(i), p, "selected");
  const edge = (dir, f, x1, y1, x2, y2) => {
    const label = `${f.allowed ? "allowed" : "denied"} ${g.protocol}/${g.port}`;
    const decided = g.tiered ? `; decided by ${f.stage}` : "";
    const show = () => {
      $$(".flow.active").forEach((e) => e.classList.remove("active"));
      e.classList.add("active");
      explain(g.tiered ? `${f.decision.text}\n\n${f.explanation}` : f.explanation);
    };
    const e = el("g", {
      class: `flow ${f.allowed ? "allowed" : "denied"} stage-${f.stage}`, tabindex: "0", role: "button",
      "aria-label": `${dir} ${f.from} to ${f.to}: ${label}${decided}`,
      dataset: { dir, from: f.from, to: f.to, allowed: String(f.allowed), rule: f.rule || "", stage: f.stage },
      on: { click: show, keydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); show(); } } },
    },
    el("title", {}, `${f.from} → ${f.to}: ${label}${decided}${f.rule ? ` (${f.rule})` : ""}`),
    el("line", { x1, y1, x2, y2 }),
    el("text", { x: (x1 + x2) / 2 - 30, y: (y1 + y2) / 2 - 4 }, `${g.protocol}/${g.port}`));
    flows.append(e);
  };
  for (const f of g.ingress.flows) {
    edge("ingress", f, x.left + colW, sideY(sources.get(f.from), sources.size), x.mid, midY(mids.get(f.to)));
  }
  for (const f of g.egress.flows) {
    edge("egress", f, x.mid + colW, midY(mids.get(f.from)), x.right, sideY(sinks.get(f.to), sinks.size));
  }
  box.textContent = "";
  box.append(svg);
  const legend = (side, name) => {
    if (!side.isolated) return;
    const ul = el("ul", { class: "peers-legend", "aria-label": `${name} peers` });
    if (side.default_deny) ul.append(el("li", {}, `${name}: no rule admits anything (default deny)`));
    for (const p of side.peers) {
      const who = p.pods.length ? ` — matches ${p.pods.join(", ")}` : "";
      const action = p.action ? `${p.action} ` : "";
      ul.append(el("li", {}, `${p.path}: ${action}${p.label}; ports ${p.ports.join(", ")}${who}`));
    }
    box.append(ul);
  };
  legend(g.ingress, "Ingress");
  legend(g.egress, "Egress");
  stageLegend(byStage ? g.legend : null);
}

function stageLegend(entries) {
  const ul = $("#stage-legend");
  ul.textContent = "";
  ul.hidden = !entries;
  for (const l of entries || []) ul.append(el("li", {}, el("span", { class: `swatch stage-${l.stage}` }), ` ${l.label}`));
}

// ---- Matrix and explanations ----------------------------------------------------------------------------

async function drawMatrix() {
  const port = Number($("#port").value) || 80;
  const protocol = $("#protocol").value;
  const m = await api("/api/matrix", { yaml: yaml.value, port, protocol });
  const t = el("table", { "aria-label": `Connectivity on ${protocol}/${port}: rows connect to columns` });
  const head = el("tr", {}, el("th", {}, "from \\ to"));
  for (const p of m.pods) head.append(el("th", { scope: "col" }, p));
  t.append(el("thead", {}, head));
  const body = el("tbody");
  m.pods.forEach((from, i) => {
    const tr = el("tr", {}, el("th", { scope: "row" }, from));
    m.pods.forEach((to, j) => {
      const ok = m.allowed[i][j];
      const stage = m.stages ? m.stages[i][j] : null;
      const decided = stage ? `, decided by ${stage}` : "";
      const b = el("button", {
        type: "button", class: `${ok ? "allowed" : "denied"}${stage ? ` stage-${stage}` : ""}`,
        "aria-label": `${from} to ${to}: ${ok ? "allowed" : "denied"}${decided}`, title: `${ok ? "allowed" : "denied"}${decided}`,
        on: { click: async () => {
          const c = await api("/api/check", { yaml: yaml.value, from, to, port, protocol });
          explain(c.decision ? `${c.decision.text}\n\n${c.text}` : c.text);
        } },
      }, ok ? "✓" : "✗");
      tr.append(el("td", {}, b));
    });
    body.append(tr);
  });
  t.append(body);
  $("#matrix").textContent = "";
  $("#matrix").append(t);
  if (m.legend) {
    const ul = el("ul", { class: "legend stages", "aria-label": "Cell marks: the stage that decided" });
    for (const l of m.legend) ul.append(el("li", {}, el("span", { class: `swatch stage-${l.stage}` }), ` ${l.label}`));
    $("#matrix").append(ul);
  }
}

async function drawExplain() {
  const r = await api("/api/explain", { yaml: yaml.value });
  const box = $("#explain");
  box.textContent = "";
  for (const p of r.policies) {
    box.append(el("article", {}, el("h3", {}, p.name + (p.inEditor ? " (editor)" : "")), el("pre", {}, p.text)));
  }
}

// ---- The form: a policy without writing YAML --------------------------------------------------------------

function selector(text) {
  const labels = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [k, ...v] = part.split("=");
    labels[k.trim()] = v.join("=").trim();
  }
  return Object.keys(labels).length ? { matchLabels: labels } : {};
}

function addPeer(rule) {
  const p = $("#peer-tpl").content.firstElementChild.cloneNode(true);
  p.dataset.kind = "pods";
  $(".kind", p).addEventListener("change", (e) => { p.dataset.kind = e.target.value; });
  $(".remove", p).addEventListener("click", () => p.remove());
  $(".peers", rule).append(p);
  $(".kind", p).focus();
  return p;
}

function addPort(rule) {
  const p = $("#port-tpl").content.firstElementChild.cloneNode(true);
  $(".remove", p).addEventListener("click", () => p.remove());
  $(".ports", rule).append(p);
  return p;
}

function addRule(dir) {
  const r = $("#rule-tpl").content.firstElementChild.cloneNode(true);
  const list = $(`.rules[data-dir=${dir}] .list`);
  list.append(r);
  $$("legend", list).forEach((l, i) => { l.textContent = `${dir} rule ${i + 1}`; });
  $(".add-peer", r).addEventListener("click", () => addPeer(r));
  $(".add-port", r).addEventListener("click", () => addPort(r).querySelector(".num").focus());
  $(".remove", r).addEventListener("click", () => r.remove());
  const box = `input[name=type${dir === "ingress" ? "Ingress" : "Egress"}]`;
  $(box).checked = true;
  return r;
}

function formPolicy() {
  const f = $("#builder");
  const types = [];
  if (f.typeIngress.checked) types.push("Ingress");
  if (f.typeEgress.checked) types.push("Egress");
  const rules = (dir) => $$(`.rules[data-dir=${dir}] .rule`).map((r) => {
    const peers = $$(".peer", r).map((p) => {
      const kind = $(".kind", p).value;
      if (kind === "ipblock") {
        const except = $(".except", p).value.split(",").map((s) => s.trim()).filter(Boolean);
        return { ipBlock: { cidr: $(".cidr", p).value.trim(), ...(except.length ? { except } : {}) } };
      }
      const peer = {};
      if (kind !== "ns") peer.podSelector = selector($(".pod", p).value);
      if (kind !== "pods") peer.namespaceSelector = selector($(".ns", p).value);
      return peer;
    });
    const ports = $$(".port", r).map((p) => {
      const v = $(".num", p).value.trim();
      const port = { protocol: $(".proto", p).value };
      if (v) port.port = /^\d+$/.test(v) ? Number(v) : v;
      const end = $(".end", p).value;
      if (end) port.endPort = Number(end);
      return port;
    });
    const rule = {};
    if (peers.length) rule[dir === "ingress" ? "from" : "to"] = peers;
    if (ports.length) rule.ports = ports;
    return rule;
  });
  const spec = { podSelector: selector(f.podSelector.value), policyTypes: types };
  if (f.typeIngress.checked) spec.ingress = rules("ingress");
  if (f.typeEgress.checked) spec.egress = rules("egress");
  return { metadata: { name: f.name.value.trim(), namespace: f.namespace.value.trim() }, spec };
}

async function writeYaml(ev) {
  ev.preventDefault();
  try {
    const r = await api("/api/yaml", formPolicy());
    $("#form-errors").textContent = r.errors.join("\n");
    yaml.value = r.yaml;
    await refresh();
  } catch (e) {
    $("#form-errors").textContent = String(e.message || e);
  }
}

// ---- Tier policies: the list, and the ClusterNetworkPolicy form ----------------------------------------------

let editing = null; // the key of the tier policy loaded into the form, if any

function showForm(kind) {
  $("#builder").hidden = kind !== "np";
  $("#tier-builder").hidden = kind !== "cnp";
  $$("input[name=kind]").forEach((r) => { r.checked = r.value === kind; });
}

async function drawTiers() {
  const r = await api("/api/tiers", { yaml: yaml.value });
  const box = $("#tiers");
  box.textContent = "";
  if (!r.policies.length) box.append(el("p", { class: "hint" }, "No ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy."));
  for (const p of r.policies) {
    const place = p.priority === null ? p.tier : `${p.tier} · priority ${p.priority}`;
    const art = el("article", { class: `tier-policy tier-${p.tier}`, dataset: { key: p.key } },
      el("h3", {}, `${place} · ${p.kind} ${p.name}${p.inEditor ? " (editor)" : " (loaded)"}`),
      el("p", {}, `Subject: ${p.subject}`));
    if (p.tiedWith.length) art.append(el("p", { class: "hint" }, `Same priority as ${p.tiedWith.join(", ")}: the API leaves the order undefined; Palisade walks them by name.`));
    for (const [dir, rules] of [["Ingress", p.ingress], ["Egress", p.egress]]) {
      if (!rules.length) continue;
      const ol = el("ol", { start: "0", "aria-label": `${dir} rules of ${p.name}, in order` });
      for (const rule of rules) {
        ol.append(el("li", {},
          el("span", { class: `action action-${rule.action}` }, rule.action), " ",
          el("code", {}, rule.path + (rule.name ? ` "${rule.name}"` : "")), ": ", rule.text));
      }
      art.append(el("h4", {}, dir), ol);
    }
    const actions = el("div", { class: "row" },
      el("button", { type: "button", on: { click: () => { $("#policy").value = p.key; selectTab("graph"); } } }, "Graph"));
    if (p.form) actions.append(el("button", { type: "button", on: { click: () => loadTierForm(p.form, p.key) } }, p.inEditor ? "Edit" : "Edit (a copy in the editor replaces it)"));
    if (p.inEditor) actions.append(el("button", { type: "button", on: { click: () => deleteTier(p.key) } }, "Delete"));
    art.append(actions);
    box.append(art);
  }
  if (r.nodes.length) {
    const ul = el("ul", { "aria-label": "Nodes" });
    for (const n of r.nodes) ul.append(el("li", {}, `${n.name}: ${n.addresses.join(", ") || "no address"}`));
    box.append(el("h3", {}, "Nodes (for the nodes peer)"), ul);
  }
}

async function deleteTier(key) {
  try {
    yaml.value = (await api("/api/tier/delete", { yaml: yaml.value, key })).yaml;
    if (editing === key) editing = null;
    await refresh();
  } catch (e) {
    explain(String(e.message || e));
  }
}

function renumber(dir) {
  $$(`.tier-rules[data-dir=${dir}] .tier-rule`).forEach((r, i) => { $("legend", r).textContent = `${dir} rule ${i} (spec.${dir}[${i}])`; });
}

function addTierPeer(rule, data = {}) {
  const p = $("#tier-peer-tpl").content.firstElementChild.cloneNode(true);
  if (rule.dataset.dir === "ingress") $$(".egress-only", p).forEach((o) => o.remove());
  const kind = $(".kind", p);
  kind.value = data.kind || "namespaces";
  p.dataset.kind = kind.value;
  kind.addEventListener("change", () => { p.dataset.kind = kind.value; });
  $(".ns", p).value = data.namespaces || "";
  $(".pod", p).value = data.pods || "";
  $(".nodes", p).value = data.nodes || "";
  $(".values", p).value = data.values || "";
  $(".remove", p).addEventListener("click", () => p.remove());
  $(".peers", rule).append(p);
  return p;
}

function addTierProto(rule, data = {}) {
  const p = $("#tier-proto-tpl").content.firstElementChild.cloneNode(true);
  $(".proto", p).value = data.protocol || "TCP";
  $(".num", p).value = data.port || "";
  $(".remove", p).addEventListener("click", () => p.remove());
  $(".protocols", rule).append(p);
  return p;
}

function addTierRule(dir, data = {}) {
  const r = $("#tier-rule-tpl").content.firstElementChild.cloneNode(true);
  r.dataset.dir = dir;
  $(".action", r).value = data.action || "Accept";
  $(".rule-name", r).value = data.name || "";
  for (const p of data.peers || []) addTierPeer(r, p);
  for (const p of data.protocols || []) addTierProto(r, p);
  $(".add-peer", r).addEventListener("click", () => $(".kind", addTierPeer(r)).focus());
  $(".add-protocol", r).addEventListener("click", () => $(".num", addTierProto(r)).focus());
  $(".remove", r).addEventListener("click", () => { r.remove(); renumber(dir); });
  $(".up", r).addEventListener("click", () => {
    if (r.previousElementSibling) r.previousElementSibling.before(r);
    renumber(dir);
    $(".up", r).focus();
  });
  $(".down", r).addEventListener("click", () => {
    if (r.nextElementSibling) r.nextElementSibling.after(r);
    renumber(dir);
    $(".down", r).focus();
  });
  $(`.tier-rules[data-dir=${dir}] .list`).append(r);
  renumber(dir);
  return r;
}

function loadTierForm(form, key) {
  const f = $("#tier-builder");
  const data = form || { name: "my-cluster-policy", tier: "Admin", priority: 10, subject: { kind: "namespaces" }, ingress: [], egress: [] };
  editing = key;
  f.name.value = data.name;
  f.tier.value = data.tier || "Admin";
  f.priority.value = data.priority === null || data.priority === undefined ? "" : String(data.priority);
  f.subjectKind.value = data.subject.kind || "namespaces";
  $(".subject", f).dataset.kind = f.subjectKind.value;
  f.subjectNamespaces.value = data.subject.namespaces || "";
  f.subjectPods.value = data.subject.pods || "";
  for (const dir of ["ingress", "egress"]) {
    $(`.tier-rules[data-dir=${dir}] .list`).textContent = "";
    for (const rule of data[dir]) addTierRule(dir, rule);
  }
  $("#tier-editing").textContent = key ? `Editing ${key}: Write YAML replaces it in the editor.` : "A new ClusterNetworkPolicy.";
  $("#tier-form-errors").textContent = "";
  showForm("cnp");
  f.name.focus();
}

function tierForm() {
  const f = $("#tier-builder");
  const rules = (dir) => $$(`.tier-rules[data-dir=${dir}] .tier-rule`).map((r) => ({
    name: $(".rule-name", r).value,
    action: $(".action", r).value,
    peers: $$(".tier-peer", r).map((p) => ({
      kind: $(".kind", p).value, namespaces: $(".ns", p).value, pods: $(".pod", p).value,
      nodes: $(".nodes", p).value, values: $(".values", p).value,
    })),
    protocols: $$(".tier-proto", r).map((p) => ({ protocol: $(".proto", p).value, port: $(".num", p).value })),
  }));
  return {
    name: f.name.value.trim(), tier: f.tier.value,
    priority: f.priority.value === "" ? null : Number(f.priority.value),
    subject: { kind: f.subjectKind.value, namespaces: f.subjectNamespaces.value, pods: f.subjectPods.value },
    ingress: rules("ingress"), egress: rules("egress"),
  };
}

async function writeTierYaml(ev) {
  ev.preventDefault();
  const ul = $("#tier-form-errors");
  ul.textContent = "";
  try {
    const r = await api("/api/tier/yaml", { yaml: yaml.value, original: editing, form: tierForm() });
    if (r.document) {
      yaml.value = r.yaml;
      editing = r.key;
      $("#tier-editing").textContent = `Editing ${r.key}: Write YAML replaces it in the editor.`;
    }
    for (const e of r.errors) {
      const li = el("li");
      if (e.line) li.append(el("button", { type: "button", on: { click: () => goToLine(e.line) } }, `line ${e.line}`));
      li.append(e.message);
      ul.append(li);
    }
    await refresh();
  } catch (e) {
    ul.append(el("li", {}, String(e.message || e)));
  }
}

// ---- Wiring -----------------------------------------------------------------------------------------------

function selectTab(name) {
  active = name;
  for (const t of ["graph", "matrix", "explain", "list", "tiers"]) {
    $(`#tab-${t}`).setAttribute("aria-selected", String(t === name));
    $(`#panel-${t}`).hidden = t !== name;
  }
  refreshView();
}

function download() {
  const a = el("a", { href: URL.createObjectURL(new Blob([yaml.value], { type: "application/yaml" })), download: `${$("#policy").value.split("/")[1] || "policy"}.yaml` });
  document.body.append(a);
  a.click();
  a.remove();
}

async function copy() {
  try {
    await navigator.clipboard.writeText(yaml.value);
  } catch {
    yaml.select();
    document.execCommand("copy");
  }
  explain("YAML copied.");
}

async function init() {
  yaml.addEventListener("input", () => { renderGutter(); scheduleRefresh(); });
  yaml.addEventListener("scroll", () => { $("#gutter").scrollTop = yaml.scrollTop; });
  yaml.addEventListener("keydown", (e) => {
    // Tab indents inside the editor; Escape then Tab leaves it (keyboard users are never trapped).
    if (e.key === "Tab" && !e.shiftKey && yaml.dataset.escaped !== "1") {
      e.preventDefault();
      yaml.setRangeText("  ", yaml.selectionStart, yaml.selectionEnd, "end");
      scheduleRefresh();
    }
    yaml.dataset.escaped = e.key === "Escape" ? "1" : "0";
  });
  $("#builder").addEventListener("submit", writeYaml);
  $$(".add-rule").forEach((b) => b.addEventListener("click", () => {
    const r = addRule(b.dataset.dir);
    addPeer(r);
  }));
  for (const t of ["graph", "matrix", "explain", "list", "tiers"]) $(`#tab-${t}`).addEventListener("click", () => selectTab(t));
  $(".tabs").addEventListener("keydown", (e) => {
    const tabs = $$("[role=tab]");
    const i = tabs.indexOf(document.activeElement);
    if (i < 0 || !["ArrowLeft", "ArrowRight"].includes(e.key)) return;
    const next = tabs[(i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    next.focus();
    next.click();
  });
  for (const id of ["#policy", "#port", "#protocol", "#colour"]) $(id).addEventListener("change", refreshView);
  $$("input[name=kind]").forEach((r) => r.addEventListener("change", () => showForm(r.value)));
  $("#tier-builder").addEventListener("submit", writeTierYaml);
  $("#tier-new").addEventListener("click", () => loadTierForm(null, null));
  $("[name=subjectKind]").addEventListener("change", (e) => { $("#tier-builder .subject").dataset.kind = e.target.value; });
  $$(".add-tier-rule").forEach((b) => b.addEventListener("click", () => {
    const r = addTierRule(b.dataset.dir);
    addTierPeer(r);
    $(".action", r).focus();
  }));
  $("#download").addEventListener("click", download);
  $("#copy").addEventListener("click", copy);
  const templates = await api("/api/templates");
  for (const t of templates) {
    $("#templates").append(el("button", { type: "button", title: `Start from: ${t.title}`, on: { click: () => { yaml.value = t.yaml; refresh(); } } }, t.title));
  }
  renderGutter();
  await refresh();
  document.body.dataset.ready = "1";
}

init();
