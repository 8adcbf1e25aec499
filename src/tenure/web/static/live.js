/* Tenure: the System page's live activity panel.
 *
 * Listens to /api/v1/live (Server-Sent Events; the session cookie authenticates) and
 * prepends each domain event to a list, newest first, keeping the last 50. Event data
 * can hold text typed by users or sent by other systems: it is only ever written with
 * textContent, never parsed as HTML. No inline script: the page's CSP forbids it.
 */
(function () {
  "use strict";

  var KEEP = 50;
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function clock(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) {
      return String(iso);
    }
    return when.toISOString().slice(11, 19) + " UTC";
  }

  function text(value) {
    return typeof value === "string" || typeof value === "number" ? String(value) : "";
  }

  // One short line about the event, from its data; "" when there is nothing to add.
  function summary(item) {
    var data = item.data || {};
    switch (item.type) {
      case "account.updated":
        return data.changes ? "changed " + Object.keys(data.changes).join(", ") : "";
      case "event.ingested":
        return text(data.events) + " product events";
      case "health.changed":
        return "health " + text(data.score);
      case "hook.received":
        return "from hook " + text(data.hook_name);
      default:
        return text(data.message);
    }
  }

  function render(item, names) {
    var row = document.createElement("li");
    row.setAttribute("data-event-id", String(item.id));

    var time = document.createElement("time");
    time.setAttribute("datetime", text(item.occurred_at));
    time.textContent = clock(item.occurred_at);
    row.appendChild(time);

    var type = document.createElement("code");
    type.className = "live-type";
    type.textContent = text(item.type);
    row.appendChild(type);

    var account = text(item.account_id);
    if (UUID.test(account)) {
      var link = document.createElement("a");
      link.href = "/accounts/" + account;
      link.textContent = names.get(account) || "account " + account.slice(0, 8);
      row.appendChild(link);
    }

    var more = summary(item);
    if (more) {
      var note = document.createElement("span");
      note.className = "muted";
      note.textContent = more;
      row.appendChild(note);
    }
    return row;
  }

  function start(panel) {
    var list = panel.querySelector("#live-events");
    var state = panel.querySelector("#live-state");
    var empty = panel.querySelector("#live-empty");
    var types = (panel.getAttribute("data-live-types") || "").split(/\s+/).filter(Boolean);
    var shown = new Set();
    // Account names learnt from earlier events, so later ones can show them too.
    var names = new Map();

    function learn(item) {
      var data = item.data || {};
      var renamed = data.changes && data.changes.name && text(data.changes.name.after);
      var name = renamed || (item.type === "account.created" && text(data.name));
      if (name && item.account_id) {
        names.delete(text(item.account_id));
        names.set(text(item.account_id), name);
        if (names.size > 1000) {
          names.delete(names.keys().next().value);  // the least recently named
        }
      }
    }

    function status(label, tone) {
      state.textContent = label;
      state.className = "badge" + (tone ? " " + tone : "");
      panel.setAttribute("data-state", label);
    }

    function add(message) {
      var item;
      try {
        item = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      // After a reconnection the server resends what was missed (Last-Event-ID): skip repeats.
      if (!item || shown.has(item.id)) {
        return;
      }
      shown.add(item.id);
      learn(item);
      list.insertBefore(render(item, names), list.firstChild);
      while (list.children.length > KEEP) {
        shown.delete(Number(list.lastElementChild.getAttribute("data-event-id")));
        list.removeChild(list.lastElementChild);
      }
      empty.hidden = true;
    }

    if (!("EventSource" in window)) {
      status("unsupported", "bad");
      return;
    }
    empty.textContent = "Waiting for events…";
    status("connecting…", "");
    var source = new EventSource(panel.getAttribute("data-live-src"));
    source.addEventListener("ready", function () {
      status("live", "ok");
    });
    source.addEventListener("lagged", function () {
      status("catching up…", "warn");
    });
    source.addEventListener("error", function () {
      // The browser retries by itself unless the server refused (e.g. logged out).
      if (source.readyState === EventSource.CLOSED) {
        status("disconnected: reload the page", "bad");
      } else {
        status("reconnecting…", "warn");
      }
    });
    types.forEach(function (type) {
      source.addEventListener(type, add);
    });
  }

  function boot() {
    var panel = document.getElementById("live");
    if (panel) {
      start(panel);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", boot);
  } else {
    boot();
  }
})();
