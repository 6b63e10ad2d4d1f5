// The follow-up page's figures, refreshed from stats.json every few seconds without reloading.
// The page is complete without this script; it only keeps the numbers current.
(function () {
  "use strict";
  var root = document.querySelector("[data-stats-url]");
  if (!root || !window.fetch) { return; }
  var url = root.getAttribute("data-stats-url");
  var INTERVAL_MS = 5000;

  function pick(stats, path) {
    return path.split(".").reduce(function (value, key) {
      return value === undefined || value === null ? undefined : value[key];
    }, stats);
  }

  function show(stats) {
    root.querySelectorAll("[data-stat]").forEach(function (element) {
      var value = pick(stats, element.getAttribute("data-stat"));
      if (typeof value === "number") { element.textContent = value.toLocaleString(); }
    });
    root.querySelectorAll("[data-stat-bar]").forEach(function (element) {
      var value = pick(stats, element.getAttribute("data-stat-bar"));
      if (typeof value === "number") { element.style.width = value + "%"; }
    });
  }

  function refresh() {
    if (document.hidden) { return; }   // a tab in the background costs the server nothing
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (stats) { if (stats) { show(stats); } })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  window.setInterval(refresh, INTERVAL_MS);
}());
