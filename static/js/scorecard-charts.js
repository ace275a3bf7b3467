/* Scorecard charts: draws every <canvas data-chart="trend|distribution" data-source="id">
   from the JSON that the page put in <script type="application/json" id="id"> (Django's
   json_script). Needs Chart.js (static/vendor/chartjs, loaded before this file, both with
   defer). Without JavaScript the table and each chart's caption carry the same numbers. */
(function () {
  "use strict";

  var PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207",
    "#be185d", "#4d7c0f", "#334155"];
  var RAG_COLOURS = { green: "#126245", amber: "#b26b00", red: "#b42318" };

  function readData(id) {
    var node = document.getElementById(id);
    if (!node) { return null; }
    try { return JSON.parse(node.textContent); } catch (error) { return null; }
  }

  function trendChart(canvas, data) {
    return new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (series, index) {
          var colour = PALETTE[index % PALETTE.length];
          return {
            label: series.label,
            data: series.data,
            borderColor: colour,
            backgroundColor: colour,
            spanGaps: false,
            tension: 0.2,
            pointRadius: 3
          };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        scales: { y: { min: 0, max: 100, title: { display: true, text: "Composite score" } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  function distributionChart(canvas, data) {
    var unit = data.percent ? "%" : data.unit;
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{
          label: data.label + " (" + unit + ")",
          data: data.values,
          backgroundColor: data.rags.map(function (rag) { return RAG_COLOURS[rag] || "#64748b"; })
        }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, title: { display: true, text: unit } } },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (context) {
                var value = context.parsed.y;
                return (Math.round(value * 100) / 100) + " " + unit + " (" + (data.rags[context.dataIndex] || "no RAG") + ")";
              }
            }
          }
        }
      }
    });
  }

  function draw() {
    if (typeof window.Chart === "undefined") { return; }
    var canvases = document.querySelectorAll("canvas[data-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var data = readData(canvas.getAttribute("data-source"));
      if (!data) { return; }
      if (canvas.getAttribute("data-chart") === "trend") { trendChart(canvas, data); }
      if (canvas.getAttribute("data-chart") === "distribution") { distributionChart(canvas, data); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
}());
