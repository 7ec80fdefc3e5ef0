// The share box of app/share.py (Streamlit's component protocol, spoken by hand as in
// assets/plot/plot.js): args.link is shown; Copy puts it on the clipboard (Streamlit's component
// frames may write to it) and says so for a moment.
"use strict";
function post(type, extra) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type: type }, extra), "*");
}
const link = document.getElementById("link");
const copy = document.getElementById("copy");
copy.onclick = async () => {
  try {
    await navigator.clipboard.writeText(link.textContent);
    copy.textContent = "Copied";
  } catch (e) {  // no clipboard here (an insecure origin): select the text for Ctrl+C
    getSelection().selectAllChildren(link);
    copy.textContent = "Press Ctrl+C";
  }
  setTimeout(() => { copy.textContent = "Copy"; }, 1500);
};
window.addEventListener("message", (event) => {
  if (!event.data || event.data.type !== "streamlit:render") return;
  link.textContent = event.data.args.link;
  post("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
});
post("streamlit:componentReady", { apiVersion: 1 });
