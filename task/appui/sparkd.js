// sparkd's web UIs: collapsible sections (click a heading) and sortable
// tables (click a column header). No dependencies.
(function () {
  "use strict";
  function text(cell) { return (cell.getAttribute("data-sort") || cell.textContent || "").trim(); }
  function cmp(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    if (!isNaN(x) && !isNaN(y) && /^[-\d.]/.test(a) && /^[-\d.]/.test(b)) { return x - y; }
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function sortable(table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, i) {
      th.classList.add("sortable");
      th.addEventListener("click", function () {
        var asc = !th.classList.contains("sorted-asc");
        heads.forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(asc ? "sorted-asc" : "sorted-desc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = cmp(text(r1.cells[i] || r1), text(r2.cells[i] || r2));
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  function collapsible(h) {
    var target = document.getElementById(h.getAttribute("data-collapse"));
    if (!target) { return; }
    h.classList.add("collapsible");
    h.addEventListener("click", function () {
      target.classList.toggle("hidden");
      h.classList.toggle("collapsed");
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(sortable);
    document.querySelectorAll("h4[data-collapse]").forEach(collapsible);
  });
})();
