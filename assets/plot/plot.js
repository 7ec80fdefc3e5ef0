// One chart of app/plot.py, drawn with plotly.js in this iframe (Streamlit's component protocol,
// spoken by hand: componentReady -> render(args) -> setFrameHeight / setComponentValue).
// args: figure (plotly JSON), config, side and below (HTML beside and under the chart), and for
// a chart with a knob: knob = {label, values, index, frames, kind: "slider" or "radio"},
// frames[i] a patch of the figure at
// the knob's i-th value ({data: {trace index: trace}, layout: {key: value}, side, below}) or
// null when the server computes that value (then the chart dims until the server's new args).
"use strict";
let args = null;        // the last render's arguments
let shownIndex = null;  // the knob position on screen
let lastServerIndex = null;
const sent = new Set();  // knob positions this page sent to the server

function post(type, extra) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, extra), "*");
}

function setHtml(id, html) {
  const el = document.getElementById(id);
  el.hidden = !html;
  el.innerHTML = html || "";
}

function figureAt(i) {
  const base = args.figure;
  const patch = args.knob && i !== args.knob.index ? args.knob.frames[i] : null;
  if (!patch) return { data: base.data, layout: base.layout, side: args.side, below: args.below };
  const data = base.data.slice();
  for (const [j, t] of Object.entries(patch.data || {})) data[Number(j)] = t;
  const layout = Object.assign({}, base.layout, patch.layout || {});
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

function draw(i) {
  const fig = figureAt(i);
  Plotly.react("plot", fig.data, styled(fig.layout), args.config || {});
  setHtml("side", fig.side);
  setHtml("below", fig.below);
  shownIndex = i;
  if (args.knob) document.getElementById("value").textContent = args.knob.values[i];
  resize();
}

function resize() {
  post("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
}

// The knob's position: the slider's, or the checked radio button's.
function position() {
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
    input.onchange = () => { onInput(); onChange(); };
    label.append(input, document.createTextNode(v));
    box.append(label);
  });
}

function onInput() {
  const i = position();
  const ready = i === args.knob.index || args.knob.frames[i];
  document.body.classList.toggle("pending", !ready);
  if (ready) draw(i);
  else document.getElementById("value").textContent = args.knob.values[i];
}

function onChange() {  // released (mouse up, key press): the server learns the new value
  const i = position();
  sent.add(i);
  post("streamlit:setComponentValue", { value: i, dataType: "json" });
}

window.addEventListener("message", (event) => {
  if (!event.data || event.data.type !== "streamlit:render") return;
  args = event.data.args;
  const radio = args.knob && args.knob.kind === "radio";
  document.getElementById("knob").hidden = !args.knob || radio;
  document.getElementById("choice").hidden = !radio;
  let i = null;
  if (args.knob) {
    const range = document.getElementById("range");
    document.getElementById("label").textContent = args.knob.label;
    range.setAttribute("aria-label", args.knob.label);
    range.max = String(args.knob.values.length - 1);
    range.oninput = onInput;
    range.onchange = onChange;
    if (radio) buildChoice();
    // Keep what is on screen when the server's index is its old one or one this page sent (the
    // screen is newer); adopt it when the server moved the knob itself (a new page state).
    i = args.knob.index;
    const ours = lastServerIndex === i || sent.has(i);
    if (shownIndex !== null && ours) i = position();
    else sent.clear();
    lastServerIndex = args.knob.index;
    setPosition(i);
  }
  // A position the server has no frame for yet: its own figure, dimmed, until it answers.
  const ready = !args.knob || i === args.knob.index || args.knob.frames[i];
  document.body.classList.toggle("pending", !ready);
  draw(ready ? i : args.knob.index);
  if (!ready) document.getElementById("value").textContent = args.knob.values[i];
});
window.addEventListener("resize", () => { if (args) { Plotly.Plots.resize("plot"); resize(); } });
post("streamlit:componentReady", { apiVersion: 1 });
