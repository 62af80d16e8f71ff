// The residents' pages' small map (/report, /find): tap to place, search an address through
// the lookup (GET /v1/lookup), use the phone's location; and /report's photo, made smaller in
// the browser when it is larger than the service takes. No inline handlers (the page's CSP).
(function () {
  "use strict";
  var el = document.getElementById("intake-map");
  var status = document.getElementById("map-status");
  var lonInput = document.getElementById("lon");
  var latInput = document.getElementById("lat");
  var addressInput = document.getElementById("address");
  // A data value (a grid's name) is marked translate="no", as the pages mark every one.
  var dataValue = function (text) {
    var span = document.createElement("span");
    span.setAttribute("translate", "no");
    span.textContent = text;
    return span;
  };
  var say = function (key, extra) {
    if (!status) return;
    status.textContent = status.dataset[key] || "";
    if (extra) status.append(" ", dataValue(extra));
  };

  if (el && window.L) {
    var data = JSON.parse(document.getElementById("intake-map-data").textContent);
    var map = L.map(el, { zoomSnap: 0.5, attributionControl: data.tiles.length > 0 });
    data.tiles.forEach(function (t) {
      L.tileLayer(t.url, { attribution: t.attribution, subdomains: t.subdomains, maxZoom: t.max_zoom })
        .addTo(map);
    });
    L.geoJSON(data.outline, {
      style: function (f) {
        return f.properties.kind === "community"
          ? { color: "#b3261e", weight: 2.5, fill: false, interactive: false }
          : { color: "#0b57a4", weight: 1.2, fillColor: "#0b57a4", fillOpacity: 0.06 };
      },
      onEachFeature: function (f, layer) {
        if (f.properties.kind === "grid") {
          layer.bindTooltip(dataValue(f.properties.name || f.properties.code), { sticky: true });
        }
      },
    }).addTo(map);
    var b = data.outline.bounds;
    if (b) map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [8, 8] });
    else map.setView([23.1, 114.4], 12);

    var marker = null;
    var place = function (lat, lon, key, extra) {
      var ll = [lat, lon];
      if (marker) marker.setLatLng(ll);
      else marker = L.circleMarker(ll, { radius: 9, color: "#fff", weight: 3, fillColor: "#b3261e",
        fillOpacity: 1 }).addTo(map);
      if (lonInput) lonInput.value = lon.toFixed(7);
      if (latInput) latInput.value = lat.toFixed(7);
      say(key || "placed", extra);
      el.dataset.placed = "1";
    };
    var gridAt = function (lat, lon) {
      var found = null;
      map.eachLayer(function (layer) {
        if (found || !layer.feature || layer.feature.properties.kind !== "grid") return;
        if (layer.getBounds().contains([lat, lon]) && inside(layer.feature.geometry, lon, lat)) {
          found = layer.feature.properties.name || layer.feature.properties.code;
        }
      });
      return found;
    };
    var submitTarget = status && status.dataset.submit && document.getElementById(status.dataset.submit);
    map.on("click", function (e) {
      var grid = gridAt(e.latlng.lat, e.latlng.lng);
      place(e.latlng.lat, e.latlng.lng, grid ? "inGrid" : "placed", grid || "");
      if (submitTarget) {
        if (addressInput) addressInput.value = "";
        submitTarget.submit();
      }
    });
    if (lonInput && latInput && lonInput.value && latInput.value) {
      var lon0 = parseFloat(lonInput.value), lat0 = parseFloat(latInput.value);
      if (isFinite(lon0) && isFinite(lat0)) {
        place(lat0, lon0);
        map.setView([lat0, lon0], Math.max(map.getZoom(), 16));
      }
    }
    if (addressInput && lonInput && submitTarget) {
      addressInput.addEventListener("input", function () { lonInput.value = ""; latInput.value = ""; });
    }

    var search = document.getElementById("address-search");
    if (search && addressInput) {
      var run = function () {
        var q = addressInput.value.trim();
        if (!q) return;
        say("searching");
        fetch("/v1/lookup?address=" + encodeURIComponent(q) + "&crs=" + encodeURIComponent(data.crs),
          { headers: { Accept: "application/json" } })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (body) {
            if (!body) { say("notFound"); return; }
            var p = body.point.requested;
            place(p.lat, p.lon, "inGrid", body.grid.name || body.grid.code);
            map.setView([p.lat, p.lon], Math.max(map.getZoom(), 17));
          })
          .catch(function () { say("notFound"); });
      };
      search.addEventListener("click", run);
      addressInput.addEventListener("keydown", function (e) {
        if (e.key === "Enter") { e.preventDefault(); run(); }
      });
    }
    var locate = document.getElementById("use-location");
    if (locate) {
      if (!navigator.geolocation || data.crs !== "wgs84") locate.hidden = true;
      locate.addEventListener("click", function () {
        navigator.geolocation.getCurrentPosition(function (pos) {
          place(pos.coords.latitude, pos.coords.longitude, "located");
          map.setView([pos.coords.latitude, pos.coords.longitude], 17);
        }, function () { say("noLocation"); }, { enableHighAccuracy: true, timeout: 15000 });
      });
    }
  }

  // Ray casting on a (Multi)Polygon's rings: enough to name the grid under a tap.
  function inside(geom, x, y) {
    var polys = geom.type === "Polygon" ? [geom.coordinates] : geom.coordinates;
    return polys.some(function (rings) {
      var hit = false;
      rings.forEach(function (ring) {
        for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
          if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
        }
      });
      return hit;
    });
  }

  // The photo: a phone's camera makes 5–12 MB JPEGs; past the service's limit, or wider than
  // 2,560 px, it is drawn again at most 2,560 px wide as a JPEG within the limit.
  var photo = document.getElementById("photo");
  if (photo && window.DataTransfer && window.createImageBitmap) {
    var maxBytes = parseInt(photo.dataset.maxBytes, 10) || 5000000;
    var note = document.getElementById("photo-note");
    photo.addEventListener("change", function () {
      var file = photo.files && photo.files[0];
      if (!file || !/^image\//.test(file.type)) return;
      createImageBitmap(file).then(function (img) {
        var side = 2560;
        if (file.size <= maxBytes && Math.max(img.width, img.height) <= side) return null;
        var scale = Math.min(1, side / Math.max(img.width, img.height));
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(img.width * scale);
        canvas.height = Math.round(img.height * scale);
        canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
        var shrink = function (quality) {
          return new Promise(function (done) { canvas.toBlob(done, "image/jpeg", quality); })
            .then(function (blob) {
              if (blob.size > maxBytes && quality > 0.4) return shrink(quality - 0.15);
              return blob;
            });
        };
        return shrink(0.85);
      }).then(function (blob) {
        if (!blob) return;
        var name = file.name.replace(/\.[^.]*$/, "") + ".jpg";
        var dt = new DataTransfer();
        dt.items.add(new File([blob], name, { type: "image/jpeg" }));
        photo.files = dt.files;
        if (note) note.textContent = photo.dataset.resized;
        photo.dataset.resizedBytes = String(blob.size);
      }).catch(function () { /* the server checks it anyway */ });
    });
  }
})();
