// beacons queue page: post the buttons with the CSRF token, refresh the board when beacons change,
// show times as "5 min ago", keep the cards ticked for a bulk action across refreshes, offer Undo
// after an action, and drive the board from the keyboard (? lists the keys; issue 13 §3).
// Served as a file because the Content-Security-Policy forbids inline script.
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.dataset.csrf || "";
  var refreshMs = Math.max(1, parseInt(body.dataset.refresh || "15", 10)) * 1000;
  document.documentElement.classList.add("js");

  function toast(message, undoId) {
    var el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;  // always text: messages can quote post titles or names
    if (undoId) {
      var undo = document.createElement("button");
      undo.type = "button";
      undo.className = "undo";
      undo.textContent = "Undo";
      undo.addEventListener("click", function () { el.hidden = true; post("/api/beacons/" + undoId + "/undo", new URLSearchParams(), null); });
      el.appendChild(document.createTextNode(" "));
      el.appendChild(undo);
    }
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.hidden = true; }, undoId ? 10000 : 4000);
  }

  var DONE = { claim: "Claimed", resolve: "Resolved", dismiss: "Dismissed", reroute: "Moved", undo: "Undone:" };

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
        var seen = {}, picked = {}, cur = current.querySelector(".card.is-current");
        current.querySelectorAll(".card").forEach(function (c) { seen[c.id] = true; });
        current.querySelectorAll("input.pick:checked").forEach(function (i) { picked[i.value] = true; });
        current.replaceWith(fresh);
        fresh.querySelectorAll("input.pick").forEach(function (i) { if (picked[i.value]) i.checked = true; });
        if (cur) { var again = document.getElementById(cur.id); if (again) again.classList.add("is-current"); }
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

  // Post a form's fields with the CSRF token; after claim, resolve, dismiss or re-route offer Undo (issue 13 §3).
  function post(action, fields, button) {
    if (button) button.disabled = true;
    var name = action.split("/").pop();
    return fetch(action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      body: fields,
    }).then(function (r) {
      if (r.status === 401 || r.status === 403) { location.reload(); return; }
      return r.json().then(function (data) {
        if (!r.ok) { toast((data.error && data.error.message) || "Something went wrong"); }
        else if (data.beacon && DONE[name]) { toast(DONE[name] + " #" + data.beacon.id + (name === "undo" ? " back to " + data.beacon.status : ""), name === "undo" ? null : data.beacon.id); }
        return reload(false);
      });
    }).catch(function () { toast("Could not reach the server"); })
      .finally(function () { if (button) button.disabled = false; });
  }

  // A saved reply is copied at once (the click is the user gesture the clipboard needs), then recorded.
  function copy(text, name) {
    var failed = function () { toast("Could not copy reply " + name + "; select its text and copy it"); };
    if (!navigator.clipboard || !navigator.clipboard.writeText) { failed(); return; }
    navigator.clipboard.writeText(text).then(function () { toast("Copied reply " + name + " to the clipboard"); }, failed);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-ajax]")) return;
    event.preventDefault();
    if (form.matches("form.reply")) copy(form.querySelector("textarea").value, form.elements.template.value);
    post(form.action, new URLSearchParams(new FormData(form)), form.querySelector("button"));
  });

  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.matches("form[data-autosubmit]")) form.submit();
  });

  // -- the keyboard: j/k move, c claim, r resolve, d dismiss, n note, o open the post, / search, ? the keys ----------
  function cards() { var b = board(); return b ? Array.prototype.slice.call(b.querySelectorAll(".card")) : []; }
  function current() { var b = board(); return b && b.querySelector(".card.is-current"); }

  function select(card) {
    var old = current();
    if (old) old.classList.remove("is-current");
    if (!card) return;
    card.classList.add("is-current");
    card.setAttribute("tabindex", "-1");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = cards(), at = all.indexOf(current());
    if (!all.length) return;
    select(all[Math.max(0, Math.min(all.length - 1, at < 0 ? 0 : at + step))]);
  }

  function press(action) {
    var card = current() || (move(1), current());
    if (!card) return;
    var button = card.querySelector("button[data-action=" + action + "]");
    if (!button) { toast("#" + card.dataset.id + " cannot be " + { claim: "claimed", resolve: "resolved", dismiss: "dismissed" }[action] + " now"); return; }
    button.form.requestSubmit();
  }

  function note() {
    var card = current() || (move(1), current());
    if (!card) return;
    var box = card.querySelector("details.card-note");
    if (!box) { location.href = "/beacons/" + card.dataset.id + "#notes"; return; }
    box.open = true;
    box.querySelector("textarea").focus();
  }

  function keys() {
    var help = document.getElementById("keys");
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }

  document.addEventListener("keydown", function (event) {
    var t = event.target, help = document.getElementById("keys");
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) {
      if (event.key === "Escape") t.blur();
      return;
    }
    if (help && help.open && event.key !== "?") return;  // the dialog closes with Escape or ?
    var card, link;
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "c": press("claim"); break;
      case "r": press("resolve"); break;
      case "d": press("dismiss"); break;
      case "n": note(); break;
      case "o":
        card = current();
        link = card && card.querySelector("a.original");
        if (link) window.open(link.href, "_blank", "noopener,noreferrer");
        break;
      case "Enter":
        card = current();
        if (card && t === card) location.href = "/beacons/" + card.dataset.id;
        else return;
        break;
      case "/": { var q = document.querySelector("input[name=q]"); if (q) { q.focus(); q.select(); } else return; break; }
      case "?": keys(); break;
      default: return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("#keys .close");
    if (close) document.getElementById("keys").close();
    var card = event.target.closest && event.target.closest(".card");
    if (card && board() && board().contains(card) && card !== current()) {
      var old = current();
      if (old) old.classList.remove("is-current");
      card.classList.add("is-current");
    }
  });

  times(document);
  setInterval(poll, refreshMs);
  setInterval(function () { var b = board(); if (b) times(b); }, 60000);
})();
