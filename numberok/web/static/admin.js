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

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  /* The browser's time zone as it names it (GMT+3, UTC, CET...). */
  function zoneText(d) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, {timeZoneName: "short"}).formatToParts(d);
      for (var i = 0; i < parts.length; i++) {
        if (parts[i].type === "timeZoneName") { return parts[i].value; }
      }
    } catch (e) { /* no Intl: the offset below */ }
    var offset = -d.getTimezoneOffset();
    return "UTC" + (offset < 0 ? "-" : "+") + pad(Math.floor(Math.abs(offset) / 60)) +
      ":" + pad(Math.abs(offset) % 60);
  }

  /* Local time with its zone, and the date unless it is today. */
  function timeText(seconds) {
    var d = new Date(seconds * 1000);
    var now = new Date();
    var clock = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      " " + zoneText(d);
    if (d.toDateString() === now.toDateString()) { return clock; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + clock;
  }

  function setStatus(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "save-status" + (kind ? " " + kind : "");
  }

  /* -- the live parts: listening state, tables, counters ----------------
   * The server renders them (one copy of each table); GET /live answers the
   * same parts alone and they replace the page's, matched by id. */

  function localTimes(root) {
    Array.prototype.forEach.call(root.querySelectorAll("[data-ms]"), function (cell) {
      cell.textContent = timeText(Number(cell.getAttribute("data-ms")) / 1000);
      var processed = cell.getAttribute("data-title-ms");
      if (processed) {
        cell.title = "processed by the server at " + timeText(Number(processed) / 1000);
      }
    });
  }

  function refreshLive() {
    return api("GET", "/live")
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var parts = new DOMParser().parseFromString(html, "text/html");
        Array.prototype.forEach.call(parts.querySelectorAll("body > div > [id], table > [id]"), function (part) {
          var old = document.getElementById(part.id);
          if (old) { old.replaceWith(document.importNode(part, true)); }
        });
        localTimes(document);
      })
      .catch(function () { /* server restarting: try again next tick */ });
  }

  document.getElementById("connections").addEventListener("click", function (e) {
    var button = e.target.closest(".disconnect");
    if (!button) { return; }
    button.disabled = true;
    button.textContent = "Disconnecting…";
    api("DELETE", "/api/connections/" + encodeURIComponent(button.getAttribute("data-id")))
      .then(refreshLive, refreshLive);
  });

  /* The whole frame over the page when a plate picture is clicked. */
  var frameDialog = document.getElementById("frame-dialog");
  document.addEventListener("click", function (e) {
    var link = e.target.closest("a.frame-link");
    if (!link) { return; }
    e.preventDefault();
    frameDialog.querySelector("img").src = link.getAttribute("href");
    frameDialog.showModal();
  });
  frameDialog.addEventListener("click", function () { frameDialog.close(); });

  /* -- zones ------------------------------------------------------------ */

  var zoneBody = document.querySelector("#zones tbody");

  function addZoneRow(channel, zone) {
    var key = "Zone:" + channel + ":" + zone;
    var row = document.getElementById("zone-template").content.querySelector("tr").cloneNode(true);
    Array.prototype.forEach.call(row.querySelectorAll("*"), function (node) {
      ["name", "id", "for", "data-field"].forEach(function (attr) {
        var value = node.getAttribute(attr);
        if (value) { node.setAttribute(attr, value.replace("Zone:C:Z", key)); }
      });
    });
    row.setAttribute("data-zone", key);
    row.cells[0].textContent = channel;
    row.cells[1].textContent = zone;
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

  /* -- channel names ---------------------------------------------------- */

  var channelBody = document.querySelector("#channel-names tbody");

  document.getElementById("add-channel-name").addEventListener("click", function () {
    var error = document.getElementById("new-name-error");
    var channel = document.getElementById("new-name-channel").value.trim();
    error.textContent = "";
    if (!/^\d{1,4}$/.test(channel) || Number(channel) > 1023) {
      error.textContent = "Channel must be 0..1023.";
      return;
    }
    var key = "Channel:" + String(Number(channel));
    if (channelBody.querySelector('tr[data-channel="' + key + '"]')) {
      error.textContent = "Channel " + Number(channel) + " is already listed.";
      return;
    }
    var row = document.getElementById("channel-name-template").content.querySelector("tr").cloneNode(true);
    Array.prototype.forEach.call(row.querySelectorAll("*"), function (node) {
      ["name", "id", "data-field", "aria-label"].forEach(function (attr) {
        var value = node.getAttribute(attr);
        if (value) { node.setAttribute(attr, value.replace("Channel:C", key).replace(/ C$/, " " + Number(channel))); }
      });
    });
    row.setAttribute("data-channel", key);
    row.cells[0].textContent = String(Number(channel));
    channelBody.appendChild(row);
    delete removedZones[key];
    markDirty();
    row.querySelector("input").focus();
  });

  channelBody.addEventListener("click", function (e) {
    var button = e.target.closest(".remove-channel-name");
    if (!button) { return; }
    var row = button.closest("tr");
    removedZones[row.getAttribute("data-channel")] = true;  /* sent as null */
    row.parentNode.removeChild(row);
    markDirty();
  });

  /* -- save ------------------------------------------------------------- */

  /* The Save bar shows while there is something to save (and a while
   * after a save), so at rest it covers nothing; a focused control it
   * would cover is scrolled clear of it. */
  var saveBar = document.querySelector(".savebar");
  var hideBarTimer = null;
  document.documentElement.classList.add("js");

  function keepClear(control) {
    if (!control || !form.contains(control) || saveBar.contains(control) ||
        !saveBar.classList.contains("shown")) { return; }
    var over = control.getBoundingClientRect().bottom - saveBar.getBoundingClientRect().top;
    if (over > -8) { window.scrollBy(0, over + 12); }
  }

  function showSaveBar() {
    window.clearTimeout(hideBarTimer);
    saveBar.classList.add("shown");
    keepClear(document.activeElement);
  }

  form.addEventListener("focusin", function (e) { keepClear(e.target); });

  function markDirty() {
    dirty = true;
    setStatus("Unsaved changes.", "pending");
    showSaveBar();
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

  /* Long text fields show their whole value: they grow with it. */
  function grow(area) {
    area.style.height = "auto";
    area.style.height = area.scrollHeight + 2 + "px";
  }
  Array.prototype.forEach.call(form.querySelectorAll("textarea.grow"), grow);
  form.addEventListener("input", function (e) {
    if (e.target.matches("textarea.grow")) { grow(e.target); }
  });
  form.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && e.target.matches("textarea.grow")) { e.preventDefault(); }
  });

  /* The camera push URL follows the token as it is typed. */
  var tokenField = document.getElementById("f-Cameras.Token");
  var cameraURL = document.getElementById("camera-url");
  function showCameraURL() {
    var token = tokenField.value.trim();
    cameraURL.textContent = token ? cameraURL.getAttribute("data-base") + encodeURIComponent(token) : "";
    cameraURL.parentNode.classList.toggle("hidden", !token);
    document.getElementById("camera-url-empty").hidden = !!token;
  }
  if (tokenField && cameraURL) {
    tokenField.addEventListener("input", showCameraURL);
    showCameraURL();
  }
  var generate = document.getElementById("camera-token-generate");
  if (tokenField && generate) {
    generate.addEventListener("click", function () {
      tokenField.value = generate.getAttribute("data-token");
      tokenField.dispatchEvent(new Event("input", { bubbles: true }));
    });
  }

  function collect() {
    var changes = {};
    Array.prototype.forEach.call(zoneBody.querySelectorAll("tr[data-zone]"), function (row) {
      changes[row.getAttribute("data-zone")] = {};
    });
    Array.prototype.forEach.call(form.querySelectorAll("[data-kind][name]"), function (control) {
      changes[control.name] = control.type === "checkbox" ? control.checked
        : control.value.replace(/\s*\n\s*/g, " ");
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
          refreshLive();
          setStatus("Saved.", "ok");
          hideBarTimer = window.setTimeout(function () {
            if (!dirty) { saveBar.classList.remove("shown"); }
          }, 4000);
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

  /* The Journal and Visits forms read times in this browser's zone. */
  Array.prototype.forEach.call(document.querySelectorAll("input.tz"), function (input) {
    input.value = String(-new Date().getTimezoneOffset());
  });

  localTimes(document);
  window.setInterval(refreshLive, 1000);
}());
