// The dashboard's monthly trends (Apache ECharts, served by geogrid: /maps/assets/echarts-…).
// The data and every label come translated from the page (<script type="application/json"
// id="dashboard-charts">); each chart resizes with its box and saves itself as a PNG.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-charts");
  if (!source || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var charts = [];

  function percent(v) { return v === null || v === undefined ? "–" : v + "%"; }

  function option(spec) {
    var hasCounts = spec.series.some(function (s) { return !s.rate; });
    var yAxis = [];
    if (hasCounts) { yAxis.push({ type: "value", minInterval: 1 }); }
    yAxis.push({ type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" },
                 splitLine: { show: !hasCounts } });
    return {
      title: { text: spec.title, left: 8, top: 6, textStyle: { fontSize: 15 } },
      animation: false,
      tooltip: {
        trigger: "axis",
        formatter: function (items) {
          var lines = [items[0].axisValueLabel];
          items.forEach(function (it) {
            var s = spec.series[it.seriesIndex];
            lines.push(it.marker + it.seriesName + ": " + (s.rate ? percent(it.value) : (it.value === null ? "–" : it.value)));
          });
          return lines.join("<br>");
        }
      },
      legend: { bottom: 4, type: "scroll" },
      grid: { left: 44, right: 48, top: 48, bottom: 64, containLabel: false },
      toolbox: {
        right: 8, top: 4,
        feature: { saveAsImage: { title: data.save, name: spec.file, pixelRatio: 2, backgroundColor: "#fff" } }
      },
      dataZoom: data.months.length > 24 ? [{ type: "inside" }, { type: "slider", height: 14, bottom: 32 }] : [],
      xAxis: { type: "category", data: data.months },
      yAxis: yAxis,
      series: spec.series.map(function (s) {
        return { name: s.name, type: s.type, data: s.data, connectNulls: false,
                 yAxisIndex: s.rate && hasCounts ? 1 : 0, smooth: false, symbolSize: 5 };
      })
    };
  }

  [["chart-volume", data.volume], ["chart-rates", data.rates]].forEach(function (pair) {
    var el = document.getElementById(pair[0]);
    if (!el) { return; }
    var chart = echarts.init(el, null, { renderer: "canvas", locale: data.lang === "en" ? "EN" : "ZH" });
    chart.setOption(option(pair[1]));
    charts.push(chart);
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () { chart.resize(); }).observe(el);
    }
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
}());
