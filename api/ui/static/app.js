// runledger dashboard: the live run timeline and the runs table's "select all". No framework, no
// build step; served from /ui/static under a CSP that allows scripts from this origin only.
"use strict";

const EVENT_NAMES = ["status", "text_delta", "usage", "tool_call_start", "tool_call_result", "step",
  "interrupt", "done", "error"];

function appendRow(tbody, row) {
  // Rows arrive already summarized by the server (api/ui/timeline.py); only model-output deltas merge.
  const last = tbody.lastElementChild;
  if (row.kind === "text" && last && last.classList.contains("ev-text")) {
    last.dataset.seq = row.seq;
    last.children[0].textContent = row.seq;
    last.children[2].firstElementChild.textContent += row.detail;
    return;
  }
  const tr = document.createElement("tr");
  tr.className = "ev ev-" + row.kind;
  tr.dataset.seq = row.seq;
  const seq = document.createElement("td");
  seq.textContent = row.seq;
  const label = document.createElement("td");
  label.textContent = row.label;
  const detail = document.createElement("td");
  const pre = document.createElement("pre");
  pre.textContent = row.detail;
  detail.appendChild(pre);
  tr.append(seq, label, detail);
  tbody.appendChild(tr);
}

function setStatus(value) {
  const badge = document.getElementById("run-status");
  if (!badge || !value) return;
  badge.textContent = value;
  badge.className = "status s-" + value;
}

function followTimeline() {
  const table = document.getElementById("timeline");
  if (!table || table.dataset.finished === "true" || !window.EventSource) return;
  const tbody = table.tBodies[0];
  // Resume after what the page already shows; on a reconnect the browser sends Last-Event-ID itself.
  const source = new EventSource(table.dataset.stream + "?after=" + table.dataset.lastSeq);
  const note = document.getElementById("live-note");
  for (const name of EVENT_NAMES) {
    source.addEventListener(name, (message) => {
      const row = JSON.parse(message.data);
      appendRow(tbody, row);
      if (row.status) setStatus(row.status);
      if (name === "done" || name === "error") {
        source.close();
        if (note) note.textContent = "finished — reload for receipts and output";
      }
    });
  }
}

function selectAll() {
  const all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll("input.pick")) box.checked = all.checked;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  followTimeline();
  selectAll();
});
