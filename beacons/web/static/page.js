// beacons queue page: post the buttons with the CSRF token, refresh the board when beacons change,
// show times as "5 min ago", keep the cards ticked for a bulk action across refreshes.
// Served as a file because the Content-Security-Policy forbids inline script.
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.dataset.csrf || "";
  var refreshMs = Math.max(1, parseInt(body.dataset.refresh || "15", 10)) * 1000;
  document.documentElement.classList.add("js");

  function toast(message) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;  // always text: messages can quote post titles or names
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, 4000);
  }

  function ago(date) {
    var s = Math.round((Date.now() - date.getTime()) / 1000);
    if (s < 60) return "just now";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    if (s < 86400 * 30) return Math.round(s / 86400) + " d ago";
    return date.toLocaleDateString();
  }

  function times(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d)) return;
      t.title = d.toLocaleString();
      t.textContent = ago(d);
    });
  }

  function board() { return document.getElementById("board"); }

  function busy() {
    var b = board(), active = document.activeElement;
    return b && active && b.contains(active) && (active.tagName === "TEXTAREA" || active.tagName === "INPUT" || active.tagName === "SELECT");
  }

  function reload(announce) {
    return fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (r.status === 401) { location.reload(); } return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("board");
        var current = board();
        if (!fresh || !current) return;
        var seen = {}, picked = {};
        current.querySelectorAll(".card").forEach(function (c) { seen[c.id] = true; });
        current.querySelectorAll("input.pick:checked").forEach(function (i) { picked[i.value] = true; });
        current.replaceWith(fresh);
        fresh.querySelectorAll("input.pick").forEach(function (i) { if (picked[i.value]) i.checked = true; });
        var added = 0;
        fresh.querySelectorAll(".card").forEach(function (c) { if (!seen[c.id]) { c.classList.add("is-new"); added++; } });
        times(fresh);
        if (announce && added) toast(added === 1 ? "1 new beacon" : added + " new beacons");
      });
  }

  function poll() {
    if (document.hidden || busy() || !board()) return;
    fetch("/api/version", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && board() && data.version !== board().dataset.version) return reload(true);
      })
      .catch(function () { /* the server is restarting; try again next time */ });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-ajax]")) return;
    event.preventDefault();
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      body: new URLSearchParams(new FormData(form)),
    }).then(function (r) {
      if (r.status === 401 || r.status === 403) { location.reload(); return; }
      return r.json().then(function (data) {
        if (!r.ok) { toast((data.error && data.error.message) || "Something went wrong"); }
        return reload(false);
      });
    }).catch(function () { toast("Could not reach the server"); })
      .finally(function () { if (button) button.disabled = false; });
  });

  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.matches("form[data-autosubmit]")) form.submit();
  });

  times(document);
  setInterval(poll, refreshMs);
  setInterval(function () { var b = board(); if (b) times(b); }, 60000);
})();
