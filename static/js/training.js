// The live loss curve of a training run (uPlot). The data comes from a <script type="application/json">
// block inside the progress panel, which htmx replaces every 2 s while the run is active; after each
// swap the chart is given the new data instead of being rebuilt.
(function () {
  "use strict";

  let chart = null;

  function readData(sourceId) {
    const node = document.getElementById(sourceId);
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (error) {
      return null;
    }
  }

  function series(data) {
    const accuracy = data.reward_accuracy.some((value) => value !== null);
    const columns = [data.step, data.loss];
    if (accuracy) columns.push(data.reward_accuracy);
    return { columns: columns, accuracy: accuracy };
  }

  function options(container, accuracy) {
    const width = Math.max(320, container.clientWidth || 640);
    const list = [{ label: "step" }, { label: "loss", stroke: "#2e5bff", width: 2, scale: "loss" }];
    const axes = [{ label: "step" }, { label: "loss", scale: "loss" }];
    if (accuracy) {
      list.push({ label: "DPO reward accuracy", stroke: "#12805c", width: 1, scale: "acc" });
      axes.push({ label: "reward accuracy", scale: "acc", side: 1, grid: { show: false } });
    }
    return {
      width: width,
      height: 260,
      scales: { x: { time: false }, acc: { range: [0, 1] } },
      series: list,
      axes: axes,
    };
  }

  function draw() {
    const container = document.getElementById("training-loss-chart");
    if (!container || typeof window.uPlot === "undefined") return;
    const data = readData(container.dataset.source);
    if (!data || !data.step || data.step.length === 0) return;
    const empty = container.parentElement.querySelector(".loss-empty");
    if (empty) empty.hidden = true;
    const built = series(data);
    // Rebuild only when the set of series changes (e.g. DPO starts after SFT).
    if (chart && chart.series.length === built.columns.length) {
      chart.setData(built.columns);
      return;
    }
    if (chart) chart.destroy();
    chart = new window.uPlot(options(container, built.accuracy), built.columns, container);
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSwap", draw);
  window.addEventListener("resize", function () {
    const container = document.getElementById("training-loss-chart");
    if (chart && container) chart.setSize({ width: Math.max(320, container.clientWidth), height: 260 });
  });
})();
