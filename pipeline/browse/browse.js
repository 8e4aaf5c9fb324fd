// Filters of the data browser (no library, nothing loaded from the network). Each <select data-filter="NAME">
// keeps visible the rows (tr.row) whose data-NAME holds the chosen value (several values: tab-separated, any
// of them matches); the empty value shows every row. A link may preset filters: page.html#status=rejected.
"use strict";

function rowMatches(row, selects) {
  return selects.every((select) => {
    if (select.value === "") {
      return true;
    }
    const values = (row.dataset[select.dataset.filter] || "").split("\t");
    return values.includes(select.value);
  });
}

function applyFilters() {
  const selects = Array.from(document.querySelectorAll("select[data-filter]"));
  let visible = 0;
  for (const row of document.querySelectorAll("tr.row")) {
    const show = rowMatches(row, selects);
    row.hidden = !show;
    if (show) {
      visible += 1;
    }
  }
  const counter = document.getElementById("visible");
  if (counter) {
    counter.textContent = String(visible);
  }
}

function presetFromHash() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  for (const select of document.querySelectorAll("select[data-filter]")) {
    const wanted = params.get(select.dataset.filter);
    if (wanted !== null && Array.from(select.options).some((option) => option.value === wanted)) {
      select.value = wanted;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  presetFromHash();
  for (const select of document.querySelectorAll("select[data-filter]")) {
    select.addEventListener("change", applyFilters);
  }
  window.addEventListener("hashchange", () => {
    presetFromHash();
    applyFilters();
  });
  applyFilters();
});
