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
    // "Expand all" opens rules and tests but leaves the raw API calls collapsed; "Collapse all" closes everything.
    b.addEventListener("click", function () { var all = b.getAttribute("data-expand") === "all"; setAll(all, all); });
  });
  window.addEventListener("hashchange", openTarget);
  // Printing shows the summary and every rule with its checks; raw API calls stay out (print CSS).
  window.addEventListener("beforeprint", function () { setAll(true, true); });
  openTarget();
})();
