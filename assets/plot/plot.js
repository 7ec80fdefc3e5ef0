// One chart of app/plot.py, drawn with plotly.js in this iframe (Streamlit's component protocol,
// spoken by hand: componentReady -> render(args) -> setFrameHeight / setComponentValue).
// args: figure (plotly JSON), config, side and below (HTML beside and under the chart), and
// - for a chart with a knob: knob = {label, values, index, frames, kind: "slider" or "radio"},
//   frames[i] a patch of the figure at the knob's i-th value ({data: {trace index: trace},
//   layout: {key: value}, title, side, below}) or null when the server computes that value
//   (then the chart dims until the server's new args);
// - pills = [{name, label, values, labels, chosen, kind, frames, help}], toggle buttons above
//   the chart: kind "show" shows the traces whose meta is an "on" value; kind "frames" picks a
//   whole figure, frames[key of the values on] ({data: [every trace], title, side, below}) at
//   the knob's server position;
// - title = {head, parts: [[group, words], ...]}: the title states the shown groups only.
// The value sent to the server: {index: the knob position or null, pills: {name: [values on]}}.
"use strict";
let args = null;        // the last render's arguments
let drawn = false;      // whether this frame has drawn a figure yet
let sel = {};           // the pills on screen: {name: [values on]}
let lastServer = null;  // the state the server last drew (stateKey)
const sent = new Set();  // states (stateKey) this page sent to the server

function post(type, extra) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, extra), "*");
}

function setHtml(id, html) {
  const el = document.getElementById(id);
  el.hidden = !html;
  el.innerHTML = html || "";
}

const pillsOf = (kind) => (args.pills || []).filter((p) => p.kind === kind);
const subsetKey = (values) => values.slice().sort((a, b) => a - b).map(String).join(",");
function serverSel() {
  const out = {};
  for (const p of args.pills || []) out[p.name] = p.chosen.slice();
  return out;
}
function stateKey(i, s) {
  return JSON.stringify([i, (args.pills || []).map((p) => s[p.name] || [])]);
}

// What the figure at knob position i with pills s changes from the server's figure ({} for
// nothing), or null where the server has not sent it.
function patchAt(i, s) {
  const knobAt = !args.knob || i === args.knob.index;
  const framed = pillsOf("frames").filter((p) => subsetKey(s[p.name]) !== subsetKey(p.chosen));
  if (!framed.length) return knobAt ? {} : args.knob.frames[i];
  if (!knobAt || framed.length > 1) return null;
  return framed[0].frames[subsetKey(s[framed[0].name])] || null;
}

function titleText(title, on) {
  const words = title.parts.filter(([group]) => !on || on.has(group)).map((p) => p[1]);
  return words.length ? title.head + "<br>" + words.join(" · ") : "";
}

function figureAt(i, s) {
  const base = args.figure;
  const patch = patchAt(i, s) || {};
  let data = Array.isArray(patch.data) ? patch.data.slice() : base.data.slice();
  if (!Array.isArray(patch.data)) for (const [j, t] of Object.entries(patch.data || {})) data[Number(j)] = t;
  const layout = Object.assign({}, base.layout, patch.layout || {});
  const show = pillsOf("show");
  const on = show.length ? new Set(show.flatMap((p) => s[p.name] || [])) : null;
  if (on) {
    const groups = new Set(show.flatMap((p) => p.values));
    data = data.map((t) => (groups.has(t.meta) ? Object.assign({}, t, { visible: on.has(t.meta) }) : t));
  }
  const title = patch.title || args.title;
  if (title) layout.title = Object.assign({}, layout.title || {}, { text: titleText(title, on) });
  return { data: data, layout: layout, side: patch.side ?? args.side, below: patch.below ?? args.below };
}

// The page's own font (Streamlit's Source Sans), borrowed from the parent page's @font-face rules
// (this frame is served from the same origin), their addresses made absolute.
function borrowFonts() {
  try {
    const rules = [];
    for (const sheet of window.parent.document.styleSheets) {
      for (const rule of sheet.cssRules) {
        if (rule.type !== CSSRule.FONT_FACE_RULE || !/Source Sans/.test(rule.cssText)) continue;
        const base = sheet.href || window.parent.location.href;
        rules.push(rule.cssText.replace(/url\("?([^")]+)"?\)/g, (_, u) => `url("${new URL(u, base)}")`));
      }
    }
    const style = document.createElement("style");
    style.textContent = rules.join("\n");
    document.head.append(style);
  } catch (e) { /* another origin or no fonts: the fallback sans-serif */ }
}
borrowFonts();

// The look Streamlit's own chart element gave these figures: its font, titles on the left in
// bold, grey axis titles, and room for labels and titles (the figures' margins are tight).
const FONT = '"Source Sans", "Source Sans Pro", sans-serif';
function styled(layout) {
  const out = Object.assign({}, layout);
  out.font = Object.assign({ family: FONT, size: 12, color: "#31333f" }, layout.font || {});
  const axes = ["xaxis", "yaxis", ...Object.keys(layout).filter((k) => /^[xy]axis\d+$/.test(k))];
  for (const key of axes) {
    const axis = Object.assign({ automargin: true, gridcolor: "#e6eaf1" }, layout[key] || {});
    if (axis.title) axis.title = Object.assign({ font: { color: "#808495", size: 12 } }, axis.title);
    out[key] = axis;
  }
  if (layout.title && layout.title.text) {
    const text = String(layout.title.text);
    const font = Object.assign({ size: 14 }, layout.title.font || {});
    out.title = Object.assign({ x: 0.01, xref: "container", xanchor: "left" }, layout.title, { font: font },
      { text: text.startsWith("<b>") ? text : "<b>" + text.replace(/<br>/g, "</b><br><b>") + "</b>" });
    out.margin = Object.assign({}, layout.margin || {});
    out.margin.t = Math.max(out.margin.t ?? 0, text.includes("<br>") ? 70 : 50);
  }
  return out;
}

