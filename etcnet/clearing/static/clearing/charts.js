/* The clearing pages' charts: each <canvas data-chart="ID"> is drawn by the
   vendored Chart.js from the JSON the page put in <script id="ID">, without
   animation, and marked data-rendered="1" once drawn. */
(function () {
  "use strict";
  var palette = ["#0b6bcb", "#c62828", "#1a7f37", "#9a6700", "#6f42c1", "#0e7490"];
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") return;
    var spec = JSON.parse(source.textContent);
    var datasets = spec.datasets.map(function (set, i) {
      var color = palette[i % palette.length];
      return {
        label: set.label,
        data: set.data.map(Number),
        backgroundColor: color,
        borderColor: color,
        tension: 0,
      };
    });
    var chart = new Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { position: "bottom" } },
        scales: { y: { beginAtZero: true, title: { display: true, text: spec.unit } } },
      },
    });
    canvas.dataset.rendered = chart ? "1" : "";
  });
})();
