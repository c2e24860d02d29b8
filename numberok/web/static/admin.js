/* numberok admin page: live tables, zones editing, Save through the JSON API.
 * Plain ES5-style JavaScript, no build step, no dependencies.  Text from the
 * server is only ever put into the page with textContent, never innerHTML. */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var form = document.getElementById("settings");
  var statusLine = document.getElementById("save-status");
  var removedZones = {};
  var dirty = false;

  function api(method, path, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: {"X-Numberok-Page": "1", "X-CSRF-Token": csrf}
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 401) {
        window.location.href = "/login";
        throw new Error("logged out");
      }
      return response;
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function timeText(seconds) {
    var d = new Date(seconds * 1000);
    var now = new Date();
    var clock = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (d.toDateString() === now.toDateString()) { return clock; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + clock;
  }

  function bytesText(n) {
    if (n < 1024) { return n + " B"; }
    if (n < 1024 * 1024) { return (n / 1024).toFixed(1) + " KiB"; }
    return (n / 1024 / 1024).toFixed(1) + " MiB";
  }

  function setStatus(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "save-status" + (kind ? " " + kind : "");
  }

  /* -- listening state and connections ---------------------------------- */

  function showListening(state) {
    var box = document.getElementById("listening");
    if (!box || !state) { return; }
    box.textContent = "";
    var on = state.port !== null && state.port !== undefined;
    box.appendChild(el("span", "dot " + (on ? "on" : "off")));
    box.appendChild(document.createTextNode(
      on ? "Listening on port " + state.port
         : (state.enabled ? "Not listening (port unavailable)" : "Not listening")));
  }

  function renderConnections(doc) {
    var body = document.querySelector("#connections tbody");
    body.textContent = "";
    if (!doc.connections.length) {
      var empty = el("td", "empty", "No clients connected.");
      empty.colSpan = 9;
      body.appendChild(el("tr")).appendChild(empty);
    }
    doc.connections.forEach(function (c) {
      var row = el("tr");
      row.setAttribute("data-id", c.id);
      row.appendChild(el("td", null, c.host));
      row.appendChild(el("td", null, c.port));
      row.appendChild(el("td", null, timeText(c.connectedSince)));
      row.appendChild(el("td", null, c.subscribed ? "yes" : "no"));
      row.appendChild(el("td", "num", c.eventsSent));
      row.appendChild(el("td", "num", bytesText(c.bytesSent)));
      row.appendChild(el("td", "num", c.queued));
      row.appendChild(el("td", "num" + (c.dropped ? " warn-text" : ""), c.dropped));
      var button = el("button", "btn small danger disconnect", "Disconnect");
      button.type = "button";
      button.setAttribute("data-id", c.id);
      row.appendChild(el("td")).appendChild(button);
      body.appendChild(row);
    });
    var k = doc.counters;
    document.getElementById("counters").textContent =
      "Accepted " + k.accepted + " · refused (limit) " + k.refusedLimit +
      " · refused (not allowed) " + k.refusedNotAllowed +
      " · handshake timeouts " + k.handshakeTimeouts +
      " · protocol errors " + k.protocolErrors;
    showListening(doc.listening);
  }

  function refreshConnections() {
    return api("GET", "/api/connections")
      .then(function (r) { return r.json(); })
      .then(renderConnections)
      .catch(function () { /* server restarting: try again next tick */ });
  }

  document.querySelector("#connections tbody").addEventListener("click", function (e) {
    var button = e.target.closest(".disconnect");
    if (!button) { return; }
    button.disabled = true;
    button.textContent = "Disconnecting…";
    api("DELETE", "/api/connections/" + encodeURIComponent(button.getAttribute("data-id")))
      .then(refreshConnections, refreshConnections);
  });

  /* -- last events ------------------------------------------------------ */

  function renderEvents(doc) {
    var body = document.querySelector("#events tbody");
    body.textContent = "";
    if (!doc.events.length) {
      var empty = el("td", "empty", "No events yet.");
      empty.colSpan = 6;
      body.appendChild(el("tr")).appendChild(empty);
    }
    doc.events.forEach(function (e) {
      var row = el("tr");
      var cell = el("td");
      if (e.thumbnail) {
        var img = el("img", "thumb");
        img.alt = "";
        img.addEventListener("error", function () { img.className = "thumb none"; img.removeAttribute("src"); });
        img.src = e.thumbnail;
        cell.appendChild(img);
      } else {
        cell.appendChild(el("span", "thumb none"));
      }
      row.appendChild(cell);
      row.appendChild(el("td", "plate", e.plate));
      var phase = el("td");
      phase.appendChild(el("span", "badge " + e.state.toLowerCase(), e.state));
      row.appendChild(phase);
      row.appendChild(el("td", null, e.channel + " / " + e.zone));
      row.appendChild(el("td", null, e.movement));
      row.appendChild(el("td", null, timeText(e.time_ms / 1000)));
      body.appendChild(row);
    });
  }

  function refreshEvents() {
    return api("GET", "/api/events/recent")
      .then(function (r) { return r.json(); })
      .then(renderEvents)
      .catch(function () {});
  }

  /* -- zones ------------------------------------------------------------ */

  var zoneBody = document.querySelector("#zones tbody");

  function zoneControl(name, kind, value) {
    var cell = el("td");
    cell.setAttribute("data-field", name);
    var control;
    if (kind === "choice") {
      control = el("select");
      ["down", "up", "left", "right"].forEach(function (d) {
        var option = el("option", null, d);
        option.value = d;
        if (d === value) { option.selected = true; }
        control.appendChild(option);
      });
    } else {
      control = el("input");
      control.type = "number";
      control.min = "0.5";
      control.max = "60";
      control.step = "0.1";
      control.value = value;
    }
    control.name = name;
    control.id = "f-" + name;
    control.setAttribute("data-kind", kind);
    cell.appendChild(control);
    cell.appendChild(el("p", "error"));
    return cell;
  }

  function addZoneRow(channel, zone) {
    var key = "Zone:" + channel + ":" + zone;
    var row = el("tr");
    row.setAttribute("data-zone", key);
    row.appendChild(el("td", null, channel));
    row.appendChild(el("td", null, zone));
    row.appendChild(zoneControl(key + ".LossIntervalSec", "float", "5"));
    row.appendChild(zoneControl(key + ".InDirection", "choice", "down"));
    var button = el("button", "btn small ghost remove-zone", "Remove");
    button.type = "button";
    row.appendChild(el("td")).appendChild(button);
    zoneBody.appendChild(row);
    delete removedZones[key];
  }

  document.getElementById("add-zone").addEventListener("click", function () {
    var error = document.getElementById("new-zone-error");
    var channel = document.getElementById("new-channel").value.trim();
    var zone = document.getElementById("new-zone").value.trim();
    error.textContent = "";
    if (!/^\d{1,4}$/.test(channel) || Number(channel) > 1023) {
      error.textContent = "Channel must be 0..1023.";
      return;
    }
    if (!/^[0-3]$/.test(zone)) {
      error.textContent = "Zone must be 0..3.";
      return;
    }
    channel = String(Number(channel));
    if (zoneBody.querySelector('tr[data-zone="Zone:' + channel + ":" + zone + '"]')) {
      error.textContent = "Zone " + channel + " / " + zone + " is already listed.";
      return;
    }
    addZoneRow(channel, zone);
    markDirty();
  });

  zoneBody.addEventListener("click", function (e) {
    var button = e.target.closest(".remove-zone");
    if (!button) { return; }
    var row = button.closest("tr");
    removedZones[row.getAttribute("data-zone")] = true;
    row.parentNode.removeChild(row);
    markDirty();
  });

  /* -- save ------------------------------------------------------------- */

  function markDirty() {
    dirty = true;
    setStatus("Unsaved changes.", "pending");
  }

  form.addEventListener("input", markDirty);
  form.addEventListener("change", markDirty);

  function clearErrors() {
    Array.prototype.forEach.call(form.querySelectorAll(".error"), function (p) {
      p.textContent = "";
      p.classList.remove("shown");
    });
    Array.prototype.forEach.call(form.querySelectorAll(".invalid"), function (n) {
      n.classList.remove("invalid");
    });
  }

  function showError(name, message) {
    var holder = form.querySelector('[data-field="' + CSS.escape(name) + '"]') ||
                 form.querySelector('[data-zone="' + CSS.escape(name) + '"] td:nth-child(3)');
    if (!holder) { return false; }
    var p = holder.querySelector(".error");
    p.textContent = message;
    p.classList.add("shown");
    holder.classList.add("invalid");
    return true;
  }

  function collect() {
    var changes = {};
    Array.prototype.forEach.call(zoneBody.querySelectorAll("tr[data-zone]"), function (row) {
      changes[row.getAttribute("data-zone")] = {};
    });
    Array.prototype.forEach.call(form.querySelectorAll("[data-kind][name]"), function (control) {
      changes[control.name] = control.type === "checkbox" ? control.checked : control.value;
    });
    Object.keys(removedZones).forEach(function (key) { changes[key] = null; });
    return changes;
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var button = document.getElementById("save");
    button.disabled = true;
    clearErrors();
    setStatus("Saving…", "pending");
    api("PUT", "/api/settings", collect()).then(function (response) {
      return response.json().then(function (doc) {
        if (response.ok) {
          removedZones = {};
          dirty = false;
          showListening(doc.listening);
          setStatus("Saved.", "ok");
          return;
        }
        var errors = doc.errors || {};
        var elsewhere = [];
        Object.keys(errors).forEach(function (name) {
          if (!showError(name, errors[name])) { elsewhere.push(name + ": " + errors[name]); }
        });
        var count = Object.keys(errors).length;
        setStatus("Not saved: " + count + (count === 1 ? " error" : " errors") +
                  (elsewhere.length ? " — " + elsewhere.join("; ") : "") + ".", "bad");
        var first = form.querySelector(".invalid");
        if (first) { first.scrollIntoView({block: "center", behavior: "smooth"}); }
      });
    }).catch(function (err) {
      setStatus("Not saved: " + err.message, "bad");
    }).then(function () { button.disabled = false; });
  });

  window.addEventListener("beforeunload", function (e) {
    if (dirty) { e.preventDefault(); e.returnValue = ""; }
  });

  refreshConnections();
  refreshEvents();
  window.setInterval(refreshConnections, 1000);
  window.setInterval(refreshEvents, 2000);
}());
