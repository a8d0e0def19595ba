// Reload the sync-health dashboard every data-refresh seconds while the tab
// is visible, so a wall screen follows the state without a click.
(function () {
  var root = document.getElementById("ops-dashboard");
  if (!root) { return; }
  var seconds = parseInt(root.getAttribute("data-refresh"), 10);
  if (!seconds || seconds < 1) { return; }
  setInterval(function () {
    if (document.visibilityState === "visible") { window.location.reload(); }
  }, seconds * 1000);
})();
