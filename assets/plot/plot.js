// One chart of app/plot.py, drawn with plotly.js in this iframe (Streamlit's component protocol,
// spoken by hand: componentReady -> render(args) -> setFrameHeight / setComponentValue).
// args: figure (plotly JSON), config, side and below (HTML beside and under the chart), and for
// a chart with a knob: knob = {label, values, index, frames}, frames[i] a patch of the figure at
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
  const data = base.data.map((t, j) => (patch.data && patch.data[j]) || t);
  const layout = Object.assign({}, base.layout, patch.layout || {});
  return { data: data, layout: layout, side: patch.side ?? args.side, below: patch.below ?? args.below };
}

// Axis labels and titles get the room they need (the figures' margins are tight).
function withRoom(layout) {
  const out = Object.assign({}, layout);
  for (const key of ["xaxis", "yaxis", ...Object.keys(layout).filter((k) => /^[xy]axis\d+$/.test(k))]) {
    out[key] = Object.assign({ automargin: true }, layout[key] || {});
  }
  return out;
}

function draw(i) {
  const fig = figureAt(i);
  Plotly.react("plot", fig.data, withRoom(fig.layout), args.config || {});
  setHtml("side", fig.side);
  setHtml("below", fig.below);
  shownIndex = i;
  if (args.knob) document.getElementById("value").textContent = args.knob.values[i];
  resize();
}

function resize() {
  post("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
}

function onInput() {
  const i = Number(document.getElementById("range").value);
  const ready = i === args.knob.index || args.knob.frames[i];
  document.body.classList.toggle("pending", !ready);
  if (ready) draw(i);
  else document.getElementById("value").textContent = args.knob.values[i];
}

function onChange() {  // released (mouse up, key press): the server learns the new value
  const i = Number(document.getElementById("range").value);
  sent.add(i);
  post("streamlit:setComponentValue", { value: i, dataType: "json" });
}

window.addEventListener("message", (event) => {
  if (!event.data || event.data.type !== "streamlit:render") return;
  args = event.data.args;
  const box = document.getElementById("knob");
  box.hidden = !args.knob;
  let i = null;
  if (args.knob) {
    const range = document.getElementById("range");
    document.getElementById("label").textContent = args.knob.label;
    range.setAttribute("aria-label", args.knob.label);
    range.max = String(args.knob.values.length - 1);
    // Keep what is on screen when the server's index is its old one or one this page sent (the
    // screen is newer); adopt it when the server moved the knob itself (a new page state).
    i = args.knob.index;
    const ours = lastServerIndex === i || sent.has(i);
    if (shownIndex !== null && ours) i = Number(range.value);
    else sent.clear();
    lastServerIndex = args.knob.index;
    range.value = String(i);
    range.oninput = onInput;
    range.onchange = onChange;
    if (i !== args.knob.index && !args.knob.frames[i]) i = args.knob.index;
  }
  document.body.classList.remove("pending");
  draw(i);
});
window.addEventListener("resize", () => { if (args) { Plotly.Plots.resize("plot"); resize(); } });
post("streamlit:componentReady", { apiVersion: 1 });
