// The request page's small map: the request's place on the service's base map (or none).
// Leaflet is vendored (/maps/assets/leaflet-…); nothing is fetched from elsewhere unless the
// service is configured with a tile server (data-tiles).
(function () {
  "use strict";
  var el = document.getElementById("request-map");
  if (!el || typeof L === "undefined") return;
  var lat = parseFloat(el.dataset.lat), lon = parseFloat(el.dataset.lon);
  var tiles = JSON.parse(el.dataset.tiles || "[]");
  var map = L.map(el, { scrollWheelZoom: false, attributionControl: tiles.length > 0 })
    .setView([lat, lon], 17);
  tiles.forEach(function (t) {
    L.tileLayer(t.url, { attribution: t.attribution, subdomains: t.subdomains,
      maxZoom: t.max_zoom }).addTo(map);
  });
  L.circle([lat, lon], { radius: 30, color: "#b3261e", weight: 2, fillOpacity: 0.15 }).addTo(map);
  L.circleMarker([lat, lon], { radius: 7, color: "#fff", weight: 2, fillColor: "#b3261e",
    fillOpacity: 1 }).addTo(map);
})();
