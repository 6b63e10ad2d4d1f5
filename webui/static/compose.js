// Compose form: ticking groups writes the rule into the text field, and the live count follows it.
// Without this script the form still works: the server builds the rule from the ticked boxes.
(function () {
  "use strict";
  var box = document.querySelector("fieldset.audience");
  if (!box) { return; }
  var field = document.getElementById("audience");
  var out = document.getElementById("audience-count");
  var url = box.getAttribute("data-count-url");
  var timer = null;
  var asked = 0;

  function buildRule() {
    var picks = Array.prototype.map.call(box.querySelectorAll("input[name=pick]:checked"), function (el) { return el.value; });
    var and = box.querySelector("input[name=combine][value=and]").checked;
    field.value = picks.join(and ? " AND " : " OR ");
    refresh();
  }

  function refresh() {
    clearTimeout(timer);
    timer = setTimeout(count, 250);
  }

  function count() {
    var rule = field.value.trim();
    if (!rule) { out.textContent = ""; return; }
    var mine = ++asked;
    fetch(url + "?rule=" + encodeURIComponent(rule), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (mine !== asked) { return; }   // an older answer arriving late
        out.className = data.error ? "count error" : "count";
        out.textContent = data.error ? data.error
          : out.getAttribute("data-template").replace("{students}", data.students).replace("{guardians}", data.guardians);
      })
      .catch(function () { out.textContent = ""; });
  }

  box.addEventListener("change", function (event) {
    if (event.target.name === "pick" || event.target.name === "combine") { buildRule(); }
  });
  field.addEventListener("input", refresh);
  count();
})();
