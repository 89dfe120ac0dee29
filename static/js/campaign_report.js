// Campaign report charts, drawn with uPlot (static/js/charts.js) from the JSON the page embeds
// with json_script. Bars for the attack success rate per strategy and per category, with the 95%
// bootstrap interval as whisker points; bars for the critic's verdict counts.
(function () {
  "use strict";

  function countChart(el, data) {
    var max = Math.max.apply(null, data.count.concat([1]));
    window.SuperalignCharts.barChart(el, data.labels, [{ label: "responses", data: data.count,
      fill: "rgba(21, 94, 239, 0.35)", stroke: "#155eef", paths: uPlot.paths.bars({ size: [0.6, 80] }),
      points: { show: false } }], max * 1.1);
  }

  function draw() {
    var source = document.getElementById("campaign-report-data");
    if (!source || typeof uPlot === "undefined" || !window.SuperalignCharts) { return; }
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      if (name === "verdicts") { countChart(el, data.verdicts); }
      else if (data[name]) { window.SuperalignCharts.rateChart(el, data[name], { label: "success rate" }); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
