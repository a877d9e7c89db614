// Shelfwise dashboard: charts from the page's embedded data, copy buttons, confirmations,
// auto-submitting selects. No inline scripts (the Content-Security-Policy forbids them).
"use strict";

(function () {
  const palette = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];

  function chartData() {
    const node = document.getElementById("chart-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function lineOrBar(canvas, config) {
    if (!window.Chart) { return; }
    const chart = new window.Chart(canvas, config);
    canvas.dataset.rendered = "true";
    canvas.chart = chart;
  }

  const builders = {
    events(canvas, data) {
      const series = data.events.series;
      lineOrBar(canvas, {
        type: "bar",
        data: {
          labels: data.events.days,
          datasets: Object.keys(series).map((kind, i) => ({ label: kind, data: series[kind], backgroundColor: palette[i % palette.length], stack: "events" })),
        },
        options: { responsive: true, animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
      });
    },
    traffic(canvas, data) {
      lineOrBar(canvas, {
        type: "bar",
        data: {
          labels: data.traffic.days,
          datasets: [
            { type: "bar", label: "requests", data: data.traffic.requests, backgroundColor: palette[0], yAxisID: "y" },
            { type: "bar", label: "errors", data: data.traffic.errors, backgroundColor: palette[3], yAxisID: "y" },
            { type: "line", label: "p95 ms", data: data.traffic.p95_ms, borderColor: palette[2], backgroundColor: palette[2], yAxisID: "ms", spanGaps: true },
          ],
        },
        options: { responsive: true, animation: false, scales: { y: { beginAtZero: true, position: "left" }, ms: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "ms" } } } },
      });
    },
    outcomes(canvas, data) {
      const o = data.outcomes;
      lineOrBar(canvas, {
        type: "line",
        data: {
          labels: o.days,
          datasets: [
            { label: "shown", data: o.impressions, borderColor: palette[0], backgroundColor: palette[0] },
            { label: "clicked", data: o.clicks, borderColor: palette[1], backgroundColor: palette[1] },
            { label: "bought", data: o.purchases, borderColor: palette[4], backgroundColor: palette[4] },
          ],
        },
        options: { responsive: true, animation: false, scales: { y: { beginAtZero: true } } },
      });
    },
    cache(canvas, data) {
      lineOrBar(canvas, {
        type: "line",
        data: {
          labels: data.cache.days,
          datasets: [{ label: "hit rate", data: data.cache.hit_rate.map((v) => (v === null ? null : v * 100)), borderColor: palette[5], backgroundColor: palette[5], spanGaps: true }],
        },
        options: { responsive: true, animation: false, scales: { y: { min: 0, max: 100, title: { display: true, text: "%" } } } },
      });
    },
    experiment_ctr(canvas, data) { intervals(canvas, data.experiment, "ctr"); },
    experiment_conversion(canvas, data) { intervals(canvas, data.experiment, "conversion"); },
  };

  // Per variant: a floating bar from the interval's low to high end, and a point at the estimate.
  function intervals(canvas, e, metric) {
    lineOrBar(canvas, {
      type: "bar",
      data: {
        labels: e.labels,
        datasets: [
          { type: "bar", label: "95 % interval", data: e[metric + "_ci"], backgroundColor: "rgba(37, 99, 235, 0.25)", borderColor: palette[0], borderWidth: 1 },
          { type: "line", label: "estimate", data: e[metric], showLine: false, pointRadius: 6, pointStyle: "rectRot", borderColor: palette[3], backgroundColor: palette[3] },
        ],
      },
      options: { responsive: true, animation: false, scales: { y: { beginAtZero: true, title: { display: true, text: "%" } } } },
    });
  }

  function renderCharts() {
    const data = chartData();
    if (!data) { return; }
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const build = builders[canvas.dataset.chart];
      if (build) { build(canvas, data); }
    });
  }

  function wire() {
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
      });
    });
    document.querySelectorAll("[data-copy]").forEach((button) => {
      button.addEventListener("click", () => {
        const field = document.querySelector(button.dataset.copy);
        field.select();
        const done = () => { button.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, () => { document.execCommand("copy"); done(); });
        } else {
          document.execCommand("copy");
          done();
        }
      });
    });
    document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
      select.addEventListener("change", () => select.form.submit());
    });
  }

  document.addEventListener("DOMContentLoaded", () => { wire(); renderCharts(); });
})();
