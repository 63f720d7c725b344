// Live dashboard: reads the VeloFlux streams over WebSockets (session cookie auth).
(function () {
  "use strict";
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const points = [];
  const MAX_POINTS = 60;
  const $ = (id) => document.getElementById(id);

  function fmt(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function drawChart() {
    const canvas = $("rps-chart");
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 24;
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...points);
    ctx.strokeStyle = "#e3e7ef";
    ctx.beginPath(); ctx.moveTo(pad, h - pad); ctx.lineTo(w - 4, h - pad); ctx.stroke();
    ctx.fillStyle = "#5b6478"; ctx.font = "11px system-ui";
    ctx.fillText(max.toFixed(1) + " req/s", 4, 12);
    if (points.length < 2) return;
    ctx.strokeStyle = "#2f6fed"; ctx.lineWidth = 2; ctx.beginPath();
    points.forEach((v, i) => {
      const x = pad + (i * (w - pad - 4)) / (MAX_POINTS - 1);
      const y = h - pad - (v / max) * (h - 2 * pad);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }

  function onMetrics(data) {
    $("requests-total").textContent = data.totals.requests;
    const rates = data.rates || {};
    if (rates.requests_per_second === undefined) return;
    $("rps").textContent = fmt(rates.requests_per_second, 1);
    $("latency").textContent = rates.avg_latency_ms === null ? "–" : fmt(rates.avg_latency_ms, 1) + " ms";
    ["1xx", "2xx", "3xx", "4xx", "5xx"].forEach((c) => {
      $("s" + c).textContent = fmt(rates["responses_" + c + "_per_second"], 1);
    });
    points.push(rates.requests_per_second);
    if (points.length > MAX_POINTS) points.shift();
    drawChart();
  }

  function onBackends(data) {
    $("healthy").textContent = data.healthy + " / " + data.total;
    const body = document.querySelector("#backends tbody");
    body.replaceChildren(...data.backends.map((b) => {
      const row = document.createElement("tr");
      const health = b.healthy === true ? "up" : b.healthy === false ? "down" : "unknown";
      [b.pool, b.address, b.state, health, b.health_latency_ms === null ? "–" : fmt(b.health_latency_ms, 1) + " ms"]
        .forEach((text) => { const cell = document.createElement("td"); cell.textContent = text; row.append(cell); });
      row.className = "health-" + health;
      return row;
    }));
  }

  function stream(name, handler) {
    const ws = new WebSocket(scheme + location.host + "/api/ws/" + name);
    ws.onopen = () => { $("connection").textContent = "live"; $("connection").className = "badge live"; };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === name + "_update") handler(frame.data);
    };
    ws.onclose = () => {
      $("connection").textContent = "reconnecting…"; $("connection").className = "badge";
      setTimeout(() => stream(name, handler), 2000);
    };
  }

  stream("metrics", onMetrics);
  stream("backends", onBackends);
  drawChart();
})();
