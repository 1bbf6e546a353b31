(function () {
  "use strict";
  function setAll(open, keepRawCalls) {
    document.querySelectorAll("details").forEach(function (d) {
      if (!(keepRawCalls && d.classList.contains("calls-box"))) { d.open = open; }
    });
  }
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    for (; el; el = el.parentElement) { if (el.tagName === "DETAILS") { el.open = true; } }
  }
  document.querySelectorAll("[data-expand]").forEach(function (b) {
    b.addEventListener("click", function () { setAll(b.getAttribute("data-expand") === "all", true); });
  });
  window.addEventListener("hashchange", openTarget);
  // Printing shows the summary and every rule with its checks; raw API calls stay out (print CSS).
  window.addEventListener("beforeprint", function () { setAll(true, true); });
  openTarget();
})();
