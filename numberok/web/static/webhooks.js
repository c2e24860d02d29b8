/* numberok admin page: the Webhooks block.  Status from GET /api/webhooks
 * every 2 s; add, edit and remove a [Webhook:<name>] target through
 * PUT /api/settings (the other keys -- Method, Headers, Username/Password,
 * Token, Channels, Zones -- are kept as they are; docs/integrations.rst).
 * Text from the server goes into the page with textContent only. */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var rows = document.getElementById("webhook-rows");
  var error = document.getElementById("webhook-error");
  if (!rows) { return; }

  function api(method, path, body) {
    var options = {method: method, credentials: "same-origin",
                   headers: {"X-Numberok-Page": "1", "X-CSRF-Token": csrf}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (r) {
      return r.json().then(function (doc) { return {ok: r.ok, doc: doc}; });
    });
  }

  function field(id) { return document.getElementById(id); }

  function when(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    row.appendChild(td);
    return td;
  }

  function button(td, text, action) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "btn small ghost";
    b.textContent = text;
    b.addEventListener("click", action);
    td.appendChild(b);
  }

  function edit(name) {
    api("GET", "/api/settings").then(function (r) {
      (r.doc.sections && r.doc.sections.Webhook || []).forEach(function (w) {
        if (w.name !== name) { return; }
        field("webhook-name").value = w.name;
        field("webhook-url").value = w.Url || "";
        field("webhook-secret").value = "";
        field("webhook-states").value = (w.States || []).join(",");
        field("webhook-pictures").value = w.Pictures;
        field("webhook-timeout").value = w.TimeoutSec;
      });
    });
  }

  function remove(name) {
    var changes = {};
    changes["Webhook:" + name] = null;
    api("PUT", "/api/settings", changes).then(function (r) {
      error.textContent = r.ok ? "" : JSON.stringify(r.doc.errors || r.doc);
      refresh();
    });
  }

  function render(doc) {
    while (rows.firstChild) { rows.removeChild(rows.firstChild); }
    (doc.webhooks || []).forEach(function (w) {
      var tr = document.createElement("tr");
      cell(tr, w.name);
      cell(tr, w.url);
      cell(tr, w.lag === null ? "—" : w.lag);
      cell(tr, w.delivered);
      cell(tr, when(w.last_success));
      cell(tr, (w.last_error ? w.last_error + (w.retrying ? " (retrying)" : "") : "") +
               (w.skipped ? " · " + w.skipped + " removed by journal retention before delivery" : ""));
      cell(tr, w.parked_ids.join(", "));
      var actions = cell(tr, "");
      button(actions, "Edit", function () { edit(w.name); });
      button(actions, "Remove", function () { remove(w.name); });
      rows.appendChild(tr);
    });
    if (!rows.firstChild) {
      var tr = document.createElement("tr");
      cell(tr, "No webhook.").colSpan = 8;
      rows.appendChild(tr);
    }
  }

  function refresh() {
    api("GET", "/api/webhooks").then(function (r) {
      if (r.ok) { render(r.doc); }
    }).catch(function () { /* server restarting: next tick */ });
  }

  field("webhook-save").addEventListener("click", function () {
    var name = field("webhook-name").value.trim();
    var prefix = "Webhook:" + name + ".";
    var changes = {};
    changes[prefix + "Url"] = field("webhook-url").value.trim();
    changes[prefix + "States"] = field("webhook-states").value;
    changes[prefix + "Pictures"] = field("webhook-pictures").value;
    changes[prefix + "TimeoutSec"] = field("webhook-timeout").value;
    if (field("webhook-secret").value) {
      changes[prefix + "Secret"] = field("webhook-secret").value;
    }
    api("PUT", "/api/settings", changes).then(function (r) {
      if (r.ok) {
        error.textContent = "";
        field("webhook-secret").value = "";
        refresh();
        return;
      }
      var errors = r.doc.errors || {};
      error.textContent = Object.keys(errors).map(function (k) {
        return k + ": " + errors[k];
      }).join("; ");
    });
  });

  refresh();
  window.setInterval(refresh, 2000);
}());
