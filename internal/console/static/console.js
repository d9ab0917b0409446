// Apoxy console: live charts, the access-log tail and confirmations. No framework, no inline
// code (the Content-Security-Policy allows this file only); every value is written as text.
"use strict";
(function () {
  const body = document.body;
  const project = body.dataset.project;
  const csrf = body.dataset.csrf;
  const SVG = "http://www.w3.org/2000/svg";
  const HISTORY = 300; // points kept per series: five minutes at one a second

  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });

  // drawLines draws series (arrays of numbers, -1 = no value) into an SVG as polylines.
  function drawLines(svg, series, classes, label) {
    const vb = svg.viewBox.baseVal;
    const w = vb && vb.width ? vb.width : 160, h = vb && vb.height ? vb.height : 36;
    if (!svg.getAttribute("viewBox")) svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    let max = 0;
    series.forEach(function (s) { s.forEach(function (v) { if (v > max) max = v; }); });
    if (max <= 0) max = 1;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    series.forEach(function (s, i) {
      const pts = [];
      const n = s.length;
      s.forEach(function (v, j) {
        if (v < 0) return;
        const x = w - ((n - 1 - j) / (HISTORY - 1)) * w; // newest at the right edge
        pts.push(x.toFixed(1) + "," + (h - 2 - (v / max) * (h - 4)).toFixed(1));
      });
      const pl = document.createElementNS(SVG, "polyline");
      pl.setAttribute("points", pts.join(" "));
      pl.setAttribute("class", classes[i]);
      svg.appendChild(pl);
    });
    if (label && h >= 60) {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", "6");
      t.setAttribute("y", "14");
      t.setAttribute("class", "chart-label");
      t.textContent = label + " " + (max >= 10 ? max.toFixed(0) : max.toFixed(2));
      svg.appendChild(t);
    }
    svg.dataset.points = String(series[0].length);
    svg.dataset.max = String(max);
  }

  function push(arr, v) { arr.push(v); if (arr.length > HISTORY) arr.shift(); }
  function fmt(v, digits) { return v < 0 ? "–" : v.toFixed(digits); }

  const totalsEl = document.querySelector("[data-top=total]");
  const routesEl = document.querySelector("[data-top=routes]");
  const totalChart = document.querySelector("svg[data-chart=total-rps]");
  if (project && (totalsEl || routesEl)) {
    const stream = Math.random().toString(36).slice(2);
    const hist = {}; // route → {rps, p50, p95, p99, row}
    const totalRPS = [];
    const poll = function () {
      fetch("/console/p/" + encodeURIComponent(project) + "/data/top?stream=" + stream, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (d) {
          if (d.first) return; // the first answer is the baseline rates are measured from
          let rps = 0, errs = 0, p99 = -1;
          d.routes.forEach(function (r) {
            rps += r.rps; errs += r.rps * r.errorRatio;
            if (r.rps > 0 && r.p99 > p99) p99 = r.p99;
          });
          push(totalRPS, rps);
          if (totalsEl) {
            totalsEl.querySelector("[data-field=rps]").textContent = rps.toFixed(1);
            totalsEl.querySelector("[data-field=err]").textContent = rps > 0 ? (100 * errs / rps).toFixed(1) + " %" : "0 %";
            totalsEl.querySelector("[data-field=p99]").textContent = fmt(p99, 2);
          }
          if (totalChart) drawLines(totalChart, [totalRPS], ["s-rps"], "requests/s, max");
          if (routesEl) updateRoutes(d.routes);
        })
        .catch(function () { /* the next poll retries */ });
    };
    const updateRoutes = function (routes) {
      const tbody = routesEl.tBodies[0];
      routes.forEach(function (r) {
        const key = r.gateway + " " + r.route;
        let h = hist[key];
        if (!h) {
          const empty = tbody.querySelector("tr.empty");
          if (empty) empty.remove();
          const tr = document.createElement("tr");
          tr.dataset.route = r.route;
          const name = document.createElement("td");
          name.textContent = r.route;
          tr.appendChild(name);
          ["rps", "err", "lat"].forEach(function (f) { const td = document.createElement("td"); td.dataset.field = f; tr.appendChild(td); });
          const mk = function (label) {
            const td = document.createElement("td");
            const svg = document.createElementNS(SVG, "svg");
            svg.setAttribute("class", "spark");
            svg.setAttribute("viewBox", "0 0 160 36");
            svg.setAttribute("role", "img");
            svg.setAttribute("aria-label", label + " of " + r.route);
            td.appendChild(svg);
            tr.appendChild(td);
            return svg;
          };
          h = hist[key] = { rps: [], p50: [], p95: [], p99: [], row: tr, rate: mk("Request rate"), lat: mk("Latency p50, p95, p99") };
          tbody.appendChild(tr);
        }
        push(h.rps, r.rps); push(h.p50, r.p50); push(h.p95, r.p95); push(h.p99, r.p99);
        h.row.querySelector("[data-field=rps]").textContent = r.rps.toFixed(1);
        h.row.querySelector("[data-field=err]").textContent = (100 * r.errorRatio).toFixed(1) + " %";
        h.row.querySelector("[data-field=lat]").textContent = fmt(r.p50, 2) + " / " + fmt(r.p95, 2) + " / " + fmt(r.p99, 2);
        drawLines(h.rate, [h.rps], ["s-rps"]);
        drawLines(h.lat, [h.p50, h.p95, h.p99], ["s-p50", "s-p95", "s-p99"]);
      });
    };
    poll();
    setInterval(poll, 1000);
  }

  const logsEl = document.querySelector("[data-logs]");
  if (project && logsEl) {
    const form = document.querySelector("[data-logs-filter]");
    const pauseBtn = document.querySelector("[data-logs-pause]");
    let ctrl = null, paused = false, pending = "";
    const MAX_LINES = 2000;
    const append = function (text) {
      if (paused) { pending += text; return; }
      logsEl.textContent += text;
      const lines = logsEl.textContent.split("\n");
      if (lines.length > MAX_LINES) logsEl.textContent = lines.slice(lines.length - MAX_LINES).join("\n");
      logsEl.scrollTop = logsEl.scrollHeight;
    };
    const start = function () {
      if (ctrl) ctrl.abort();
      ctrl = new AbortController();
      logsEl.textContent = "";
      const q = new URLSearchParams();
      new FormData(form).forEach(function (v, k) { if (v) q.set(k, v); });
      fetch("/console/p/" + encodeURIComponent(project) + "/data/logs?" + q.toString(), { credentials: "same-origin", signal: ctrl.signal })
        .then(function (r) {
          if (!r.ok) return r.text().then(function (t) { append("error: " + t + "\n"); });
          const reader = r.body.getReader();
          const dec = new TextDecoder();
          const read = function () {
            return reader.read().then(function (res) {
              if (res.done) return;
              append(dec.decode(res.value, { stream: true }));
              return read();
            });
          };
          return read();
        })
        .catch(function () { /* aborted by a new filter */ });
    };
    form.addEventListener("submit", function (e) { e.preventDefault(); start(); });
    pauseBtn.addEventListener("click", function () {
      paused = !paused;
      pauseBtn.setAttribute("aria-pressed", String(paused));
      pauseBtn.textContent = paused ? "Resume" : "Pause";
      if (!paused && pending) { const p = pending; pending = ""; append(p); }
    });
    start();
  }

  // Forms posted by script carry the CSRF token; the pages' own forms carry it as a field.
  window.apoxyCSRF = csrf;
})();
