// Progressive enhancement for the manager GUI: live updates from the manager's event stream
// (relayed by the GUI per session), CSRF header on htmx requests, and confirmations.
// Every page works without this file; it only saves reloads.
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.dataset.csrf;

  document.addEventListener("htmx:configRequest", function (e) {
    if (csrf) { e.detail.headers["X-CSRF-Token"] = csrf; }
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
    }
  });

  var url = body.dataset.stream;
  if (!url || !window.EventSource) { return; }
  var status = document.getElementById("live-status");
  var last = document.getElementById("last-event");
  function show(text, state) {
    if (status) { status.textContent = text; status.dataset.state = state; }
  }
  function changed(detail) {
    body.dispatchEvent(new CustomEvent("manager-event", { detail: detail }));
  }

  var opened = false;
  var source = new EventSource(url);
  source.addEventListener("open", function () {
    show("live", "on");
    // Events between rendering this page and connecting: refresh the live regions once.
    if (!opened) { opened = true; changed({ type: "stream.open" }); }
  });
  source.addEventListener("message", function (e) {
    var ev;
    try { ev = JSON.parse(e.data); } catch (err) { return; }
    if (last) { last.textContent = "#" + ev.id + " " + ev.type + ": " + ev.message; }
    changed(ev);
  });
  source.addEventListener("gui-error", function (e) {
    var info = {};
    try { info = JSON.parse(e.data); } catch (err) { /* keep the generic text */ }
    source.close();
    show(info.status === 401 ? "logged out" : "offline", "off");
    if (status && info.message) { status.title = info.message; }
  });
  source.addEventListener("error", function () {
    // The browser reconnects by itself (and resumes after the last event id).
    show(source.readyState === EventSource.CLOSED ? "offline" : "reconnecting…", "off");
  });
})();