function draw(i, s) {
  const fig = figureAt(i, s);
  Plotly.react("plot", fig.data, styled(fig.layout), args.config || {});
  setHtml("side", fig.side);
  setHtml("below", fig.below);
  drawn = true;
  if (args.knob) document.getElementById("value").textContent = args.knob.values[i];
  resize();
}

function resize() {
  post("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
}

// The knob's position: the slider's, or the checked radio button's (null: no knob).
function position() {
  if (!args.knob) return null;
  if (args.knob.kind !== "radio") return Number(document.getElementById("range").value);
  const on = document.querySelector("#choice input:checked");
  return on ? Number(on.value) : args.knob.index;
}

function setPosition(i) {
  if (args.knob.kind !== "radio") document.getElementById("range").value = String(i);
  else document.querySelectorAll("#choice input").forEach((r) => { r.checked = Number(r.value) === i; });
}

function buildChoice() {  // radio buttons, one per value (rebuilt when the values change)
  const box = document.getElementById("choice");
  const key = JSON.stringify(args.knob.values);
  document.getElementById("choice-label").textContent = args.knob.label;
  if (box.dataset.values === key) return;
  box.dataset.values = key;
  box.querySelectorAll("label").forEach((l) => l.remove());
  args.knob.values.forEach((v, i) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "choice";
    input.value = String(i);
    input.onchange = () => { update(); send(); };
    label.append(input, document.createTextNode(v));
    box.append(label);
  });
}

function buildPills() {  // one row of toggle buttons per pills group (rebuilt when they change)
  const box = document.getElementById("pills");
  const key = JSON.stringify((args.pills || []).map((p) => [p.name, p.label, p.values, p.labels, p.help]));
  box.hidden = !(args.pills || []).length;
  if (box.dataset.pills === key) return;
  box.dataset.pills = key;
  box.replaceChildren();
  for (const p of args.pills || []) {
    const row = document.createElement("div");
    row.className = "pills";
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", p.label);
    if (p.help) row.title = p.help;
    const label = document.createElement("span");
    label.className = "pills-label";
    label.textContent = p.label;
    row.append(label);
    p.values.forEach((v, j) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "pill";
      b.textContent = p.labels[j];
      b.dataset.name = p.name;
      b.dataset.index = String(j);
      b.onclick = () => toggle(p, v);
      row.append(b);
    });
    box.append(row);
  }
}

function markPills() {
  document.querySelectorAll("#pills button").forEach((b) => {
    const p = args.pills.find((q) => q.name === b.dataset.name);
    const on = (sel[p.name] || []).includes(p.values[Number(b.dataset.index)]);
    b.setAttribute("aria-pressed", on ? "true" : "false");
  });
}

function toggle(p, v) {
  const on = new Set(sel[p.name] || []);
  if (on.has(v)) {
    if (p.kind === "frames" && on.size === 1) return;  // at least one member stays on
    on.delete(v);
  } else on.add(v);
  sel[p.name] = p.values.filter((x) => on.has(x));
  markPills();
  update();
  send();
}

function update() {  // draw what the knob and pills now ask for, or dim until the server has it
  const i = position();
  const ready = patchAt(i, sel) != null;
  document.body.classList.toggle("pending", !ready);
  if (ready) draw(i, sel);
  else if (args.knob) document.getElementById("value").textContent = args.knob.values[i];
}

function send() {  // released (mouse up, key press, click): the server learns the new state
  const i = position();
  sent.add(stateKey(i, sel));
  post("streamlit:setComponentValue", { value: { index: i, pills: sel }, dataType: "json" });
}

window.addEventListener("message", (event) => {
  if (!event.data || event.data.type !== "streamlit:render") return;
  args = event.data.args;
  const radio = args.knob && args.knob.kind === "radio";
  document.getElementById("knob").hidden = !args.knob || radio;
  document.getElementById("choice").hidden = !radio;
  buildPills();
  if (args.knob) {
    const range = document.getElementById("range");
    document.getElementById("label").textContent = args.knob.label;
    range.setAttribute("aria-label", args.knob.label);
    range.max = String(args.knob.values.length - 1);
    range.oninput = update;
    range.onchange = send;
    if (radio) buildChoice();
  }
  // Keep what is on screen when the server drew its previous state or one this page sent (the
  // screen is newer); adopt the server's when it changed the state itself (a new page state).
  const server = stateKey(args.knob ? args.knob.index : null, serverSel());
  const ours = drawn && (lastServer === server || sent.has(server));
  let i = args.knob ? args.knob.index : null;
  if (ours) {
    i = position();
    for (const p of args.pills || []) sel[p.name] = p.values.filter((v) => (sel[p.name] || p.chosen).includes(v));
  } else {
    sent.clear();
    sel = serverSel();
  }
  lastServer = server;
  if (args.knob) setPosition(i);
  markPills();
  // A state the server has no frame for yet: its own figure, dimmed, until it answers.
  const ready = patchAt(i, sel) != null;
  document.body.classList.toggle("pending", !ready);
  if (ready) draw(i, sel);
  else {
    draw(args.knob ? args.knob.index : null, serverSel());
    if (args.knob) document.getElementById("value").textContent = args.knob.values[i];
  }
});
window.addEventListener("resize", () => { if (args) { Plotly.Plots.resize("plot"); resize(); } });
post("streamlit:componentReady", { apiVersion: 1 });
